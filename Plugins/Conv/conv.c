/*
 * Conv family: conv2d (PyTorch's nn.Conv2d with dilation 1, groups 1, zero
 * padding). One input [N, C, H, W] -> [N, OC, OH, OW].
 *
 * Four implementations, picked per call:
 *   - conv_direct.c: direct AVX-512 kernels for stride-1 layers with few
 *     channels (the ConvNet's), one chunk of the batch per host thread, each
 *     with its own padded planes and partial gradients;
 *   - conv_gemm.c: im2col over the whole batch and a product, split over the
 *     host's threads by Ply: conv_kernel.c's AVX-512 kernel forward (OpenBLAS
 *     without AVX-512), single-threaded OpenBLAS sgemm backward;
 *   - conv_taps.c: small planes (ResNet's last stages) where padding makes
 *     much of im2col zeros: products over the live taps only;
 *   - conv_winograd.c: the forward of 3x3, stride-1 layers with at least 16
 *     channels each way and 64 output tiles (2x2), by Winograd F(4x4, 3x3) (4x
 *     fewer multiply-adds) or F(2x2, 3x3) (2.25x), the tile chosen per shape
 *     (conv_winograd_tile; attribute winograd_tile forces one); the backward of
 *     those layers is im2col's. The transformed weights are kept in the layer
 *     with a hash of the weights they came from, and redone when a forward
 *     finds the weights changed (conv_wino_cache_get);
 *   - conv_s2d.c: the forward of stride-S layers with kernels of 2S+1 to 3S
 *     (AlexNet's 11x11 stride-4 stem), folded by space-to-depth into a 3x3
 *     stride-1 layer for Winograd (the backward is im2col's).
 * Attribute algorithm="auto" (the default) chooses; "im2col", "blas" (im2col
 * with OpenBLAS only, the reference), "direct", "taps", "winograd" and "s2d"
 * force one.
 * The AVX-512 kernels (direct, winograd, s2d, conv_kernel.c's product and the
 * strip packing) run when ply_cpu_level() is PLY_CPU_AVX512; below it "auto"
 * takes im2col with OpenBLAS and the portable loops, and forcing "direct",
 * "winograd" or "s2d" is refused with a message naming the CPU level.
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
 * The scratch lives in the instance and only grows.
 */
#include "plugin_support.h"

#include "plugin_blas.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_direct.h"
#include "conv_gemm.h"
#include "conv_kernel.h"
#include "conv_s2d.h"
#include "conv_taps.h"
#include "conv_winograd.h"
#include "ply/plugin.h"
#include "plugin_support.h"

// Which kernels a layer uses: attribute `algorithm` ("auto", "im2col", "blas", "direct", "taps", "winograd", "s2d").
typedef enum { ALGO_AUTO, ALGO_IM2COL, ALGO_BLAS, ALGO_DIRECT, ALGO_TAPS, ALGO_WINOGRAD, ALGO_S2D } conv_algo;

// "auto" takes the live-tap plan where at most this share of im2col is inside the input.
#define TAPS_MAX_LIVE 0.75

struct ply_layer {
    const ply_host *host;
    int64_t C, OC, KH, KW, SH, SW, PH, PW;
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
    float *weight, *dweight; // [OC, C, KH, KW]
    float *bias, *dbias;     // [OC], NULL when bias=false
    float *scratch;          // per-call workspace, grown on demand
    size_t scratch_floats;
    int wino_tile;           // attribute winograd_tile: 0 (auto), 2 or 4
    conv_wino_cache wino;    // Winograd's transformed weights, kept while the weights stay the same
};

// ----------------------------------------------------------------------------
// the direct kernels, one chunk of the batch per host thread

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
} direct_job;

static void chunk_bounds(const direct_job *j, int64_t t, int64_t *n0, int64_t *n1) {
    *n0 = j->N * t / j->chunks;
    *n1 = j->N * (t + 1) / j->chunks;
}

static void direct_forward_chunks(void *ctx, int64_t begin, int64_t end) {
    const direct_job *j = ctx;
    for (int64_t t = begin; t < end; t++) {
        int64_t n0, n1;
        chunk_bounds(j, t, &n0, &n1);
        conv_direct_forward(&j->dg, j->L->wflip, j->L->has_bias ? j->L->bias : NULL, j->L->relu, j->x, j->y, n0, n1,
                            j->L->scratch + (size_t)t * j->slice);
    }
}

// The fused relu's derivative: dymask = grad_output where output > 0, else 0, for images [n0, n1).
typedef struct { const float *y, *dy; float *out; int64_t per_image; } mask_job;

static void mask_images(void *ctx, int64_t n0, int64_t n1) {
    const mask_job *m = ctx;
    for (int64_t i = n0 * m->per_image, e = n1 * m->per_image; i < e; i++) {
        float g = m->dy[i];
        m->out[i] = m->y[i] > 0.0f ? g : 0.0f;
    }
}

static void direct_backward_chunks(void *ctx, int64_t begin, int64_t end) {
    const direct_job *j = ctx;
    for (int64_t t = begin; t < end; t++) {
        int64_t n0, n1;
        chunk_bounds(j, t, &n0, &n1);
        conv_direct_backward(&j->dg, j->L->wflip, j->x, j->dy, j->y_relu, j->dx, n0, n1,
                             j->L->scratch + (size_t)t * j->slice, j->L->has_bias);
    }
}

// ----------------------------------------------------------------------------
// vtable

static ply_status grow_scratch(ply_layer *L, size_t floats) {
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

// Read a required positive int attribute.
static ply_status positive_attr(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t *out) {
    ply_status st = host->attr_int(host, attrs, name, out);
    if (st == PLY_ERR_NOT_FOUND) return ply_errorf(host, PLY_ERR_NOT_FOUND, "conv2d: missing attribute '%s'", name);
    if (st != PLY_OK) return st;
    if (*out <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "conv2d: %s must be positive (got %lld)", name,
                          (long long)*out);
    return PLY_OK;
}

// Read an optional int-or-pair attribute with a default and a lower bound.
static ply_status pair_attr(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t dflt,
                            int64_t min, int64_t out[2]) {
    ply_status st = host->attr_pair(host, attrs, name, out);
    if (st == PLY_ERR_NOT_FOUND) { out[0] = out[1] = dflt; return PLY_OK; }
    if (st != PLY_OK) return st;
    if (out[0] < min || out[1] < min)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "conv2d: %s must be >= %lld (got (%lld, %lld))", name,
                          (long long)min, (long long)out[0], (long long)out[1]);
    return PLY_OK;
}

// The CPU level as PLY_CPU spells it, for messages.
static const char *cpu_level_name(ply_cpu c) {
    return c == PLY_CPU_AVX512 ? "avx512" : c == PLY_CPU_AVX2 ? "avx2" : "generic";
}

static ply_status conv_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t C, OC, k[2], s[2], p[2], d[2], groups = 1;
    int32_t bias = 1;
    ply_status st;
    if ((st = positive_attr(host, attrs, "in_channels", &C)) != PLY_OK) return st;
    if ((st = positive_attr(host, attrs, "out_channels", &OC)) != PLY_OK) return st;
    st = host->attr_pair(host, attrs, "kernel_size", k);
    if (st == PLY_ERR_NOT_FOUND) return ply_errorf(host, st, "conv2d: missing attribute 'kernel_size'");
    if (st != PLY_OK) return st;
    if (k[0] <= 0 || k[1] <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "conv2d: kernel_size must be positive (got (%lld, %lld))",
                          (long long)k[0], (long long)k[1]);
    if ((st = pair_attr(host, attrs, "stride", 1, 1, s)) != PLY_OK) return st;
    // padding: int, pair, or PyTorch's strings "valid" / "same" (stride 1, odd kernels)
    const ply_attr *pa = ply_find_attr(attrs, "padding");
    if (pa && pa->kind == PLY_ATTR_STRING) {
        if (strcmp(pa->v.s, "valid") == 0) {
            p[0] = p[1] = 0;
        } else if (strcmp(pa->v.s, "same") == 0 && s[0] == 1 && s[1] == 1 && k[0] % 2 == 1 && k[1] % 2 == 1) {
            p[0] = k[0] / 2; p[1] = k[1] / 2;
        } else {
            return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                              "conv2d: padding '%s' is not supported (expected an int, a pair, 'valid', or 'same' "
                              "with stride 1 and odd kernel sizes)", pa->v.s);
        }
    } else if ((st = pair_attr(host, attrs, "padding", 0, 0, p)) != PLY_OK) {
        return st;
    }
    if ((st = pair_attr(host, attrs, "dilation", 1, 1, d)) != PLY_OK) return st;
    if (d[0] != 1 || d[1] != 1)
        return ply_errorf(host, PLY_ERR_UNSUPPORTED, "conv2d: dilation (%lld, %lld) is not supported (only 1)",
                          (long long)d[0], (long long)d[1]);
    st = host->attr_int(host, attrs, "groups", &groups);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (groups != 1)
        return ply_errorf(host, PLY_ERR_UNSUPPORTED, "conv2d: groups=%lld is not supported (only 1)",
                          (long long)groups);
    const ply_attr *pm = ply_find_attr(attrs, "padding_mode");
    if (pm && (pm->kind != PLY_ATTR_STRING || strcmp(pm->v.s, "zeros") != 0))
        return ply_errorf(host, PLY_ERR_UNSUPPORTED, "conv2d: padding_mode must be 'zeros'");
    st = host->attr_bool(host, attrs, "bias", &bias);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    conv_algo algo = ALGO_AUTO;
    const char *algo_name = "auto";
    st = host->attr_string(host, attrs, "algorithm", &algo_name);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (strcmp(algo_name, "auto") == 0) algo = ALGO_AUTO;
    else if (strcmp(algo_name, "im2col") == 0) algo = ALGO_IM2COL;
    else if (strcmp(algo_name, "blas") == 0) algo = ALGO_BLAS;
    else if (strcmp(algo_name, "direct") == 0) algo = ALGO_DIRECT;
    else if (strcmp(algo_name, "taps") == 0) algo = ALGO_TAPS;
    else if (strcmp(algo_name, "winograd") == 0) algo = ALGO_WINOGRAD;
    else if (strcmp(algo_name, "s2d") == 0) algo = ALGO_S2D;
    else
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "conv2d: algorithm must be \"auto\", \"im2col\", \"blas\", \"direct\", \"taps\", "
                          "\"winograd\" or \"s2d\" (got \"%s\")",
                          algo_name);
    int64_t wino_tile = 0;
    st = host->attr_int(host, attrs, "winograd_tile", &wino_tile);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (wino_tile != 0 && wino_tile != 2 && wino_tile != 4)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "conv2d: winograd_tile must be 0 (auto), 2 or 4 (got %lld)",
                          (long long)wino_tile);
    int64_t workspace_mb = 32;
    st = host->attr_int(host, attrs, "workspace_mb", &workspace_mb);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (workspace_mb < 0 || workspace_mb > (1 << 20))
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "conv2d: workspace_mb must be in 0...%d (got %lld)", 1 << 20,
                          (long long)workspace_mb);
    int32_t trainable = 1;
    st = host->attr_bool(host, attrs, "trainable", &trainable);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    // direct, winograd and s2d have AVX-512 kernels only (im2col is their portable path)
    if ((algo == ALGO_DIRECT || algo == ALGO_WINOGRAD || algo == ALGO_S2D) && ply_cpu_level() < PLY_CPU_AVX512)
        return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                          "conv2d: algorithm \"%s\" needs the AVX-512 kernels and the CPU level is %s%s; \"auto\" "
                          "and \"im2col\" run at every level",
                          algo_name, cpu_level_name(ply_cpu_level()),
                          ply_cpu_level() < ply_cpu_detected() ? " (lowered by PLY_CPU)" : "");
    if (algo == ALGO_WINOGRAD && (k[0] != 3 || k[1] != 3 || s[0] != 1 || s[1] != 1))
        return ply_errorf(host, PLY_ERR_UNSUPPORTED, "conv2d: algorithm \"winograd\" needs a 3x3 kernel and stride 1");
    if (algo == ALGO_S2D && !conv_s2d_fits(k[0], k[1], s[0], s[1]))
        return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                          "conv2d: algorithm \"s2d\" needs equal strides S >= 2 and a kernel of at most 3S x 3S "
                          "(got kernel %lldx%lld, stride %lldx%lld)",
                          (long long)k[0], (long long)k[1], (long long)s[0], (long long)s[1]);
    if (algo == ALGO_DIRECT) {
        if (s[0] != 1 || s[1] != 1 || !conv_direct_fits(C, OC, k[0], k[1], p[0], p[1]))
            return ply_errorf(host, PLY_ERR_UNSUPPORTED,
                              "conv2d: algorithm \"direct\" needs stride 1, in_channels <= 16, out_channels <= 64, "
                              "at most 64 kernel taps and padding smaller than the kernel");
    }

    ply_layer *L = host->alloc(host, sizeof *L);
    if (!L) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "conv2d: out of memory");
    memset(L, 0, sizeof *L);
    L->host = host;
    L->C = C; L->OC = OC; L->KH = k[0]; L->KW = k[1];
    L->SH = s[0]; L->SW = s[1]; L->PH = p[0]; L->PW = p[1];
    L->has_bias = bias != 0;
    L->algorithm = algo;
    L->wino_tile = (int)wino_tile;
    L->training = 1; // as PyTorch: new instances train
    L->rows_limit = (size_t)workspace_mb * ((1 << 20) / sizeof(float));
    int64_t fan_in = C * k[0] * k[1], nw = OC * fan_in;
    size_t wbytes = (size_t)nw * sizeof(float), bbytes = (size_t)OC * sizeof(float);
    L->trainable = trainable != 0;
    L->weight = host->alloc(host, wbytes);
    // gradients zeroed by the host without a write: a model that never trains never touches them
    if (L->trainable) L->dweight = ply_alloc_zeroed(host, wbytes);
    L->wflip = host->alloc(host, wbytes);
    if (L->has_bias) {
        L->bias = host->alloc(host, bbytes);
        if (L->trainable) L->dbias = ply_alloc_zeroed(host, bbytes);
    }
    if (!L->weight || (L->trainable && !L->dweight) || !L->wflip ||
        (L->has_bias && (!L->bias || (L->trainable && !L->dbias)))) {
        host->free(host, L->weight); host->free(host, L->dweight); host->free(host, L->wflip);
        host->free(host, L->bias); host->free(host, L->dbias);
        host->free(host, L);
        return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %lld weights", (long long)nw);
    }
    if (!L->trainable) { // inference only: the owner writes the values; no draw from the generator
        memset(L->weight, 0, wbytes);
        if (L->has_bias) memset(L->bias, 0, bbytes);
        *out = L;
        return PLY_OK;
    }
    // kaiming_uniform(a=sqrt(5)) => U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias likewise
    float bound = (float)(1.0 / sqrt((double)fan_in));
    host->fill_uniform(host, L->weight, nw, -bound, bound);
    if (L->has_bias) host->fill_uniform(host, L->bias, OC, -bound, bound);
    *out = L;
    return PLY_OK;
}

static void conv_destroy(ply_layer *L) {
    if (!L) return;
    const ply_host *h = L->host;
    h->free(h, L->weight); h->free(h, L->dweight); h->free(h, L->wflip);
    h->free(h, L->bias); h->free(h, L->dbias);
    h->free(h, L->scratch);
    h->free(h, L->dymask);
    conv_wino_cache_free(h, &L->wino);
    h->free(h, L);
}

static ply_status conv_infer_shape(ply_layer *L, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    const ply_shape *s = &inputs[0];
    if (s->ndim != 4)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "conv2d: input 0 must be 4-d [N, C, H, W] (got %d dims)", s->ndim);
    if (s->dims[1] != L->C)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "conv2d: input 0 dim 1 (channels) is %lld, expected in_channels=%lld",
                          (long long)s->dims[1], (long long)L->C);
    int64_t H = s->dims[2], W = s->dims[3];
    if (H + 2 * L->PH < L->KH)
        return ply_errorf(L->host, PLY_ERR_SHAPE,
                          "conv2d: input 0 dim 2 (height) %lld plus padding 2*%lld is smaller than kernel height %lld",
                          (long long)H, (long long)L->PH, (long long)L->KH);
    if (W + 2 * L->PW < L->KW)
        return ply_errorf(L->host, PLY_ERR_SHAPE,
                          "conv2d: input 0 dim 3 (width) %lld plus padding 2*%lld is smaller than kernel width %lld",
                          (long long)W, (long long)L->PW, (long long)L->KW);
    int64_t OH = ply_conv_out_size(H, L->KH, L->SH, L->PH, 1, 0), OW = ply_conv_out_size(W, L->KW, L->SW, L->PW, 1, 0);
    if ((L->C * L->KH * L->KW) > INT32_MAX || OH * OW > INT32_MAX || L->OC > INT32_MAX)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "conv2d: input 0 is too large for 32-bit BLAS indices");
    *output = ply_shape_make(4, s->dims[0], L->OC, OH, OW);
    return PLY_OK;
}

static ply_status check_tensor(ply_layer *L, const ply_tensor *t, const char *what) {
    if (t->strides || t->dtype != PLY_DTYPE_F32)
        return ply_errorf(L->host, PLY_ERR_UNSUPPORTED, "conv2d: %s must be a compact float32 tensor", what);
    return PLY_OK;
}

// The geometry of this call, after checking the tensors.
static ply_status call_geom(ply_layer *L, const ply_tensor *x, const ply_tensor *y, conv_geom *g) {
    ply_status st;
    ply_shape os;
    if ((st = check_tensor(L, x, "input 0")) != PLY_OK) return st;
    if ((st = check_tensor(L, y, "output")) != PLY_OK) return st;
    if ((st = conv_infer_shape(L, 1, &x->shape, &os)) != PLY_OK) return st;
    conv_geom c = {x->shape.dims[0], L->C, x->shape.dims[2], x->shape.dims[3], L->OC, L->KH, L->KW,
                   L->SH, L->SW, L->PH, L->PW, os.dims[2], os.dims[3]};
    *g = c;
    return PLY_OK;
}

static int use_direct(const ply_layer *L) {
    return (L->algorithm == ALGO_AUTO || L->algorithm == ALGO_DIRECT) && L->SH == 1 && L->SW == 1 &&
           ply_cpu_level() >= PLY_CPU_AVX512 && conv_direct_fits(L->C, L->OC, L->KH, L->KW, L->PH, L->PW);
}

// Whether this call takes the live-tap plan (conv_taps.c); an error when "taps" is forced where it cannot.
static ply_status use_taps(const ply_layer *L, const conv_geom *g, int *taps) {
    *taps = 0;
    if (L->algorithm == ALGO_TAPS) {
        if (!conv_taps_fits(g))
            return ply_errorf(L->host, PLY_ERR_UNSUPPORTED,
                              "conv2d: algorithm \"taps\" needs an output plane of at most 16x16 (got %lldx%lld)",
                              (long long)g->OH, (long long)g->OW);
        *taps = 1;
    } else if (L->algorithm == ALGO_AUTO && !use_direct(L)) {
        *taps = conv_taps_suits(g, TAPS_MAX_LIVE) && conv_taps_backward_floats(g) <= L->rows_limit;
    }
    return PLY_OK;
}

// Whether this call's forward takes Winograd (conv_winograd.c). The backward stays on im2col.
static int use_winograd(const ply_layer *L, const conv_geom *g) {
    if (L->algorithm == ALGO_WINOGRAD) return conv_winograd_fits(g);
    return L->algorithm == ALGO_AUTO && !use_direct(L) && conv_winograd_suits(g);
}

// Whether this call's forward folds the input by space-to-depth for Winograd (conv_s2d.c).
static int use_s2d(const ply_layer *L, const conv_geom *g) {
    return L->algorithm == ALGO_S2D || (L->algorithm == ALGO_AUTO && conv_s2d_suits(g));
}

// Threads the GEMM plans split over: the host's, unless OpenBLAS threads each product itself.
static int64_t gemm_threads(const ply_layer *L) {
    return ply_blas_threads() > 1 ? 1 : L->host->thread_count(L->host);
}

// A direct-kernel job: one chunk of the batch per host thread.
static ply_status direct_job_make(ply_layer *L, const conv_geom *g, const float *x, direct_job *j, int backward) {
    direct_geom dg = {g->C, g->OC, g->KH, g->KW, g->PH, g->PW, g->H, g->W, g->OH, g->OW};
    int64_t threads = L->host->thread_count(L->host);
    memset(j, 0, sizeof *j);
    j->L = L;
    j->N = g->N;
    j->x = x;
    j->dg = dg;
    j->chunks = threads < g->N ? threads : g->N;
    if (j->chunks < 1) j->chunks = 1;
    j->slice = backward ? conv_direct_backward_floats(&dg) : conv_direct_forward_floats(&dg);
    return grow_scratch(L, j->slice * (size_t)j->chunks);
}

static ply_status conv_forward(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    conv_geom g;
    L->taps_kept = 0;
    ply_status st = call_geom(L, &inputs[0], output, &g);
    if (st != PLY_OK) return st;
    if (g.N == 0) return PLY_OK;
    if (use_direct(L)) {
        direct_job j;
        if ((st = direct_job_make(L, &g, inputs[0].data, &j, 0)) != PLY_OK) return st;
        j.y = output->data;
        conv_direct_pack(&j.dg, L->weight, L->wflip);
        if (j.chunks > 1) L->host->parallel_for(L->host, j.chunks, 1, direct_forward_chunks, &j);
        else direct_forward_chunks(&j, 0, 1);
        return PLY_OK;
    }
    int64_t threads = gemm_threads(L);
    int taps;
    if ((st = use_taps(L, &g, &taps)) != PLY_OK) return st;
    if (!taps && use_s2d(L, &g)) {
        if ((st = grow_scratch(L, conv_s2d_forward_floats(&g, threads))) != PLY_OK) return st;
        conv_s2d_forward(L->host, threads, &g, L->weight, L->has_bias ? L->bias : NULL, L->relu, inputs[0].data,
                         output->data, L->scratch);
        return PLY_OK;
    }
    if (!taps && use_winograd(L, &g)) {
        int m = L->wino_tile ? L->wino_tile : conv_winograd_tile(&g);
        const float *U;
        if ((st = grow_scratch(L, conv_winograd_forward_u_floats(&g, m, threads))) != PLY_OK) return st;
        if ((st = conv_wino_cache_get(&L->wino, L->host, threads, &g, m, L->weight, L->trainable, &U)) != PLY_OK) return st;
        conv_winograd_forward_u(L->host, threads, &g, m, U, L->has_bias ? L->bias : NULL, L->relu, inputs[0].data,
                                output->data, L->scratch);
        return PLY_OK;
    }
    if (taps) {
        // in training, room for the backward too, which then reuses the gathers left at the start
        size_t floats = conv_taps_forward_floats(&g), back = conv_taps_backward_floats(&g);
        if ((st = grow_scratch(L, L->training && back > floats ? back : floats)) != PLY_OK) return st;
        conv_taps_forward(L->host, threads, &g, L->weight, L->has_bias ? L->bias : NULL, L->relu, inputs[0].data,
                          output->data, L->scratch);
        L->taps_kept = L->training;
        return PLY_OK;
    }
    if ((st = grow_scratch(L, conv_gemm_forward_floats(&g, threads))) != PLY_OK) return st;
    conv_gemm_forward(L->host, threads, L->algorithm != ALGO_BLAS, &g, L->weight, L->has_bias ? L->bias : NULL, L->relu,
                      inputs[0].data, output->data, L->scratch);
    return PLY_OK;
}

static ply_status conv_backward(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                                const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    conv_geom g;
    if (!L->trainable)
        return ply_errorf(L->host, PLY_ERR_UNSUPPORTED, "conv2d: an inference-only conv (trainable=false) has no backward");
    ply_status st = call_geom(L, &inputs[0], output, &g);
    if (st != PLY_OK) return st;
    if ((st = check_tensor(L, grad_output, "grad_output")) != PLY_OK) return st;
    if (g.N == 0) return PLY_OK;
    const float *dy = grad_output->data;
    if (L->relu && !use_direct(L)) { // (the direct kernels mask while they copy dy)
        size_t n = (size_t)(g.N * g.OC * g.OH * g.OW);
        if (n > L->dymask_floats) {
            L->host->free(L->host, L->dymask);
            L->dymask = L->host->alloc(L->host, n * sizeof(float));
            L->dymask_floats = L->dymask ? n : 0;
            if (!L->dymask)
                return ply_errorf(L->host, PLY_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %zu bytes for the fused relu's gradient",
                                  n * sizeof(float));
        }
        mask_job m = {output->data, dy, L->dymask, g.OC * g.OH * g.OW};
        L->host->parallel_for(L->host, g.N, 1, mask_images, &m);
        dy = L->dymask;
    }
    if (!use_direct(L)) {
        int64_t threads = gemm_threads(L);
        int taps;
        if ((st = use_taps(L, &g, &taps)) != PLY_OK) return st;
        if (taps) {
            if ((st = grow_scratch(L, conv_taps_backward_floats(&g))) != PLY_OK) return st;
            conv_taps_backward(L->host, threads, &g, L->weight, inputs[0].data, dy, grad_inputs[0].data, L->dweight,
                               L->has_bias ? L->dbias : NULL, L->scratch, L->taps_kept);
            return PLY_OK;
        }
        if ((st = grow_scratch(L, conv_gemm_backward_floats(&g, threads, L->rows_limit))) != PLY_OK) return st;
        conv_gemm_backward(L->host, threads, L->rows_limit, &g, L->weight, inputs[0].data, dy, grad_inputs[0].data,
                           L->dweight, L->has_bias ? L->dbias : NULL, L->scratch);
        return PLY_OK;
    }
    direct_job j;
    if ((st = direct_job_make(L, &g, inputs[0].data, &j, 1)) != PLY_OK) return st;
    j.dy = dy;
    j.dx = grad_inputs[0].data;
    j.y_relu = L->relu ? output->data : NULL;
    if (j.dx) conv_direct_flip(&j.dg, L->weight, L->wflip);
    if (j.chunks > 1) L->host->parallel_for(L->host, j.chunks, 1, direct_backward_chunks, &j);
    else direct_backward_chunks(&j, 0, 1);
    // sum the per-chunk, per-lane partials into the parameter gradients
    int64_t nw = L->OC * L->C * L->KH * L->KW;
    for (int64_t t = 0; t < j.chunks; t++) {
        const float *dwv = L->scratch + (size_t)t * j.slice, *dbv = dwv + nw * 16;
        for (int64_t i = 0; i < nw; i++) {
            float s = 0.0f;
            for (int k = 0; k < 16; k++) s += dwv[i * 16 + k];
            L->dweight[i] += s;
        }
        if (L->has_bias)
            for (int64_t o = 0; o < L->OC; o++) {
                float s = 0.0f;
                for (int k = 0; k < 16; k++) s += dbv[o * 16 + k];
                L->dbias[o] += s;
            }
    }
    return PLY_OK;
}

static ply_status conv_fuse_activation(ply_layer *L, const char *activation) {
    if (strcmp(activation, "relu") != 0) return PLY_ERR_UNSUPPORTED;
    L->relu = 1;
    return PLY_OK;
}

static void conv_set_training(ply_layer *L, int32_t training) { L->training = training != 0; }

static int32_t conv_param_count(ply_layer *L) { return L->has_bias ? 2 : 1; }

static ply_status conv_get_param(ply_layer *L, int32_t index, ply_param *out) {
    if (index == 0) {
        ply_shape s = ply_shape_make(4, L->OC, L->C, L->KH, L->KW);
        *out = ply_param_make("weight", L->weight, L->dweight, s);
        return PLY_OK;
    }
    if (index == 1 && L->has_bias) {
        *out = ply_param_make("bias", L->bias, L->dbias, ply_shape_make(1, L->OC, 0, 0, 0));
        return PLY_OK;
    }
    return ply_errorf(L->host, PLY_ERR_NOT_FOUND, "conv2d: no parameter %d (it has %d)", index, conv_param_count(L));
}

// ----------------------------------------------------------------------------
// self-description (ABI 1.2)

static const ply_attr_spec conv_specs[] = {
    {.name = "in_channels", .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED, .doc = "C, channels of the input"},
    {.name = "out_channels", .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED, .doc = "channels of the output"},
    PLY_SPEC_KERNEL_SIZE,
    PLY_SPEC_STRIDE("1", "input pixels between neighbouring outputs: an int or [sh, sw]"),
    {.name = "padding", .kind = PLY_ATTR_INTS, .flags = PLY_ATTR_PAIR | PLY_ATTR_OR_STRING, .default_text = "0",
     .doc = "zeros added on both sides of each spatial axis: an int, [ph, pw], or 'valid' / 'same' (stride 1)"},
    PLY_SPEC_DILATION("spacing between kernel taps: an int or [dh, dw]; only 1 is supported"),
    {.name = "groups", .kind = PLY_ATTR_INT, .default_text = "1",
     .doc = "blocked connections from input to output channels; only 1 is supported"},
    {.name = "padding_mode", .kind = PLY_ATTR_STRING, .default_text = "zeros",
     .doc = "what the padding holds; only \"zeros\" is supported"},
    {.name = "bias", .kind = PLY_ATTR_BOOL, .default_text = "true", .doc = "learn a per-channel bias"},
    {.name = "algorithm", .kind = PLY_ATTR_STRING, .default_text = "auto",
     .doc = "implementation: auto, im2col, blas, direct, taps, winograd or s2d"},
    {.name = "winograd_tile", .kind = PLY_ATTR_INT, .default_text = "0",
     .doc = "Winograd's output tile: 2 (F(2x2,3x3)), 4 (F(4x4,3x3)) or 0, chosen per input shape"},
    {.name = "workspace_mb", .kind = PLY_ATTR_INT, .default_text = "32",
     .doc = "cap in MiB on the backward's whole-batch scratch; above it the batch goes a tile at a time"},
    {.name = "trainable", .kind = PLY_ATTR_BOOL, .default_text = "true",
     .doc = "false: inference only (zero-initialised without random draws, no gradients, no backward)"},
    PLY_SPEC_END,
};

// MACs: output elements x in_channels x kh x kw (groups is 1); window: the kernel (dilation 1) and stride.
static ply_status conv_describe(ply_layer *L, int32_t n_inputs, const ply_shape *inputs, ply_layer_info *info) {
    ply_shape out;
    ply_status st = conv_infer_shape(L, n_inputs, inputs, &out);
    if (st != PLY_OK) return st;
    ply_info_set_macs(info, ply_count_mul(ply_count_mul(ply_count_mul(ply_shape_numel(&out), L->C), L->KH), L->KW));
    ply_info_set_window(info, ply_window_make((double)L->KH, (double)L->KW, (double)L->SH, (double)L->SW));
    return PLY_OK;
}

static const ply_layer_type conv2d_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "conv2d",
    .doc = "2-d convolution (direct AVX-512 or im2col + sgemm); attrs in_channels, out_channels, kernel_size, "
           "stride, padding, bias, algorithm, winograd_tile, workspace_mb",
    .min_inputs = 1,
    .max_inputs = 1,
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
    .inputs_doc = "x: (N, in_channels, H, W)",
    .describe = conv_describe,
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
