/*
 * Conv family: conv2d (PyTorch's nn.Conv2d with zero padding: any stride,
 * padding, dilation and groups). One input [N, C, H, W] -> [N, OC, OH, OW];
 * weight [OC, C/groups, KH, KW] as PyTorch's.
 *
 * Implementations, picked per call:
 *   - conv_depthwise.c: depthwise layers (groups == in_channels, any channel
 *     multiplier, stride and dilation), direct, forward and backward;
 *   - conv_gemm.c, once per group: every other grouped or dilated layer (the
 *     plans below are for groups 1 and dilation 1 only);
 *   - conv_direct.c: direct AVX-512 and AVX2 kernels (conv_direct_avx2.c) for stride-1 layers with few
 *     channels (the ConvNet's), one chunk of the batch per host thread, each
 *     with its own padded planes and partial gradients (a forward with fewer
 *     images than threads: one range of output channels per thread);
 *   - conv_gemm.c: im2col over the whole batch and a product, split over the
 *     host's threads by Ply: conv_kernel.c's AVX-512 kernel forward (at AVX2
 *     conv_kernel_avx2.c's, OpenBLAS below) and backward (conv_kernel_product:
 *     single-threaded OpenBLAS sgemm below AVX-512);
 *   - conv_taps.c: small planes (ResNet's last stages) where padding makes
 *     much of im2col zeros: products over the live taps only;
 *   - conv_winograd.c: the forward of 3x3, stride-1 layers with at least 16
 *     channels each way and 64 output tiles (2x2; in evaluation 32 where
 *     U is at most 8 MB, conv_winograd_suits_inference), by Winograd F(4x4, 3x3) (4x
 *     fewer multiply-adds) or F(2x2, 3x3) (2.25x), or F(6x6, 3x3) (5x) when forced, the tile chosen per shape
 *     (conv_winograd_tile; attribute winograd_tile forces one); the backward of
 *     those layers is Winograd F(2x2)'s for the weight gradient
 *     (conv_winograd_wgrad.c) and Winograd's forward for the input gradient
 *     (conv_winograd_backward.c) where they suit, else im2col's. The transformed weights are kept in the layer
 *     with a hash of the weights they came from, and redone when a forward
 *     finds the weights changed (conv_wino_cache_get);
 *   - conv_s2d.c: the forward of stride-S layers with kernels of 2S+1 to 3S
 *     (AlexNet's 11x11 stride-4 stem), folded by space-to-depth into a 3x3
 *     stride-1 layer for Winograd (the backward is im2col's);
 *   - conv_1x1.c: the forward of unpadded 1x1 layers (any stride) as a product
 *     on the input in place, no im2col (the backward is im2col's); in
 *     evaluation its large planes read the weights packed once per weight
 *     version (L->pw);
 *   - conv_panels.c: in evaluation, the forward of 3x3 layers with stride 2 or
 *     with fewer Winograd tiles (ResNet's 7x7 planes at batch 1), a
 *     direct kernel vectorised over output channels with the weights packed
 *     once per weight version (conv_panels_cache_get); stride-2 layers at batches
 *     too large for one call (ResNet's at batch 16) a few images per call
 *     (conv_panels_images_per_call);
 *   - conv_stem.c: in evaluation ("auto"), the forward of first layers with at most 4 input channels and
 *     kernels of 5x5 and more (ResNet's and GoogLeNet's 7x7 stride-2 stems), direct on the input split
 *     into its column phases, where nothing before it suits (AVX-512, and AVX2 by conv_stem_avx2.c);
 *   - conv_spans.c: in evaluation, the forward of 1x7/7x1 and 5x5 layers and of the 3x3 layers the
 *     panels suit whose rows end in a panels' call of 1 to 3 positions (Inception v3's 17x17 and 8x8
 *     planes), the same kind of kernel over spans of positions that cross rows (conv_spans_cache_get).
 * Attribute algorithm="auto" (the default) chooses; "im2col", "blas" (im2col
 * with OpenBLAS only, the reference), "direct", "taps", "winograd", "s2d",
 * "pointwise", "panels", "spans" and "depthwise" force one.
 * The AVX-512 kernels (winograd, s2d, panels, conv_kernel.c's product and the
 * strip packing) run when ply_cpu_level() is PLY_CPU_AVX512; below it "auto"
 * takes im2col with OpenBLAS and the portable loops, and forcing
 * "winograd", "s2d" or "panels" is refused with a message naming the CPU level.
 * direct (conv_direct_avx2.c), pointwise (conv_1x1_avx2.c), spans and the stems (conv_stem_avx2.c) also
 * have AVX2 kernels, which "auto" takes at that level as at AVX-512; below AVX2 forcing them is refused
 * the same way.
 * At AVX2 "auto" in evaluation also takes Winograd F(4x4) (conv_winograd4_avx2.c, products by
 * conv_kernel_avx2.c) where its own rule holds (conv_winograd_suits_inference); on planes of 28x28 to
 * 56x56 it runs as the blocked layout's F(4x4) between two reorders (conv_blocked.c's
 * conv_bwino_through: the same sums, channels instead of tiles in the lanes); forcing "winograd", and
 * Winograd in training, stay AVX-512's.
 * Attribute workspace_mb (default 32) caps the scratch of the backward's
 * whole-batch plan; above it the batch is done a tile at a time.
 * Who writes the weights: with trainable=true only the host, through get_param's
 * pointers, and it moves param_generation when it may have (plugin.h, ABI 1.3);
 * the Winograd cache trusts that and skips its check while the generation stays.
 * A composite that writes a child conv's weights itself MUST make that child
 * with trainable=false, whose cache checks the weights on every forward.
 * Attribute trainable=false (default true) makes an inference-only conv, as a
 * composite's batch-norm-folded copy of a child (Plugins/Support/plugin_fold.h):
 * weight and bias start at zero without drawing from the host's generator (so
 * making one leaves every other layer's initialisation as it was), have no
 * gradient memory and are listed as buffers; backward is refused.
 * The host may fuse the relu after it (fuse_activation): the output is then
 * relu(conv), and backward masks grad_output by output > 0 first.
 * An inference-only layer (trainable=false) takes an optional second input r
 * of the output's shape, added before the activation: relu(conv + r), a
 * residual block's last conv with its add + relu (conv_residual.h).
 * The scratch lives in the instance and only grows. Attributes and creation:
 * conv_create.c; the choice of plan per call: conv_plan.c; the backward: conv_backward.c; the layer's
 * state and the steps the forward and the backward share: conv_layer.h.
 */
#include "plugin_support.h"

#include "plugin_blas.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_1x1.h"
#include "conv_depthwise.h"
#include "conv_layer.h"
#include "conv_direct.h"
#include "conv_gemm.h"
#include "conv_kernel.h"
#include "conv_s2d.h"
#include "conv_taps.h"
#include "conv_panels.h"
#include "conv_residual.h"
#include "conv_spans.h"
#include "conv_stem.h"
#include "conv_winograd.h"
#include "ply/plugin.h"
#include "plugin_support.h"

// ----------------------------------------------------------------------------
// the direct kernels, one chunk of the batch per host thread

void conv_chunk_bounds(const direct_job *j, int64_t t, int64_t *n0, int64_t *n1) {
    *n0 = j->N * t / j->chunks;
    *n1 = j->N * (t + 1) / j->chunks;
}

// Output-channel blocks of 8 (conv_direct_forward_channels' unit).
static int64_t direct_blocks(const direct_geom *g) { return (g->OC + 7) / 8; }

static void direct_forward_chunks(void *ctx, int64_t begin, int64_t end) {
    const direct_job *j = ctx;
    const float *bias = j->L->has_bias ? j->L->bias : NULL;
    for (int64_t t = begin; t < end; t++) {
        float *scratch = j->L->scratch + (size_t)t * j->slice;
        if (j->by_channels) {
            int64_t B = direct_blocks(&j->dg), o0 = 8 * (B * t / j->chunks), o1 = 8 * (B * (t + 1) / j->chunks);
            conv_direct_forward_channels(&j->dg, j->L->wflip, bias, j->L->relu, j->x, j->y, 0, j->N, o0,
                                         o1 < j->dg.OC ? o1 : j->dg.OC, scratch);
            continue;
        }
        int64_t n0, n1;
        conv_chunk_bounds(j, t, &n0, &n1);
        conv_direct_forward(&j->dg, j->L->wflip, bias, j->L->relu, j->x, j->y, n0, n1, scratch);
    }
}

// ----------------------------------------------------------------------------
// vtable

ply_status conv_grow_scratch(ply_layer *L, size_t floats) {
    if (floats <= L->scratch_floats) return PLY_OK;
    L->taps_kept = 0;
    L->host->free(L->host, L->scratch);
    L->scratch = L->host->alloc(L->host, floats * sizeof(float));
    L->scratch_floats = L->scratch ? floats : 0;
    if (!L->scratch)
        return ply_errorf(L->host, PLY_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %zu bytes of scratch",
                          floats * sizeof(float));
    return PLY_OK;
}

// The second input's checks (conv_residual.h): an inference-only layer, r of the output's shape.
static ply_status check_residual(ply_layer *L, const ply_shape *r, const ply_shape *out) {
    if (L->trainable)
        return ply_errorf(L->host, PLY_ERR_INVALID_ARGUMENT,
                          "conv2d: input 1 (a residual added before the activation) needs an inference-only layer "
                          "(trainable=false); this one is trainable");
    int same = r->ndim == out->ndim;
    for (int32_t d = 0; same && d < out->ndim; d++) same = r->dims[d] == out->dims[d];
    if (!same)
        return ply_errorf(L->host, PLY_ERR_SHAPE,
                          "conv2d: input 1 (the residual) must have the output's shape [%lld, %lld, %lld, %lld] "
                          "(got %d dims: [%lld, %lld, %lld, %lld])",
                          (long long)out->dims[0], (long long)out->dims[1], (long long)out->dims[2],
                          (long long)out->dims[3], r->ndim, (long long)(r->ndim > 0 ? r->dims[0] : 0),
                          (long long)(r->ndim > 1 ? r->dims[1] : 0), (long long)(r->ndim > 2 ? r->dims[2] : 0),
                          (long long)(r->ndim > 3 ? r->dims[3] : 0));
    return PLY_OK;
}

static ply_status conv_infer_shape(ply_layer *L, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    const ply_shape *s = &inputs[0];
    if (s->ndim != 4)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "conv2d: input 0 must be 4-d [N, C, H, W] (got %d dims)", s->ndim);
    if (s->dims[1] != L->C)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "conv2d: input 0 dim 1 (channels) is %lld, expected in_channels=%lld",
                          (long long)s->dims[1], (long long)L->C);
    int64_t H = s->dims[2], W = s->dims[3];
    // the kernel spans d*(k-1)+1 input pixels (its height and width when the dilation is 1)
    int64_t EH = L->DH * (L->KH - 1) + 1, EW = L->DW * (L->KW - 1) + 1;
    if (H + 2 * L->PH < EH)
        return ply_errorf(L->host, PLY_ERR_SHAPE,
                          "conv2d: input 0 dim 2 (height) %lld plus padding 2*%lld is smaller than the kernel's "
                          "height %lld (kernel %lld, dilation %lld)",
                          (long long)H, (long long)L->PH, (long long)EH, (long long)L->KH, (long long)L->DH);
    if (W + 2 * L->PW < EW)
        return ply_errorf(L->host, PLY_ERR_SHAPE,
                          "conv2d: input 0 dim 3 (width) %lld plus padding 2*%lld is smaller than the kernel's "
                          "width %lld (kernel %lld, dilation %lld)",
                          (long long)W, (long long)L->PW, (long long)EW, (long long)L->KW, (long long)L->DW);
    int64_t OH = ply_conv_out_size(H, L->KH, L->SH, L->PH, L->DH, 0), OW = ply_conv_out_size(W, L->KW, L->SW, L->PW, L->DW, 0);
    if ((L->C * L->KH * L->KW) > INT32_MAX || OH * OW > INT32_MAX || L->OC > INT32_MAX)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "conv2d: input 0 is too large for 32-bit BLAS indices");
    *output = ply_shape_make(4, s->dims[0], L->OC, OH, OW);
    return n_inputs > 1 ? check_residual(L, &inputs[1], output) : PLY_OK;
}

ply_status conv_check_tensor(ply_layer *L, const ply_tensor *t, const char *what) {
    if (t->strides || t->dtype != PLY_DTYPE_F32)
        return ply_errorf(L->host, PLY_ERR_UNSUPPORTED, "conv2d: %s must be a compact float32 tensor", what);
    return PLY_OK;
}

// The geometry of this call, after checking the tensors.
ply_status conv_call_geom(ply_layer *L, const ply_tensor *x, const ply_tensor *y, conv_geom *g) {
    ply_status st;
    ply_shape os;
    if ((st = conv_check_tensor(L, x, "input 0")) != PLY_OK) return st;
    if ((st = conv_check_tensor(L, y, "output")) != PLY_OK) return st;
    if ((st = conv_infer_shape(L, 1, &x->shape, &os)) != PLY_OK) return st;
    conv_geom c = {.N = x->shape.dims[0], .C = L->C, .H = x->shape.dims[2], .W = x->shape.dims[3], .OC = L->OC,
                   .KH = L->KH, .KW = L->KW, .SH = L->SH, .SW = L->SW, .PH = L->PH, .PW = L->PW,
                   .OH = os.dims[2], .OW = os.dims[3], .DH = L->DH, .DW = L->DW, .XC = L->C, .YC = L->OC};
    *g = c;
    return PLY_OK;
}

// Threads the GEMM plans split over: the host's, unless OpenBLAS threads each product itself. At the
// AVX-512 level every product but algorithm "blas"'s runs on conv_kernel.c's kernels, never OpenBLAS.
int64_t conv_gemm_threads(const ply_layer *L) {
    const int blas = L->algorithm == ALGO_BLAS || ply_cpu_level() < PLY_CPU_AVX512;
    return blas && ply_blas_threads() > 1 ? 1 : L->host->thread_count(L->host);
}

// A forward with fewer images than threads splits output channels instead (every thread pads the whole
// input itself) where each thread then gets at least this many multiply-adds. GoogLeNet at batch 1, 2
// threads: inception3a's 16->32 3x3 on 28x28 (3.6M MACs) and inception4a's 16->48 on 14x14 (1.35M) ran
// on one thread while the other waited (PLY_REGION_TRACE: 100 and 50 us serial per forward, loaded
// machine; split, the traced forward's serial CPU time fell 0.64 -> 0.53 ms, BENCHMARKS.md `inc2t`).
// 2^19 a thread splits both and keeps the tutorial ConvNet's 8->16 on 28x28 at batch 1 (0.9M MACs)
// whole, where a region's post (under 1 us spinning, 29-60 us waking the worker: Benchmarks/
// pool_roundtrip.c) is a larger share; the point between was not measured further.
#define DIRECT_SPLIT_MIN_MACS (1 << 19)

// A direct-kernel job: one chunk of the batch per host thread, or at a small batch (forward) one range of
// output channels per thread (by_channels).
ply_status conv_direct_job_make(ply_layer *L, const conv_geom *g, const float *x, direct_job *j, int backward) {
    direct_geom dg = {g->C, g->OC, g->KH, g->KW, g->PH, g->PW, g->H, g->W, g->OH, g->OW};
    int64_t threads = L->host->thread_count(L->host);
    memset(j, 0, sizeof *j);
    j->L = L;
    j->N = g->N;
    j->x = x;
    j->dg = dg;
    j->chunks = threads < g->N ? threads : g->N;
    if (j->chunks < 1) j->chunks = 1;
    if (!backward && g->N < threads) {
        int64_t macs = g->N * g->OH * g->OW * g->OC * g->C * g->KH * g->KW, B = direct_blocks(&dg);
        int64_t parts = ply_min_i64(ply_min_i64(threads, B), macs / DIRECT_SPLIT_MIN_MACS);
        if (parts > 1) {
            j->chunks = parts;
            j->by_channels = 1;
        }
    }
    j->slice = backward ? conv_direct_backward_floats(&dg) : conv_direct_forward_floats(&dg);
    if (!L->wflip) { // the packed or flipped kernel, taken on the first call (conv_create)
        size_t wbytes = (size_t)(g->OC * g->C * g->KH * g->KW) * sizeof(float);
        if (!(L->wflip = L->host->alloc(L->host, wbytes)))
            return ply_errorf(L->host, PLY_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %zu bytes for the direct kernel",
                              wbytes);
    }
    return conv_grow_scratch(L, j->slice * (size_t)j->chunks);
}

// A grouped (not depthwise) or dilated layer: conv_gemm.c once per group, on the group's channels of x and y
// (conv_group_geom). Group gi computes output channels [gi*OC/G, (gi+1)*OC/G) from input channels
// [gi*C/G, (gi+1)*C/G) with weight rows gi*OC/G.. ([OC/G, C/G*KH*KW] each).
static ply_status grouped_forward(ply_layer *L, const conv_geom *g, const float *x, float *y) {
    conv_geom gg = conv_group_geom(g, L->G);
    int64_t threads = conv_gemm_threads(L), HW = g->H * g->W, P = g->OH * g->OW, wg = gg.OC * gg.C * g->KH * g->KW;
    ply_status st = conv_grow_scratch(L, conv_gemm_forward_floats(&gg, threads));
    if (st != PLY_OK) return st;
    for (int64_t gi = 0; gi < L->G; gi++)
        conv_gemm_forward(L->host, threads, L->algorithm != ALGO_BLAS, &gg, L->weight + gi * wg,
                          L->has_bias ? L->bias + gi * gg.OC : NULL, L->relu, x + gi * gg.C * HW, y + gi * gg.OC * P,
                          L->scratch);
    return PLY_OK;
}

ply_status conv_forward_nchw(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    conv_geom g;
    L->taps_kept = 0;
    ply_status st = conv_call_geom(L, &inputs[0], output, &g);
    if (st != PLY_OK) return st;
    const float *res = NULL; // the residual (input 1), added before the activation (conv_residual.h)
    if (n_inputs > 1) {
        ply_shape shapes[2] = {inputs[0].shape, inputs[1].shape}, os;
        if ((st = conv_check_tensor(L, &inputs[1], "input 1")) != PLY_OK) return st;
        if ((st = conv_infer_shape(L, 2, shapes, &os)) != PLY_OK) return st;
        res = inputs[1].data;
    }
    if (g.N == 0) return PLY_OK;
    if (res && !(!conv_use_depthwise(L) && conv_is_plain(L) && !conv_use_direct(L) && conv_use_1x1(L, &g) && conv_1x1_adds_residual())) {
        // a kernel that does not add it: the conv without the activation, then one pass (relu(y + r))
        int relu = L->relu;
        L->relu = 0;
        st = conv_forward_nchw(L, 1, inputs, output);
        L->relu = relu;
        if (st == PLY_OK) conv_residual_add(L->host, output->data, res, ply_shape_numel(&output->shape), relu);
        return st;
    }
    if (conv_use_depthwise(L)) {
        int64_t threads = L->host->thread_count(L->host);
        if ((st = conv_grow_scratch(L, conv_dw_forward_floats(&g, threads))) != PLY_OK) return st;
        conv_dw_forward(L->host, threads, &g, L->weight, L->has_bias ? L->bias : NULL, L->relu, inputs[0].data,
                        output->data, L->scratch);
        return PLY_OK;
    }
    if (!conv_is_plain(L)) return grouped_forward(L, &g, inputs[0].data, output->data);
    if (conv_use_direct(L)) {
        direct_job j;
        if ((st = conv_direct_job_make(L, &g, inputs[0].data, &j, 0)) != PLY_OK) return st;
        j.y = output->data;
        conv_direct_pack(&j.dg, L->weight, L->wflip);
        if (j.chunks > 1) L->host->parallel_for(L->host, j.chunks, 1, direct_forward_chunks, &j);
        else direct_forward_chunks(&j, 0, 1);
        return PLY_OK;
    }
    int64_t threads = conv_gemm_threads(L);
    if (conv_use_1x1(L, &g)) {
        if ((st = conv_grow_scratch(L, conv_1x1_forward_floats(&g, threads))) != PLY_OK) return st;
        // in evaluation, large planes read the weights packed once per weight version (in training they
        // change every step: packing would cost a pass over them per forward)
        float *wp = NULL;
        if (L->packed_only) {
            wp = L->pw.data; // final since conv_freeze (the plain weights went)
        } else if (!L->training && conv_1x1_packs(&g)) {
            int stale;
            if ((st = conv_weight_cache_check(&L->pw, L->host, threads, L->weight, (size_t)(g.OC * g.C), 1, 1,
                                              conv_1x1_packed_floats(&g), "packed 1x1 weights", &wp, &stale)) != PLY_OK)
                return st;
            if (stale) conv_1x1_pack_weights(&g, L->weight, wp);
        }
        conv_1x1_forward_residual(L->host, threads, &g, L->weight, wp, L->has_bias ? L->bias : NULL, res, L->relu,
                                  inputs[0].data, output->data, L->scratch);
        return PLY_OK;
    }
    int taps;
    if ((st = conv_use_taps(L, &g, &taps)) != PLY_OK) return st;
    // the live taps first where they suit (planes of 4x4 and less, where padding makes a quarter of a
    // direct kernel's products zeros)
    if (!taps && conv_use_spans(L, &g)) {
        const float *Wp;
        if ((st = conv_grow_scratch(L, conv_spans_forward_floats(&g))) != PLY_OK) return st;
        if ((st = conv_spans_cache_get(&L->spans, L->host, threads, &g, L->weight, 1, &Wp)) != PLY_OK) return st;
        conv_spans_forward(L->host, L->host->thread_count(L->host), &g, Wp, L->has_bias ? L->bias : NULL, L->relu,
                           inputs[0].data, output->data, L->scratch);
        return PLY_OK;
    }
    int64_t chunk = 0; // panels a few images per call (conv_panels_images_per_call); 0: the whole batch
    if (!taps && (conv_use_panels(L, &g) || (chunk = conv_panels_chunk(L, &g)) > 0)) {
        const float *Wp;
        conv_geom gc = g;
        if (chunk > 0) gc.N = chunk;
        if ((st = conv_grow_scratch(L, conv_panels_forward_floats(&gc))) != PLY_OK) return st;
        if ((st = conv_panels_cache_get(&L->panels, L->host, threads, &gc, L->weight, 1, &Wp)) != PLY_OK) return st;
        const float *x = inputs[0].data;
        float *y = output->data;
        for (int64_t n0 = 0; n0 < g.N; n0 += gc.N) {
            conv_geom gn = gc;
            gn.N = ply_min_i64(gc.N, g.N - n0);
            conv_panels_forward(L->host, L->host->thread_count(L->host), &gn, Wp, L->has_bias ? L->bias : NULL, L->relu,
                                x + n0 * g.C * g.H * g.W, y + n0 * g.OC * g.OH * g.OW, L->scratch);
        }
        return PLY_OK;
    }
    if (!taps && conv_use_s2d(L, &g)) {
        // the folded weights' U kept in L->wino (a layer takes s2d or Winograd, not both: the cache's form
        // tells them apart)
        if ((st = conv_grow_scratch(L, conv_s2d_forward_floats(&g, threads))) != PLY_OK) return st;
        return conv_s2d_forward(&L->wino, L->host, threads, &g, L->weight, L->has_bias ? L->bias : NULL,
                                       L->relu, inputs[0].data, output->data, L->scratch);
    }
    if (!taps && conv_use_winograd(L, &g)) {
        int m = L->wino_tile ? L->wino_tile : conv_winograd_tile(&g);
        if (m == 4 && conv_bwino_through_suits(L, &g)) return conv_bwino_through(L, &g, inputs[0].data, output->data);
        const float *U;
        if ((st = conv_grow_scratch(L, conv_winograd_forward_u_floats(&g, m, threads))) != PLY_OK) return st;
        if ((st = conv_wino_cache_get(&L->wino, L->host, threads, &g, m, L->weight, 1, &U)) != PLY_OK) return st;
        conv_winograd_forward_u(L->host, threads, &g, m, U, L->has_bias ? L->bias : NULL, L->relu, inputs[0].data,
                                output->data, L->scratch);
        return PLY_OK;
    }
    if (taps) {
        // in training, room for the backward too, which then reuses the gathers left at the start
        size_t floats = conv_taps_forward_floats(&g), back = conv_taps_backward_floats(&g);
        if ((st = conv_grow_scratch(L, L->training && back > floats ? back : floats)) != PLY_OK) return st;
        conv_taps_forward(L->host, threads, &g, L->weight, L->has_bias ? L->bias : NULL, L->relu, inputs[0].data,
                          output->data, L->scratch);
        L->taps_kept = L->training;
        return PLY_OK;
    }
    if (conv_use_stem(L, &g)) {
        if ((st = conv_grow_scratch(L, conv_stem_forward_floats(&g, threads))) != PLY_OK) return st;
        conv_stem_forward(L->host, threads, &g, L->weight, L->has_bias ? L->bias : NULL, L->relu, inputs[0].data,
                          output->data, L->scratch);
        return PLY_OK;
    }
    if ((st = conv_grow_scratch(L, conv_gemm_forward_floats(&g, threads))) != PLY_OK) return st;
    conv_gemm_forward(L->host, threads, L->algorithm != ALGO_BLAS, &g, L->weight, L->has_bias ? L->bias : NULL, L->relu,
                      inputs[0].data, output->data, L->scratch);
    return PLY_OK;
}

static ply_status conv_fuse_activation(ply_layer *L, const char *activation) {
    if (strcmp(activation, "relu") != 0) return PLY_ERR_UNSUPPORTED;
    L->relu = 1;
    return PLY_OK;
}

// Also the signal that an owner wrote the weights without moving the host's parameter generation (a
// composite's folded conv: ply_fold_write, ConvBatchNormFold.sync): the kept Winograd and packed weights are
// checked against the weights' hash at the next forward instead of trusted by the generation.
static void conv_set_training(ply_layer *L, int32_t training) {
    L->training = training != 0;
    L->wino.has_generation = 0;
    L->panels.has_generation = 0;
    L->pw.has_generation = 0;
    L->spans.has_generation = 0;
    L->blk.has_generation = 0;
    L->bwino.has_generation = 0;
}

// A frozen layer's scratch goes back to the host after every forward, to be taken again by the next: in
// evaluation it holds nothing from one call to the next (the live-tap gathers are kept for training only), and
// held by every layer it summed to 27 MB at batch 1 in ResNet-50 on 1 thread, 38.5 MB on 2 (each 3x3 layer's
// Winograd V and M per thread, 2.3 MB), where the next layer could have used the same memory. The host's
// alloc is glibc's malloc: the first forward maps each large block and raises malloc's mapping threshold as
// it frees them, so from the second forward on the layers take their scratch from the same heap memory in
// turn, already mapped. ResNet-50, batch 1, 2 threads (AMD EPYC Zen 3, /usr/bin/time): peak RSS 273.6 ->
// 247.1 MB, minor page faults 87.7k -> 81.1k for the same 10 forwards; GoogLeNet 131.0 -> 110.0 MB,
// Inception v3 (299) 253.4 -> 200.7 MB. Blocks above malloc's largest threshold (32 MB: a stem's NCHW output at
// batch 16) the host keeps mapped itself between a free and the next alloc (Sources/Ply/Runtime/LargeBlockCache.swift).
static void release_scratch(ply_layer *L) {
    const ply_host *h = L->host;
    h->free(h, L->scratch);
    L->scratch = NULL;
    L->scratch_floats = 0;
    L->taps_kept = 0;
    h->free(h, L->blk_tmp);
    L->blk_tmp = NULL;
    L->blk_tmp_floats = 0;
}

// Whether every evaluation forward of this layer, whatever its input's shape, is conv_1x1.c's reading the weights
// packed only (conv_1x1_packs on every plane: below the AVX-512 level), never the plain weights: a plain 1x1
// layer without padding, "auto" or "pointwise", in the order conv_forward_nchw picks its plan (depthwise, grouped
// and direct first).
static int forward_reads_packed_only(const ply_layer *L) {
    return !conv_use_depthwise(L) && conv_is_plain(L) && !conv_use_direct(L) &&
           (L->algorithm == ALGO_AUTO || L->algorithm == ALGO_POINTWISE) && L->KH == 1 && L->KW == 1 && L->PH == 0 &&
           L->PW == 0 && ply_cpu_level() >= PLY_CPU_AVX2 && ply_cpu_level() < PLY_CPU_AVX512;
}

// plugin.h's freeze. Frees what no evaluation forward reads: the gradients and the relu mask of backward, the
// direct kernels' packed copy where they never run; and, where the forward reads the weights packed only
// (forward_reads_packed_only: 1x1 layers at the AVX2 level), the plain weights once packed for good. At AVX2
// those are ResNet-50's 1x1 layers, 49 MB of its 102 at batch 1 (the peak RSS went above ncnn's with
// Winograd's U beside the weights: 295 MB against 268). The packing is the one the next forward would make
// from the same weights, so the outputs stay the same bits. All-or-nothing: the only failure (no memory for
// the packing) comes before anything is freed.
static ply_status conv_freeze(ply_layer *L) {
    const ply_host *h = L->host;
    if (L->training)
        return ply_errorf(h, PLY_ERR_INVALID_ARGUMENT, "conv2d: freeze in training mode (call set_training(0) first)");
    if (L->weight && forward_reads_packed_only(L)) {
        conv_geom g;
        memset(&g, 0, sizeof g);
        g.C = L->C;
        g.OC = L->OC;
        float *wp;
        int stale;
        // host_only 0: the hash decides, whatever wrote the weights since the last forward
        ply_status st = conv_weight_cache_check(&L->pw, h, h->thread_count(h), L->weight, (size_t)(g.OC * g.C), 1, 0,
                                                conv_1x1_packed_floats(&g), "packed 1x1 weights", &wp, &stale);
        if (st != PLY_OK) return st;
        if (stale) conv_1x1_pack_weights(&g, L->weight, wp);
        h->free(h, L->weight);
        L->weight = NULL;
        L->packed_only = 1;
    }
    h->free(h, L->dweight); h->free(h, L->dbias); h->free(h, L->dymask);
    L->dweight = L->dbias = L->dymask = NULL;
    L->dymask_floats = 0;
    if (!conv_use_direct(L)) {
        h->free(h, L->wflip);
        L->wflip = NULL;
    }
    release_scratch(L);
    L->frozen = 1;
    return PLY_OK;
}

// The vtable's forward and forward_layout: conv_forward_nchw and conv_forward_layout (which call each other and
// themselves), then, frozen, the scratch given back (release_scratch).
static ply_status conv_forward(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    ply_status st = conv_forward_nchw(L, n_inputs, inputs, output);
    if (L->frozen) release_scratch(L);
    return st;
}

static ply_status conv_forward_blocked(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs,
                                       const int32_t *in_layouts, ply_tensor *output, int32_t out_layout) {
    ply_status st = conv_forward_layout(L, n_inputs, inputs, in_layouts, output, out_layout);
    if (L->frozen) release_scratch(L);
    return st;
}

static int32_t conv_param_count(ply_layer *L) { return L->has_bias ? 2 : 1; }

static ply_status conv_get_param(ply_layer *L, int32_t index, ply_param *out) {
    if (index == 0) {
        ply_shape s = ply_shape_make(4, L->OC, L->C / L->G, L->KH, L->KW);
        *out = ply_param_make("weight", L->weight, L->dweight, s);
        return PLY_OK;
    }
    if (index == 1 && L->has_bias) {
        *out = ply_param_make("bias", L->bias, L->dbias, ply_shape_make(1, L->OC, 0, 0, 0));
        return PLY_OK;
    }
    return ply_errorf(L->host, PLY_ERR_NOT_FOUND, "conv2d: no parameter %d (it has %d)", index, conv_param_count(L));
}

// MACs: output elements x in_channels/groups x kh x kw; window: the kernel's span d*(k-1)+1 and the stride.
static ply_status conv_describe(ply_layer *L, int32_t n_inputs, const ply_shape *inputs, ply_layer_info *info) {
    ply_shape out;
    ply_status st = conv_infer_shape(L, n_inputs, inputs, &out);
    if (st != PLY_OK) return st;
    ply_info_set_macs(info,
                      ply_count_mul(ply_count_mul(ply_count_mul(ply_shape_numel(&out), L->C / L->G), L->KH), L->KW));
    ply_info_set_window(info, ply_window_make((double)(L->DH * (L->KH - 1) + 1), (double)(L->DW * (L->KW - 1) + 1),
                                              (double)L->SH, (double)L->SW));
    return PLY_OK;
}

static const ply_layer_type conv2d_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "conv2d",
    .doc = "2-d convolution (direct AVX-512/AVX2, im2col + sgemm, Winograd, depthwise); attrs in_channels, out_channels, "
           "kernel_size, stride, padding, dilation, groups, bias, algorithm, winograd_tile, workspace_mb",
    .min_inputs = 1,
    .max_inputs = 2,
    .create = conv_create,
    .destroy = conv_destroy,
    .infer_shape = conv_infer_shape,
    .forward = conv_forward,
    .backward = conv_backward,
    .param_count = conv_param_count,
    .get_param = conv_get_param,
    .set_training = conv_set_training,
    .fuse_activation = conv_fuse_activation,
    .attr_specs = conv_specs,
    .inputs_doc = "x: (N, in_channels, H, W); optional r: the output's shape, added before the activation "
                  "(trainable=false only)",
    .describe = conv_describe,
    .freeze = conv_freeze,
    .eval_layouts = conv_eval_layouts,
    .forward_layout = conv_forward_blocked,
};

static const ply_layer_type *const types[] = {&conv2d_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.conv", "1.0.0", 1, 0, types,
};

PLY_BUILTIN_ENTRY(conv) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "ply.conv: built for ABI major 1, host has another major version");
        return NULL;
    }
    return &plugin;
}
