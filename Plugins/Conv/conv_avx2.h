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

#include "plugin_simd.h"

/** Lanes [0, n) of 8 set (plugin_simd.h's ply_lanes8). */
PLY_TARGET_AVX2 static inline __m256i conv_lanes8(int64_t n) { return ply_lanes8(n); }
#endif

#endif
