/*
 * Linear family: linear (PyTorch's nn.Linear). Input [*, in_features] ->
 * output [*, out_features]; every leading dimension is a batch dimension.
 *   y  = x W^T + b          x: [M, in], W: [out, in], y: [M, out]
 *   dx = dy W               dW += dy^T x               db += colsum(dy)
 * Large products are single OpenBLAS sgemm calls (OpenBLAS threads them);
 * a forward of 1 to 8 input rows (inference at small batches) streams the
 * weights once through linear_gemv.c's kernels (AVX-512 or AVX2; OpenBLAS
 * below AVX2), and 9 to 32 rows through linear_rows.c's (AVX-512 or AVX2;
 * OpenBLAS below), output features split over the host's threads.
 * Small ones (the ConvNet's 784 -> 10 head: a few million multiply-adds) run
 * on plain vectorised loops split over the host's threads: an sgemm call that
 * small costs more in OpenBLAS's dispatch, and its worker threads would then
 * spin (sched_yield) against the host's pool for the rest of the step.
 */
#include "plugin_support.h"

#include "linear_gemv.h"
#include "linear_rows.h"
#include "plugin_blas.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"

struct ply_layer {
    const ply_host *host;
    int64_t in, out;
    int has_bias;
    float *weight, *dweight; // [out, in]
    float *bias, *dbias;     // [out], NULL when bias=false
    float *xpack;            // linear_rows' packed input (xpack_floats floats; grows, kept until destroy)
    size_t xpack_floats;
};

// ----------------------------------------------------------------------------
// kernels (sizes are IN/OUT, not I/O: cblas.h pulls in <complex.h>, whose I is a macro)

// Whether the forward of M input rows takes linear_gemv (a kernel that streams the weights once).
static int use_gemv(int64_t M) {
#if PLY_HAVE_X86_TARGETS
    return M >= 1 && M <= LINEAR_GEMV_MAX_ROWS && ply_cpu_level() >= PLY_CPU_AVX2;
#else
    (void)M;
    return 0;
#endif
}

// Whether the forward of M input rows takes linear_rows (9 to 32 rows: the weights streamed once
// against the packed input). OpenBLAS's sgemm, which these took before, packs the weights on
// every call: VGG-16's fc6 at 16 rows, one thread, thread CPU ms per call with the weights cold
// (Benchmarks/linear_kernel.c, loaded machine): linear_rows 39.8, sgemm 180, two passes of
// linear_gemv 101; AlexNet's fc6 14.6 / 67.1 / 32.8; at 32 rows 19.2 / 116 / 71. Its AVX2 path
// (PLY_CPU=avx2, same harness): AlexNet's fc6 17.1 against sgemm's 62-65, at 32 rows 37.9 / 102-105.
static int use_rows(int64_t M) {
#if PLY_HAVE_X86_TARGETS
    return M > LINEAR_GEMV_MAX_ROWS && M <= LINEAR_ROWS_MAX_ROWS && ply_cpu_level() >= PLY_CPU_AVX2;
#else
    (void)M;
    return 0;
#endif
}

// y[M, o0:o1] = x[M, IN] * w[o0:o1, IN]^T + b[o0:o1]: up to 8 rows stream the weights (linear_gemv.c,
// AVX2 and up), else sgemv for one row (sgemm with M = 1 reads them at half the speed) and sgemm.
// y rows are OUT floats apart.
static void linear_forward(float *y, const float *x, const float *w, const float *b, int64_t M, int64_t IN,
                           int64_t OUT, int64_t o0, int64_t o1) {
#if PLY_HAVE_X86_TARGETS
    if (use_gemv(M)) {
        linear_gemv(y, x, w, b, M, IN, OUT, o0, o1);
        return;
    }
#endif
    float beta = 0.0f;
    if (b) {
        for (int64_t m = 0; m < M; m++) memcpy(y + m * OUT + o0, b + o0, (size_t)(o1 - o0) * sizeof(float));
        beta = 1.0f;
    }
    if (M == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(o1 - o0), (int)IN, 1.0f, w + o0 * IN, (int)IN, x, 1, beta,
                    y + o0, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)(o1 - o0), (int)IN, 1.0f, x, (int)IN,
                    w + o0 * IN, (int)IN, beta, y + o0, (int)OUT);
}

// dx[M, i0:i1] = dy[M, OUT] * w[OUT, i0:i1]; dx rows are IN floats apart.
static void linear_backward_dx(float *dx, const float *dy, const float *w, int64_t M, int64_t IN, int64_t OUT,
                               int64_t i0, int64_t i1) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)(i1 - i0), (int)OUT, 1.0f, dy, (int)OUT,
                w + i0, (int)IN, 0.0f, dx + i0, (int)IN);
}

// dw[o0:o1, IN] += dy[M, o0:o1]^T x[M, IN]; db[o0:o1] += sum_m dy[m, o0:o1] (if db)
static void linear_backward_dw(float *dw, float *db, const float *dy, const float *x, int64_t M, int64_t IN,
                               int64_t OUT, int64_t o0, int64_t o1) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(o1 - o0), (int)IN, (int)M, 1.0f, dy + o0, (int)OUT, x,
                (int)IN, 1.0f, dw + o0 * IN, (int)IN);
    if (db)
        for (int64_t m = 0; m < M; m++)
            for (int64_t o = o0; o < o1; o++) db[o] += dy[m * OUT + o];
}

// ----------------------------------------------------------------------------
// large products: each host thread calls (single-threaded) OpenBLAS on a slice

typedef struct {
    int64_t M, IN, OUT;
    float *y, *dx, *dw, *db;
    const float *x, *w, *b, *dy;
    const float *xpack; // linear_rows' packed x, or NULL
} blas_job;

// output features [o0, o1) of y
static void blas_forward_slice(void *ctx, int64_t o0, int64_t o1) {
    const blas_job *j = ctx;
#if PLY_HAVE_X86_TARGETS
    if (j->xpack) {
        linear_rows(j->y, j->xpack, j->w, j->b, j->M, j->IN, j->OUT, o0, o1);
        return;
    }
#endif
    linear_forward(j->y, j->x, j->w, j->b, j->M, j->IN, j->OUT, o0, o1);
}

// input features [i0, i1) of dx
static void blas_dx_slice(void *ctx, int64_t i0, int64_t i1) {
    const blas_job *j = ctx;
    linear_backward_dx(j->dx, j->dy, j->w, j->M, j->IN, j->OUT, i0, i1);
}

// weight rows [o0, o1) of dw and db
static void blas_dw_slice(void *ctx, int64_t o0, int64_t o1) {
    const blas_job *j = ctx;
    linear_backward_dw(j->dw, j->db, j->dy, j->x, j->M, j->IN, j->OUT, o0, o1);
}

// Weights of at least this many bytes (past the 2 MiB L2, read from L3 or memory on every forward,
// and holding at least one whole 2 MiB page) are advised huge pages: ResNet's classifiers (8.2 MB)
// and AlexNet's and VGG-16's (16-411 MB); GoogLeNet's (4.1 MB, 3.9 MiB) stays on small pages.
#define LINEAR_HUGE_PAGES_MIN_BYTES ((size_t)4 << 20)

// Fewer multiply-adds than this and one thread does it all: waking another costs more (the
// ConvNet's classifier at batch 1, 7,840, made a 2-thread training step slower than a 1-thread one).
#define SPLIT_MIN_WORK (1 << 17)

// Run fn over [0, n) (`work` multiply-adds in all) in one slice per host thread (slices are
// multiples of 16), or in one call when the work is small or OpenBLAS threads each product itself.
static void blas_split(const ply_host *h, int64_t n, int64_t work, ply_parallel_fn fn, void *ctx) {
    int64_t threads = ply_blas_threads() > 1 ? 1 : h->thread_count(h);
    int64_t grain = (n + threads - 1) / threads;
    grain = (grain + 15) / 16 * 16;
    if (threads <= 1 || grain >= n || work < SPLIT_MIN_WORK) { fn(ctx, 0, n); return; }
    h->parallel_for(h, n, grain, fn, ctx);
}

// The gemv forward over output features [0, n) on the host's threads (it calls no BLAS, so
// OpenBLAS's own threads do not matter), slices in whole cache lines of y (16 floats).
static void gemv_split(const ply_host *h, int64_t n, int64_t work, void *ctx) {
    int64_t threads = h->thread_count(h);
    int64_t grain = ply_round_up_i64((n + threads - 1) / threads, 16);
    if (threads <= 1 || grain >= n || work < SPLIT_MIN_WORK) { blas_forward_slice(ctx, 0, n); return; }
    h->parallel_for(h, n, grain, blas_forward_slice, ctx);
}

// ----------------------------------------------------------------------------
// small products on the host's threads

// At most this many multiply-adds (M*IN*OUT) per product take the small path.
#define LINEAR_SMALL (1 << 24)

typedef struct {
    int64_t M, IN, OUT;
    float *y, *dx, *dw;
    const float *x, *w, *b, *dy;
} small_job;

// Eight float lanes (GCC/Clang vector extension: one AVX register in the AVX2 copies, two SSE or
// NEON registers in the baseline ones).
typedef float v8f __attribute__((vector_size(32), aligned(4)));

// The small path's kernels, each compiled for the baseline and for AVX2 + FMA (PLY_AVX2_CLONE):
// -march=x86-64-v3 used to give them AVX2 and FMA, and built for SSE2 only they took 30-45% more
// CPU in the ConvNet's training step (batch 128, 2 threads, cpu-clock samples summed over two
// profiles each: small_forward 460 -> 669, small_dx_rows 629 -> 820, small_dw_cols 750 -> 1066).
#define KERNEL static inline __attribute__((always_inline))

// dot products of x rows [m0, m1) with weight rows [o0, o1): y = x w^T + b
KERNEL void small_forward_body(const small_job *j, int64_t m0, int64_t m1, int64_t o0, int64_t o1) {
    int64_t IN = j->IN, OUT = j->OUT, body = IN - IN % 16;
    for (int64_t m = m0; m < m1; m++) {
        const float *xm = j->x + m * IN;
        for (int64_t o = o0; o < o1; o++) {
            const float *wo = j->w + o * IN;
            v8f a0 = {0}, a1 = {0};
            for (int64_t i = 0; i < body; i += 16) {
                a0 += *(const v8f *)(xm + i) * *(const v8f *)(wo + i);
                a1 += *(const v8f *)(xm + i + 8) * *(const v8f *)(wo + i + 8);
            }
            a0 += a1;
            float s = 0.0f;
            for (int k = 0; k < 8; k++) s += a0[k];
            for (int64_t i = body; i < IN; i++) s += xm[i] * wo[i];
            j->y[m * OUT + o] = (j->b ? j->b[o] : 0.0f) + s;
        }
    }
}

PLY_AVX2_CLONE(small_forward, (const small_job *j, int64_t m0, int64_t m1, int64_t o0, int64_t o1), (j, m0, m1, o0, o1))

// x rows [m0, m1) against every weight row
static void small_forward_rows(void *ctx, int64_t m0, int64_t m1) {
    const small_job *j = ctx;
    small_forward(j, m0, m1, 0, j->OUT);
}

// every x row against weight rows [o0, o1) (fewer rows than threads: batch 1)
static void small_forward_outs(void *ctx, int64_t o0, int64_t o1) {
    const small_job *j = ctx;
    small_forward(j, 0, j->M, o0, o1);
}

// dx rows [m0, m1) = dy w
KERNEL void small_dx_rows_body(void *ctx, int64_t m0, int64_t m1) {
    const small_job *j = ctx;
    int64_t IN = j->IN, OUT = j->OUT;
    for (int64_t m = m0; m < m1; m++) {
        float *dxm = j->dx + m * IN;
        const float *dym = j->dy + m * OUT;
        for (int64_t i = 0; i < IN; i++) dxm[i] = 0.0f;
        for (int64_t o = 0; o < OUT; o++) {
            float g = dym[o];
            const float *wo = j->w + o * IN;
            for (int64_t i = 0; i < IN; i++) dxm[i] += g * wo[i];
        }
    }
}
PLY_AVX2_CLONE(small_dx_rows, (void *ctx, int64_t m0, int64_t m1), (ctx, m0, m1))

// dw columns [i0, i1) += dy^T x
KERNEL void small_dw_cols_body(void *ctx, int64_t i0, int64_t i1) {
    const small_job *j = ctx;
    int64_t IN = j->IN, OUT = j->OUT;
    for (int64_t o = 0; o < OUT; o++) {
        float *dwo = j->dw + o * IN;
        for (int64_t m = 0; m < j->M; m++) {
            float g = j->dy[m * OUT + o];
            const float *xm = j->x + m * IN;
            for (int64_t i = i0; i < i1; i++) dwo[i] += g * xm[i];
        }
    }
}
PLY_AVX2_CLONE(small_dw_cols, (void *ctx, int64_t i0, int64_t i1), (ctx, i0, i1))

// dw += dy^T x over the 16-column groups [l0, l1)
static void small_dw_lines(void *ctx, int64_t l0, int64_t l1) {
    const small_job *j = ctx;
    int64_t i1 = l1 * 16 < j->IN ? l1 * 16 : j->IN;
    small_dw_cols(ctx, l0 * 16, i1);
}

// Run fn over [0, n) on the host's threads when the work is worth splitting.
static void split(const ply_host *h, int64_t n, int64_t work, ply_parallel_fn fn, void *ctx) {
    int64_t threads = h->thread_count(h);
    if (threads <= 1 || work < SPLIT_MIN_WORK || n < 2) { fn(ctx, 0, n); return; }
    h->parallel_for(h, n, (n + threads - 1) / threads, fn, ctx);
}

// A few rows stream the weights once (use_gemv; below AVX2 sgemv / sgemm read them at memory speed,
// the dot products below at a fifth of it: AlexNet's fc8 at batch 1).
static int is_small(int64_t M, int64_t IN, int64_t OUT) { return M > 2 && M * IN * OUT <= LINEAR_SMALL; }

// ----------------------------------------------------------------------------
// vtable

static ply_status positive_attr(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t *out) {
    ply_status st = host->attr_int(host, attrs, name, out);
    if (st == PLY_ERR_NOT_FOUND) return ply_errorf(host, PLY_ERR_NOT_FOUND, "linear: missing attribute '%s'", name);
    if (st != PLY_OK) return st;
    if (*out <= 0 || *out > INT32_MAX)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "linear: %s must be in 1..%d (got %lld)", name, INT32_MAX,
                          (long long)*out);
    return PLY_OK;
}

static ply_status linear_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t in, outf;
    int32_t bias = 1;
    ply_status st;
    if ((st = positive_attr(host, attrs, "in_features", &in)) != PLY_OK) return st;
    if ((st = positive_attr(host, attrs, "out_features", &outf)) != PLY_OK) return st;
    st = host->attr_bool(host, attrs, "bias", &bias);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;

    ply_layer *L = host->alloc(host, sizeof *L);
    if (!L) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "linear: out of memory");
    memset(L, 0, sizeof *L);
    L->host = host;
    L->in = in; L->out = outf;
    L->has_bias = bias != 0;
    size_t wbytes = (size_t)(in * outf) * sizeof(float), bbytes = (size_t)outf * sizeof(float);
    L->weight = host->alloc(host, wbytes);
    // gradients zeroed by the host without a write: a model that never trains never touches them
    L->dweight = ply_alloc_zeroed(host, wbytes);
    if (L->has_bias) {
        L->bias = host->alloc(host, bbytes);
        L->dbias = ply_alloc_zeroed(host, bbytes);
    }
    if (!L->weight || !L->dweight || (L->has_bias && (!L->bias || !L->dbias))) {
        host->free(host, L->weight); host->free(host, L->dweight);
        host->free(host, L->bias); host->free(host, L->dbias);
        host->free(host, L);
        return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "linear: cannot allocate %lld weights", (long long)(in * outf));
    }
    // Before the first write: the batch-1 forward streams the weights from memory every call
    // (AlexNet's fc6 151 MB), where 4 KiB pages cost a TLB miss each (plugin_support.h).
    if (wbytes >= LINEAR_HUGE_PAGES_MIN_BYTES) ply_advise_huge_pages(L->weight, wbytes);
    // kaiming_uniform(a=sqrt(5)) => U(-1/sqrt(in), 1/sqrt(in)), bias likewise
    float bound = (float)(1.0 / sqrt((double)in));
    host->fill_uniform(host, L->weight, in * outf, -bound, bound);
    if (L->has_bias) host->fill_uniform(host, L->bias, outf, -bound, bound);
    *out = L;
    return PLY_OK;
}

static void linear_destroy(ply_layer *L) {
    if (!L) return;
    const ply_host *h = L->host;
    h->free(h, L->weight); h->free(h, L->dweight);
    h->free(h, L->bias); h->free(h, L->dbias);
    h->free(h, L->xpack);
    h->free(h, L);
}

static ply_status linear_infer_shape(ply_layer *L, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    const ply_shape *s = &inputs[0];
    if (s->ndim < 1)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "linear: input 0 must have at least 1 dim [*, in_features] (got 0)");
    if (s->dims[s->ndim - 1] != L->in)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "linear: input 0 dim %d (last) is %lld, expected in_features=%lld",
                          s->ndim - 1, (long long)s->dims[s->ndim - 1], (long long)L->in);
    if (ply_shape_numel(s) / L->in > INT32_MAX)
        return ply_errorf(L->host, PLY_ERR_SHAPE, "linear: input 0 has too many rows for 32-bit BLAS indices");
    *output = *s;
    output->dims[s->ndim - 1] = L->out;
    return PLY_OK;
}

static ply_status check_input(ply_layer *L, const ply_tensor *t, int64_t *M) {
    ply_shape os;
    if (t->strides || t->dtype != PLY_DTYPE_F32)
        return ply_errorf(L->host, PLY_ERR_UNSUPPORTED, "linear: input 0 must be a compact float32 tensor");
    ply_status st = linear_infer_shape(L, 1, &t->shape, &os);
    if (st != PLY_OK) return st;
    *M = ply_shape_numel(&t->shape) / L->in;
    return PLY_OK;
}

static ply_status linear_fwd(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    int64_t M = 0;
    ply_status st = check_input(L, &inputs[0], &M);
    if (st != PLY_OK) return st;
    if (use_gemv(M)) {
        blas_job j = {M, L->in, L->out, output->data, NULL, NULL, NULL, inputs[0].data, L->weight, L->bias, NULL, NULL};
        gemv_split(L->host, L->out, M * L->in * L->out, &j);
#if PLY_HAVE_X86_TARGETS
    } else if (use_rows(M) && !is_small(M, L->in, L->out)) {
        size_t floats = linear_rows_pack_floats(M, L->in);
        if (floats > L->xpack_floats) {
            L->host->free(L->host, L->xpack);
            L->xpack = L->host->alloc(L->host, floats * sizeof(float));
            L->xpack_floats = L->xpack ? floats : 0;
            if (!L->xpack)
                return ply_errorf(L->host, PLY_ERR_OUT_OF_MEMORY, "linear: cannot allocate %zu bytes for the packed input",
                                  floats * sizeof(float));
        }
        linear_rows_pack(inputs[0].data, M, L->in, L->xpack);
        blas_job j = {M, L->in, L->out, output->data, NULL, NULL, NULL, inputs[0].data, L->weight, L->bias, NULL,
                      L->xpack};
        gemv_split(L->host, L->out, M * L->in * L->out, &j);
#endif
    } else if (M > 0 && is_small(M, L->in, L->out)) {
        small_job j = {M, L->in, L->out, output->data, NULL, NULL, inputs[0].data, L->weight, L->bias, NULL};
        if (M >= L->host->thread_count(L->host)) split(L->host, M, M * L->in * L->out, small_forward_rows, &j);
        else split(L->host, L->out, M * L->in * L->out, small_forward_outs, &j);
    } else if (M > 0) {
        blas_job j = {M, L->in, L->out, output->data, NULL, NULL, NULL, inputs[0].data, L->weight, L->bias, NULL, NULL};
        blas_split(L->host, L->out, M * L->in * L->out, blas_forward_slice, &j);
    }
    return PLY_OK;
}

static ply_status linear_bwd(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                             const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs; (void)output;
    int64_t M = 0;
    ply_status st = check_input(L, &inputs[0], &M);
    if (st != PLY_OK) return st;
    if (grad_output->strides)
        return ply_errorf(L->host, PLY_ERR_UNSUPPORTED, "linear: grad_output must be a compact float32 tensor");
    if (M > 0 && is_small(M, L->in, L->out)) {
        small_job j = {M, L->in, L->out, NULL, grad_inputs[0].data, L->dweight, inputs[0].data, L->weight, NULL,
                       grad_output->data};
        if (j.dx) split(L->host, M, M * L->in * L->out, small_dx_rows, &j);
        // columns in whole cache lines so that no two threads write one
        int64_t lines = (L->in + 15) / 16;
        split(L->host, lines, M * L->in * L->out, small_dw_lines, &j);
        if (L->dbias)
            for (int64_t m = 0; m < M; m++)
                for (int64_t o = 0; o < L->out; o++) L->dbias[o] += ((const float *)grad_output->data)[m * L->out + o];
    } else if (M > 0) {
        blas_job j = {M, L->in, L->out, NULL, grad_inputs[0].data, L->dweight, L->dbias, inputs[0].data, L->weight,
                      NULL, grad_output->data, NULL};
        if (j.dx) blas_split(L->host, L->in, M * L->in * L->out, blas_dx_slice, &j);
        blas_split(L->host, L->out, M * L->in * L->out, blas_dw_slice, &j);
    }
    return PLY_OK;
}

static int32_t linear_param_count(ply_layer *L) { return L->has_bias ? 2 : 1; }

static ply_status linear_get_param(ply_layer *L, int32_t index, ply_param *out) {
    if (index == 0) {
        *out = ply_param_make("weight", L->weight, L->dweight, ply_shape_make(2, L->out, L->in, 0, 0));
        return PLY_OK;
    }
    if (index == 1 && L->has_bias) {
        *out = ply_param_make("bias", L->bias, L->dbias, ply_shape_make(1, L->out, 0, 0, 0));
        return PLY_OK;
    }
    return ply_errorf(L->host, PLY_ERR_NOT_FOUND, "linear: no parameter %d (it has %d)", index,
                      linear_param_count(L));
}

// ----------------------------------------------------------------------------
// self-description (ABI 1.2)

static const ply_attr_spec linear_specs[] = {
    {.name = "in_features", .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED, .doc = "size of the input's last axis"},
    {.name = "out_features", .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED, .doc = "size of the output's last axis"},
    {.name = "bias", .kind = PLY_ATTR_BOOL, .default_text = "true", .doc = "learn an additive bias"},
    PLY_SPEC_END,
};

// MACs: output elements x in_features; window: global (every output sees the whole last feature map).
static ply_status linear_describe(ply_layer *L, int32_t n_inputs, const ply_shape *inputs, ply_layer_info *info) {
    ply_shape out;
    ply_status st = linear_infer_shape(L, n_inputs, inputs, &out);
    if (st != PLY_OK) return st;
    ply_info_set_macs(info, ply_count_mul(ply_shape_numel(&out), L->in));
    ply_info_set_global(info);
    return PLY_OK;
}

static const ply_layer_type linear_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "linear",
    .doc = "fully connected y = x W^T + b over the last dim; attrs in_features, out_features, bias",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = linear_create,
    .destroy = linear_destroy,
    .infer_shape = linear_infer_shape,
    .forward = linear_fwd,
    .backward = linear_bwd,
    .param_count = linear_param_count,
    .get_param = linear_get_param,
    .attr_specs = linear_specs,
    .inputs_doc = "x: (*, in_features), e.g. (N, in_features)",
    .describe = linear_describe,
};

static const ply_layer_type *const types[] = {&linear_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.linear", "1.0.0", 1, 0, types,
};

PLY_BUILTIN_ENTRY(linear) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "ply.linear: built for ABI major 1, host has another major version");
        return NULL;
    }
    return &plugin;
}
