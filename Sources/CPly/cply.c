/* Gives SwiftPM a compiled unit, so edits to Include/ply/plugin.h rebuild
 * everything that imports CPly; plus the few helpers Swift cannot reach. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <strings.h>

#include "cply.h"
#include "../../Plugins/Support/plugin_support.h"

uint32_t cply_abi_version(void) { return PLY_ABI_VERSION; }

const char *cply_object_path(const void *address) {
    Dl_info info;
    if (dladdr(address, &info) == 0) return NULL;
    return info.dli_fname;
}

#include <stdlib.h>

#define CPLY_MAX_LINKED_LISTS 8
static const cply_linked_plugin *linked_lists[CPLY_MAX_LINKED_LISTS];
static int32_t linked_counts[CPLY_MAX_LINKED_LISTS];
static int32_t linked_list_count;

void cply_link_plugins(const cply_linked_plugin *list, int32_t count) {
    if (list == NULL || count <= 0 || linked_list_count >= CPLY_MAX_LINKED_LISTS) return;
    linked_lists[linked_list_count] = list;
    linked_counts[linked_list_count] = count;
    linked_list_count++;
}

const cply_linked_plugin *cply_linked_plugins(int32_t index, int32_t *count) {
    if (index < 0 || index >= linked_list_count) {
        *count = 0;
        return NULL;
    }
    *count = linked_counts[index];
    return linked_lists[index];
}

/* OpenBLAS reads OPENBLAS_NUM_THREADS and OPENBLAS_CORETYPE once, when it is loaded. In
 * `ply` and libply that is when the first plugin linking it is dlopen()ed, after
 * cply_prepare_blas set them. A program that links Ply's built-ins (the `Ply` library
 * product) has OpenBLAS loaded with it, before any of Ply's code runs: there the same two
 * choices are applied to the loaded library through its own exported functions,
 * openblas_set_num_threads and (in DYNAMIC_ARCH builds such as Debian's) a re-run of its
 * kernel selection, gotoblas_dynamic_quit + gotoblas_dynamic_init, which reads the variable
 * again. Both are looked up by name, so nothing here needs OpenBLAS, and nothing happens
 * where it is absent or another CBLAS is used. Runs at most once per process, from the
 * first Runtime's set-up, before Ply makes any BLAS call. */
static void blas_apply_to_loaded(int one_thread, const char *coretype) {
    static int done;
    if (done) return;
    done = 1;
    char *(*corename)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    if (corename == NULL) return;
    if (coretype != NULL) {
        void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
        void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
        const char *now = corename();
        if (quit != NULL && init != NULL && now != NULL && strcasecmp(now, coretype) != 0) {
            quit();
            init();
        }
    }
    if (one_thread) {
        void (*set_threads)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
        if (set_threads != NULL) set_threads(1);
    }
}

const char *cply_blas_corename(void) {
    char *(*corename)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    if (corename == NULL) { /* loaded with a plugin (RTLD_LOCAL): found by its soname, never loaded here */
        void *handle = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
        if (handle != NULL) {
            corename = (char *(*)(void))dlsym(handle, "openblas_get_corename");
            dlclose(handle); /* the plugin's reference keeps it loaded */
        }
    }
    return corename != NULL ? corename() : NULL;
}

static int coretype_from_user = -1;

int cply_blas_coretype_from_user(void) { return __atomic_load_n(&coretype_from_user, __ATOMIC_RELAXED); }

int cply_prepare_blas(void) {
    if (__atomic_load_n(&coretype_from_user, __ATOMIC_RELAXED) < 0)
        __atomic_store_n(&coretype_from_user, getenv("OPENBLAS_CORETYPE") != NULL, __ATOMIC_RELAXED);
    /* Ply splits its products over its own threads (parallel_for) and calls
     * OpenBLAS from each of them: OpenBLAS's own thread pool would only add
     * threads spinning in sched_yield against Ply's. A value the user set is
     * left alone (the plugins then let OpenBLAS thread each product instead of
     * splitting it). */
    int user_threads = getenv("OPENBLAS_NUM_THREADS") != NULL;
    setenv("OPENBLAS_NUM_THREADS", "1", 0);
    /* OpenBLAS 0.3.21 (Debian 12) does not know recent Xeons (family 6, model
     * 143/207) and falls back to its SSE3 "Prescott" kernels, 3-5x slower, so the
     * host names the right core type. PLY_CPU lowers it with Ply's own kernels,
     * so that PLY_CPU=avx2 on this machine runs what an AVX2-only CPU runs;
     * generic leaves OpenBLAS to its own choice. A value the user set is left
     * alone. Returns 1 when it set the variable. */
    const char *coretype = NULL;
#if PLY_HAVE_X86_TARGETS
    if (getenv("OPENBLAS_CORETYPE") == NULL) {
        switch (ply_cpu_level()) {
        case PLY_CPU_AVX512: coretype = "SkylakeX"; break;
        case PLY_CPU_AVX2: coretype = "Haswell"; break;
        case PLY_CPU_GENERIC: break;
        }
        if (coretype != NULL && setenv("OPENBLAS_CORETYPE", coretype, 0) != 0) coretype = NULL;
    }
#endif
    blas_apply_to_loaded(!user_threads, coretype);
    return coretype != NULL;
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

int32_t cply_cpu_detected(void) { return (int32_t)ply_cpu_detected(); }

static _Thread_local int cply_lane;
void cply_lane_set(int on) { cply_lane = on != 0; }
int cply_lane_active(void) { return cply_lane; }
int32_t cply_cpu_level(void) { return (int32_t)ply_cpu_level(); }
int32_t cply_cpu_parse(const char *text) { return ply_cpu_parse(text); }
