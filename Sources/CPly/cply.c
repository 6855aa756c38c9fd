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

#include <stdlib.h>

int cply_prepare_blas(void) {
    /* Ply splits its products over its own threads (parallel_for) and calls
     * OpenBLAS from each of them: OpenBLAS's own thread pool would only add
     * threads spinning in sched_yield against Ply's. It reads the variable
     * when it is loaded; a value the user set is left alone (the plugins then
     * let OpenBLAS thread each product instead of splitting it). */
    setenv("OPENBLAS_NUM_THREADS", "1", 0);
    /* OpenBLAS 0.3.21 (Debian 12) does not know recent Xeons (family 6, model
     * 143/207) and falls back to its SSE3 "Prescott" kernels, 3-5x slower. It
     * picks its kernels when it is loaded, i.e. when the first plugin that links
     * it is dlopen()ed, so the host names the right core type first. A value
     * the user set is left alone. Returns 1 when it set the variable. */
#if defined(__x86_64__)
    if (getenv("OPENBLAS_CORETYPE") != NULL) return 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
        return setenv("OPENBLAS_CORETYPE", "SkylakeX", 0) == 0;
    }
#endif
    return 0;
}

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int64_t cply_malloc_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 m = mallinfo2();
    return (int64_t)(m.uordblks + m.hblkhd);
#else
    return -1;
#endif
}

int cply_malloc_trim(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
// MXCSR bit 15: flush results below FLT_MIN to zero (FTZ); bit 6: read such inputs as zero (DAZ).
#define CPLY_FTZ_DAZ 0x8040u
uint32_t cply_denormals_flush(void) {
    uint32_t saved = _mm_getcsr();
    if ((saved & CPLY_FTZ_DAZ) != CPLY_FTZ_DAZ) _mm_setcsr(saved | CPLY_FTZ_DAZ);
    return saved;
}
void cply_denormals_restore(uint32_t saved) {
    if (_mm_getcsr() != saved) _mm_setcsr(saved);
}
#else
uint32_t cply_denormals_flush(void) { return 0; }
void cply_denormals_restore(uint32_t saved) { (void)saved; }
#endif
