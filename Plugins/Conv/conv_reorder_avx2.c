/*
 * NCHW <-> NCHW16c at the AVX2 level: 8 x 8 tiles of positions and channels transposed in registers
 * (see conv_reorder_avx2.h).
 *
 * A unit's positions go in tiles of 8, each half of its block (channels 0-7, then 8-15) in turn: 8 rows of
 * 8 floats read, transposed, 8 rows written, so both sides move whole vectors. When P >= 8 the last tile
 * starts at P - 8 and overlaps the one before (it rewrites those positions with the same floats), so every
 * tile is whole; only a plane of fewer than 8 positions (P < 8) is masked: _mm256_maskload_ps reads NCHW
 * rows (masked lanes are not touched), _mm256_maskstore_ps writes them (microcoded on AMD Zen, so there
 * only). A half past the block's real channels is stored as zeros (in) or skipped (out), and rows of it
 * past C are never read.
 */
#include "plugin_support.h"

#include "conv_reorder_avx2.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "conv_avx2.h"

// r[i] lane j = r[j] lane i before: an 8 x 8 transpose in registers (pairs of rows interleaved, pairs of
// pairs combined within each 128-bit half, then the halves of rows i and i + 4 exchanged).
PLY_TARGET_AVX2 static inline __attribute__((always_inline)) void transpose8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        s[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(s[i], s[4 + i], 0x20);
        r[4 + i] = _mm256_permute2f128_ps(s[i], s[4 + i], 0x31);
    }
}

PLY_TARGET_AVX2 void conv_reorder_in_avx2(float *dst, const float *src, int64_t C, int64_t P, int64_t begin,
                                          int64_t end) {
    const int64_t CB = (C + 15) / 16, np = P < 8 ? P : 8; // positions per tile
    const __m256i m = conv_lanes8(np);
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t u = begin; u < end; u++) {
        const int64_t n = u / CB, c0 = u % CB * 16, lanes = ply_min_i64(16, C - c0);
        const float *x = src + (n * C + c0) * P;
        float *blk = dst + u * P * 16;
        for (int64_t p0 = 0; p0 < P; p0 += 8) {
            const int64_t p = P >= 8 && p0 + 8 > P ? P - 8 : p0; // the last tile overlaps the one before
            for (int64_t h = 0; h < 16; h += 8) {
                __m256 r[8];
                if (h < lanes) { // rows h + l of the block's planes, zeros past its real channels
                    for (int64_t l = 0; l < 8; l++) {
                        const float *row = x + (h + l) * P + p;
                        r[l] = h + l >= lanes ? zero : np == 8 ? _mm256_loadu_ps(row) : _mm256_maskload_ps(row, m);
                    }
                    transpose8(r);
                } else {
                    for (int i = 0; i < 8; i++) r[i] = zero;
                }
                for (int64_t i = 0; i < np; i++) _mm256_storeu_ps(blk + (p + i) * 16 + h, r[i]);
            }
        }
    }
}

PLY_TARGET_AVX2 void conv_reorder_out_avx2(float *dst, const float *src, int64_t C, int64_t P, int64_t begin,
                                           int64_t end) {
    const int64_t CB = (C + 15) / 16, np = P < 8 ? P : 8; // positions per tile
    const __m256i m = conv_lanes8(np);
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t u = begin; u < end; u++) {
        const int64_t n = u / CB, c0 = u % CB * 16, lanes = ply_min_i64(16, C - c0);
        const float *blk = src + u * P * 16;
        float *y = dst + (n * C + c0) * P;
        for (int64_t p0 = 0; p0 < P; p0 += 8) {
            const int64_t p = P >= 8 && p0 + 8 > P ? P - 8 : p0; // the last tile overlaps the one before
            for (int64_t h = 0; h < lanes; h += 8) {
                __m256 r[8];
                for (int64_t i = 0; i < 8; i++) r[i] = i < np ? _mm256_loadu_ps(blk + (p + i) * 16 + h) : zero;
                transpose8(r);
                for (int64_t l = 0; l < 8 && h + l < lanes; l++) {
                    float *row = y + (h + l) * P + p;
                    if (np == 8) _mm256_storeu_ps(row, r[l]);
                    else _mm256_maskstore_ps(row, m, r[l]);
                }
            }
        }
    }
}
#else
void conv_reorder_in_avx2(float *dst, const float *src, int64_t C, int64_t P, int64_t begin, int64_t end) {
    (void)dst; (void)src; (void)C; (void)P; (void)begin; (void)end;
}
void conv_reorder_out_avx2(float *dst, const float *src, int64_t C, int64_t P, int64_t begin, int64_t end) {
    (void)dst; (void)src; (void)C; (void)P; (void)begin; (void)end;
}
#endif
