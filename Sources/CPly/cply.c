/* Gives SwiftPM a compiled unit, so edits to Include/ply/plugin.h rebuild
 * everything that imports CPly; plus the few helpers Swift cannot reach. */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "cply.h"

uint32_t cply_abi_version(void) { return PLY_ABI_VERSION; }

const char *cply_object_path(const void *address) {
    Dl_info info;
    if (dladdr(address, &info) == 0) return NULL;
    return info.dli_fname;
}
