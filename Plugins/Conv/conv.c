/*
 * Conv family: conv2d (PyTorch's nn.Conv2d with dilation 1, groups 1, zero
 * padding). One input [N, C, H, W] -> [N, OC, OH, OW].
 *
 * Forward and backward go through im2col + OpenBLAS sgemm, one image at a
 * time:
 *   cols  [C*KH*KW, OH*OW] = im2col(x_n)
 *   y_n   [OC, OH*OW]      = W [OC, C*KH*KW] * cols  (+ bias)
 *   dW                    += dy_n * cols^T
 *   dx_n                   = col2im(W^T * dy_n)
 * A 1x1 kernel with stride 1 and no padding skips im2col (cols == x_n).
 *
 * Stride-1 layers with few channels use the direct AVX-512 kernels of
 * conv_direct.c instead when the CPU has them (attribute algorithm="auto",
 * the default; "im2col" and "direct" force one path), one chunk of the batch
 * per host thread, each with its own padded planes and partial gradients.
 *
 * Threading: when the batch has at least two images and one image's GEMM is
 * small (OpenBLAS would run it on one thread anyway, or OpenBLAS is limited
 * to one thread), the batch is split
 * into one chunk per host thread; each chunk owns a slice of the scratch
 * (its own cols buffer and its own partial dW / db sums, reduced at the
 * end). Otherwise images run one after the other, OpenBLAS threads each
 * GEMM itself and im2col / col2im are split over the host threads by input
 * channel. The scratch lives in the instance and only grows.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_direct.h"
#include "ply/plugin.h"

// Which kernels a layer uses: attribute `algorithm` ("auto", "im2col", "direct").
typedef enum { ALGO_AUTO, ALGO_IM2COL, ALGO_DIRECT } conv_algo;

struct ply_layer {
    const ply_host *host;
    int64_t C, OC, KH, KW, SH, SW, PH, PW;
    int has_bias;
    conv_algo algorithm;
    float *wflip;            // the kernel packed for the direct kernels (forward, or flipped for backward)
    float *weight, *dweight; // [OC, C, KH, KW]
    float *bias, *dbias;     // [OC], NULL when bias=false
    float *scratch;          // per-call workspace, grown on demand
    size_t scratch_floats;
};

// OpenBLAS 0.3 runs a GEMM of at most this many multiply-adds (M*N*K) on one
// thread (65536 * GEMM_MULTITHREAD_THRESHOLD). Such GEMMs run one per host
// thread over the batch; larger ones are left to OpenBLAS's own threads,
// because two concurrent threaded OpenBLAS calls contend (measured 2x slower).
#define CONV_SMALL_GEMM (65536 * 4)
// With one chunk, im2col / col2im buffers at least this large are split over
// the host threads by input channel.
#define CONV_SPLIT_COLS (1 << 16)

// ----------------------------------------------------------------------------
// kernels

// Output positions ow in [lo, hi) read input column iw = ow*S - P + k inside [0, W).
static void valid_range(int64_t k, int64_t S, int64_t P, int64_t W, int64_t OW, int64_t *lo, int64_t *hi) {
    int64_t a = P - k; // ow*S >= a
    int64_t l = a <= 0 ? 0 : (a + S - 1) / S;
    int64_t b = W + P - k; // ow*S < b
    int64_t h = b <= 0 ? 0 : (b + S - 1) / S;
    if (h > OW) h = OW;
    if (l > h) l = h;
    *lo = l; *hi = h;
}

// cols[(c*KH + ki)*KW + kj][oh*OW + ow] = x[c][oh*SH - PH + ki][ow*SW - PW + kj] (0 outside)
// x: [C, H, W], cols: [C*KH*KW, OH*OW]
static void im2col(float *cols, const float *x, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
                   int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t OH, int64_t OW) {
    for (int64_t c = 0; c < C; c++) {
        for (int64_t ki = 0; ki < KH; ki++) {
            for (int64_t kj = 0; kj < KW; kj++) {
                float *row = cols + ((c * KH + ki) * KW + kj) * OH * OW;
                int64_t lo, hi;
                valid_range(kj, SW, PW, W, OW, &lo, &hi);
                for (int64_t oh = 0; oh < OH; oh++) {
                    float *dst = row + oh * OW;
                    int64_t ih = oh * SH - PH + ki;
                    if (ih < 0 || ih >= H) {
                        memset(dst, 0, (size_t)OW * sizeof(float));
                        continue;
                    }
                    const float *src = x + (c * H + ih) * W + kj - PW;
                    for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    if (SW == 1) {
                        memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
                    } else {
                        for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * SW];
                    }
                    for (int64_t ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
                }
            }
        }
    }
}

// The adjoint of im2col: dx[c][ih][iw] = sum of the dcols entries that read it.
// dcols: [C*KH*KW, OH*OW], dx: [C, H, W] (overwritten)
static void col2im(float *dx, const float *dcols, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
                   int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t OH, int64_t OW) {
    memset(dx, 0, (size_t)(C * H * W) * sizeof(float));
    for (int64_t c = 0; c < C; c++) {
        for (int64_t ki = 0; ki < KH; ki++) {
            for (int64_t kj = 0; kj < KW; kj++) {
                const float *row = dcols + ((c * KH + ki) * KW + kj) * OH * OW;
                int64_t lo, hi;
                valid_range(kj, SW, PW, W, OW, &lo, &hi);
                for (int64_t oh = 0; oh < OH; oh++) {
                    int64_t ih = oh * SH - PH + ki;
                    if (ih < 0 || ih >= H) continue;
                    const float *src = row + oh * OW;
                    float *dst = dx + (c * H + ih) * W + kj - PW;
                    if (SW == 1) {
                        for (int64_t ow = lo; ow < hi; ow++) dst[ow] += src[ow];
                    } else {
                        for (int64_t ow = lo; ow < hi; ow++) dst[ow * SW] += src[ow];
                    }
                }
            }
        }
    }
}

// Everything one chunk of the batch needs; shared read-only by all chunks.
typedef struct {
    const ply_layer *L;
    int64_t N, H, W, OH, OW, chunks;
    size_t slice;       // floats of scratch per chunk
    const float *x;     // [N, C, H, W]
    float *y;           // [N, OC, OH, OW] (forward)
    const float *dy;    // [N, OC, OH, OW] (backward)
    float *dx;          // [N, C, H, W] or NULL (backward)
    int split_channels; // one chunk only: spread im2col / col2im over the host threads by channel
    int direct;         // use conv_direct.c
    direct_geom dg;     // its geometry
} conv_job;

// im2col / col2im of one image over the channel range [begin, end), for parallel_for.
typedef struct { const conv_job *j; const float *x; float *cols; float *dx; } cols_task;

static void im2col_channels(void *ctx, int64_t begin, int64_t end) {
    const cols_task *t = ctx;
    const conv_job *j = t->j;
    const ply_layer *L = j->L;
    int64_t P = j->OH * j->OW, HW = j->H * j->W, KK = L->KH * L->KW;
    im2col(t->cols + begin * KK * P, t->x + begin * HW, end - begin, j->H, j->W, L->KH, L->KW, L->SH, L->SW, L->PH,
           L->PW, j->OH, j->OW);
}

static void col2im_channels(void *ctx, int64_t begin, int64_t end) {
    const cols_task *t = ctx;
    const conv_job *j = t->j;
    const ply_layer *L = j->L;
    int64_t P = j->OH * j->OW, HW = j->H * j->W, KK = L->KH * L->KW;
    col2im(t->dx + begin * HW, t->cols + begin * KK * P, end - begin, j->H, j->W, L->KH, L->KW, L->SH, L->SW, L->PH,
           L->PW, j->OH, j->OW);
}

static void image_im2col(const conv_job *j, const float *xn, float *cols) {
    cols_task t = {j, xn, cols, NULL};
    if (j->split_channels) j->L->host->parallel_for(j->L->host, j->L->C, 1, im2col_channels, &t);
    else im2col_channels(&t, 0, j->L->C);
}

static void image_col2im(const conv_job *j, float *dxn, const float *dcols) {
    cols_task t = {j, NULL, (float *)dcols, dxn};
    if (j->split_channels) j->L->host->parallel_for(j->L->host, j->L->C, 1, col2im_channels, &t);
    else col2im_channels(&t, 0, j->L->C);
}

static int is_pointwise(const ply_layer *L) {
    return L->KH == 1 && L->KW == 1 && L->SH == 1 && L->SW == 1 && L->PH == 0 && L->PW == 0;
}

// y_n = W * im2col(x_n) + bias, for images [n0, n1), cols: [K, P] scratch
static void conv2d_forward_images(const conv_job *j, int64_t n0, int64_t n1, float *cols) {
    const ply_layer *L = j->L;
    int64_t K = L->C * L->KH * L->KW, P = j->OH * j->OW;
    for (int64_t n = n0; n < n1; n++) {
        const float *xn = j->x + n * L->C * j->H * j->W;
        float *yn = j->y + n * L->OC * P;
        const float *b = xn;
        if (!is_pointwise(L)) {
            image_im2col(j, xn, cols);
            b = cols;
        }
        float beta = 0.0f;
        if (L->has_bias) {
            for (int64_t o = 0; o < L->OC; o++)
                for (int64_t p = 0; p < P; p++) yn[o * P + p] = L->bias[o];
            beta = 1.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)L->OC, (int)P, (int)K, 1.0f, L->weight, (int)K,
                    b, (int)P, beta, yn, (int)P);
    }
}

// For images [n0, n1): dw += dy_n * cols^T, db += rowsum(dy_n), dx_n = col2im(W^T dy_n).
// cols: [K, P] scratch (reused for the column gradient), dw: [OC, K], db: [OC]
static void conv2d_backward_images(const conv_job *j, int64_t n0, int64_t n1, float *cols, float *dw, float *db) {
    const ply_layer *L = j->L;
    int64_t K = L->C * L->KH * L->KW, P = j->OH * j->OW;
    int pw = is_pointwise(L);
    for (int64_t n = n0; n < n1; n++) {
        const float *xn = j->x + n * L->C * j->H * j->W;
        const float *dyn = j->dy + n * L->OC * P;
        const float *b = xn;
        if (!pw) {
            image_im2col(j, xn, cols);
            b = cols;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)L->OC, (int)K, (int)P, 1.0f, dyn, (int)P, b,
                    (int)P, 1.0f, dw, (int)K);
        if (db) {
            for (int64_t o = 0; o < L->OC; o++) {
                float s = 0.0f;
                for (int64_t p = 0; p < P; p++) s += dyn[o * P + p];
                db[o] += s;
            }
        }
        if (j->dx) {
            float *dxn = j->dx + n * L->C * j->H * j->W;
            float *dcols = pw ? dxn : cols;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)L->OC, 1.0f, L->weight,
                        (int)K, dyn, (int)P, 0.0f, dcols, (int)P);
            if (!pw) image_col2im(j, dxn, dcols);
        }
    }
}

static void chunk_bounds(const conv_job *j, int64_t t, int64_t *n0, int64_t *n1) {
    *n0 = j->N * t / j->chunks;
    *n1 = j->N * (t + 1) / j->chunks;
}

static void forward_chunks(void *ctx, int64_t begin, int64_t end) {
    const conv_job *j = ctx;
    for (int64_t t = begin; t < end; t++) {
        int64_t n0, n1;
        chunk_bounds(j, t, &n0, &n1);
        if (j->direct) {
            conv_direct_forward(&j->dg, j->L->wflip, j->L->has_bias ? j->L->bias : NULL, j->x, j->y, n0, n1,
                                j->L->scratch + (size_t)t * j->slice);
            continue;
        }
        conv2d_forward_images(j, n0, n1, j->L->scratch + (size_t)t * j->slice);
    }
}

// Backward slice layout: [cols K*P][dw OC*K][db OC]
static void backward_chunks(void *ctx, int64_t begin, int64_t end) {
    const conv_job *j = ctx;
    const ply_layer *L = j->L;
    int64_t K = L->C * L->KH * L->KW, P = j->OH * j->OW;
    for (int64_t t = begin; t < end; t++) {
        int64_t n0, n1;
        chunk_bounds(j, t, &n0, &n1);
        if (j->direct) {
            conv_direct_backward(&j->dg, L->wflip, j->x, j->dy, j->dx, n0, n1, L->scratch + (size_t)t * j->slice,
                                 L->has_bias);
            continue;
        }
        float *cols = L->scratch + (size_t)t * j->slice;
        float *dw = cols + K * P, *db = dw + L->OC * K;
        memset(dw, 0, (size_t)(L->OC * K + L->OC) * sizeof(float));
        conv2d_backward_images(j, n0, n1, cols, dw, L->has_bias ? db : NULL);
    }
}

// ----------------------------------------------------------------------------
// vtable

static ply_status grow_scratch(ply_layer *L, size_t floats) {
    if (floats <= L->scratch_floats) return PLY_OK;
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

static const ply_attr *find_attr(const ply_attrs *attrs, const char *name) {
    for (int32_t i = 0; attrs && i < attrs->count; i++)
        if (strcmp(attrs->items[i].name, name) == 0) return &attrs->items[i];
    return NULL;
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
    const ply_attr *pa = find_attr(attrs, "padding");
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
    const ply_attr *pm = find_attr(attrs, "padding_mode");
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
    else if (strcmp(algo_name, "direct") == 0) algo = ALGO_DIRECT;
    else
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "conv2d: algorithm must be \"auto\", \"im2col\" or \"direct\" (got \"%s\")", algo_name);
    if (algo == ALGO_DIRECT) {
        if (!conv_direct_cpu())
            return ply_errorf(host, PLY_ERR_UNSUPPORTED, "conv2d: algorithm \"direct\" needs a CPU with AVX-512");
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
    int64_t fan_in = C * k[0] * k[1], nw = OC * fan_in;
    size_t wbytes = (size_t)nw * sizeof(float), bbytes = (size_t)OC * sizeof(float);
    L->weight = host->alloc(host, wbytes);
    L->dweight = host->alloc(host, wbytes);
    L->wflip = host->alloc(host, wbytes);
    if (L->has_bias) {
        L->bias = host->alloc(host, bbytes);
        L->dbias = host->alloc(host, bbytes);
    }
    if (!L->weight || !L->dweight || !L->wflip || (L->has_bias && (!L->bias || !L->dbias))) {
        host->free(host, L->weight); host->free(host, L->dweight); host->free(host, L->wflip);
        host->free(host, L->bias); host->free(host, L->dbias);
        host->free(host, L);
        return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %lld weights", (long long)nw);
    }
    // kaiming_uniform(a=sqrt(5)) => U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias likewise
    float bound = (float)(1.0 / sqrt((double)fan_in));
    host->fill_uniform(host, L->weight, nw, -bound, bound);
    memset(L->dweight, 0, wbytes);
    if (L->has_bias) {
        host->fill_uniform(host, L->bias, OC, -bound, bound);
        memset(L->dbias, 0, bbytes);
    }
    *out = L;
    return PLY_OK;
}

static void conv_destroy(ply_layer *L) {
    if (!L) return;
    const ply_host *h = L->host;
    h->free(h, L->weight); h->free(h, L->dweight); h->free(h, L->wflip);
    h->free(h, L->bias); h->free(h, L->dbias);
    h->free(h, L->scratch);
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
    int64_t OH = (H + 2 * L->PH - L->KH) / L->SH + 1, OW = (W + 2 * L->PW - L->KW) / L->SW + 1;
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

// Fill the job for this call and pick the number of batch chunks.
static ply_status make_job(ply_layer *L, const ply_tensor *x, const ply_tensor *y, conv_job *j, int backward) {
    ply_status st;
    ply_shape os;
    if ((st = check_tensor(L, x, "input 0")) != PLY_OK) return st;
    if ((st = check_tensor(L, y, "output")) != PLY_OK) return st;
    if ((st = conv_infer_shape(L, 1, &x->shape, &os)) != PLY_OK) return st;
    memset(j, 0, sizeof *j);
    j->L = L;
    j->N = x->shape.dims[0]; j->H = x->shape.dims[2]; j->W = x->shape.dims[3];
    j->OH = os.dims[2]; j->OW = os.dims[3];
    j->x = x->data;
    int64_t K = L->C * L->KH * L->KW, P = j->OH * j->OW;
    int64_t threads = L->host->thread_count(L->host);
    j->direct = L->algorithm != ALGO_IM2COL && L->SH == 1 && L->SW == 1 && conv_direct_cpu() &&
                conv_direct_fits(L->C, L->OC, L->KH, L->KW, L->PH, L->PW);
    if (j->direct) {
        direct_geom g = {L->C, L->OC, L->KH, L->KW, L->PH, L->PW, j->H, j->W, j->OH, j->OW};
        j->dg = g;
        j->chunks = threads < j->N ? threads : j->N;
        if (j->chunks < 1) j->chunks = 1;
        j->slice = backward ? conv_direct_backward_floats(&g) : conv_direct_forward_floats(&g);
        return grow_scratch(L, j->slice * (size_t)j->chunks);
    }
    j->chunks = 1;
    int blas_single = openblas_get_num_threads() == 1 || L->OC * K * P <= CONV_SMALL_GEMM;
    if (threads > 1 && j->N > 1 && blas_single) j->chunks = threads < j->N ? threads : j->N;
    j->split_channels = j->chunks == 1 && threads > 1 && L->C > 1 && K * P >= CONV_SPLIT_COLS;
    j->slice = (size_t)(K * P + (backward ? L->OC * K + L->OC : 0));
    return grow_scratch(L, j->slice * (size_t)j->chunks);
}

static ply_status conv_forward(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    conv_job j;
    ply_status st = make_job(L, &inputs[0], output, &j, 0);
    if (st != PLY_OK) return st;
    j.y = output->data;
    if (j.direct) conv_direct_pack(&j.dg, L->weight, L->wflip);
    if (j.chunks > 1) L->host->parallel_for(L->host, j.chunks, 1, forward_chunks, &j);
    else forward_chunks(&j, 0, 1);
    return PLY_OK;
}

static ply_status conv_backward(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                                const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    conv_job j;
    ply_status st = make_job(L, &inputs[0], output, &j, 1);
    if (st != PLY_OK) return st;
    if ((st = check_tensor(L, grad_output, "grad_output")) != PLY_OK) return st;
    j.dy = grad_output->data;
    j.dx = grad_inputs[0].data;
    if (j.direct) {
        if (j.dx) conv_direct_flip(&j.dg, L->weight, L->wflip);
        if (j.chunks > 1) L->host->parallel_for(L->host, j.chunks, 1, backward_chunks, &j);
        else backward_chunks(&j, 0, 1);
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
    if (j.chunks > 1) L->host->parallel_for(L->host, j.chunks, 1, backward_chunks, &j);
    else backward_chunks(&j, 0, 1);
    // reduce the per-chunk partial sums into the parameter gradients
    int64_t K = L->C * L->KH * L->KW;
    for (int64_t t = 0; t < j.chunks; t++) {
        const float *dw = L->scratch + (size_t)t * j.slice + K * j.OH * j.OW, *db = dw + L->OC * K;
        for (int64_t i = 0; i < L->OC * K; i++) L->dweight[i] += dw[i];
        if (L->has_bias)
            for (int64_t o = 0; o < L->OC; o++) L->dbias[o] += db[o];
    }
    return PLY_OK;
}

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

static const ply_layer_type conv2d_type = {
    sizeof(ply_layer_type), PLY_ABI_VERSION, "conv2d",
    "2-d convolution (direct AVX-512 or im2col + sgemm); attrs in_channels, out_channels, kernel_size, stride, padding, bias, algorithm", 1, 1,
    conv_create, conv_destroy, conv_infer_shape, conv_forward, conv_backward, conv_param_count, conv_get_param, NULL,
};

static const ply_layer_type *const types[] = {&conv2d_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.conv", "1.0.0", 1, 0, types,
};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "ply.conv: built for ABI major 1, host has another major version");
        return NULL;
    }
    return &plugin;
}
