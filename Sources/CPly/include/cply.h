/* Swift's view of the plugin ABI: the contract lives in Include/ply/. */
#ifndef CPLY_H
#define CPLY_H
#include "../../../Include/ply/plugin.h"
#include <dlfcn.h>

/** Numeric value of PLY_ABI_VERSION, for Swift (macros with casts do not import). */
uint32_t cply_abi_version(void);

/** Path of the shared object (or executable) that contains `address`, or NULL. */
const char *cply_object_path(const void *address);

/** Prepares OpenBLAS before the first plugin that links it is loaded: one
 *  OpenBLAS thread (Ply threads the products itself) unless
 *  OPENBLAS_NUM_THREADS is set, and its AVX-512 kernels on CPUs it does not
 *  recognise unless OPENBLAS_CORETYPE is set. */
int cply_prepare_blas(void);

/** Bytes the C heap has handed out and not taken back (glibc's mallinfo2(): uordblks, the
 *  arenas' chunks in use, plus hblkhd, the chunks malloc mmap()ed for large requests), or
 *  -1 where that is unknown (not glibc). Process-wide: every thread's malloc/free counts,
 *  Swift's and the plugins' alike. Used by LeakTests. */
int64_t cply_malloc_in_use(void);

/** malloc_trim(0): returns free heap memory to the system, so the resident set size says
 *  something. 1 when memory was released; 0 otherwise (or not glibc). */
int cply_malloc_trim(void);

/** Sets this thread's flush-to-zero and denormals-are-zero modes (x86 MXCSR FTZ and DAZ;
 *  a no-op elsewhere) and returns the previous control word for cply_denormals_restore. */
uint32_t cply_denormals_flush(void);

/** Puts back the control word cply_denormals_flush returned. */
void cply_denormals_restore(uint32_t saved);

#endif
