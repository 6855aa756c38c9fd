/*
 * The forward convolution's product at the AVX2 level (see conv_kernel_avx2.h):
 *
 *   out[o - o0][c] = (k0 == 0 ? bias[o] : out[o - o0][c]) + sum_{k0 <= k < k0 + kc} wp(o, k) * B[s][k][c - s*NR]
 *
 * for each block of KC rows of k, strip s (c in [s*NR, s*NR + NR)), block of TR rows and half h of the
 * strip (16 columns). The sums run over k in order with one FMA per term, as conv_kernel.c's AVX-512
 * kernel's, so the two levels give the same bits on the same operands.
 */
#include "plugin_support.h"

#include "conv_kernel.h"
#include "conv_kernel_avx2.h"

#define NR CONV_KERNEL_NR
// 6 rows x 2 vectors = 12 accumulators of AVX2's 16 registers, with the strip's 2 vectors and a
// broadcast: 15 (conv_1x1_avx2.c's tile).
#define TR CONV_KERNEL_AVX2_MR
// Rows of k per pass: a strip's block (KC x NR floats, 32 KB) stays in L1, as conv_kernel.c's KC.
#define KC 128
#ifndef PREFETCH
#define PREFETCH 1
#endif

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "conv_avx2.h"

// c[r][0:8V) for the first n columns = (first ? bias[r] : c[r]) + sum_{k < kc} a[k*TR + r] * b[k*NR + 0:8V)
// for r < R. R and V are constants in each caller, so the loops unroll into registers.
PLY_TARGET_AVX2 static inline __attribute__((always_inline)) void tile(const int R, const int V, int64_t kc,
                                                                      const float *a, const float *b, float *c,
                                                                      int64_t ldc, int64_t n, int first,
                                                                      const float *bias, const float *pf) {
    __m256 c0[TR], c1[TR];
    for (int r = 0; r < R; r++) c0[r] = c1[r] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++, b += NR, a += TR) {
        if (pf && (k & 7) == 0)
            for (int q = 0; q < 3; q++) _mm_prefetch((const char *)(pf + k * TR + 16 * q), _MM_HINT_T0);
        const __m256 b0 = _mm256_loadu_ps(b), b1 = V == 2 ? _mm256_loadu_ps(b + 8) : b0;
        for (int r = 0; r < R; r++) {
            const __m256 av = _mm256_broadcast_ss(a + r);
            c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
            if (V == 2) c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
        }
    }
    const __m256i m0 = conv_lanes8(n), m1 = conv_lanes8(n - 8);
    const int full = n >= 8 * V;
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) {
            float *cr = c + r * ldc + 8 * v;
            const __m256i m = v ? m1 : m0;
            __m256 s = first ? _mm256_set1_ps(bias ? bias[r] : 0.0f) : full ? _mm256_loadu_ps(cr) : _mm256_maskload_ps(cr, m);
            __m256 t = _mm256_add_ps(v ? c1[r] : c0[r], s);
            if (full) _mm256_storeu_ps(cr, t);
            else _mm256_maskstore_ps(cr, m, t);
        }
}

typedef void (*tile_fn)(int64_t, const float *, const float *, float *, int64_t, int64_t, int, const float *,
                        const float *);
#define TILE_FN(R, V)                                                                                                \
    PLY_TARGET_AVX2 static void tile##R##_##V(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,     \
                                              int64_t n, int first, const float *bias, const float *pf) {           \
        tile(R, V, kc, a, b, c, ldc, n, first, bias, pf);                                                            \
    }
#define TILE_FNS(R) TILE_FN(R, 1) TILE_FN(R, 2)
TILE_FNS(1) TILE_FNS(2) TILE_FNS(3) TILE_FNS(4) TILE_FNS(5) TILE_FNS(6)
#define TILE_PAIR(R) {tile##R##_1, tile##R##_2}
// tiles[R][V - 1]
static const tile_fn tiles[TR + 1][2] = {{0, 0},        TILE_PAIR(1), TILE_PAIR(2), TILE_PAIR(3),
                                         TILE_PAIR(4), TILE_PAIR(5), TILE_PAIR(6)};

size_t conv_kernel_avx2_packed_floats(int64_t rows, int64_t K) { return (size_t)((rows + TR - 1) / TR * TR * K); }

// wp[(o / TR) * K * TR + k * TR + o % TR] = w[o * K + k], zeros for o in [rows, rows rounded up to TR).
void conv_kernel_avx2_pack(const float *w, int64_t rows, int64_t K, float *wp) {
    for (int64_t b = 0; b < rows; b += TR)
        for (int64_t k = 0; k < K; k++)
            for (int64_t r = 0; r < TR; r++) wp[b * K + k * TR + r] = b + r < rows ? w[(b + r) * K + k] : 0.0f;
}

void conv_kernel_gemm_avx2(const float *wp, int64_t K, int64_t o0, int64_t o1, const float *bias, const float *bpacked,
                           int64_t ncols, float *out, int64_t ldc) {
    const int64_t strips = (ncols + NR - 1) / NR;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = ply_min_i64(KC, K - k0);
        for (int64_t s = 0; s < strips; s++) {
            const int64_t left = ply_min_i64(NR, ncols - s * NR);
            const float *b = bpacked + (s * K + k0) * NR;
            for (int64_t o = o0; o < o1; o += TR) {
                const int64_t R = ply_min_i64(TR, o1 - o);
                for (int64_t h = 0; h < left; h += 16) {
                    const int64_t nc = ply_min_i64(16, left - h);
                    // the next block of weights into L1 while the first half runs (PREFETCH)
                    const float *pf = PREFETCH && h == 0 && o + TR < o1 ? wp + (o + TR) * K + k0 * TR : NULL;
                    tiles[R][nc > 8](kc, wp + o * K + k0 * TR, b + h, out + (o - o0) * ldc + s * NR + h, ldc, nc,
                                     k0 == 0, bias ? bias + o : NULL, pf);
                }
            }
        }
    }
}
#else
size_t conv_kernel_avx2_packed_floats(int64_t rows, int64_t K) { return (size_t)((rows + TR - 1) / TR * TR * K); }
void conv_kernel_avx2_pack(const float *w, int64_t rows, int64_t K, float *wp) { (void)w; (void)rows; (void)K; (void)wp; }
void conv_kernel_gemm_avx2(const float *wp, int64_t K, int64_t o0, int64_t o1, const float *bias, const float *bpacked,
                           int64_t ncols, float *out, int64_t ldc) {
    (void)wp; (void)K; (void)o0; (void)o1; (void)bias; (void)bpacked; (void)ncols; (void)out; (void)ldc;
}
#endif
