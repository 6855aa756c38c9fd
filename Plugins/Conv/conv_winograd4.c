/*
 * Winograd F(4x4, 3x3)'s three transforms (see conv_winograd.h; the plans and products are in
 * conv_winograd.c). The matrices are ncnn's (src/layer/x86/convolution_3x3_winograd.h,
 * "winograd43"): interpolation points 0, -sqrt(2), sqrt(2), -sqrt(2)/2, sqrt(2)/2 and infinity,
 * with s = sqrt(2):
 *
 *   B^T = [1    0    -5/2   0    1  0]    G = [  1      0     0 ]    A^T = [1  1    1    1   1  0]
 *         [0   -s    -2     s/2  1  0]        [-2/3  -s/3  -1/3]          [0 s/2 -s/2   s  -s  0]
 *         [0    s    -2    -s/2  1  0]        [-2/3   s/3  -1/3]          [0 1/2  1/2   2   2  0]
 *         [0   -s/2  -1/2   s    1  0]        [ 1/6   s/6   1/3]          [0 s/4 -s/4  2s -2s  1]
 *         [0    s/2  -1/2  -s    1  0]        [ 1/6  -s/6   1/3]
 *         [0    1     0    -5/2  0  1]        [  0      0     1 ]
 *
 * Y (4x4) = A^T [ (G g G^T) .* (B^T d B) ] A for a 6x6 patch d and a 3x3 kernel g (checked
 * against the direct sum in double: 2e-15). Against the points 0, +-1, +-2 the entries stay
 * within 5/2 (B) and 2s (A) instead of 5 and 8, so less is lost to rounding.
 *
 * Vectors hold 16 tiles of one tile row (conv_wino_segment): a patch row of 16 tiles is 66
 * consecutive input columns, split into the six "column j of every tile" vectors by two rounds
 * of even/odd permutes of four loads (j = 0..3) and a one-lane shift with the columns 64, 65
 * (j = 4, 5); the output's four columns per tile are interleaved back the same way.
 */
#include "plugin_support.h"

#include "conv_winograd.h"

#include <string.h>

#include "conv_kernel.h"

#define NR CONV_KERNEL_NR

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "conv_winograd4_x86.h"
#include "conv_winograd_x86.h"

// Bits e in [lo_e, hi_e) (0 <= lo_e, hi_e <= 64) of a 64-bit mask with 0 <= base + e < limit.
static uint64_t lanes64(int64_t base, int64_t lo_e, int64_t hi_e, int64_t limit) {
    int64_t lo = ply_max_i64(lo_e, -base), hi = ply_min_i64(hi_e, limit - base);
    if (hi <= lo) return 0;
    uint64_t m = hi >= 64 ? ~0ull : (1ull << hi) - 1;
    return m & ~((1ull << lo) - 1);
}


// U for output channels [o0, o1): G g G^T, 16 input channels at a time.
PLY_TARGET_AVX512 void conv_wino4_weights(const conv_geom *g, const float *w, int64_t o0, int64_t o1, float *U) {
    const int64_t C = g->C, OC = g->OC;
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(9));
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t oc = o0; oc < o1; oc++)
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
            __mmask16 m = conv_wino_first_lanes(C - c0);
            const float *src = w + (oc * C + c0) * 9;
            __m512 a[3][6];
            for (int r = 0; r < 3; r++) { // g G^T: row r of the kernel -> 6 values
                __m512 g0 = _mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r, 4);
                __m512 g1 = _mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r + 1, 4);
                __m512 g2 = _mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r + 2, 4);
                g6(g0, g1, g2, a[r]);
            }
            for (int j = 0; j < 6; j++) { // G (.): the same down each column
                __m512 u[6];
                g6(a[0][j], a[1][j], a[2][j], u);
                for (int i = 0; i < 6; i++) _mm512_mask_storeu_ps(U + ((i * 6 + j) * OC + oc) * C + c0, m, u[i]);
            }
        }
}

PLY_TARGET_AVX512 void conv_wino4_input(const conv_geom *g, const conv_wino_plan *p, const float *x, int64_t cbase,
                                        int64_t t0, int64_t t1, int64_t c0, int64_t c1, float *V) {
    const int64_t C = g->C, H = g->H, W = g->W, HW = H * W, strips = p->tc / NR;
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int64_t t = t0; t < t1;) {
        int64_t n, th, tw, cnt;
        conv_wino_segment(p, t, t1, cbase, &n, &th, &tw, &cnt);
        const int64_t rel = t - cbase, strip = rel / NR, lane = rel % NR, base = 4 * tw - g->PW;
        const __mmask16 km = conv_wino_first_lanes(cnt);
        const int64_t span = 4 * cnt + 2; // input columns [base, base + span)
        const uint64_t ml = lanes64(base, 0, ply_min_i64(span, 64), W);
        const uint64_t mh = span > 64 ? lanes64(base + 64, 0, span - 64, W) : 0;
        for (int64_t c = c0; c < c1; c++) {
            const float *xc = x + (n * C + c) * HW;
            __m512 e[6][6];
            for (int r = 0; r < 6; r++) {
                int64_t ih = 4 * th - g->PH + r;
                __m512 d[6];
                if (ih < 0 || ih >= H) {
                    for (int k = 0; k < 6; k++) d[k] = _mm512_setzero_ps();
                } else {
                    const float *row = xc + ih * W + base;
                    __m512 a0 = _mm512_maskz_loadu_ps((__mmask16)ml, row);
                    __m512 a1 = _mm512_maskz_loadu_ps((__mmask16)(ml >> 16), row + 16);
                    __m512 a2 = _mm512_maskz_loadu_ps((__mmask16)(ml >> 32), row + 32);
                    __m512 a3 = _mm512_maskz_loadu_ps((__mmask16)(ml >> 48), row + 48);
                    __m512 tl = _mm512_maskz_loadu_ps((__mmask16)mh, row + 64); // columns 64, 65
                    __m512 e01 = _mm512_permutex2var_ps(a0, ie, a1), o01 = _mm512_permutex2var_ps(a0, io, a1);
                    __m512 e23 = _mm512_permutex2var_ps(a2, ie, a3), o23 = _mm512_permutex2var_ps(a2, io, a3);
                    d[0] = _mm512_permutex2var_ps(e01, ie, e23); // columns 4t
                    d[2] = _mm512_permutex2var_ps(e01, io, e23); // 4t + 2
                    d[1] = _mm512_permutex2var_ps(o01, ie, o23); // 4t + 1
                    d[3] = _mm512_permutex2var_ps(o01, io, o23); // 4t + 3
                    __m512i tli = _mm512_castps_si512(tl);
                    d[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(tli, _mm512_castps_si512(d[0]), 1)); // 4t + 4
                    d[5] = _mm512_castsi512_ps(
                        _mm512_alignr_epi32(_mm512_alignr_epi32(tli, tli, 1), _mm512_castps_si512(d[1]), 1)); // 4t + 5
                }
                bt6(d, e[r]); // d B, along the row
            }
            for (int j = 0; j < 6; j++) { // B^T (.), down each column
                __m512 col[6] = {e[0][j], e[1][j], e[2][j], e[3][j], e[4][j], e[5][j]}, v[6];
                bt6(col, v);
                for (int i = 0; i < 6; i++)
                    _mm512_mask_storeu_ps(V + (((i * 6 + j) * strips + strip) * C + c) * NR + lane, km, v[i]);
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

PLY_TARGET_AVX512 void conv_wino4_output(const conv_geom *g, const conv_wino_plan *p, const float *M, int64_t cbase,
                                         int64_t t0, int64_t t1, int64_t o0, int64_t o1, const float *bias, int relu,
                                         float *y) {
    const int64_t OC = g->OC, OH = g->OH, OW = g->OW, ldm = p->tc;
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t t = t0; t < t1;) {
        int64_t n, th, tw, cnt;
        conv_wino_segment(p, t, t1, cbase, &n, &th, &tw, &cnt);
        const int64_t rel = t - cbase, ow0 = 4 * tw;
        const uint64_t mo = lanes64(ow0, 0, 4 * cnt, OW);
        const __mmask16 km = conv_wino_first_lanes(cnt);
        for (int64_t oc = o0; oc < o1; oc++) {
            const float *mc = M + oc * ldm + rel;
            __m512 s[6][4];
            for (int i = 0; i < 6; i++) { // (.) A, along each row
                __m512 r[6];
                for (int j = 0; j < 6; j++) r[j] = _mm512_maskz_loadu_ps(km, mc + ((i * 6 + j) * OC) * ldm);
                at6(r, s[i]);
            }
            const __m512 b = _mm512_set1_ps(bias ? bias[oc] : 0.0f);
            __m512 yv[4][4]; // [output row][column in the tile]
            for (int j = 0; j < 4; j++) { // A^T (.), down each column
                __m512 col[6] = {s[0][j], s[1][j], s[2][j], s[3][j], s[4][j], s[5][j]}, o[4];
                at6(col, o);
                for (int a = 0; a < 4; a++) yv[a][j] = o[a];
            }
            for (int a = 0; a < 4 && 4 * th + a < OH; a++) {
                __m512 v[4];
                for (int j = 0; j < 4; j++) {
                    __m512 u = _mm512_add_ps(yv[a][j], b);
                    if (relu) // max(u, 0) with NaN passed through, as the fused relu everywhere
                        u = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(u, zero, _CMP_GT_OQ) |
                                                         _mm512_cmp_ps_mask(u, u, _CMP_UNORD_Q), u);
                    v[j] = u;
                }
                // out[4t + j] = v[j][t]: interleave (0, 2) and (1, 3), then the two results
                __m512 u_lo = _mm512_permutex2var_ps(v[0], lo_idx, v[2]), u_hi = _mm512_permutex2var_ps(v[0], hi_idx, v[2]);
                __m512 w_lo = _mm512_permutex2var_ps(v[1], lo_idx, v[3]), w_hi = _mm512_permutex2var_ps(v[1], hi_idx, v[3]);
                float *dst = y + ((n * OC + oc) * OH + 4 * th + a) * OW + ow0;
                _mm512_mask_storeu_ps(dst, (__mmask16)mo, _mm512_permutex2var_ps(u_lo, lo_idx, w_lo));
                _mm512_mask_storeu_ps(dst + 16, (__mmask16)(mo >> 16), _mm512_permutex2var_ps(u_lo, hi_idx, w_lo));
                _mm512_mask_storeu_ps(dst + 32, (__mmask16)(mo >> 32), _mm512_permutex2var_ps(u_hi, lo_idx, w_hi));
                _mm512_mask_storeu_ps(dst + 48, (__mmask16)(mo >> 48), _mm512_permutex2var_ps(u_hi, hi_idx, w_hi));
            }
        }
        t += cnt;
    }
}
#else
typedef int conv_winograd4_unused; // F(4x4) is AVX-512 only: conv_winograd_fits is 0 here
#endif
