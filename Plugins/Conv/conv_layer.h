/*
 * The conv2d layer's state, shared by conv.c (the vtable: shapes, forward, parameters, describe),
 * conv_backward.c (the backward), conv_create.c (attributes, creation, the attribute schema) and
 * conv_plan.c (the plan of a call); and the steps of a call that conv.c's forward and
 * conv_backward.c's backward share (conv.c).
 */
#ifndef PLY_CONV_LAYER_H
#define PLY_CONV_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "conv_direct.h"
#include "conv_winograd.h"
#include "ply/plugin.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

// Which kernels a layer uses: attribute `algorithm` ("auto", "im2col", "blas", "direct", "taps", "winograd", "s2d",
// "depthwise", "pointwise", "panels", "spans").
typedef enum {
    ALGO_AUTO, ALGO_IM2COL, ALGO_BLAS, ALGO_DIRECT, ALGO_TAPS, ALGO_WINOGRAD, ALGO_S2D, ALGO_DEPTHWISE, ALGO_POINTWISE,
    ALGO_PANELS, ALGO_SPANS
} conv_algo;

struct ply_layer {
    const ply_host *host;
    int64_t C, OC, KH, KW, SH, SW, PH, PW;
    int64_t DH, DW, G;       // dilation and groups
    int has_bias;
    conv_algo algorithm;
    size_t rows_limit;       // floats the backward's whole-batch "rows" plan may use (attribute workspace_mb)
    int relu;                // a relu fused by the host (fuse_activation): output = relu(conv)
    int training;            // set_training: 1 (the default) keeps the live-tap gathers for backward
    int trainable;           // attribute trainable: 0 = inference only (no gradients, zero init, no backward)
    int taps_kept;           // the scratch holds the last forward's live-tap gathers (W_g, Bt_g)
    float *dymask;           // backward with relu: grad_output where output > 0, else 0
    size_t dymask_floats;
    float *wflip;            // the kernel packed for the direct kernels (forward, or flipped for backward)
    float *weight, *dweight; // [OC, C/G, KH, KW]
    float *bias, *dbias;     // [OC], NULL when bias=false
    float *scratch;          // per-call workspace, grown on demand
    size_t scratch_floats;
    int wino_tile;           // attribute winograd_tile: 0 (auto), 2, 4 or 6
    conv_weight_cache wino;   // Winograd's transformed weights, kept while the weights stay the same
    conv_weight_cache panels; // conv_panels.c's packed weights, kept likewise
    conv_weight_cache pw;     // conv_1x1.c's packed weights (evaluation, large planes), kept likewise
    conv_weight_cache spans;  // conv_spans.c's packed weights, kept likewise
    conv_weight_cache blk;    // conv_blocked.c's packed weights (NCHW16c paths), kept likewise
    conv_weight_cache bwino;  // conv_blocked_wino.c's transformed weights, kept likewise
    float *blk_tmp;           // conv_blocked.c: an NCHW output on its way to NCHW16c (the stem's)
    size_t blk_tmp_floats;
    int frozen;               // conv_freeze succeeded: inference only; the scratch goes after every forward
    int packed_only;          // frozen with the weights packed for good in pw: weight is NULL
};

/** The type's create: reads and checks the attributes, allocates and initialises the weights. */
ply_status conv_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out);

/** The type's destroy. */
void conv_destroy(ply_layer *L);

/** The attribute schema (ABI 1.2). */
extern const ply_attr_spec conv_specs[];

// The plan of a call (conv_plan.c). Groups 1 and dilation 1 (conv_is_plain) are the only layers the
// direct, taps, Winograd and s2d plans compute.
int conv_is_plain(const ply_layer *L);
// A depthwise layer (groups == in_channels) takes conv_depthwise.c unless an im2col plan is forced.
int conv_use_depthwise(const ply_layer *L);
// conv_direct.c's kernels: stride 1, few channels (the ConvNet's), AVX-512 or AVX2.
int conv_use_direct(const ply_layer *L);
// The live-tap plan (conv_taps.c) into *taps; an error when "taps" is forced where it cannot run.
ply_status conv_use_taps(const ply_layer *L, const conv_geom *g, int *taps);
// Each: whether this call's forward takes that plan (conv_plan.c says when).
int conv_use_winograd(const ply_layer *L, const conv_geom *g);
int conv_use_1x1(const ply_layer *L, const conv_geom *g);
int conv_use_panels(const ply_layer *L, const conv_geom *g);
int conv_use_spans(const ply_layer *L, const conv_geom *g);
int conv_use_stem(const ply_layer *L, const conv_geom *g);
int conv_use_s2d(const ply_layer *L, const conv_geom *g);
// Images per call where "auto" in evaluation runs a batch through the panels a few images at a time, else 0.
int64_t conv_panels_chunk(const ply_layer *L, const conv_geom *g);

// The steps of a call that conv.c's forward and conv_backward.c's backward share (conv.c).

/** The scratch grown to at least `floats` (it only grows; growing drops the kept live-tap gathers). */
ply_status conv_grow_scratch(ply_layer *L, size_t floats);
/** An error unless t is a compact float32 tensor; `what` names it in the message. */
ply_status conv_check_tensor(ply_layer *L, const ply_tensor *t, const char *what);
/** The geometry of this call, after checking the tensors. */
ply_status conv_call_geom(ply_layer *L, const ply_tensor *x, const ply_tensor *y, conv_geom *g);
/** Threads the GEMM plans split over: the host's, unless OpenBLAS threads each product itself. */
int64_t conv_gemm_threads(const ply_layer *L);

// Everything one chunk of the batch needs; shared read-only by all chunks.
typedef struct {
    const ply_layer *L;
    int64_t N, chunks;
    size_t slice;       // floats of scratch per chunk
    const float *x;     // [N, C, H, W]
    float *y;           // [N, OC, OH, OW] (forward)
    const float *dy;    // [N, OC, OH, OW] (backward)
    float *dx;          // [N, C, H, W] or NULL (backward)
    const float *y_relu; // backward with a fused relu: its output (masks dy), else NULL
    direct_geom dg;     // the geometry
    int by_channels;    // forward: chunk t computes every image's output channels [8*B*t/chunks, 8*B*(t+1)/chunks)
                        // (B = ceil(OC/8) blocks of 8; the last range ends at OC), not images [N*t/chunks, ..)
} direct_job;

/** Images [n0, n1) of chunk t of a direct-kernel job. */
void conv_chunk_bounds(const direct_job *j, int64_t t, int64_t *n0, int64_t *n1);
/** A direct-kernel job (conv_direct.c): one chunk of the batch per host thread, or at a small batch
 *  (forward) one range of output channels per thread (by_channels); grows the scratch to its chunks'. */
ply_status conv_direct_job_make(ply_layer *L, const conv_geom *g, const float *x, direct_job *j, int backward);

/** The type's forward on NCHW tensors (conv.c). */
ply_status conv_forward_nchw(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output);
/**
 * Whether the NCHW forward of this 3x3 call takes Winograd F(4x4) through the blocked layout (conv_blocked.c:
 * AVX2, evaluation, planes of 28x28 to 56x56), and that forward: x reordered into NCHW16c, conv_blocked_wino.c's
 * F(4x4) (the NCHW F(4x4)'s bits), y reordered back; L's bias and relu, its transformed weights kept in L->bwino.
 */
int conv_bwino_through_suits(const ply_layer *L, const conv_geom *g);
ply_status conv_bwino_through(ply_layer *L, const conv_geom *g, const float *x, float *y);
/** ABI 1.7 (conv_blocked.c): convolutions on NCHW16c in evaluation, AVX-512. */
ply_status conv_eval_layouts(ply_layer *L, int32_t n_inputs, const ply_shape *inputs, uint32_t *accepts,
                             uint32_t *produces);
ply_status conv_forward_layout(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, const int32_t *in_layouts,
                               ply_tensor *output, int32_t out_layout);
/** The type's backward (conv_backward.c). */
ply_status conv_backward(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                         const ply_tensor *grad_output, ply_tensor *grad_inputs);

PLY_INTERNAL_END
#endif
