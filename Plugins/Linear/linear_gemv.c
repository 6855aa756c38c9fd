/*
 * The linear forward for 1 to LINEAR_GEMV_MAX_ROWS input rows (linear_gemv.h):
 *
 *     y[m*OUT + o] = b[o] + sum_{k < IN} x[m*IN + k] * w[o*IN + k]
 *
 * Each kernel takes a block of R weight rows and MB input rows and keeps R x MB vector
 * accumulators (one per output), walking k a vector at a time: per step it loads R vectors of
 * weights (the stream from memory) and MB vectors of input (from L1), and does R x MB
 * multiply-adds; each accumulator is reduced once at the end of the row. More input rows than
 * MB go in several passes over the block, the later ones reading its rows from L2.
 */
#include "plugin_support.h"

#include "linear_gemv.h"

#define INLINE static inline __attribute__((always_inline))

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "plugin_simd.h"

// ----------------------------------------------------------------------------
// AVX-512: 16 lanes, the tail of a row by a masked load

// Rows [o, o + rows) (rows <= R; missing rows repeat row o and are not stored) against input
// rows [m0, m0 + MB). U = 2 walks k two vectors at a time with two accumulator sets (M = 1:
// R accumulators alone would wait on the multiply-add latency).
PLY_TARGET_AVX512 INLINE void block512(const int R, const int MB, const int U, float *y, const float *x,
                                       const float *w, const float *b, int64_t IN, int64_t OUT, int64_t o, int rows,
                                       int64_t m0) {
    const float *wr[8];
    const float *xm[4];
    for (int r = 0; r < R; r++) wr[r] = w + (o + (r < rows ? r : 0)) * IN;
    for (int m = 0; m < MB; m++) xm[m] = x + (m0 + m) * IN;
    __m512 acc[2][4][8]; // [u][m][r]
    for (int u = 0; u < U; u++)
        for (int m = 0; m < MB; m++)
            for (int r = 0; r < R; r++) acc[u][m][r] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 * U <= IN; k += 16 * U)
        for (int u = 0; u < U; u++) {
            __m512 xv[4];
            for (int m = 0; m < MB; m++) xv[m] = _mm512_loadu_ps(xm[m] + k + 16 * u);
            for (int r = 0; r < R; r++) {
                __m512 wv = _mm512_loadu_ps(wr[r] + k + 16 * u);
                for (int m = 0; m < MB; m++) acc[u][m][r] = _mm512_fmadd_ps(wv, xv[m], acc[u][m][r]);
            }
        }
    for (; k < IN; k += 16) {
        __mmask16 t = IN - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (IN - k)) - 1);
        __m512 xv[4];
        for (int m = 0; m < MB; m++) xv[m] = _mm512_maskz_loadu_ps(t, xm[m] + k);
        for (int r = 0; r < R; r++) {
            __m512 wv = _mm512_maskz_loadu_ps(t, wr[r] + k);
            for (int m = 0; m < MB; m++) acc[0][m][r] = _mm512_fmadd_ps(wv, xv[m], acc[0][m][r]);
        }
    }
    for (int m = 0; m < MB; m++)
        for (int r = 0; r < rows; r++) {
            __m512 s = U == 2 ? _mm512_add_ps(acc[0][m][r], acc[1][m][r]) : acc[0][m][r];
            y[(m0 + m) * OUT + o + r] = _mm512_reduce_add_ps(s) + (b ? b[o + r] : 0.0f);
        }
}

// R rows at a time over [o0, o1), input rows [m0, m0 + MB)
PLY_TARGET_AVX512 INLINE void rows512(const int R, const int MB, const int U, float *y, const float *x,
                                      const float *w, const float *b, int64_t IN, int64_t OUT, int64_t o0, int64_t o1,
                                      int64_t m0) {
    for (int64_t o = o0; o < o1; o += R)
        block512(R, MB, U, y, x, w, b, IN, OUT, o, o1 - o < R ? (int)(o1 - o) : R, m0);
}

// Blocking per M (accumulators R x MB x U <= 16 of the 32 registers). M = 1: R = 8 rows, one
// vector of k per step (8 accumulators, 8 rows streaming at once); M = 2..4: R = 4; M = 5..8 in
// two passes over each block of 4 rows (4 input rows, then the rest; the second pass reads the
// rows from L2). Measured one thread, CPU time, load ~15 (clang -O2, a harness over this file;
// ms per call, medians of 4 alternating runs, 9216x4096 = AlexNet's fc6, 151 MB): at M = 1
// R = 8, U = 1 9.38 ms (16.1 GB/s), R = 8, U = 2 9.41, R = 4, U = 2 9.69 (the previous AVX-512
// kernel, R = 4 with two vectors of k, 9.5-9.7), OpenBLAS's sgemv 13.0-13.3. A single stream
// read by one thread got 4-5 GB/s in the same minutes: more rows at once keep more misses in
// flight. At M = 8 two passes of R = 4 gave 10.2 / 14.4 / 15.6 GB/s on 9216x4096 / 4096x4096 /
// 4096x1000 where one pass of R = 2, MB = 8 gave 9.7 / 11.6 / 13.9, and OpenBLAS's sgemm
// 3.3-5.0 (what M = 3..8 took before, with the small loops for products under 2^24).
PLY_TARGET_AVX512 static void gemv_avx512(float *y, const float *x, const float *w, const float *b, int64_t M,
                                          int64_t IN, int64_t OUT, int64_t o0, int64_t o1) {
    switch (M) {
    case 1: rows512(8, 1, 1, y, x, w, b, IN, OUT, o0, o1, 0); break;
    case 2: rows512(4, 2, 1, y, x, w, b, IN, OUT, o0, o1, 0); break;
    case 3: rows512(4, 3, 1, y, x, w, b, IN, OUT, o0, o1, 0); break;
    case 4: rows512(4, 4, 1, y, x, w, b, IN, OUT, o0, o1, 0); break;
    default:
        for (int64_t o = o0; o < o1; o += 4) {
            int rows = o1 - o < 4 ? (int)(o1 - o) : 4;
            block512(4, 4, 1, y, x, w, b, IN, OUT, o, rows, 0);
            switch (M - 4) {
            case 1: block512(4, 1, 1, y, x, w, b, IN, OUT, o, rows, 4); break;
            case 2: block512(4, 2, 1, y, x, w, b, IN, OUT, o, rows, 4); break;
            case 3: block512(4, 3, 1, y, x, w, b, IN, OUT, o, rows, 4); break;
            default: block512(4, 4, 1, y, x, w, b, IN, OUT, o, rows, 4); break;
            }
        }
        break;
    }
}

// ----------------------------------------------------------------------------
// AVX2 + FMA: 8 lanes, 16 registers; the tail of a row by a masked load

PLY_TARGET_AVX2 INLINE float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// As block512 with 8 lanes (accumulators R x MB x U <= 8 of the 16 registers).
PLY_TARGET_AVX2 INLINE void block256(const int R, const int MB, const int U, float *y, const float *x,
                                     const float *w, const float *b, int64_t IN, int64_t OUT, int64_t o, int rows,
                                     int64_t m0) {
    const float *wr[4];
    const float *xm[4];
    for (int r = 0; r < R; r++) wr[r] = w + (o + (r < rows ? r : 0)) * IN;
    for (int m = 0; m < MB; m++) xm[m] = x + (m0 + m) * IN;
    __m256 acc[2][4][4]; // [u][m][r]
    for (int u = 0; u < U; u++)
        for (int m = 0; m < MB; m++)
            for (int r = 0; r < R; r++) acc[u][m][r] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 * U <= IN; k += 8 * U)
        for (int u = 0; u < U; u++) {
            __m256 xv[4];
            for (int m = 0; m < MB; m++) xv[m] = _mm256_loadu_ps(xm[m] + k + 8 * u);
            for (int r = 0; r < R; r++) {
                __m256 wv = _mm256_loadu_ps(wr[r] + k + 8 * u);
                for (int m = 0; m < MB; m++) acc[u][m][r] = _mm256_fmadd_ps(wv, xv[m], acc[u][m][r]);
            }
        }
    for (; k < IN; k += 8) {
        __m256i t = ply_lanes8(IN - k);
        __m256 xv[4];
        for (int m = 0; m < MB; m++) xv[m] = _mm256_maskload_ps(xm[m] + k, t);
        for (int r = 0; r < R; r++) {
            __m256 wv = _mm256_maskload_ps(wr[r] + k, t);
            for (int m = 0; m < MB; m++) acc[0][m][r] = _mm256_fmadd_ps(wv, xv[m], acc[0][m][r]);
        }
    }
    for (int m = 0; m < MB; m++)
        for (int r = 0; r < rows; r++) {
            __m256 s = U == 2 ? _mm256_add_ps(acc[0][m][r], acc[1][m][r]) : acc[0][m][r];
            y[(m0 + m) * OUT + o + r] = hsum256(s) + (b ? b[o + r] : 0.0f);
        }
}

PLY_TARGET_AVX2 INLINE void rows256(const int R, const int MB, const int U, float *y, const float *x,
                                    const float *w, const float *b, int64_t IN, int64_t OUT, int64_t o0, int64_t o1,
                                    int64_t m0) {
    for (int64_t o = o0; o < o1; o += R)
        block256(R, MB, U, y, x, w, b, IN, OUT, o, o1 - o < R ? (int)(o1 - o) : R, m0);
}

// M = 1: 4 rows, one vector per step (4 accumulators); M = 2..4: 2 rows (up to 8); more input
// rows in passes of 4 over each block of 2 rows (the second pass reads them from L1). One accumulator
// per output at every M, so that an output's sum is the same whatever the batch: with two at M = 1
// (its sum split over even and odd steps) batch 1 and batch 2 gave different floats, and the batch
// lanes (a lane runs its images one at a time) and a frozen model's batch no longer gave the model's
// (the C API's test, AMD EPYC Zen 3). The weights stream from memory either way (a bound of 8 floats
// a cycle per accumulator chain is far above it).
PLY_TARGET_AVX2 static void gemv_avx2(float *y, const float *x, const float *w, const float *b, int64_t M, int64_t IN,
                                      int64_t OUT, int64_t o0, int64_t o1) {
    if (M == 1) {
        rows256(4, 1, 1, y, x, w, b, IN, OUT, o0, o1, 0);
        return;
    }
    for (int64_t o = o0; o < o1; o += 2) {
        int rows = o1 - o < 2 ? (int)(o1 - o) : 2;
        for (int64_t m0 = 0; m0 < M; m0 += 4) {
            switch (M - m0) {
            case 1: block256(2, 1, 1, y, x, w, b, IN, OUT, o, rows, m0); break;
            case 2: block256(2, 2, 1, y, x, w, b, IN, OUT, o, rows, m0); break;
            case 3: block256(2, 3, 1, y, x, w, b, IN, OUT, o, rows, m0); break;
            default: block256(2, 4, 1, y, x, w, b, IN, OUT, o, rows, m0); break;
            }
        }
    }
}

void linear_gemv(float *y, const float *x, const float *w, const float *b, int64_t M, int64_t IN, int64_t OUT,
                 int64_t o0, int64_t o1) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) gemv_avx512(y, x, w, b, M, IN, OUT, o0, o1);
    else gemv_avx2(y, x, w, b, M, IN, OUT, o0, o1);
}
#endif
