/*
 * SIMD helpers shared by the plugins' AVX2 kernels (pooling_x86.c, linear_gemv.c, the Conv family through
 * conv_avx2.h). Private to the plugins; static inline functions compiled for AVX2 + FMA, each file
 * compiling its own copy. x86-64 only: include it inside `#if PLY_HAVE_X86_TARGETS`, after
 * plugin_support.h and <immintrin.h>.
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
#endif

#endif
