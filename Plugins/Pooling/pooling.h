/*
 * The pooling family's internals, shared by pooling.c (the layers), pooling_planes.c (every
 * kernel's portable path, the parallel driver, the choice of kernel by ply_cpu_level()),
 * pooling_x86.c (the AVX2 and AVX-512 kernels, each compiled for its level by a function attribute)
 * and pooling_avx2.c (the 3x3 AVX-512 kernels ported to AVX2).
 */
#ifndef PLY_POOLING_H
#define PLY_POOLING_H

#include <stdint.h>

#include "plugin_support.h"

PLY_INTERNAL_BEGIN

typedef enum { POOL_MAX, POOL_AVG, POOL_ADAPTIVE_AVG } pool_kind;

struct ply_layer {
    const ply_host *host;
    pool_kind kind;
    int64_t kh, kw;          // kernel (max/avg)
    int64_t sh, sw;          // stride (max/avg)
    int64_t ph, pw;          // padding (max/avg)
    int32_t ceil_mode;       // max/avg
    int32_t count_include_pad; // avg
    int64_t oh, ow;          // output size (adaptive)
    int32_t training;
    // maxpool: flat in-plane argmax (h * W + w) of every output element of the
    // last training forward, for backward. Grown on demand.
    int64_t *argmax;
    int64_t argmax_cap;      // elements allocated
    int64_t argmax_len;      // elements valid (0 = recompute in backward)
};

static inline float take_max(float m, float v) { return (v > m || v != v) ? v : m; }

// Sizes of one call: planes of H x W pooled to OH x OW.
typedef struct {
    int64_t planes, H, W, OH, OW;
} pool_geom;

// One forward or backward call over all planes (pooling_planes.c runs it).
typedef struct {
    const ply_layer *layer;
    pool_geom g;
    int backward;
    float *dst;          // forward: output, backward: grad_input
    const float *src;    // forward: input,  backward: grad_output
    const float *in;     // backward (maxpool recompute): input
    int64_t *argmax_out; // forward (maxpool, training)
    const int64_t *argmax_in; // backward (maxpool)
    ply_cpu level;       // max pool: the kernels' CPU level (ply_cpu_level())
} pool_job;

/** The NCHW forward (pooling.c), which forward_layout runs when every layout is NCHW. */
ply_status pool_forward_nchw(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output);
/** ABI 1.7 (pooling_blocked.c): maxpool2d reads and writes NCHW16C, adaptive_avgpool2d reads it. */
ply_status pool_eval_layouts(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, uint32_t *accepts,
                             uint32_t *produces);
ply_status pool_forward_layout(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const int32_t *in_layouts,
                               ply_tensor *output, int32_t out_layout);

/** Whether p's window is 2x2, stride 2, no padding (max pools there keep no argmax: backward recomputes it). */
int pool_is_2x2(const ply_layer *p);
/** Runs job over all its planes, on the host's pool when there is enough work; sets job->level. */
void pool_dispatch(const ply_layer *self, pool_job *job);

#if PLY_HAVE_X86_TARGETS
// AVX2 (call only when ply_cpu_level() >= PLY_CPU_AVX2): maxpool2x2_{forward,backward}_plane.
void maxpool2x2_forward_plane_avx2(float *out, const float *in, int64_t W, int64_t OH, int64_t OW);
void maxpool2x2_backward_plane_avx2(float *din, const float *in, const float *dout, int64_t H, int64_t W,
                                    int64_t OH, int64_t OW);

// AVX-512 (call only when ply_cpu_level() >= PLY_CPU_AVX512).
/** o[i] = take_max(o[i], src[i]) for i < n. */
void max_row512(float *o, const float *src, int64_t n);
/** o[i] = take_max(o[i], src[2*i]) for i < n (reads nothing past src[2n - 2]). */
void max_row512_stride2(float *o, const float *src, int64_t n);
void maxpool2x2_forward_plane512(float *out, const float *in, int64_t W, int64_t OH, int64_t OW);
void maxpool2x2_backward_plane512(float *din, const float *in, const float *dout, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW);
/** maxpool2d_forward_plane_values for column strides 1 and 2 and kernels up to 16 wide; 0 when it does not apply. */
int maxpool2d_forward_plane_values512(float *out, const float *in, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                      const ply_layer *p);
/** Most elements of a plane the 3x3 stride-1 kernels below take. */
#define MAX3_PLANE 4096
/**
 * The edge columns of an H x W plane for the 3x3 stride-1 kernels: bit i of nf is set when flat
 * index i is not in the plane's first column, of nl when not in its last. Every plane of a call
 * has the same ones: pool3_edges_make runs once per call, not once per plane.
 */
typedef struct {
    int64_t H, W;
    uint64_t nf[MAX3_PLANE / 64 + 1], nl[MAX3_PLANE / 64 + 1];
} pool3_edges;
/** Fills e for H x W planes; 0 (e unusable) when a plane has no element or passes MAX3_PLANE. */
int pool3_edges_make(pool3_edges *e, int64_t H, int64_t W);
/**
 * Bits i .. i + 24 of the edge bits b (nf or nl) without branches: bit j of the result is bit i + j
 * (b's little-endian bytes; for 0 <= i < MAX3_PLANE the 4 bytes read end before byte 516 of b's 520).
 * The AVX-512 kernels take 16 of them, the AVX2 ones 8.
 */
static inline uint32_t pool3_edge_bits(const uint64_t *b, int64_t i) {
    uint32_t v;
    __builtin_memcpy(&v, (const unsigned char *)b + (i >> 3), sizeof v);
    return v >> (i & 7);
}
/**
 * maxpool2d_forward_plane_values for a 3x3 window, stride 1, padding 1 (Inception's pool branches)
 * on an e->H x e->W plane: separable, over the plane as one flat array; 0 when the plane holds a
 * NaN (the general kernel then takes it).
 */
int maxpool3x3s1_plane512(float *out, const float *in, const pool3_edges *e);
/**
 * avgpool2d_forward_plane for a 3x3 window, stride 1, padding 1, count_include_pad (Inception-v3's
 * pool branches) on an e->H x e->W plane: bit-identical sums, 16 flat outputs at a time.
 */
void avgpool3x3s1_plane512(float *out, const float *in, const pool3_edges *e);
/**
 * Likewise for a 3x3 window, stride 2, padding PH, PW <= 1 (either ceil mode): 0 when the plane holds
 * a NaN or OW passes 1024 (the general kernel then takes it; after a NaN, out holds partial results
 * the general kernel MUST overwrite).
 */
int maxpool3x3s2_plane512(float *out, const float *in, int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t PH,
                          int64_t PW);
/** maxpool2d_forward_plane (with argmax) for column strides 1 and 2; 0 when it does not apply. */
int maxpool2d_forward_plane_argmax512(float *out, int64_t *argmax, const float *in, int64_t H, int64_t W, int64_t OH,
                                      int64_t OW, const ply_layer *p);

// AVX2 (pooling_avx2.c; call only when ply_cpu_level() >= PLY_CPU_AVX2): the three 3x3 kernels above
// with 8-float vectors, the same results bit for bit and the same cases declined (a NaN, OW > 1024).
int maxpool3x3s1_plane_avx2(float *out, const float *in, const pool3_edges *e);
void avgpool3x3s1_plane_avx2(float *out, const float *in, const pool3_edges *e);
int maxpool3x3s2_plane_avx2(float *out, const float *in, int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t PH,
                            int64_t PW);
#endif

PLY_INTERNAL_END

#endif
