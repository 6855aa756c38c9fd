/*
 * Helpers shared by the Conv family's AVX2 kernels (conv_1x1_avx2.c, conv_kernel_avx2.c,
 * conv_winograd4_avx2.c). Private to the family; static inline AVX2 functions, each file compiling its
 * own copy. x86-64 only (include it inside `#if PLY_HAVE_X86_TARGETS`).
 */
#ifndef PLY_CONV_AVX2_H
#define PLY_CONV_AVX2_H

#include <stdint.h>

#include "plugin_support.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

/** Lanes [0, n) of 8 set (n clamped to 0..8): the mask _mm256_maskload_ps and _mm256_maskstore_ps take for a
 *  part-filled vector. */
PLY_TARGET_AVX2 static inline __m256i conv_lanes8(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 0 ? 0 : n > 8 ? 8 : n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

#endif
