/*
 * SIMD helpers shared by the plugins' AVX2 and AVX-512 kernels (pooling_x86.c, linear_gemv.c, the Conv
 * family through conv_avx2.h, conv_blocked.c and conv_kernel.c). Private to the plugins; static inline
 * functions compiled for their level (PLY_TARGET_AVX2 / PLY_TARGET_AVX512), each file compiling its own
 * copy. x86-64 only: include it inside `#if PLY_HAVE_X86_TARGETS`, after plugin_support.h and
 * <immintrin.h>.
 */
#ifndef PLY_PLUGIN_SIMD_H
#define PLY_PLUGIN_SIMD_H

#include <stdint.h>

#include "plugin_support.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

/** Lanes [0, n) of 8 set (n clamped to 0..8): the mask _mm256_maskload_ps and _mm256_maskstore_ps take
 *  for a part-filled vector. A masked-off lane is neither read nor written, so a vector may straddle the
 *  end of a buffer. */
PLY_TARGET_AVX2 static inline __m256i ply_lanes8(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 0 ? 0 : n > 8 ? 8 : n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/** r[i][j] = r[j][i]: a 16 x 16 transpose in registers (pairs of rows interleaved, then pairs of pairs,
 *  then 128-bit quarters twice). */
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void ply_transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);
    }
}
#endif

#endif
