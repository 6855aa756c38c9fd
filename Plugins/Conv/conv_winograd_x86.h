/*
 * AVX-512 pieces the Winograd files share (conv_winograd.c, conv_winograd4.c, conv_winograd6.c,
 * conv_winograd_wgrad.c): lane masks and F(2x2)'s input transform of one tile row, 16 tiles at a
 * time. Private to the Conv family; static inline, so each file compiles its own copy into its
 * own AVX-512 functions. x86-64 only (include it inside `#if PLY_HAVE_X86_TARGETS`).
 *
 * F(2x2, 3x3):  B^T = [1  0 -1  0]
 *                     [0  1  1  0]
 *                     [0 -1  1  0]
 *                     [0  1  0 -1]
 */
#ifndef PLY_CONV_WINOGRAD_X86_H
#define PLY_CONV_WINOGRAD_X86_H

#include <stdint.h>

#include "plugin_support.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

/** Bits e in [0, n) (n <= 32) with 0 <= base + e < limit. */
static inline uint32_t conv_wino_lanes_in(int64_t base, int64_t n, int64_t limit) {
    int64_t lo = ply_max_i64(0, -base), hi = ply_min_i64(n, limit - base);
    if (hi <= lo) return 0;
    uint64_t m = ((hi >= 64 ? ~0ull : (1ull << hi) - 1)) & ~((1ull << lo) - 1);
    return (uint32_t)m;
}

/** The first min(n, 16) of 16 lanes (n >= 0). */
static inline __mmask16 conv_wino_first_lanes(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

/**
 * F(2x2)'s 4x4 input patches of up to 16 consecutive tiles of one tile row, in one channel's plane
 * xc [H][W]: d[r][s], lane l = xc[ih0 + r][base + 2*l + s], zeros outside the plane, with
 * ma = conv_wino_lanes_in(base, 2*cnt, W) and mb = conv_wino_lanes_in(base + 2, 2*cnt, W) for
 * cnt tiles (lanes past cnt are zeros). Each row is two masked loads of 32 floats at base and two
 * at base + 2, taken apart into their even and odd lanes.
 */
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void
conv_wino2_patches(const float *xc, int64_t H, int64_t W, int64_t ih0, int64_t base, uint32_t ma, uint32_t mb,
                   __m512 d[4][4]) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int r = 0; r < 4; r++) {
        int64_t ih = ih0 + r;
        if (ih < 0 || ih >= H) {
            d[r][0] = d[r][1] = d[r][2] = d[r][3] = _mm512_setzero_ps();
        } else {
            const float *row = xc + ih * W + base;
            __m512 a0 = _mm512_maskz_loadu_ps((__mmask16)ma, row);
            __m512 a1 = _mm512_maskz_loadu_ps((__mmask16)(ma >> 16), row + 16);
            __m512 b0 = _mm512_maskz_loadu_ps((__mmask16)mb, row + 2);
            __m512 b1 = _mm512_maskz_loadu_ps((__mmask16)(mb >> 16), row + 18);
            d[r][0] = _mm512_permutex2var_ps(a0, ie, a1);
            d[r][1] = _mm512_permutex2var_ps(a0, io, a1);
            d[r][2] = _mm512_permutex2var_ps(b0, ie, b1);
            d[r][3] = _mm512_permutex2var_ps(b0, io, b1);
        }
    }
}

/** F(2x2)'s v = B^T d B of 16 tiles' patches d[r][s] (lane by lane): v[i][j] is element xi = 4*i + j. */
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void conv_wino2_btdb(__m512 d[4][4], __m512 v[4][4]) {
    __m512 e[4][4];
    for (int r = 0; r < 4; r++) { // d B, along the row
        e[r][0] = _mm512_sub_ps(d[r][0], d[r][2]);
        e[r][1] = _mm512_add_ps(d[r][1], d[r][2]);
        e[r][2] = _mm512_sub_ps(d[r][2], d[r][1]);
        e[r][3] = _mm512_sub_ps(d[r][1], d[r][3]);
    }
    for (int j = 0; j < 4; j++) { // B^T (.), down each column
        v[0][j] = _mm512_sub_ps(e[0][j], e[2][j]);
        v[1][j] = _mm512_add_ps(e[1][j], e[2][j]);
        v[2][j] = _mm512_sub_ps(e[2][j], e[1][j]);
        v[3][j] = _mm512_sub_ps(e[1][j], e[3][j]);
    }
}
#endif

#endif
