/*
 * conv_stem.c's register tiles at the AVX2 level: 6 output channels x 2 vectors of 8 (see
 * conv_stem_avx2.h).
 */
#include "plugin_support.h"

#include "conv_stem_avx2.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "plugin_simd.h"

#define B CONV_STEM_AVX2_ROWS
#define VMAX CONV_STEM_AVX2_VECTORS

// R and V are constants in each instance (the loops over them unroll, the accumulators stay in registers).
PLY_TARGET_AVX2 static inline __attribute__((always_inline)) void tile(const int R, const int V, int64_t T,
                                                                      const float *a, const int32_t *off,
                                                                      const float *const d[3], float *const y[3],
                                                                      int64_t P, const int64_t left[3],
                                                                      const float *bias, int relu) {
    __m256 c[B][VMAX];
    for (int r = 0; r < B; r++)
        for (int v = 0; v < VMAX; v++) c[r][v] = _mm256_setzero_ps();
    const float *d0 = d[0], *d1 = d[1];
    for (int64_t t = 0; t < T; t++, a += B) {
        const __m256 b0 = _mm256_loadu_ps(d0 + off[t]);
        const __m256 b1 = V >= 2 ? _mm256_loadu_ps(d1 + off[t]) : b0;
        for (int r = 0; r < R; r++) {
            const __m256 av = _mm256_broadcast_ss(a + r);
            c[r][0] = _mm256_fmadd_ps(av, b0, c[r][0]);
            if (V >= 2) c[r][1] = _mm256_fmadd_ps(av, b1, c[r][1]);
        }
    }
    const __m256 zero = _mm256_setzero_ps();
    for (int v = 0; v < V; v++) {
        const __m256i m = ply_lanes8(left[v]);
        for (int r = 0; r < R; r++) {
            __m256 s = _mm256_add_ps(c[r][v], _mm256_set1_ps(bias ? bias[r] : 0.0f));
            if (relu) s = _mm256_and_ps(s, _mm256_cmp_ps(s, zero, _CMP_NLE_UQ));
            _mm256_maskstore_ps(y[v] + r * P, m, s);
        }
    }
}

typedef void (*tile_fn)(int64_t, const float *, const int32_t *, const float *const[3], float *const[3], int64_t,
                        const int64_t[3], const float *, int);
#define TILE_FN(R, V)                                                                                                 \
    PLY_TARGET_AVX2 static void tile##R##_##V(int64_t T, const float *a, const int32_t *off, const float *const d[3], \
                                              float *const y[3], int64_t P, const int64_t left[3], const float *bias, \
                                              int relu) {                                                             \
        tile(R, V, T, a, off, d, y, P, left, bias, relu);                                                             \
    }
#define TILE_FNS(R) TILE_FN(R, 1) TILE_FN(R, 2)
TILE_FNS(1) TILE_FNS(2) TILE_FNS(3) TILE_FNS(4) TILE_FNS(5) TILE_FNS(6)
#define TILE_ROW(R) {tile##R##_1, tile##R##_2}
// tiles[R - 1][V - 1]
static const tile_fn tiles[B][VMAX] = {TILE_ROW(1), TILE_ROW(2), TILE_ROW(3), TILE_ROW(4), TILE_ROW(5), TILE_ROW(6)};

void conv_stem_tile_avx2(int R, int V, int64_t T, const float *a, const int32_t *off, const float *const d[3],
                         float *const y[3], int64_t P, const int64_t left[3], const float *bias, int relu) {
    tiles[R - 1][V - 1](T, a, off, d, y, P, left, bias, relu);
}
#else
void conv_stem_tile_avx2(int R, int V, int64_t T, const float *a, const int32_t *off, const float *const d[3],
                         float *const y[3], int64_t P, const int64_t left[3], const float *bias, int relu) {
    (void)R; (void)V; (void)T; (void)a; (void)off; (void)d; (void)y; (void)P; (void)left; (void)bias; (void)relu;
}
#endif
