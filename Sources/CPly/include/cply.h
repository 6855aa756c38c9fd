/* Swift's view of the plugin ABI: the contract lives in Include/ply/. */
#ifndef CPLY_H
#define CPLY_H
#include "../../../Include/ply/plugin.h"
#include "../../../Include/ply/comm.h"
#include <dlfcn.h>

/** Numeric value of PLY_ABI_VERSION, for Swift (macros with casts do not import). */
uint32_t cply_abi_version(void);

/** Path of the shared object (or executable) that contains `address`, or NULL. */
const char *cply_object_path(const void *address);

/** A layer family linked into this image rather than loaded from a shared library. */
typedef struct cply_linked_plugin {
    /** The name its shared-library build has ("ply_conv" for libply_conv.so). */
    const char *name;
    /** The family's entry: the function that build exports as ply_plugin_entry. */
    ply_plugin_entry_fn entry;
} cply_linked_plugin;

/** Records the families linked into this image (called by PlyBuiltins' constructor, before
 *  main). `list` must stay valid for the life of the process; a later call adds to, not
 *  replaces, what is recorded (up to 8 lists). Not thread-safe: load-time only. */
void cply_link_plugins(const cply_linked_plugin *list, int32_t count);

/** The families recorded by cply_link_plugins: list `index` (0-based) and its length in
 *  *count, or NULL past the last list. */
const cply_linked_plugin *cply_linked_plugins(int32_t index, int32_t *count);

/** Prepares OpenBLAS before the first plugin that links it is loaded: one
 *  OpenBLAS thread (Ply threads the products itself) unless
 *  OPENBLAS_NUM_THREADS is set, and its AVX-512 kernels on CPUs it does not
 *  recognise unless OPENBLAS_CORETYPE is set. */
int cply_prepare_blas(void);

/** The kernel set OpenBLAS runs ("SkylakeX", "Haswell", "Prescott", ...), or NULL when
 *  OpenBLAS is not loaded in this process. */
const char *cply_blas_corename(void);

/** 1 when OPENBLAS_CORETYPE was already set when cply_prepare_blas first ran (the user's
 *  choice, left alone), 0 when Ply named it or left it unset, -1 before that first call. */
int cply_blas_coretype_from_user(void);

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

/** The CPU level plugins' kernels would pick here (0 generic, 1 avx2, 2 avx512: ply_cpu in
 *  Plugins/Support/plugin_support.h): as detected, and lowered by PLY_CPU. */
int32_t cply_cpu_detected(void);
int32_t cply_cpu_level(void);
/** PLY_CPU's parser: 0..2 for a level name, -1 for NULL or "", -2 for anything else. */
int32_t cply_cpu_parse(const char *text);

/** Marks the calling thread as carrying one lane of a batch split (`BatchLanes`): while set,
 *  the host's parallel_for runs every range on this thread and thread_count answers 1, so the
 *  lane's layers compute as on a one-thread runtime. Per thread; 0 by default. */
void cply_lane_set(int on);

/** Whether the calling thread carries a lane (cply_lane_set). */
int cply_lane_active(void);

#endif
