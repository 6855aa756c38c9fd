/*
 * conv_1x1.c's product at the AVX2 level: strips of positions packed in L1, a 6 x 16 register tile
 * (see conv_1x1_avx2.h).
 */
#include "plugin_support.h"

#include "conv_1x1_avx2.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "conv_avx2.h"

// Rows of a block of packed weights (conv_1x1_pack_weights' blocks of 12, conv_1x1.c's MR).
#define MR 12
// Rows of the register tile: half a block of packed weights. 6 rows x 2 vectors = 12 accumulators
// of AVX2's 16 registers, with the 2 vectors of the panel and a broadcast (15 in all).
#define TR 6
// Positions per tile: two vectors of 8.
#define TN 16
// Input channels per pass and positions per strip: conv_1x1.c's KC and NR (its measurements), so
// that the packed panel (KC x NR floats, 32 KB) stays in L1 (32 KB on Haswell and Zen 2/3, 48 KB here)
// and the strips' prefetches and the threads' splits (at multiples of 32 positions) are the same.
#define KC 256
#define NR 32
// While the first tile of a strip runs, the rows of the strip PXDIST strips ahead go into L2 (hint
// T1), as conv_1x1.c measured for its AVX-512 tile (the packing then reads them from L2).
#define PXDIST 2

// acc(r, v) = sum_{k < kc} a(r, k) * x[k*NR + 8v .. 8v + 8) for r < R, v < V, with a(r, k) =
// a[k*MR + r] packed (PK) or a[r*lda + k]; then y[r*ldy + 8v ..] for the first n positions =
// (first ? bias[r] : y) + acc, relu'd when `relu` (NaN passes: kept where not v <= 0). px (or NULL):
// rows k of the strip PXDIST strips ahead (lpx floats apart) into L2.
PLY_TARGET_AVX2 static inline __attribute__((always_inline)) void tile(const int PK, const int R, const int V,
                                                                      int64_t kc, const float *a, int64_t lda,
                                                                      const float *x, float *y, int64_t ldy,
                                                                      int64_t n, int first, int relu,
                                                                      const float *bias, const float *px,
                                                                      int64_t lpx) {
    __m256 c0[TR], c1[TR];
    for (int r = 0; r < R; r++) c0[r] = c1[r] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++, x += NR) {
        if (px) {
            _mm_prefetch((const char *)(px + k * lpx), _MM_HINT_T1);
            _mm_prefetch((const char *)(px + k * lpx + 16), _MM_HINT_T1);
        }
        const __m256 b0 = _mm256_loadu_ps(x), b1 = V == 2 ? _mm256_loadu_ps(x + 8) : b0;
        for (int r = 0; r < R; r++) {
            const __m256 av = _mm256_broadcast_ss(PK ? a + k * MR + r : a + r * lda + k);
            c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
            if (V == 2) c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
        }
    }
    const __m256i m0 = conv_lanes8(n), m1 = conv_lanes8(n - 8);
    const int full = n >= 8 * V;
    const __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) {
            float *yr = y + r * ldy + 8 * v;
            const __m256i m = v ? m1 : m0;
            __m256 s = first ? _mm256_set1_ps(bias ? bias[r] : 0.0f) : full ? _mm256_loadu_ps(yr) : _mm256_maskload_ps(yr, m);
            __m256 t = _mm256_add_ps(v ? c1[r] : c0[r], s);
            if (relu) t = _mm256_and_ps(t, _mm256_cmp_ps(t, zero, _CMP_NLE_UQ));
            if (full) _mm256_storeu_ps(yr, t);
            else _mm256_maskstore_ps(yr, m, t);
        }
}

typedef void (*tile_fn)(int64_t, const float *, int64_t, const float *, float *, int64_t, int64_t, int, int,
                        const float *, const float *, int64_t);
#define TILE_FN(PK, R, V)                                                                                            \
    PLY_TARGET_AVX2 static void tile##PK##_##R##_##V(int64_t kc, const float *a, int64_t lda, const float *x,        \
                                                     float *y, int64_t ldy, int64_t n, int first, int relu,          \
                                                     const float *bias, const float *px, int64_t lpx) {              \
        tile(PK, R, V, kc, a, lda, x, y, ldy, n, first, relu, bias, px, lpx);                                        \
    }
#define TILE_FNS(PK, R) TILE_FN(PK, R, 1) TILE_FN(PK, R, 2)
TILE_FNS(0, 1) TILE_FNS(0, 2) TILE_FNS(0, 3) TILE_FNS(0, 4) TILE_FNS(0, 5) TILE_FNS(0, 6)
TILE_FNS(1, 1) TILE_FNS(1, 2) TILE_FNS(1, 3) TILE_FNS(1, 4) TILE_FNS(1, 5) TILE_FNS(1, 6)
#define TILE_PAIR(PK, R) {tile##PK##_##R##_1, tile##PK##_##R##_2}
// tiles[PK][R][V - 1]
static const tile_fn tiles[2][TR + 1][2] = {
    {{0, 0}, TILE_PAIR(0, 1), TILE_PAIR(0, 2), TILE_PAIR(0, 3), TILE_PAIR(0, 4), TILE_PAIR(0, 5), TILE_PAIR(0, 6)},
    {{0, 0}, TILE_PAIR(1, 1), TILE_PAIR(1, 2), TILE_PAIR(1, 3), TILE_PAIR(1, 4), TILE_PAIR(1, 5), TILE_PAIR(1, 6)}};

// The last few positions of a strip (at most COLS: 7x7 planes leave 1 past their strips of 32 and 16,
// 14x14 planes 4), where tile()'s vectors of 8 positions would run 1 to 4 live lanes at the cost of 8: the
// weights are the vectors instead (a block's 12 rows: one vector of 8 and one of 4), each position's
// input broadcast, G blocks at a time so that 1 position still keeps 8 accumulators in flight.
//   acc(g, q, r) = sum_{k < kc} a[g*ablk + k*MR + r] * x[k*NR + q]          (packed weights only)
//   y[(MR*g + r)*P + q] = (first ? bias[MR*g + r] : y) + acc, relu'd when `relu`, for rows MR*g + r < rows
// Per output the same fused multiply-adds in the same order as a lane of tile() (from 0, k ascending, then
// the bias or the partial sum added, then the relu), so its bits do not depend on which of the two ran.
// Measured: see conv_1x1_avx2.h.
#define COLS 4
PLY_TARGET_AVX2 static inline __attribute__((always_inline)) void column(const int N, const int G, int64_t kc,
                                                                        const float *a, int64_t ablk,
                                                                        const float *x, float *y, int64_t P,
                                                                        int64_t rows, int first, int relu,
                                                                        const float *bias) {
    __m256 lo[4][COLS];
    __m128 hi[4][COLS];
    for (int g = 0; g < G; g++)
        for (int q = 0; q < N; q++) lo[g][q] = _mm256_setzero_ps(), hi[g][q] = _mm_setzero_ps();
    for (int64_t k = 0; k < kc; k++, x += NR)
        for (int g = 0; g < G; g++) {
            const __m256 wl = _mm256_loadu_ps(a + g * ablk + k * MR);
            const __m128 wh = _mm_loadu_ps(a + g * ablk + k * MR + 8);
            for (int q = 0; q < N; q++) {
                const __m256 xb = _mm256_broadcast_ss(x + q);
                lo[g][q] = _mm256_fmadd_ps(wl, xb, lo[g][q]);
                hi[g][q] = _mm_fmadd_ps(wh, _mm256_castps256_ps128(xb), hi[g][q]);
            }
        }
    for (int g = 0; g < G; g++)
        for (int q = 0; q < N; q++) {
            float acc[MR];
            _mm256_storeu_ps(acc, lo[g][q]);
            _mm_storeu_ps(acc + 8, hi[g][q]);
            for (int r = 0; r < MR && MR * g + r < rows; r++) {
                float *yr = y + (MR * g + r) * P + q;
                float t = acc[r] + (first ? (bias ? bias[MR * g + r] : 0.0f) : *yr);
                if (relu && !(t > 0.0f || t != t)) t = 0.0f;
                *yr = t;
            }
        }
}

typedef void (*column_fn)(int64_t, const float *, int64_t, const float *, float *, int64_t, int64_t, int, int,
                          const float *);
#define COLUMN_FN(N, G)                                                                                              \
    PLY_TARGET_AVX2 static void column##N##_##G(int64_t kc, const float *a, int64_t ablk, const float *x, float *y, \
                                                int64_t P, int64_t rows, int first, int relu, const float *bias) {  \
        column(N, G, kc, a, ablk, x, y, P, rows, first, relu, bias);                                                \
    }
COLUMN_FN(1, 1) COLUMN_FN(1, 2) COLUMN_FN(1, 4) COLUMN_FN(2, 1) COLUMN_FN(2, 2) COLUMN_FN(3, 1) COLUMN_FN(4, 1)
// columns[N - 1][G - 1]: G = 4, 2 or 1 blocks at a time (8 accumulators for N = 1 and 2), fewer where fewer
// are left (no G = 3)
static const column_fn columns[COLS][4] = {{column1_1, column1_2, NULL, column1_4},
                                           {column2_1, column2_2, NULL, NULL},
                                           {column3_1, NULL, NULL, NULL},
                                           {column4_1, NULL, NULL, NULL}};

// xp[k*NR + j] = xs[k*P + j] for k < kc, j < min(n, NR) (lanes from n on: zeros).
PLY_TARGET_AVX2 static void pack_strip(const float *xs, int64_t P, int64_t kc, int64_t n, float *xp) {
    if (n >= NR) {
        for (int64_t k = 0; k < kc; k++, xs += P, xp += NR)
            for (int v = 0; v < NR; v += 8) _mm256_storeu_ps(xp + v, _mm256_loadu_ps(xs + v));
        return;
    }
    __m256i m[NR / 8];
    for (int v = 0; v < NR / 8; v++) m[v] = conv_lanes8(n - 8 * v);
    for (int64_t k = 0; k < kc; k++, xs += P, xp += NR)
        for (int v = 0; v < NR / 8; v++) _mm256_storeu_ps(xp + 8 * v, _mm256_maskload_ps(xs + 8 * v, m[v]));
}

// The next strip's output lines, rows [0, R) of y (rows P apart, NR floats each), into L1 before they
// are first written, as conv_1x1.c's prefetch_y (measured there).
static inline void prefetch_y(const float *y, int64_t P, int64_t R) {
    for (int64_t q = 0; q < R; q++)
        for (int64_t v = 0; v < NR; v += 16) __builtin_prefetch(y + q * P + v, 1, 3);
}

void conv_1x1_product_avx2(const float *w, const float *wp, int64_t K, int64_t OC, const float *xs, float *y,
                           int64_t P, int64_t ni, int64_t o0, int64_t o1, int64_t p0, int64_t p1, const float *bias,
                           int relu, float *xp) {
    const int pk = wp != NULL;
    for (int64_t im = 0; im < ni; im++, xs += K * P, y += OC * P)
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            const int64_t kc = ply_min_i64(KC, K - k0);
            const int first = k0 == 0, last = k0 + kc == K;
            for (int64_t s = p0; s < p1; s += NR) {
                const int64_t left = p1 - s;
                pack_strip(xs + k0 * P + s, P, kc, left, xp);
                const float *ahead = s + PXDIST * NR < p1 ? xs + k0 * P + s + PXDIST * NR : NULL;
                // the strip's positions [0, vend) in tiles, [vend, min(left, NR)) in columns (packed weights)
                const int64_t n = ply_min_i64(left, NR), tail = pk && n % TN <= COLS ? n % TN : 0, vend = n - tail;
                for (int64_t o = o0; o < o1; o += MR) {
                    const int64_t R = ply_min_i64(MR, o1 - o);
                    if (first) prefetch_y(y + o * P + s + NR, P, R);
                    for (int64_t h = 0; h < R; h += TR) {
                        const int64_t rh = ply_min_i64(TR, R - h);
                        const float *a = pk ? wp + o * K + k0 * MR + h : w + (o + h) * K + k0;
                        for (int64_t c = 0; c < vend; c += TN) {
                            const int64_t nc = ply_min_i64(TN, vend - c);
                            const float *px = o == o0 && h == 0 && c == 0 ? ahead : NULL;
                            tiles[pk][rh][nc > 8](kc, a, K, xp + c, y + (o + h) * P + s + c, P, nc, first,
                                                  relu && last, bias ? bias + o + h : NULL, px, P);
                        }
                    }
                }
                for (int64_t o = o0, G; tail && o < o1; o += G * MR) {
                    for (G = tail == 1 ? 4 : tail == 2 ? 2 : 1; G * MR - MR >= o1 - o;) G /= 2; // blocks left
                    columns[tail - 1][G - 1](kc, wp + o * K + k0 * MR, K * MR, xp + vend, y + o * P + s + vend, P,
                                             o1 - o, first, relu && last, bias ? bias + o : NULL);
                }
            }
        }
}
#else
void conv_1x1_product_avx2(const float *w, const float *wp, int64_t K, int64_t OC, const float *xs, float *y,
                           int64_t P, int64_t ni, int64_t o0, int64_t o1, int64_t p0, int64_t p1, const float *bias,
                           int relu, float *xp) {
    (void)w; (void)wp; (void)K; (void)OC; (void)xs; (void)y; (void)P; (void)ni; (void)o0; (void)o1; (void)p0;
    (void)p1; (void)bias; (void)relu; (void)xp;
}
#endif
