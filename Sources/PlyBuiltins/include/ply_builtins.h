/* PlyBuiltins: Ply's built-in layer families linked into the Swift library product.
 *
 * A package that depends on the `Ply` library product gets this target with it. Linking
 * it registers every built-in family with the runtime (Sources/CPly's table of linked
 * plugins) before main runs, so `Runtime()` finds conv2d, batchnorm2d, ... without any
 * shared library on disk. Nothing here is called by hand; the header only names what the
 * target provides. The `ply` tool and the C library (libply) do not link it: they load
 * the same families from their own shared libraries (libply_*.so). */
#ifndef PLY_BUILTINS_H
#define PLY_BUILTINS_H

#include <stdint.h>

/** Number of built-in families this target links in (13 today). */
int32_t ply_builtins_family_count(void);

#endif
