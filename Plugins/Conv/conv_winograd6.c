/*
 * Winograd F(6x6, 3x3)'s three transforms (see conv_winograd.h; the plans and products are in
 * conv_winograd.c). The matrices are ncnn's (src/layer/x86/convolution_3x3_winograd.h,
 * "winograd63"): interpolation points 0, +-1, +-2, +-1/2 and infinity, with G's rows scaled so
 * that B^T's entries stay within 5.25 and A^T's within 32:
 *
 *   B^T = [1   0    -21/4   0     21/4   0    -1  0]   G = [  1      0      0   ]
 *         [0   1     1    -17/4  -17/4   1     1  0]       [-2/9   -2/9   -2/9  ]
 *         [0  -1     1     17/4  -17/4  -1     1  0]       [-2/9    2/9   -2/9  ]
 *         [0  1/2   1/4   -5/2   -5/4    2     1  0]       [1/90   1/45   2/45  ]
 *         [0 -1/2   1/4    5/2   -5/4   -2     1  0]       [1/90  -1/45   2/45  ]
 *         [0   2     4    -5/2   -5     1/2    1  0]       [1/45   1/90   1/180 ]
 *         [0  -2     4     5/2   -5    -1/2    1  0]       [1/45  -1/90   1/180 ]
 *         [0  -1     0     21/4   0    -21/4   0  1]       [  0      0      1   ]
 *
 *   A^T = [1  1   1   1    1   32   32  0]
 *         [0  1  -1   2   -2   16  -16  0]
 *         [0  1   1   4    4    8    8  0]
 *         [0  1  -1   8   -8    4   -4  0]
 *         [0  1   1  16   16    2    2  0]
 *         [0  1  -1  32  -32    1   -1  1]
 *
 * Y (6x6) = A^T [ (G g G^T) .* (B^T d B) ] A for an 8x8 patch d and a 3x3 kernel g (checked
 * against the direct sum in double). 64 products per 36 outputs: 1.78 per output against
 * F(4x4)'s 2.25 and F(2x2)'s 4, at a larger rounding error (the entries reach 32 instead of
 * F(4x4)'s 2.83): conv_winograd_tile picks it only where the goldens were measured to hold.
 *
 * Vectors hold 16 tiles of one tile row (conv_wino_segment): a patch row of 16 tiles is 98
 * consecutive input columns. Column 6t + j of every tile t: the even and odd columns of six
 * loads (one permute per pair), then every third of those (6t + 2k = even[3t + k],
 * 6t + 2k + 1 = odd[3t + k]: one two-source permute and one masked one-source permute for the
 * third vector), and columns 6, 7 = columns 0, 1 of the next tile (a one-lane shift with the
 * columns 96, 97). The output's six columns per tile are interleaved back the same way, reversed.
 */
#include "plugin_support.h"

#include "conv_winograd.h"

#include <string.h>

#include "conv_kernel.h"

#define NR CONV_KERNEL_NR

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "conv_winograd_x86.h"

// Bits e in [0, n) (0 <= n <= 128) of a 128-bit mask (lo: bits 0..63, hi: 64..127) with 0 <= base + e < limit.
static void lanes128(int64_t base, int64_t n, int64_t limit, uint64_t *lo_bits, uint64_t *hi_bits) {
    int64_t lo = ply_max_i64(0, -base), hi = ply_min_i64(n, limit - base);
    *lo_bits = *hi_bits = 0;
    for (int half = 0; half < 2; half++) {
        int64_t a = ply_max_i64(lo, 64 * half) - 64 * half, b = ply_min_i64(hi, 64 * half + 64) - 64 * half;
        if (b <= a) continue;
        uint64_t m = (b >= 64 ? ~0ull : (1ull << b) - 1) & ~((1ull << a) - 1);
        if (half) *hi_bits = m;
        else *lo_bits = m;
    }
}

// U for output channels [o0, o1): G g G^T, 16 input channels at a time.
PLY_TARGET_AVX512 void conv_wino6_weights(const conv_geom *g, const float *w, int64_t o0, int64_t o1, float *U) {
    const int64_t C = g->C, OC = g->OC;
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(9));
    const __m512 zero = _mm512_setzero_ps();
    const __m512 k29 = _mm512_set1_ps(2.0f / 9), k145 = _mm512_set1_ps(1.0f / 45), k245 = _mm512_set1_ps(2.0f / 45);
    const __m512 k190 = _mm512_set1_ps(1.0f / 90), k1180 = _mm512_set1_ps(1.0f / 180);
    for (int64_t oc = o0; oc < o1; oc++)
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
            __mmask16 m = conv_wino_first_lanes(C - c0);
            const float *src = w + (oc * C + c0) * 9;
            __m512 a[3][8];
            // G r for one 3-vector r: the 8 rows of G above
#define G8(r0, r1, r2, out)                                                                                            \
    do {                                                                                                               \
        __m512 s02 = _mm512_add_ps(r0, r2);                                                                            \
        __m512 p = _mm512_mul_ps(_mm512_add_ps(s02, r1), k29), q = _mm512_mul_ps(_mm512_sub_ps(s02, r1), k29);         \
        __m512 u = _mm512_fmadd_ps(r0, k190, _mm512_mul_ps(r2, k245)), v = _mm512_mul_ps(r1, k145);                    \
        __m512 x = _mm512_fmadd_ps(r0, k145, _mm512_mul_ps(r2, k1180)), y = _mm512_mul_ps(r1, k190);                   \
        out[0] = r0;                                                                                                   \
        out[1] = _mm512_sub_ps(zero, p);                                                                               \
        out[2] = _mm512_sub_ps(zero, q);                                                                               \
        out[3] = _mm512_add_ps(u, v);                                                                                  \
        out[4] = _mm512_sub_ps(u, v);                                                                                  \
        out[5] = _mm512_add_ps(x, y);                                                                                  \
        out[6] = _mm512_sub_ps(x, y);                                                                                  \
        out[7] = r2;                                                                                                   \
    } while (0)
            for (int r = 0; r < 3; r++) { // g G^T: row r of the kernel -> 8 values
                __m512 g0 = _mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r, 4);
                __m512 g1 = _mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r + 1, 4);
                __m512 g2 = _mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r + 2, 4);
                G8(g0, g1, g2, a[r]);
            }
            for (int j = 0; j < 8; j++) { // G (.): the same down each column
                __m512 u8[8];
                G8(a[0][j], a[1][j], a[2][j], u8);
                for (int i = 0; i < 8; i++) _mm512_mask_storeu_ps(U + ((i * 8 + j) * OC + oc) * C + c0, m, u8[i]);
            }
#undef G8
        }
}

// t = B^T d for one 8-vector d (a row of the patch, or a column of d B).
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void bt8(const __m512 d[8], __m512 t[8]) {
    const __m512 k525 = _mm512_set1_ps(5.25f), k425 = _mm512_set1_ps(-4.25f), k025 = _mm512_set1_ps(0.25f);
    const __m512 k125 = _mm512_set1_ps(-1.25f), k05 = _mm512_set1_ps(0.5f), k25 = _mm512_set1_ps(-2.5f);
    const __m512 k2 = _mm512_set1_ps(2.0f), k4 = _mm512_set1_ps(4.0f), k5 = _mm512_set1_ps(-5.0f);
    __m512 a12 = _mm512_fmadd_ps(d[4], k425, _mm512_add_ps(d[2], d[6]));                    // d2 + d6 - 4.25 d4
    __m512 b12 = _mm512_fmadd_ps(d[3], k425, _mm512_add_ps(d[1], d[5]));                    // d1 + d5 - 4.25 d3
    __m512 a34 = _mm512_fmadd_ps(d[4], k125, _mm512_fmadd_ps(d[2], k025, d[6]));            // d6 + d2/4 - 1.25 d4
    __m512 b34 = _mm512_fmadd_ps(d[5], k2, _mm512_fmadd_ps(d[3], k25, _mm512_mul_ps(d[1], k05))); // d1/2 - 2.5 d3 + 2 d5
    __m512 a56 = _mm512_fmadd_ps(d[4], k5, _mm512_fmadd_ps(d[2], k4, d[6]));                // 4 d2 - 5 d4 + d6
    __m512 b56 = _mm512_fmadd_ps(d[5], k05, _mm512_fmadd_ps(d[3], k25, _mm512_mul_ps(d[1], k2))); // 2 d1 - 2.5 d3 + d5/2
    t[0] = _mm512_fmadd_ps(_mm512_sub_ps(d[4], d[2]), k525, _mm512_sub_ps(d[0], d[6]));
    t[1] = _mm512_add_ps(a12, b12);
    t[2] = _mm512_sub_ps(a12, b12);
    t[3] = _mm512_add_ps(a34, b34);
    t[4] = _mm512_sub_ps(a34, b34);
    t[5] = _mm512_add_ps(a56, b56);
    t[6] = _mm512_sub_ps(a56, b56);
    t[7] = _mm512_fmadd_ps(_mm512_sub_ps(d[3], d[5]), k525, _mm512_sub_ps(d[7], d[1]));
}

// o = A^T r for one 8-vector r.
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void at8(const __m512 r[8], __m512 o[6]) {
    const __m512 k2 = _mm512_set1_ps(2.0f), k4 = _mm512_set1_ps(4.0f), k8 = _mm512_set1_ps(8.0f);
    const __m512 k16 = _mm512_set1_ps(16.0f), k32 = _mm512_set1_ps(32.0f);
    __m512 a = _mm512_add_ps(r[1], r[2]), b = _mm512_add_ps(r[3], r[4]), c = _mm512_add_ps(r[5], r[6]);
    __m512 p = _mm512_sub_ps(r[1], r[2]), q = _mm512_sub_ps(r[3], r[4]), s = _mm512_sub_ps(r[5], r[6]);
    o[0] = _mm512_fmadd_ps(c, k32, _mm512_add_ps(_mm512_add_ps(r[0], a), b));
    o[1] = _mm512_fmadd_ps(s, k16, _mm512_fmadd_ps(q, k2, p));
    o[2] = _mm512_fmadd_ps(c, k8, _mm512_fmadd_ps(b, k4, a));
    o[3] = _mm512_fmadd_ps(s, k4, _mm512_fmadd_ps(q, k8, p));
    o[4] = _mm512_fmadd_ps(c, k2, _mm512_fmadd_ps(b, k16, a));
    o[5] = _mm512_add_ps(_mm512_fmadd_ps(q, k32, _mm512_add_ps(r[7], p)), s);
}

// Lane t: 3t + k (k = 0, 1, 2); its low 5 bits index a two-source permute, its low 4 bits the third source.
static const int32_t THIRDS[3][16] = {{0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45},
                                      {1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 37, 40, 43, 46},
                                      {2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32, 35, 38, 41, 44, 47}};
// Lanes with 3t + k >= 32: from the third source.
static const __mmask16 THIRDS_HIGH[3] = {0xF800, 0xF800, 0xFC00};

PLY_TARGET_AVX512 void conv_wino6_input(const conv_geom *g, const conv_wino_plan *p, const float *x, int64_t cbase,
                                        int64_t t0, int64_t t1, int64_t c0, int64_t c1, float *V) {
    const int64_t C = g->C, H = g->H, W = g->W, HW = H * W, strips = p->tc / NR;
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512i i3[3];
    for (int k = 0; k < 3; k++) i3[k] = _mm512_loadu_si512(THIRDS[k]);
    for (int64_t t = t0; t < t1;) {
        int64_t n, th, tw, cnt;
        conv_wino_segment(p, t, t1, cbase, &n, &th, &tw, &cnt);
        const int64_t rel = t - cbase, strip = rel / NR, lane = rel % NR, base = 6 * tw - g->PW;
        const __mmask16 km = conv_wino_first_lanes(cnt);
        uint64_t ml, mh; // input columns [base, base + 6 cnt + 2) inside the row
        lanes128(base, 6 * cnt + 2, W, &ml, &mh);
        for (int64_t c = c0; c < c1; c++) {
            const float *xc = x + (n * C + c) * HW;
            __m512 e[8][8];
            for (int r = 0; r < 8; r++) {
                int64_t ih = 6 * th - g->PH + r;
                __m512 d[8];
                if (ih < 0 || ih >= H) {
                    for (int k = 0; k < 8; k++) d[k] = _mm512_setzero_ps();
                } else {
                    const float *row = xc + ih * W + base;
                    __m512 a0 = _mm512_maskz_loadu_ps((__mmask16)ml, row);
                    __m512 a1 = _mm512_maskz_loadu_ps((__mmask16)(ml >> 16), row + 16);
                    __m512 a2 = _mm512_maskz_loadu_ps((__mmask16)(ml >> 32), row + 32);
                    __m512 a3 = _mm512_maskz_loadu_ps((__mmask16)(ml >> 48), row + 48);
                    __m512 a4 = _mm512_maskz_loadu_ps((__mmask16)mh, row + 64);
                    __m512 a5 = _mm512_maskz_loadu_ps((__mmask16)(mh >> 16), row + 80);
                    __m512 tl = _mm512_maskz_loadu_ps((__mmask16)(mh >> 32), row + 96); // columns 96, 97
                    // even[i] = column 2i, odd[i] = column 2i + 1, i < 48, as three vectors each
                    __m512 ev0 = _mm512_permutex2var_ps(a0, ie, a1), od0 = _mm512_permutex2var_ps(a0, io, a1);
                    __m512 ev1 = _mm512_permutex2var_ps(a2, ie, a3), od1 = _mm512_permutex2var_ps(a2, io, a3);
                    __m512 ev2 = _mm512_permutex2var_ps(a4, ie, a5), od2 = _mm512_permutex2var_ps(a4, io, a5);
                    for (int k = 0; k < 3; k++) { // columns 6t + 2k, 6t + 2k + 1
                        __m512 dv = _mm512_permutex2var_ps(ev0, i3[k], ev1);
                        __m512 dw = _mm512_permutex2var_ps(od0, i3[k], od1);
                        d[2 * k] = _mm512_mask_permutexvar_ps(dv, THIRDS_HIGH[k], i3[k], ev2);
                        d[2 * k + 1] = _mm512_mask_permutexvar_ps(dw, THIRDS_HIGH[k], i3[k], od2);
                    }
                    __m512i tli = _mm512_castps_si512(tl);
                    d[6] = _mm512_castsi512_ps(_mm512_alignr_epi32(tli, _mm512_castps_si512(d[0]), 1)); // 6t + 6
                    d[7] = _mm512_castsi512_ps(
                        _mm512_alignr_epi32(_mm512_alignr_epi32(tli, tli, 1), _mm512_castps_si512(d[1]), 1)); // 6t + 7
                }
                bt8(d, e[r]); // d B, along the row
            }
            for (int j = 0; j < 8; j++) { // B^T (.), down each column
                __m512 col[8] = {e[0][j], e[1][j], e[2][j], e[3][j], e[4][j], e[5][j], e[6][j], e[7][j]}, v[8];
                bt8(col, v);
                for (int i = 0; i < 8; i++)
                    _mm512_mask_storeu_ps(V + (((i * 8 + j) * strips + strip) * C + c) * NR + lane, km, v[i]);
            }
        }
        t += cnt;
    }
    // the last strip's lanes past the chunk's tiles: read by the kernel, never stored; zeros
    // rather than whatever the scratch held (which could be slow denormals)
    const int64_t used = t1 - cbase;
    if (used % NR) // t1 ends the chunk: every caller transforms whole chunks (input_tf in conv_winograd.c)
        for (int64_t xi = 0; xi < p->xi; xi++)
            for (int64_t c = c0; c < c1; c++)
                memset(V + ((xi * strips + used / NR) * C + c) * NR + used % NR, 0, (size_t)(NR - used % NR) * sizeof(float));
}

// Output lane l of vector q (column i = 16 q + l of the evens or the odds): tile i / 3 of source
// i % 3 (0: the first permute source, 1: the second, 2: the masked third).
static const int32_t MERGE[3][16] = {{0, 16, 0, 1, 17, 1, 2, 18, 2, 3, 19, 3, 4, 20, 4, 5},
                                     {21, 5, 6, 22, 6, 7, 23, 7, 8, 24, 8, 9, 25, 9, 10, 26},
                                     {10, 11, 27, 11, 12, 28, 12, 13, 29, 13, 14, 30, 14, 15, 31, 15}};
static const __mmask16 MERGE_THIRD[3] = {0x4924, 0x2492, 0x9249};

PLY_TARGET_AVX512 void conv_wino6_output(const conv_geom *g, const conv_wino_plan *p, const float *M, int64_t cbase,
                                         int64_t t0, int64_t t1, int64_t o0, int64_t o1, const float *bias, int relu,
                                         float *y) {
    const int64_t OC = g->OC, OH = g->OH, OW = g->OW, ldm = p->tc;
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 zero = _mm512_setzero_ps();
    __m512i mi[3];
    for (int q = 0; q < 3; q++) mi[q] = _mm512_loadu_si512(MERGE[q]);
    for (int64_t t = t0; t < t1;) {
        int64_t n, th, tw, cnt;
        conv_wino_segment(p, t, t1, cbase, &n, &th, &tw, &cnt);
        const int64_t rel = t - cbase, ow0 = 6 * tw;
        uint64_t ml, mh;
        lanes128(ow0, 6 * cnt, OW, &ml, &mh);
        const __mmask16 km = conv_wino_first_lanes(cnt);
        const __mmask16 mo[6] = {(__mmask16)ml, (__mmask16)(ml >> 16), (__mmask16)(ml >> 32), (__mmask16)(ml >> 48),
                                 (__mmask16)mh, (__mmask16)(mh >> 16)};
        for (int64_t oc = o0; oc < o1; oc++) {
            const float *mc = M + oc * ldm + rel;
            __m512 s[8][6];
            for (int i = 0; i < 8; i++) { // (.) A, along each row
                __m512 r[8];
                for (int j = 0; j < 8; j++) r[j] = _mm512_maskz_loadu_ps(km, mc + ((i * 8 + j) * OC) * ldm);
                at8(r, s[i]);
            }
            const __m512 b = _mm512_set1_ps(bias ? bias[oc] : 0.0f);
            __m512 yv[6][6]; // [output row][column in the tile]
            for (int j = 0; j < 6; j++) { // A^T (.), down each column
                __m512 col[8] = {s[0][j], s[1][j], s[2][j], s[3][j], s[4][j], s[5][j], s[6][j], s[7][j]}, o[6];
                at8(col, o);
                for (int a = 0; a < 6; a++) yv[a][j] = o[a];
            }
            for (int a = 0; a < 6 && 6 * th + a < OH; a++) {
                __m512 v[6];
                for (int j = 0; j < 6; j++) {
                    __m512 u = _mm512_add_ps(yv[a][j], b);
                    if (relu) // max(u, 0) with NaN passed through, as the fused relu everywhere
                        u = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(u, zero, _CMP_GT_OQ) |
                                                         _mm512_cmp_ps_mask(u, u, _CMP_UNORD_Q), u);
                    v[j] = u;
                }
                // out[6t + j] = v[j][t]: the evens (v0, v2, v4) and odds (v1, v3, v5) of 48 columns each,
                // then the two interleaved
                float *dst = y + ((n * OC + oc) * OH + 6 * th + a) * OW + ow0;
                for (int q = 0; q < 3; q++) {
                    __m512 ev = _mm512_mask_permutexvar_ps(_mm512_permutex2var_ps(v[0], mi[q], v[2]), MERGE_THIRD[q],
                                                           mi[q], v[4]);
                    __m512 od = _mm512_mask_permutexvar_ps(_mm512_permutex2var_ps(v[1], mi[q], v[3]), MERGE_THIRD[q],
                                                           mi[q], v[5]);
                    _mm512_mask_storeu_ps(dst + 32 * q, mo[2 * q], _mm512_permutex2var_ps(ev, lo_idx, od));
                    _mm512_mask_storeu_ps(dst + 32 * q + 16, mo[2 * q + 1], _mm512_permutex2var_ps(ev, hi_idx, od));
                }
            }
        }
        t += cnt;
    }
}
#else
typedef int conv_winograd6_unused; // F(6x6) is AVX-512 only: conv_winograd_fits is 0 here
#endif
