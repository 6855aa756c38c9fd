/*
 * The linear forward for LINEAR_GEMV_MAX_ROWS + 1 to LINEAR_ROWS_MAX_ROWS input rows
 * (linear_rows.h):
 *
 *     y[m*OUT + o] = b[o] + sum_{k < IN} x[m*IN + k] * w[o*IN + k]
 *                  = b[o] + sum_k w[o*IN + k] * xp[(k*V + m/16)*16 + m%16]
 *
 * A block of R weight rows keeps R x V accumulators, acc[r][v] lane l = the partial y of row o + r
 * and input 16 v + l; each step k loads V vectors of xp (L1) and broadcasts R weights (the stream
 * from memory), R x V multiply-adds. k goes in blocks of KB so that xp's block stays in L2 while
 * the rows of a group of OB output features pass over it; the partial sums of the group wait in
 * `part` (on the stack, 16 KB) between blocks of k. The AVX2 path (below) runs the same plan
 * with 8-lane vectors: a 16-float vector of xp is two of them.
 */
#include "plugin_support.h"

#include "linear_rows.h"
#include "linear_gemv.h"

#define INLINE static inline __attribute__((always_inline))

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

// Output features per group: their partial sums, OB x 32 floats (16 KB), wait between blocks of k.
#define OB 128
// k per block: xp's block is KB x 16 V floats (256 KB at V = 1 for 4096: in L2). Measured with
// Benchmarks/linear_kernel.c (16 rows, thread CPU ms per call, weights cold, loaded machine, so
// within ~20%), KB 256 / 1024 / 2048 / 4096 / all of IN: AlexNet's fc6 19.7-20.8 / 15.5-15.8 /
// 20.6 / 14.6 / 14.5, VGG-16's fc6 66.8-73.1 / 44.1-45.3 / 43.4 / 39.8 / 44.3, 4096x4096
// 8.9 / 6.9-7.1 / 6.5 / 6.1 / 6.1; at 32 rows AlexNet's fc6 31.9 / 19.8-21.3 / 19.0 / 19.2 / 20.1.
#ifndef LINEAR_ROWS_KB
#define LINEAR_ROWS_KB 4096
#endif
// Weights prefetched this many floats ahead in each row, a line per row every 16 k (0: none). The
// hardware's prefetch does better alone: 256 ahead (non-temporal) took AlexNet's fc6 from 19.7-20.8
// to 39.8-41.4 ms at KB 256 and 1024, VGG-16's fc6 from 44-73 to 94-103.
#ifndef LINEAR_ROWS_PF
#define LINEAR_ROWS_PF 0
#endif

size_t linear_rows_pack_floats(int64_t M, int64_t IN) { return (size_t)(IN * 16 * ((M + 15) / 16)); }

PLY_TARGET_AVX512 static void pack512(const float *x, int64_t M, int64_t IN, float *xp) {
    const int64_t V = (M + 15) / 16;
    for (int64_t v = 0; v < V; v++) {
        const int64_t lanes = M - 16 * v < 16 ? M - 16 * v : 16;
        const __mmask16 live = (__mmask16)((1u << lanes) - 1);
        const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32((int)IN));
        const float *xv = x + 16 * v * IN;
        // rows 16 v .. 16 v + lanes are lanes * IN floats from xv: 32-bit indices suffice while
        // 16 * IN < 2^31 (IN <= INT32_MAX / 16; larger takes the scalar loop)
        if (IN <= INT32_MAX / 16)
            for (int64_t k = 0; k < IN; k++)
                _mm512_store_ps(xp + (k * V + v) * 16, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, idx, xv + k, 4));
        else
            for (int64_t k = 0; k < IN; k++)
                for (int64_t l = 0; l < 16; l++) xp[(k * V + v) * 16 + l] = l < lanes ? xv[l * IN + k] : 0.0f;
    }
}

// Rows [o, o + rows) (rows <= R; missing rows repeat row o, their sums never stored) over k in
// [k0, k0 + kb), accumulating into part (R x V vectors, row r at part + r * 16 V).
PLY_TARGET_AVX512 INLINE void block(const int R, const int V, const float *xp, const float *w, int64_t IN, int64_t o,
                                    int rows, int64_t k0, int64_t kb, float *part) {
    const float *wr[16];
    for (int r = 0; r < R; r++) wr[r] = w + (o + (r < rows ? r : 0)) * IN + k0;
    __m512 acc[16][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++)
            acc[r][v] = k0 == 0 ? _mm512_setzero_ps() : _mm512_load_ps(part + (r * V + v) * 16);
    const float *xk = xp + k0 * V * 16;
    for (int64_t k = 0; k < kb; k++) {
        if (LINEAR_ROWS_PF && (k & 15) == 0)
            for (int r = 0; r < R; r++) __builtin_prefetch(wr[r] + k + LINEAR_ROWS_PF, 0, 0);
        __m512 xv[2];
        for (int v = 0; v < V; v++) xv[v] = _mm512_load_ps(xk + (k * V + v) * 16);
        for (int r = 0; r < R; r++) {
            const __m512 a = _mm512_set1_ps(wr[r][k]);
            for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(a, xv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) _mm512_store_ps(part + (r * V + v) * 16, acc[r][v]);
}

PLY_TARGET_AVX512 INLINE void rows_kernel(const int R, const int V, float *y, const float *xp, const float *w,
                                          const float *b, int64_t M, int64_t IN, int64_t OUT, int64_t o0, int64_t o1) {
    float part[OB * 32] __attribute__((aligned(64)));
    for (int64_t g0 = o0; g0 < o1; g0 += OB) {
        const int64_t g1 = o1 - g0 < OB ? o1 : g0 + OB;
        for (int64_t k0 = 0; k0 < IN; k0 += LINEAR_ROWS_KB) {
            const int64_t kb = IN - k0 < LINEAR_ROWS_KB ? IN - k0 : LINEAR_ROWS_KB;
            for (int64_t o = g0; o < g1; o += R)
                block(R, V, xp, w, IN, o, g1 - o < R ? (int)(g1 - o) : R, k0, kb, part + (o - g0) * V * 16);
        }
        // part [g1 - g0][V * 16]: row o's sums for inputs 0..16 V - 1
        for (int64_t o = g0; o < g1; o++) {
            const float *po = part + (o - g0) * V * 16, bo = b ? b[o] : 0.0f;
            for (int64_t m = 0; m < M; m++) y[m * OUT + o] = po[m] + bo;
        }
    }
}

// M = 9..16: one vector of inputs, 16 rows; 17..32: two vectors, 8 rows (16 accumulators each).
PLY_TARGET_AVX512 static void rows512(float *y, const float *xp, const float *w, const float *b, int64_t M, int64_t IN,
                                      int64_t OUT, int64_t o0, int64_t o1) {
    if (M <= 16) rows_kernel(16, 1, y, xp, w, b, M, IN, OUT, o0, o1);
    else rows_kernel(8, 2, y, xp, w, b, M, IN, OUT, o0, o1);
}

// ----------------------------------------------------------------------------
// AVX2 + FMA: the same xp (a 16-float vector of it is two of 8 lanes here) and the same part layout
// (row r's V * 16 sums at part + r * 16 V), 8-lane accumulators acc[r][u], u < 2 V.

// xp by plain loops: k outer, so the 16 rows' lines each serve 16 consecutive k from L1.
static void pack_loops(const float *x, int64_t M, int64_t IN, float *xp) {
    const int64_t V = (M + 15) / 16;
    for (int64_t k = 0; k < IN; k++)
        for (int64_t v = 0; v < V; v++)
            for (int64_t l = 0; l < 16; l++) xp[(k * V + v) * 16 + l] = 16 * v + l < M ? x[(16 * v + l) * IN + k] : 0.0f;
}

// As block() with U = 2 V vectors of 8 lanes per k: R x U accumulators, R <= 8, U <= 4 (12 or 8 of the
// 16 registers at the R2_16 / R2_32 below).
PLY_TARGET_AVX2 INLINE void block256(const int R, const int V, const float *xp, const float *w, int64_t IN, int64_t o,
                                     int rows, int64_t k0, int64_t kb, float *part) {
    const int U = 2 * V;
    const float *wr[8];
    for (int r = 0; r < R; r++) wr[r] = w + (o + (r < rows ? r : 0)) * IN + k0;
    __m256 acc[8][4];
    for (int r = 0; r < R; r++)
        for (int u = 0; u < U; u++) acc[r][u] = k0 == 0 ? _mm256_setzero_ps() : _mm256_load_ps(part + (r * U + u) * 8);
    const float *xk = xp + k0 * V * 16;
    for (int64_t k = 0; k < kb; k++) {
        const float *xv = xk + k * V * 16;
        for (int r = 0; r < R; r++) {
            const __m256 a = _mm256_broadcast_ss(wr[r] + k);
            for (int u = 0; u < U; u++) acc[r][u] = _mm256_fmadd_ps(a, _mm256_load_ps(xv + 8 * u), acc[r][u]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int u = 0; u < U; u++) _mm256_store_ps(part + (r * U + u) * 8, acc[r][u]);
}

PLY_TARGET_AVX2 INLINE void rows_kernel256(const int R, const int V, float *y, const float *xp, const float *w,
                                           const float *b, int64_t M, int64_t IN, int64_t OUT, int64_t o0, int64_t o1) {
    // groups of a whole number of blocks of R rows (a block stores all R rows' sums into part)
    const int64_t ob = OB / R * R;
    float part[OB * 32] __attribute__((aligned(64)));
    for (int64_t g0 = o0; g0 < o1; g0 += ob) {
        const int64_t g1 = o1 - g0 < ob ? o1 : g0 + ob;
        for (int64_t k0 = 0; k0 < IN; k0 += LINEAR_ROWS_KB) {
            const int64_t kb = IN - k0 < LINEAR_ROWS_KB ? IN - k0 : LINEAR_ROWS_KB;
            for (int64_t o = g0; o < g1; o += R)
                block256(R, V, xp, w, IN, o, g1 - o < R ? (int)(g1 - o) : R, k0, kb, part + (o - g0) * V * 16);
        }
        for (int64_t o = g0; o < g1; o++) {
            const float *po = part + (o - g0) * V * 16, bo = b ? b[o] : 0.0f;
            for (int64_t m = 0; m < M; m++) y[m * OUT + o] = po[m] + bo;
        }
    }
}

// Weight rows per block on AVX2 (16 registers): R2_16 for 9..16 inputs (2 vectors of 8 per k), R2_32
// for 17..32 (4 vectors). Measured with Benchmarks/linear_kernel.c under PLY_CPU=avx2 (16 rows unless
// said, thread CPU ms per call, weights cold, load 15-20, so within ~20%), R2_16 x R2_32 = 6 x 3 /
// 4 x 2 / 6 x 2 / 8 x 3: AlexNet's fc6 17.05 / 19.56 / 17.05 / 20.23, VGG-16's fc6 44.4 / 50.8 /
// 44.7 / 52.5, 4096x4096 7.45 / 8.34 / 7.53 / 9.48; AlexNet's fc6 at 32 rows 52.5 / 38.1 / 37.9 / 51.1
// (3 rows x 4 vectors leave no register for the broadcast; 8 x 2 spill). OpenBLAS's sgemm in the same
// runs: 62-65 / 170-176 / 27-30 / 102-106 (32 rows).
#ifndef LINEAR_ROWS_R2_16
#define LINEAR_ROWS_R2_16 6
#endif
#ifndef LINEAR_ROWS_R2_32
#define LINEAR_ROWS_R2_32 2
#endif

// M = 9..16: two vectors of 8 inputs per k; 17..32: four.
PLY_TARGET_AVX2 static void rows256(float *y, const float *xp, const float *w, const float *b, int64_t M, int64_t IN,
                                    int64_t OUT, int64_t o0, int64_t o1) {
    if (M <= 16) rows_kernel256(LINEAR_ROWS_R2_16, 1, y, xp, w, b, M, IN, OUT, o0, o1);
    else rows_kernel256(LINEAR_ROWS_R2_32, 2, y, xp, w, b, M, IN, OUT, o0, o1);
}

void linear_rows_pack(const float *x, int64_t M, int64_t IN, float *xp) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) pack512(x, M, IN, xp);
    else pack_loops(x, M, IN, xp);
}

void linear_rows(float *y, const float *xp, const float *w, const float *b, int64_t M, int64_t IN, int64_t OUT,
                 int64_t o0, int64_t o1) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) rows512(y, xp, w, b, M, IN, OUT, o0, o1);
    else rows256(y, xp, w, b, M, IN, OUT, o0, o1);
}
#endif
