/*
 * conv2d as GEMM over the whole batch (see conv_gemm.h for the plans).
 */
#include "plugin_support.h"

#include "conv_gemm.h"
#include "conv_gemm_cols.h"

#include "plugin_blas.h"

#include "conv_kernel.h"
#include "conv_kernel_avx2.h"
#include <string.h>

// Forward: fewer columns per thread than this and the threads split the rows.
#define ROWS_FORWARD_COLS 192

static int64_t gemm_cols(const conv_geom *g) { return g->N * gemm_p(g); }

static int is_pointwise(const conv_geom *g) {
    return g->KH == 1 && g->KW == 1 && g->SH == 1 && g->SW == 1 && g->PH == 0 && g->PW == 0;
}

// Columns per tile: about TILE_FLOATS of im2col, a multiple of 16.
static int64_t tile_width(const conv_geom *g) {
    int64_t t = TILE_FLOATS / gemm_k(g);
    t = ply_max_i64(TILE_MIN, ply_min_i64(TILE_MAX, t));
    return t - t % CONV_KERNEL_NR;
}

static int64_t round_nr(int64_t n) { return ply_round_up_i64(n, CONV_KERNEL_NR); }
// ----------------------------------------------------------------------------
// forward

typedef struct {
    const conv_geom *g;
    const float *w, *bias, *x;
    float *y, *scratch;
    int64_t parts;
    int relu;
    int kernel;   // conv_kernel_gemm (at AVX2 conv_kernel_avx2.c's, kernel_gemm) instead of OpenBLAS
    size_t slice; // floats of scratch per thread ("columns" plan)
    int64_t units;     // "columns" with the kernel: the columns in `units` runs, claimed (ply_claim)
    ply_claims claims;
} fwd_job;

// The fused relu, as the built-in one: max(v, 0), NaN passed through. Written as one compare
// (v <= 0 is false for NaN) on a row pointer so that it vectorises: the form with `v > 0 || v != v`
// stayed a scalar loop with branches, 5% of AlexNet's features at batch 1 (perf, 1 thread).
static void relu_rows(float *y, int64_t ld, int64_t rows, int64_t len) {
    for (int64_t r = 0; r < rows; r++) {
        float *row = y + r * ld;
        for (int64_t i = 0; i < len; i++) {
            float v = row[i];
            row[i] = v <= 0.0f ? 0.0f : v;
        }
    }
}

// Floats of a thread's weight packing for the kernel path: conv_kernel.c's blocks at AVX-512, all the weights in
// conv_kernel_avx2.h's blocks of rows below it.
static size_t pack_floats(const conv_geom *g) {
    return ply_cpu_level() >= PLY_CPU_AVX512 ? conv_kernel_pack_floats(g->OC)
                                             : conv_kernel_avx2_packed_floats(g->OC, gemm_k(g));
}

// conv_kernel_gemm's product at the job's level: at AVX2 conv_kernel_avx2.c's over the same strips, rows [o0, o1)
// of the weights packed into apack first (OC x K per call: a pass over the weights the product reads anyway).
// Not OpenBLAS: its sums depend on the call's shape (sgemm's small-matrix kernels), so a layer's output
// changed with the threads that split its columns or rows (the stem, 3->64 7x7 at 32x32, 2677 of 16384
// floats between 1 and 2 threads), and the batch lanes (Sources/Ply/Runtime/BatchLanes.swift) no longer gave
// their groups' floats. The AVX2 kernel's sums run over k in order whatever the split.
static void kernel_gemm(const fwd_job *j, int64_t K, int64_t o0, int64_t o1, const float *cols, int64_t ncols,
                        float *out, int64_t ldc, float *apack) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) {
        conv_kernel_gemm(j->w, K, o0, o1, j->bias, cols, ncols, out, ldc, apack);
        return;
    }
    conv_kernel_avx2_pack(j->w + o0 * K, o1 - o0, K, apack);
    conv_kernel_gemm_avx2(apack, K, 0, o1 - o0, j->bias ? j->bias + o0 : NULL, cols, ncols, out, ldc);
}

// "columns": thread t computes the columns of its share, tile by tile. With the kernel, whose sums
// for a column do not depend on the columns around it, the share is COLUMN_RUNS_PER_THREAD runs
// claimed (ply_claim: its own first, then what the other threads have not started), so that a
// thread slowed by its core's neighbours leaves its last runs to the other instead of the region
// waiting for it (GoogLeNet's stem at batch 1, 2 threads, PLY_REGION_TRACE on the shared AMD VM: the
// later chunk took 2.7 ms against the caller's 3.9 on most forwards).
#define COLUMN_RUNS_PER_THREAD 4

// Columns [b, e) of the "columns" plan, tile by tile, in thread t's scratch.
static void columns_range(const fwd_job *j, int64_t t, int64_t b, int64_t e) {
    const conv_geom *g = j->g;
    const int64_t K = gemm_k(g), P = gemm_p(g), OC = g->OC, tile = tile_width(g);
    float *cols = j->scratch + (size_t)t * j->slice, *tmp = cols + K * tile;
    for (int64_t c = b; c < e;) {
        int64_t ce = conv_gemm_tile_end(g, c, e, tile), T = ce - c, n = c / P, p = c % P;
        int one_image = (ce - 1) / P == n;
        if (j->kernel) {
            conv_gemm_pack_strips(cols, j->x, g, c, ce, 0, g->C);
            float *out = one_image ? j->y + n * g->YC * P + p : tmp;
            int64_t ldc = one_image ? P : T;
            kernel_gemm(j, K, 0, OC, cols, T, out, ldc, tmp + OC * tile);
            if (one_image && j->relu) relu_rows(out, P, OC, T);
            if (!one_image) conv_gemm_scatter_out(j->y, tmp, T, NULL, j->relu, g, c, ce, 0, OC);
            c = ce;
            continue;
        }
        const float *B = cols;
        int64_t ldb = T;
        if (one_image && is_pointwise(g)) {
            B = j->x + n * g->XC * P + p;
            ldb = P;
        } else {
            conv_gemm_im2col(cols, T, j->x, g, c, ce, 0, g->C);
        }
        if (one_image) {
            float *out = j->y + n * g->YC * P + p, beta = 0.0f;
            if (j->bias) {
                for (int64_t o = 0; o < OC; o++)
                    for (int64_t i = 0; i < T; i++) out[o * P + i] = j->bias[o];
                beta = 1.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)OC, (int)T, (int)K, 1.0f, j->w, (int)K, B,
                        (int)ldb, beta, out, (int)P);
            if (j->relu) relu_rows(out, P, OC, T);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)OC, (int)T, (int)K, 1.0f, j->w, (int)K, B,
                        (int)ldb, 0.0f, tmp, (int)T);
            conv_gemm_scatter_out(j->y, tmp, T, j->bias, j->relu, g, c, ce, 0, OC);
        }
        c = ce;
    }
}

static void forward_columns(void *ctx, int64_t t0, int64_t t1) {
    fwd_job *j = ctx;
    for (int64_t t = t0; t < t1; t++) {
        int64_t b, e;
        if (j->units == 0) {
            ply_share(gemm_cols(j->g), j->parts, t, &b, &e);
            columns_range(j, t, b, e);
            continue;
        }
        for (int64_t u; (u = ply_claim(&j->claims, j->parts, t, j->units)) < j->units;) {
            ply_share(gemm_cols(j->g), j->units, u, &b, &e);
            columns_range(j, t, b, e);
        }
    }
}

// "rows", step 1: im2col of every column for the thread's channels.
// scratch: [cols K*NC (NC rounded up to strips)][tmp OC*NC][weight packing, one per thread]
static void forward_rows_im2col(void *ctx, int64_t t0, int64_t t1) {
    const fwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t NC = gemm_cols(g), KK = g->KH * g->KW;
    for (int64_t t = t0; t < t1; t++) {
        int64_t c0, c1;
        ply_share(g->C, j->parts, t, &c0, &c1);
        if (c0 >= c1) continue;
        if (j->kernel) conv_gemm_pack_strips(j->scratch, j->x, g, 0, NC, c0, c1);
        else conv_gemm_im2col(j->scratch + c0 * KK * NC, NC, j->x, g, 0, NC, c0, c1);
    }
}

// "rows", step 2: the thread's output channels.
static void forward_rows_gemm(void *ctx, int64_t t0, int64_t t1) {
    const fwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t NC = gemm_cols(g), K = gemm_k(g);
    const float *cols = j->scratch;
    float *tmp = j->scratch + K * round_nr(NC);
    // (OpenBLAS reads cols as K x NC; the kernel as strips, K x round_nr(NC) in all)
    for (int64_t t = t0; t < t1; t++) {
        int64_t o0, o1;
        ply_share(g->OC, j->parts, t, &o0, &o1);
        if (o0 >= o1) continue;
        if (j->kernel) {
            float *apack = tmp + g->OC * NC + (size_t)t * pack_floats(g);
            if (g->N == 1) {
                kernel_gemm(j, K, o0, o1, cols, NC, j->y + o0 * NC, NC, apack);
                if (j->relu) relu_rows(j->y + o0 * NC, NC, o1 - o0, NC);
            } else {
                kernel_gemm(j, K, o0, o1, cols, NC, tmp + o0 * NC, NC, apack);
                conv_gemm_scatter_out(j->y, tmp + o0 * NC, NC, NULL, j->relu, g, 0, NC, o0, o1);
            }
            continue;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(o1 - o0), (int)NC, (int)K, 1.0f, j->w + o0 * K,
                    (int)K, cols, (int)NC, 0.0f, tmp + o0 * NC, (int)NC);
        conv_gemm_scatter_out(j->y, tmp + o0 * NC, NC, j->bias, j->relu, g, 0, NC, o0, o1);
    }
}

static int forward_uses_rows(const conv_geom *g, int64_t threads) {
    return threads > 1 && gemm_cols(g) < ROWS_FORWARD_COLS * threads && g->OC >= 16 * threads;
}

size_t conv_gemm_forward_floats(const conv_geom *g, int64_t threads) {
    const int64_t K = gemm_k(g), NC = gemm_cols(g);
    size_t pack = pack_floats(g);
    if (forward_uses_rows(g, threads)) return (size_t)(K * round_nr(NC) + g->OC * NC) + pack * (size_t)threads;
    return ((size_t)((K + g->OC) * tile_width(g)) + pack) * (size_t)ply_max_i64(threads, 1);
}

void conv_gemm_forward(const ply_host *host, int64_t threads, int kernel, const conv_geom *g, const float *w,
                       const float *bias, int relu, const float *x, float *y, float *scratch) {
    threads = ply_max_i64(threads, 1);
    fwd_job j = {g, w, bias, x, y, scratch, threads, relu, kernel && ply_cpu_level() >= PLY_CPU_AVX2,
                 (size_t)((gemm_k(g) + g->OC) * tile_width(g)) + pack_floats(g)};
    if (forward_uses_rows(g, threads)) {
        host->parallel_for(host, threads, 1, forward_rows_im2col, &j);
        host->parallel_for(host, threads, 1, forward_rows_gemm, &j);
        return;
    }
    // fewer parts when the columns are few: no thread gets less than a minimal tile
    j.parts = ply_max_i64(1, ply_min_i64(threads, gemm_cols(g) / TILE_MIN));
    if (j.parts > 1 && j.kernel) j.units = ply_min_i64(j.parts * COLUMN_RUNS_PER_THREAD, gemm_cols(g) / TILE_MIN);
    if (j.parts > 1) host->parallel_for(host, j.parts, 1, forward_columns, &j);
    else forward_columns(&j, 0, 1);
}

// ----------------------------------------------------------------------------
// backward

typedef struct {
    const conv_geom *g;
    const float *w, *x, *dy;
    float *dx, *dw, *db, *scratch;
    int64_t parts;
    size_t slice; // floats of scratch per thread ("images" plan)
    void (*product)(int, int, int64_t, int64_t, int64_t, const float *, int64_t, const float *, int64_t, float *,
                    int64_t, int); // conv_kernel_product or conv_blas_product
} bwd_job;

// "rows" scratch: [cols K*NC][dY OC*NC]

// step 1: im2col of the thread's channels and the gathered dY of its output channels.
static void backward_rows_gather(void *ctx, int64_t t0, int64_t t1) {
    const bwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t NC = gemm_cols(g), K = gemm_k(g), KK = g->KH * g->KW;
    for (int64_t t = t0; t < t1; t++) {
        int64_t c0, c1, o0, o1;
        ply_share(g->C, j->parts, t, &c0, &c1);
        ply_share(g->OC, j->parts, t, &o0, &o1);
        if (c0 < c1) conv_gemm_im2col(j->scratch + c0 * KK * NC, NC, j->x, g, 0, NC, c0, c1);
        if (o0 < o1) conv_gemm_gather_dy(j->scratch + K * NC + o0 * NC, NC, j->dy, g, 0, NC, o0, o1);
    }
}

// step 2: dW and db of the thread's output channels.
static void backward_rows_dw(void *ctx, int64_t t0, int64_t t1) {
    const bwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t NC = gemm_cols(g), K = gemm_k(g);
    const float *cols = j->scratch, *dY = j->scratch + K * NC;
    for (int64_t t = t0; t < t1; t++) {
        int64_t o0, o1;
        ply_share(g->OC, j->parts, t, &o0, &o1);
        if (o0 >= o1) continue;
        j->product(0, 1, o1 - o0, K, NC, dY + o0 * NC, NC, cols, NC, j->dw + o0 * K, K, 1);
        if (j->db)
            for (int64_t o = o0; o < o1; o++) {
                float s = 0.0f;
                for (int64_t i = 0; i < NC; i++) s += dY[o * NC + i];
                j->db[o] += s;
            }
    }
}

// step 3: dcols of the thread's input channels (over their im2col rows), then col2im into dx.
static void backward_rows_dx(void *ctx, int64_t t0, int64_t t1) {
    const bwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t NC = gemm_cols(g), K = gemm_k(g), KK = g->KH * g->KW, HW = g->H * g->W;
    float *dcols = j->scratch;
    const float *dY = j->scratch + K * NC;
    for (int64_t t = t0; t < t1; t++) {
        int64_t c0, c1;
        ply_share(g->C, j->parts, t, &c0, &c1);
        if (c0 >= c1) continue;
        j->product(1, 0, (c1 - c0) * KK, NC, g->OC, j->w + c0 * KK, K, dY, NC, dcols + c0 * KK * NC, NC, 0);
        for (int64_t n = 0; n < g->N; n++) memset(j->dx + (n * g->XC + c0) * HW, 0, (size_t)((c1 - c0) * HW) * sizeof(float));
        conv_gemm_col2im(j->dx, dcols + c0 * KK * NC, NC, g, 0, NC, c0, c1);
    }
}

// "images": thread t takes images [n0, n1). Its scratch: [cols K*tile][dY OC*tile][dw OC*K][db OC];
// thread 0 adds into the layer's dw / db directly, the others into their partials.
static void backward_images(void *ctx, int64_t t0, int64_t t1) {
    const bwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t K = gemm_k(g), P = gemm_p(g), OC = g->OC, tile = tile_width(g), CHW = g->C * g->H * g->W;
    const int64_t XCHW = g->XC * g->H * g->W; // an image of x and dx (CHW of it are this call's channels)
    for (int64_t t = t0; t < t1; t++) {
        float *cols = j->scratch + (size_t)t * j->slice, *tdy = cols + K * tile;
        float *dw = j->dw, *db = j->db;
        if (t > 0) {
            dw = tdy + OC * tile;
            db = j->db ? dw + OC * K : NULL;
            memset(dw, 0, (size_t)(OC * K + OC) * sizeof(float));
        }
        int64_t n0, n1;
        ply_share(g->N, j->parts, t, &n0, &n1);
        if (j->dx)
            for (int64_t n = n0; n < n1; n++) memset(j->dx + n * XCHW, 0, (size_t)CHW * sizeof(float));
        for (int64_t c = n0 * P, e = n1 * P; c < e;) {
            int64_t ce = conv_gemm_tile_end(g, c, e, tile), T = ce - c, n = c / P, p = c % P;
            int one_image = (ce - 1) / P == n;
            const float *B = cols, *dY = tdy;
            int64_t ldb = T, ldy = T;
            if (one_image && is_pointwise(g)) {
                B = j->x + n * XCHW + p;
                ldb = P;
            } else {
                conv_gemm_im2col(cols, T, j->x, g, c, ce, 0, g->C);
            }
            if (one_image) {
                dY = j->dy + n * g->YC * P + p;
                ldy = P;
            } else {
                conv_gemm_gather_dy(tdy, T, j->dy, g, c, ce, 0, OC);
            }
            j->product(0, 1, OC, K, T, dY, ldy, B, ldb, dw, K, 1);
            if (db)
                for (int64_t o = 0; o < OC; o++) {
                    float s = 0.0f;
                    for (int64_t i = 0; i < T; i++) s += dY[o * ldy + i];
                    db[o] += s;
                }
            if (j->dx) {
                if (one_image && is_pointwise(g)) {
                    j->product(1, 0, K, T, OC, j->w, K, dY, ldy, j->dx + n * XCHW + p, P, 0);
                } else {
                    j->product(1, 0, K, T, OC, j->w, K, dY, ldy, cols, T, 0);
                    conv_gemm_col2im(j->dx, cols, T, g, c, ce, 0, g->C);
                }
            }
            c = ce;
        }
    }
}

// Sum the partials of threads 1.. into dw / db, over the weight index range of each thread.
static void backward_reduce(void *ctx, int64_t t0, int64_t t1) {
    const bwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t K = gemm_k(g), OC = g->OC, tile = tile_width(g), total = OC * K + OC;
    for (int64_t t = t0; t < t1; t++) {
        int64_t b, e;
        ply_share(total, j->parts, t, &b, &e);
        for (int64_t s = 1; s < j->parts; s++) {
            const float *part = j->scratch + (size_t)s * j->slice + (K + OC) * tile;
            for (int64_t i = b; i < e && i < OC * K; i++) j->dw[i] += part[i];
            if (j->db)
                for (int64_t i = ply_max_i64(b, OC * K); i < e; i++) j->db[i - OC * K] += part[i];
        }
    }
}

// The rows plan pays off where columns are few (small planes or batches: thin per-image tiles);
// with many columns every thread's own images make full-height products and need no
// synchronisation but the final sum (ResNet-18 training 128x3x32x32, 2 threads: 352 -> 419 img/s).
static int backward_uses_rows(const conv_geom *g, int64_t threads, size_t rows_limit) {
    return threads > 1 && gemm_cols(g) < 2048 * threads && (size_t)((gemm_k(g) + g->OC) * gemm_cols(g)) <= rows_limit;
}

size_t conv_gemm_backward_floats(const conv_geom *g, int64_t threads, size_t rows_limit) {
    const int64_t K = gemm_k(g), OC = g->OC;
    if (backward_uses_rows(g, threads, rows_limit)) return (size_t)((K + OC) * gemm_cols(g));
    return (size_t)(((K + OC) * tile_width(g) + OC * K + OC) * ply_max_i64(threads, 1));
}

void conv_gemm_backward(const ply_host *host, int64_t threads, int kernel, size_t rows_limit, const conv_geom *g,
                        const float *w, const float *x, const float *dy, float *dx, float *dw, float *db, float *scratch) {
    threads = ply_max_i64(threads, 1);
    const int64_t K = gemm_k(g), OC = g->OC;
    bwd_job j = {g, w, x, dy, dx, dw, db, scratch, threads, (size_t)((K + OC) * tile_width(g) + OC * K + OC),
                 kernel ? conv_kernel_product : conv_blas_product};
    if (backward_uses_rows(g, threads, rows_limit)) {
        host->parallel_for(host, threads, 1, backward_rows_gather, &j);
        host->parallel_for(host, threads, 1, backward_rows_dw, &j);
        if (dx) host->parallel_for(host, threads, 1, backward_rows_dx, &j);
        return;
    }
    j.parts = ply_min_i64(threads, g->N);
    if (j.parts <= 1) {
        j.parts = 1;
        backward_images(&j, 0, 1);
        return;
    }
    host->parallel_for(host, j.parts, 1, backward_images, &j);
    host->parallel_for(host, j.parts, 1, backward_reduce, &j);
}
