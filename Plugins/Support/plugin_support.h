/*
 * plugin_support.h -- private helpers shared by Ply's built-in plugins.
 *
 * Not part of the ABI and not installed: third-party plugins need only
 * <ply/plugin.h>. Every built-in family includes this header once, first,
 * so that what is defined here is defined once for all of them:
 *
 *  - PLY_BUILTIN_ENTRY(family): the family's entry point, which serves both
 *    ways a family ships (one source, one ABI, as SQLite extensions build
 *    either loadable or built in):
 *      * as its own shared library, dlopen()ed by `ply`, the C library and
 *        any host: the library exports `ply_plugin_entry` as every plugin does;
 *      * linked into the Swift library product `Ply`: many families share one
 *        image there, so each family's entry also has a name of its own,
 *        `ply_builtin_entry_<family>`, which Sources/PlyBuiltins registers with
 *        the runtime. `ply_plugin_entry` is then a weak definition in each
 *        family, so that one image may hold several without a clash; the host
 *        never calls it in such an image (it calls the family's own name).
 *  - Internal linkage for what one family's files share (PLY_INTERNAL_BEGIN /
 *    PLY_INTERNAL_END around internal headers' declarations): hidden, so a
 *    loadable family exports its entry and nothing else, and SwiftPM needs no
 *    -fvisibility flag (flags like that are "unsafe" in a package dependency).
 *  - The CPU level that picks a family's kernels at run time (ply_cpu_level),
 *    with the PLY_CPU environment variable to force a lower one, and the
 *    function attributes that compile one function for a CPU level
 *    (PLY_TARGET_AVX2, PLY_TARGET_AVX512). Nothing is compiled with -march:
 *    every family builds for the baseline of its architecture and runs on any
 *    CPU of it; faster paths are per-function and chosen at run time.
 *  - Small integer helpers (ply_min_i64, ply_max_i64, ply_round_up_i64) and the
 *    geometry of convolution and pooling windows (ply_conv_out_size,
 *    ply_conv_out_range), which the conv and pooling families share.
 */
#ifndef PLY_PLUGIN_SUPPORT_H
#define PLY_PLUGIN_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "ply/plugin.h"

/* ---------------------------------------------------------------------- */
/* Visibility                                                             */
/* ---------------------------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
/** Declarations between these two are hidden: shared by a family's own files,
 *  never exported from its library. Put them after the header's #includes. */
#define PLY_INTERNAL_BEGIN _Pragma("GCC visibility push(hidden)")
#define PLY_INTERNAL_END _Pragma("GCC visibility pop")
#define PLY_HIDDEN __attribute__((visibility("hidden")))
#define PLY_WEAK __attribute__((weak))
#else
#define PLY_INTERNAL_BEGIN
#define PLY_INTERNAL_END
#define PLY_HIDDEN
#define PLY_WEAK
#endif

/* ---------------------------------------------------------------------- */
/* The entry point                                                        */
/* ---------------------------------------------------------------------- */

/**
 * Defines the entry of the family `family` (an identifier: conv, pooling, ...)
 * and opens its body:
 *
 *     PLY_BUILTIN_ENTRY(conv) {
 *         if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) return NULL;
 *         return &plugin;
 *     }
 *
 * The body sees `host`. See the top of this file for why there are two names.
 */
#define PLY_BUILTIN_ENTRY(family)                                                        \
    const ply_plugin *ply_builtin_entry_##family(const ply_host *host);                 \
    PLY_EXPORT PLY_WEAK const ply_plugin *ply_plugin_entry(const ply_host *host) {       \
        return ply_builtin_entry_##family(host);                                        \
    }                                                                                   \
    PLY_EXPORT const ply_plugin *ply_builtin_entry_##family(const ply_host *host)

/* ---------------------------------------------------------------------- */
/* Attributes                                                             */
/* ---------------------------------------------------------------------- */

/** The attribute called `name` in `attrs` (NULL-safe on both), or NULL: for the attributes
 *  the host's typed readers cannot read as such (a string or a pair in one attribute,
 *  conv2d's padding "same"; interpolate's scale_factor as one number or a list). */
static inline const ply_attr *ply_find_attr(const ply_attrs *attrs, const char *name) {
    if (attrs == NULL || name == NULL) return NULL;
    for (int32_t i = 0; i < attrs->count; i++)
        if (attrs->items[i].name != NULL && strcmp(attrs->items[i].name, name) == 0) return &attrs->items[i];
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Memory                                                                 */
/* ---------------------------------------------------------------------- */

/** `bytes` of zeros from the host (64-byte aligned, freed with host->free), or NULL: the host's
 *  alloc_zeroed (ABI 1.5), which leaves pages nobody writes unbacked (a gradient in a model that
 *  only runs inference costs no memory), else alloc + memset. */
static inline void *ply_alloc_zeroed(const ply_host *host, size_t bytes) {
    if (host->struct_size >= offsetof(ply_host, alloc_zeroed) + sizeof(host->alloc_zeroed) && host->alloc_zeroed)
        return host->alloc_zeroed(host, bytes);
    void *p = host->alloc(host, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

/** Ask the kernel to back the 2 MiB-aligned pages inside [p, p + bytes) by transparent huge pages
 *  (Linux madvise(MADV_HUGEPAGE); a hint, nothing else changes; a no-op elsewhere or when the
 *  kernel says no). For a large block that a forward streams from memory every call (a batch-1
 *  linear layer's weights): with 4 KiB pages every page of the stream costs a TLB miss and a page
 *  walk. Call it right after the allocation, before the block is first written: pages already
 *  backed stay small until the kernel's background scan merges them. Only the aligned interior
 *  is advised, so no page outside the block changes. Measured (Benchmarks/gemv_huge_pages.c, an
 *  fc6-shaped gemv, 9216x4096, thread CPU ms per call, this VM's THP "madvise", loaded, 3
 *  alternating runs): 1 thread 6.78 / 6.81 / 6.60 -> 5.76 / 6.05 / 5.71; 2 threads 3.3 / 3.3 /
 *  3.1 -> 3.0 / 2.9 / 2.9 (per thread); 4096x4096 at 2 threads 1.42 / 1.48 / 1.40 -> 1.25 /
 *  1.25 / 1.21. */
static inline void ply_advise_huge_pages(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1), hi = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (p && hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/** The host's parameter generation (ABI 1.3) in *out and 1, or 0 when the host has no such slot. */
static inline int ply_host_param_generation(const ply_host *h, uint64_t *out) {
    if (h->struct_size < offsetof(ply_host, param_generation) + sizeof(h->param_generation) || !h->param_generation)
        return 0;
    *out = h->param_generation(h);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Integers and window geometry                                           */
/* ---------------------------------------------------------------------- */

static inline int64_t ply_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t ply_max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

/** `v` rounded up to a multiple of `m` (v >= 0, m > 0). */
static inline int64_t ply_round_up_i64(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/** Part `t` of `n` items split over `parts` as evenly as integers allow: [*b, *e), b = n*t/parts. */
static inline void ply_share(int64_t n, int64_t parts, int64_t t, int64_t *b, int64_t *e) {
    *b = n * t / parts;
    *e = n * (t + 1) / parts;
}

/**
 * The output size along one axis of a convolution or pooling window: kernel `k`, stride `s` > 0,
 * zero padding `p` on both sides, dilation `d` >= 1, and PyTorch's ceil_mode (pooling only; 0 for a
 * convolution). PyTorch's pooling_output_shape, which is also Conv2d's formula when ceil_mode is 0:
 *
 *     out = floor((in + 2p - d(k-1) - 1 + (ceil_mode ? s-1 : 0)) / s) + 1,
 *     and with ceil_mode, out -= 1 when the last window would start at or past in + p
 *     (every window must start inside the input or the left padding).
 *
 * The division floors (the numerator is negative when the window does not fit, and the result is
 * then 0 or less): callers check `in + 2p >= d(k-1) + 1` first and report the sizes.
 */
static inline int64_t ply_conv_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int ceil_mode) {
    int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t q = num / s;
    if ((num % s != 0) && ((num < 0) != (s < 0))) q -= 1;
    int64_t out = q + 1;
    if (ceil_mode && (out - 1) * s >= in + p) out -= 1;
    return out;
}

/**
 * The output positions o in [*lo, *hi) (clamped to [0, out)) whose tap `k` reads inside the input:
 * 0 <= o*s - p + k < size, for stride s > 0 and padding p. Outside that range the tap reads padding.
 * The kernels loop over [lo, hi) without a bounds check and handle the rest as zeros (or as
 * nothing, for max pooling).
 */
static inline void ply_conv_out_range(int64_t k, int64_t s, int64_t p, int64_t size, int64_t out, int64_t *lo,
                                      int64_t *hi) {
    int64_t a = p - k, b = size + p - k; /* a <= o*s < b */
    int64_t l = a <= 0 ? 0 : (a + s - 1) / s;
    int64_t h = b <= 0 ? 0 : (b + s - 1) / s;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* ---------------------------------------------------------------------- */
/* CPU levels                                                             */
/* ---------------------------------------------------------------------- */

/** The kernel paths a family may have. Higher levels include lower ones. */
typedef enum ply_cpu {
    /** Portable C, compiled for the architecture's baseline (x86-64: SSE2;
     *  aarch64: NEON). Every kernel has this path. */
    PLY_CPU_GENERIC = 0,
    /** x86-64 with AVX2 and FMA (Haswell, Zen and later). */
    PLY_CPU_AVX2 = 1,
    /** x86-64 with AVX-512 F, VL, DQ and BW, plus AVX2 and FMA (Skylake-SP,
     *  Ice Lake, Sapphire Rapids, Zen 4 and later). */
    PLY_CPU_AVX512 = 2
} ply_cpu;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PLY_HAVE_X86_TARGETS 1
/** Compile one function for AVX2 + FMA. Call it only when ply_cpu_level() >= PLY_CPU_AVX2. */
#define PLY_TARGET_AVX2 __attribute__((target("avx2,fma")))
/** Compile one function for the AVX-512 level. Call it only when ply_cpu_level() >= PLY_CPU_AVX512. */
#define PLY_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#else
#define PLY_HAVE_X86_TARGETS 0
#endif

/** The mask of the first `n` of 16 vector lanes (0 when n <= 0, all 16 when n >= 16): the
 *  `__mmask16` an AVX-512 kernel passes to its loads and stores for a part-filled vector. */
static inline uint16_t ply_lanes16(int64_t n) {
    return n >= 16 ? (uint16_t)0xFFFF : n <= 0 ? (uint16_t)0 : (uint16_t)((1u << n) - 1);
}

/**
 * PLY_AVX2_CLONE(name, params, args) defines `static void name params` from `name##_body`, a
 * `static inline __attribute__((always_inline))` function of the same parameters: on x86-64 it
 * runs a copy compiled for AVX2 + FMA when ply_cpu_level() >= PLY_CPU_AVX2 and a copy compiled
 * for the baseline otherwise (the body, inlined into each copy, is compiled for that copy's
 * target); elsewhere just the baseline copy. For portable loops that need AVX2 to be fast (the
 * ones -march=x86-64-v3 used to vectorise): say next to each use what was measured.
 *
 *     PLY_AVX2_CLONE(scale_rows, (float *y, const float *x, int64_t n), (y, x, n))
 */
#if PLY_HAVE_X86_TARGETS
#define PLY_AVX2_CLONE(name, params, args)                                                      \
    static void name##_generic params { name##_body args; }                                     \
    PLY_TARGET_AVX2 static void name##_avx2 params { name##_body args; }                        \
    static void name params {                                                                   \
        if (ply_cpu_level() >= PLY_CPU_AVX2) name##_avx2 args;                                  \
        else name##_generic args;                                                               \
    }
#else
#define PLY_AVX2_CLONE(name, params, args) \
    static void name params { name##_body args; }
#endif

/**
 * Parses a PLY_CPU value: "generic", "avx2" or "avx512" (any case); NULL or ""
 * means "as detected" and gives -1. Anything else gives -2. The host checks the
 * variable once with the same rules and refuses a value it cannot honour, with
 * a message; a plugin that meets one anyway takes the portable path.
 */
static inline int ply_cpu_parse(const char *text) {
    if (text == NULL || text[0] == '\0') return -1;
    char lower[16];
    size_t n = 0;
    for (; text[n] != '\0'; n++) {
        if (n + 1 >= sizeof lower) return -2;
        char c = text[n];
        lower[n] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    lower[n] = '\0';
    if (strcmp(lower, "generic") == 0) return PLY_CPU_GENERIC;
    if (strcmp(lower, "avx2") == 0) return PLY_CPU_AVX2;
    if (strcmp(lower, "avx512") == 0) return PLY_CPU_AVX512;
    return -2;
}

/** The highest level this CPU (and its operating system) supports. */
static inline ply_cpu ply_cpu_detected(void) {
#if PLY_HAVE_X86_TARGETS
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return PLY_CPU_GENERIC;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        return PLY_CPU_AVX512;
    return PLY_CPU_AVX2;
#else
    return PLY_CPU_GENERIC;
#endif
}

/** Workers that ply_claim keeps a share apart for (more share one counter). */
#define PLY_CLAIM_SHARES 16

/** A region's claim counters (zeroed when the region is posted). */
typedef struct {
    int64_t next[PLY_CLAIM_SHARES];
} ply_claims;

/**
 * The next of a region's `units` units of work for chunk w of `workers`, or `units` when none is
 * left. Chunk w takes its own share (units [units*w/workers, units*(w+1)/workers), in order, as a
 * static split would) and then the units the other chunks have not taken yet: a worker that starts
 * late (asleep, or its vCPU not scheduled) finds its share partly done instead of the caller
 * waiting for it, and when all start on time every chunk runs its static share (the data each
 * thread wrote stays where the next layer's same split reads it). Each unit must compute the same
 * way whichever chunk takes it (scratch indexed by the chunk, not the unit), so that the output
 * does not depend on who ran what. Relaxed: the units' results are published by the region's end.
 */
static inline int64_t ply_claim(ply_claims *c, int64_t workers, int64_t w, int64_t units) {
    const int64_t shares = workers < PLY_CLAIM_SHARES ? workers : PLY_CLAIM_SHARES;
    for (int64_t i = 0; i < shares; i++) {
        const int64_t s = (w + i) % shares, end = units * (s + 1) / shares;
        const int64_t u = units * s / shares + __atomic_fetch_add(&c->next[s], 1, __ATOMIC_RELAXED);
        if (u < end) return u;
    }
    return units;
}

/**
 * The level whose kernels run: the detected level, lowered by PLY_CPU when that
 * names a lower one (never raised: a level the CPU lacks would fault). Read
 * once per translation unit and cached; thread-safe.
 */
static inline ply_cpu ply_cpu_level(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        int detected = (int)ply_cpu_detected();
        int wanted = ply_cpu_parse(getenv("PLY_CPU"));
        v = wanted == -1 ? detected : wanted == -2 ? PLY_CPU_GENERIC : (wanted < detected ? wanted : detected);
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return (ply_cpu)v;
}


/* ---------------------------------------------------------------------- */
/* Self-description (ABI 1.2): attribute-spec fragments, describe helpers  */
/* ---------------------------------------------------------------------- */

/* Entries of a ply_attr_spec list that several families share (one
 * definition, so conv2d, the pools and basic_conv2d cannot drift apart).
 * Use them as initialisers inside a family's own list:
 *
 *     static const ply_attr_spec conv_specs[] = {
 *         PLY_SPEC_KERNEL_SIZE, PLY_SPEC_STRIDE("1", "..."), ..., PLY_SPEC_END,
 *     };
 */
#define PLY_SPEC_END {.name = NULL}
/** kernel_size as attr_pair reads it, required (conv2d, maxpool2d, avgpool2d, basic_conv2d). */
#define PLY_SPEC_KERNEL_SIZE                                                                  \
    {.name = "kernel_size", .kind = PLY_ATTR_INTS, .flags = PLY_ATTR_REQUIRED | PLY_ATTR_PAIR, \
     .default_text = NULL, .doc = "window height and width: an int or [kh, kw]"}
/** stride as attr_pair reads it; the default differs (conv "1", pools: kernel_size). */
#define PLY_SPEC_STRIDE(default_, doc_) \
    {.name = "stride", .kind = PLY_ATTR_INTS, .flags = PLY_ATTR_PAIR, .default_text = default_, .doc = doc_}
/** Implicit zero padding on each side, as attr_pair reads it. */
#define PLY_SPEC_PADDING                                                                  \
    {.name = "padding", .kind = PLY_ATTR_INTS, .flags = PLY_ATTR_PAIR, .default_text = "0", \
     .doc = "zeros added on both sides of each spatial axis: an int or [ph, pw]"}
/** Spacing between kernel taps, as attr_pair reads it. */
#define PLY_SPEC_DILATION(doc_) \
    {.name = "dilation", .kind = PLY_ATTR_INTS, .flags = PLY_ATTR_PAIR, .default_text = "1", .doc = doc_}

/** True when the ply_layer_info the host passed has room for `field` (plugin.h: write no field past
 *  struct_size). */
#define PLY_INFO_HAS(info, field) \
    ((info)->struct_size >= offsetof(ply_layer_info, field) + sizeof((info)->field))
/** True when a layer type (possibly built against an older ABI) has a non-NULL `describe`. */
#define PLY_TYPE_HAS_DESCRIBE(type)                                                                       \
    ((type)->struct_size >= offsetof(ply_layer_type, describe) + sizeof((type)->describe) && \
     (type)->describe != NULL)

/** True when a layer type (possibly built against an older ABI) has a non-NULL `freeze` (ABI 1.6). */
#define PLY_TYPE_HAS_FREEZE(type)                                                                     \
    ((type)->struct_size >= offsetof(ply_layer_type, freeze) + sizeof((type)->freeze) && \
     (type)->freeze != NULL)

/** True when a layer type (possibly built against an older ABI) has both layout slots (ABI 1.7). */
#define PLY_TYPE_HAS_LAYOUTS(type)                                                                             \
    ((type)->struct_size >= offsetof(ply_layer_type, forward_layout) + sizeof((type)->forward_layout) && \
     (type)->eval_layouts != NULL && (type)->forward_layout != NULL)

/** Floats of a tensor of `shape` laid out as `layout` (ABI 1.7): NCHW16C pads dimension 1 to whole blocks of 16. */
static inline int64_t ply_layout_numel(const ply_shape *shape, int32_t layout) {
    if (layout != PLY_LAYOUT_NCHW16C || shape->ndim < 2) return ply_shape_numel(shape);
    ply_shape s = *shape;
    s.dims[1] = (s.dims[1] + 15) / 16 * 16;
    return ply_shape_numel(&s);
}

/**
 * dst = src moved between NCHW and NCHW16C (ABI 1.7; `to_blocked`: src NCHW, dst NCHW16C with the lanes
 * past C written 0; else the reverse) for N images of C channels and P positions. One thread; for the
 * edges of a blocked run (a composite converting its input or output), not for a layer's inner loop.
 */
static inline void ply_layout_reorder(float *dst, const float *src, int to_blocked, int64_t N, int64_t C, int64_t P) {
    const int64_t CB = (C + 15) / 16;
    for (int64_t u = 0; u < N * CB; u++) {
        const int64_t n = u / CB, c0 = u % CB * 16;
        float *blk = to_blocked ? dst + u * P * 16 : NULL;
        const float *cblk = to_blocked ? NULL : src + u * P * 16;
        for (int64_t l = 0; l < 16; l++) {
            const int64_t plane = (n * C + c0 + l) * P;
            for (int64_t p = 0; p < P; p++) {
                if (blk) blk[p * 16 + l] = c0 + l < C ? src[plane + p] : 0.0f;
                else if (c0 + l < C) dst[plane + p] = cblk[p * 16 + l];
            }
        }
    }
}

/** A window as receptive-field arithmetic uses it: kernel and stride per axis (H, W), in input pixels.
 *  The identity is {1, 1} / {1, 1}. */
typedef struct ply_window {
    double kernel[2];
    double stride[2];
} ply_window;

static inline ply_window ply_window_identity(void) {
    ply_window w = {{1.0, 1.0}, {1.0, 1.0}};
    return w;
}

static inline ply_window ply_window_make(double kh, double kw, double sh, double sw) {
    ply_window w = {{kh, kw}, {sh, sw}};
    return w;
}

/** `b` applied after `a`: rf = rf_a + (k_b - 1) * jump_a, jump = jump_a * s_b. */
static inline ply_window ply_window_then(ply_window a, ply_window b) {
    ply_window w;
    for (int i = 0; i < 2; i++) {
        w.kernel[i] = a.kernel[i] + (b.kernel[i] - 1.0) * a.stride[i];
        w.stride[i] = a.stride[i] * b.stride[i];
    }
    return w;
}

/** Two paths joined (add, concat): the longest field and the largest jump, per axis. */
static inline ply_window ply_window_join(ply_window a, ply_window b) {
    ply_window w;
    for (int i = 0; i < 2; i++) {
        w.kernel[i] = a.kernel[i] > b.kernel[i] ? a.kernel[i] : b.kernel[i];
        w.stride[i] = a.stride[i] > b.stride[i] ? a.stride[i] : b.stride[i];
    }
    return w;
}

/** Writes MACs into info (when it has room). */
/** a * b for counts (elements, MACs), or INT64_MAX when the product does not fit: a summary of an
 *  absurd size then reports an overflow instead of a wrapped number. Arguments are >= 0. */
static inline int64_t ply_count_mul(int64_t a, int64_t b) {
    if (a < 0 || b < 0) return INT64_MAX;
    if (a != 0 && b > INT64_MAX / a) return INT64_MAX;
    return a * b;
}

/** The class name summaries print for this layer ("BasicBlock"); static storage. */
static inline void ply_info_set_class_name(ply_layer_info *info, const char *class_name) {
    if (PLY_INFO_HAS(info, class_name)) info->class_name = class_name;
}

static inline void ply_info_set_macs(ply_layer_info *info, int64_t macs) {
    if (PLY_INFO_HAS(info, macs)) info->macs = macs;
}

/** Writes a spatial window into info (when it has room). */
static inline void ply_info_set_window(ply_layer_info *info, ply_window w) {
    if (PLY_INFO_HAS(info, window)) info->window = PLY_WINDOW_SPATIAL;
    if (PLY_INFO_HAS(info, kernel)) {
        info->kernel[0] = w.kernel[0];
        info->kernel[1] = w.kernel[1];
    }
    if (PLY_INFO_HAS(info, stride)) {
        info->stride[0] = w.stride[0];
        info->stride[1] = w.stride[1];
    }
}

/** Marks info global (every output sees the whole input plane). */
static inline void ply_info_set_global(ply_layer_info *info) {
    if (PLY_INFO_HAS(info, window)) info->window = PLY_WINDOW_GLOBAL;
}

/** Reports a child through the host's add_child, when the host gave one. */
static inline ply_status ply_info_add_child(ply_layer_info *info, const char *name, const ply_layer_type *type,
                                            ply_layer *child, int32_t n_inputs, const ply_shape *inputs,
                                            const ply_shape *output) {
    if (!PLY_INFO_HAS(info, add_child) || info->add_child == NULL) return PLY_OK;
    return info->add_child(info, name, type, child, n_inputs, inputs, output);
}

static inline ply_status ply_child_ignored(ply_layer_info *info, const char *name, const ply_layer_type *type,
                                    ply_layer *child, int32_t n_inputs, const ply_shape *inputs,
                                    const ply_shape *output) {
    (void)info; (void)name; (void)type; (void)child; (void)n_inputs; (void)inputs; (void)output;
    return PLY_OK;
}

/**
 * The window of a child layer of a composite (its own describe, grandchildren not reported) for
 * receptive-field composition inside the block. `plane` is the spatial size (H, W) of the last 4-d
 * map on the child's path: a GLOBAL child spans it all, as the summary treats linear and global
 * pooling. A child without describe is the identity. *macs_out (may be NULL) gets the child's own
 * MACs.
 */
static inline ply_status ply_child_window(const ply_layer_type *type, ply_layer *child, int32_t n_inputs,
                                          const ply_shape *inputs, const double plane[2], ply_window *out,
                                          int64_t *macs_out) {
    *out = ply_window_identity();
    if (macs_out) *macs_out = 0;
    if (!PLY_TYPE_HAS_DESCRIBE(type)) return PLY_OK;
    ply_layer_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    info.abi_version = PLY_ABI_VERSION;
    info.add_child = ply_child_ignored;
    ply_status st = type->describe(child, n_inputs, inputs, &info);
    if (st != PLY_OK) return st;
    if (macs_out) *macs_out = info.macs;
    if (info.window == PLY_WINDOW_SPATIAL) *out = ply_window_make(info.kernel[0], info.kernel[1], info.stride[0],
                                                                  info.stride[1]);
    else if (info.window == PLY_WINDOW_GLOBAL) *out = ply_window_make(plane[0], plane[1], plane[0], plane[1]);
    return PLY_OK;
}

/** The window of a pooling or convolution layer: kernel d*(k-1)+1, stride s, per axis. */
static inline ply_window ply_window_of_kernel(const int64_t k[2], const int64_t s[2], const int64_t d[2]) {
    return ply_window_make((double)(d[0] * (k[0] - 1) + 1), (double)(d[1] * (k[1] - 1) + 1), (double)s[0],
                           (double)s[1]);
}

#endif /* PLY_PLUGIN_SUPPORT_H */
