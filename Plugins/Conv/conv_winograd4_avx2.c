/*
 * Winograd F(4x4, 3x3)'s three transforms at the AVX2 level (the matrices and the AVX-512 versions
 * are in conv_winograd4.c; the plans and products in conv_winograd.c, whose products run through
 * conv_kernel_avx2.c here). The same operations in the same order as the AVX-512 ones, on 8 lanes
 * instead of 16, so U, V and the outputs are the same bits at both levels.
 *
 * Vectors hold 8 tiles of one tile row: a segment of conv_wino_segment (at most 16 tiles) is done as
 * two halves. The patch row of 8 tiles is 34 consecutive input columns q = 4t + j (t < 8, j < 6):
 * four loads of 8 (columns 0..31) are regrouped by 128-bit halves into [tile t | tile t+4] pairs and
 * transposed 4x4 within each half, giving "column j of every tile" for j = 0..3 in tile order;
 * j = 4, 5 are columns 0, 1 moved down one tile, with columns 32, 33 in the last lane. The output's
 * four columns per tile are put back by the inverse: a 4x4 transpose within halves, then the halves
 * regrouped into [tile t | tile t+1] pairs.
 */
#include "plugin_support.h"

#include "conv_winograd.h"

#include <string.h>

#include "conv_kernel.h"
#include "conv_kernel_avx2.h"

#define NR CONV_KERNEL_NR

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "conv_avx2.h"
#include "conv_winograd4_x86.h"

// Lanes e of 8 with lo <= off + e < hi.
PLY_TARGET_AVX2 static inline __m256i lanes_between(int64_t off, int64_t lo, int64_t hi) {
    lo = ply_max_i64(lo - off, 0);
    hi = ply_min_i64(hi - off, 8);
    if (hi <= lo) return _mm256_setzero_si256();
    const __m256i e = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(e, _mm256_set1_epi32((int)lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), e));
}

PLY_TARGET_AVX2 void conv_wino4_weights_avx2(const conv_geom *g, const float *w, int64_t o0, int64_t o1, float *U) {
    const int64_t C = g->C, OC = g->OC, MR = CONV_KERNEL_AVX2_MR, OCP = (OC + MR - 1) / MR * MR;
    const size_t uxi = conv_kernel_avx2_packed_floats(OC, C);
    for (int64_t oc = o0; oc < o1; oc++)
        for (int64_t c = 0; c < C; c++) {
            const float *src = w + (oc * C + c) * 9;
            float *dst = U + (oc / MR) * C * MR + c * MR + oc % MR;
            float a[3][6];
            for (int r = 0; r < 3; r++) g6_1(src[3 * r], src[3 * r + 1], src[3 * r + 2], a[r]); // g G^T, row r
            for (int j = 0; j < 6; j++) { // G (.): the same down each column
                float u[6];
                g6_1(a[0][j], a[1][j], a[2][j], u);
                for (int i = 0; i < 6; i++) dst[(size_t)(i * 6 + j) * uxi] = u[i];
            }
        }
    // the last block's rows past OC: zeros (read by the kernel, never stored), by whoever has the last rows
    if (o1 == OC)
        for (int64_t xi = 0; xi < 36; xi++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t oc = OC; oc < OCP; oc++) U[(size_t)xi * uxi + (oc / MR) * C * MR + c * MR + oc % MR] = 0.0f;
}

// d[j], lane t = row[4t + j] for t < 8, j < 6, from q[0..3] = row[0..32) and tail = row[32..40)
// (only lanes 0 and 1 read).
PLY_TARGET_AVX2 static inline __attribute__((always_inline)) void columns6(const __m256 q[4], __m256 tail,
                                                                          __m256 d[6]) {
    const __m256 p0 = _mm256_permute2f128_ps(q[0], q[2], 0x20); // [tile 0 | tile 4]
    const __m256 p1 = _mm256_permute2f128_ps(q[0], q[2], 0x31); // [tile 1 | tile 5]
    const __m256 p2 = _mm256_permute2f128_ps(q[1], q[3], 0x20); // [tile 2 | tile 6]
    const __m256 p3 = _mm256_permute2f128_ps(q[1], q[3], 0x31); // [tile 3 | tile 7]
    const __m256 t0 = _mm256_unpacklo_ps(p0, p1), t1 = _mm256_unpackhi_ps(p0, p1);
    const __m256 t2 = _mm256_unpacklo_ps(p2, p3), t3 = _mm256_unpackhi_ps(p2, p3);
    d[0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    d[1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    d[2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    d[3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256i down = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0);
    d[4] = _mm256_blend_ps(_mm256_permutevar8x32_ps(d[0], down), _mm256_permutevar8x32_ps(tail, _mm256_set1_epi32(0)),
                           0x80);
    d[5] = _mm256_blend_ps(_mm256_permutevar8x32_ps(d[1], down), _mm256_permutevar8x32_ps(tail, _mm256_set1_epi32(1)),
                           0x80);
}

PLY_TARGET_AVX2 void conv_wino4_input_avx2(const conv_geom *g, const conv_wino_plan *p, const float *x, int64_t cbase,
                                           int64_t t0, int64_t t1, int64_t c0, int64_t c1, float *V) {
    const int64_t C = g->C, H = g->H, W = g->W, HW = H * W;
    for (int64_t t = t0; t < t1;) {
        int64_t n, th, tw, cnt;
        conv_wino_segment(p, t, t1, cbase, &n, &th, &tw, &cnt);
        const int64_t rel = t - cbase, strip = rel / NR, lane = rel % NR;
        for (int64_t h = 0; 8 * h < cnt; h++) {
            const int64_t hc = ply_min_i64(8, cnt - 8 * h), base = 4 * (tw + 8 * h) - g->PW;
            const int64_t span = 4 * hc + 2; // input columns [base, base + span)
            // lane e of load k reads column base + 8k + e: kept where inside the span and the plane. A load
            // wholly inside the plane is a plain one (masked moves are slow on AMD: see the top); its lanes past the
            // span feed only lanes past the half's tiles
            __m256i ml[5];
            int inside[5];
            for (int k = 0; k < 5; k++) {
                ml[k] = lanes_between(8 * k, ply_max_i64(0, -base), ply_min_i64(span, W - base));
                inside[k] = base + 8 * k >= 0 && base + 8 * k + 8 <= W;
            }
            const __m256i km = conv_lanes8(hc);
            // lanes past the half's tiles hold values of no tile: stored plainly where they stay in the strip's
            // row (the later segments, or the chunk's zeroing below, overwrite them), masked where they would not
            const int plain = lane + 8 * h + 8 <= NR;
            float *vh = V + (strip * C) * NR + lane + 8 * h;
            for (int64_t c = c0; c < c1; c++) {
                const float *xc = x + (n * C + c) * HW;
                __m256 e[6][6];
                for (int r = 0; r < 6; r++) {
                    const int64_t ih = 4 * th - g->PH + r;
                    __m256 d[6];
                    if (ih < 0 || ih >= H) {
                        for (int k = 0; k < 6; k++) d[k] = _mm256_setzero_ps();
                    } else {
                        const float *row = xc + ih * W + base;
                        __m256 q[4];
                        for (int k = 0; k < 4; k++)
                            q[k] = inside[k] ? _mm256_loadu_ps(row + 8 * k) : _mm256_maskload_ps(row + 8 * k, ml[k]);
                        columns6(q, inside[4] ? _mm256_loadu_ps(row + 32) : _mm256_maskload_ps(row + 32, ml[4]), d);
                    }
                    bt6_8(d, e[r]); // d B, along the row
                }
                for (int j = 0; j < 6; j++) { // B^T (.), down each column
                    __m256 col[6] = {e[0][j], e[1][j], e[2][j], e[3][j], e[4][j], e[5][j]}, v[6];
                    bt6_8(col, v);
                    for (int i = 0; i < 6; i++) {
                        float *dst = vh + (i * 6 + j) * p->vxi + c * NR;
                        if (plain) _mm256_storeu_ps(dst, v[i]);
                        else _mm256_maskstore_ps(dst, km, v[i]);
                    }
                }
            }
        }
        t += cnt;
    }
    // the last strip's lanes past the chunk's tiles: read by the kernel, never stored; zeros
    // rather than whatever the scratch held (which could be slow denormals)
    const int64_t used = t1 - cbase;
    if (used % NR)
        for (int64_t xi = 0; xi < p->xi; xi++)
            for (int64_t c = c0; c < c1; c++)
                memset(V + xi * p->vxi + ((used / NR) * C + c) * NR + used % NR, 0, (size_t)(NR - used % NR) * sizeof(float));
}

PLY_TARGET_AVX2 void conv_wino4_output_avx2(const conv_geom *g, const conv_wino_plan *p, const float *M, int64_t cbase,
                                            int64_t t0, int64_t t1, int64_t o0, int64_t o1, const float *bias, int relu,
                                            float *y) {
    const int64_t OC = g->OC, OH = g->OH, OW = g->OW, ldm = p->tc;
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t t = t0; t < t1;) {
        int64_t n, th, tw, cnt;
        conv_wino_segment(p, t, t1, cbase, &n, &th, &tw, &cnt);
        const int64_t rel = t - cbase;
        for (int64_t h = 0; 8 * h < cnt; h++) {
            const int64_t hc = ply_min_i64(8, cnt - 8 * h), ow0 = 4 * (tw + 8 * h);
            const __m256i km = conv_lanes8(hc);
            // M's lanes past the half's tiles: read plainly where inside the chunk's columns (they feed only
            // lanes that are not stored)
            const int plain = rel + 8 * h + 8 <= ldm;
            __m256i mo[4]; // lane e of store k writes column ow0 + 8k + e: where a tile of the half's and the plane's
            int cols[4];   // how many: 8 a plain store, 0 none
            for (int k = 0; k < 4; k++) {
                const int64_t hi = ply_min_i64(4 * hc, OW - ow0);
                mo[k] = lanes_between(8 * k, 0, hi);
                cols[k] = (int)ply_max_i64(0, ply_min_i64(8, hi - 8 * k));
            }
            for (int64_t oc = o0; oc < o1; oc++) {
                const float *mc = M + oc * ldm + rel + 8 * h;
                __m256 s[6][4];
                for (int i = 0; i < 6; i++) { // (.) A, along each row
                    __m256 r[6];
                    for (int j = 0; j < 6; j++) {
                        const float *src = mc + (i * 6 + j) * p->mxi;
                        r[j] = plain ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, km);
                    }
                    at6_8(r, s[i]);
                }
                const __m256 b = _mm256_set1_ps(bias ? bias[oc] : 0.0f);
                __m256 yv[4][4]; // [output row][column in the tile]
                for (int j = 0; j < 4; j++) { // A^T (.), down each column
                    __m256 col[6] = {s[0][j], s[1][j], s[2][j], s[3][j], s[4][j], s[5][j]}, o[4];
                    at6_8(col, o);
                    for (int a = 0; a < 4; a++) yv[a][j] = o[a];
                }
                for (int a = 0; a < 4 && 4 * th + a < OH; a++) {
                    __m256 v[4];
                    for (int j = 0; j < 4; j++) {
                        __m256 u = _mm256_add_ps(yv[a][j], b);
                        // max(u, 0) with NaN passed through (kept where not u <= 0), as the fused relu everywhere
                        if (relu) u = _mm256_and_ps(u, _mm256_cmp_ps(u, zero, _CMP_NLE_UQ));
                        v[j] = u;
                    }
                    // out[4t + j] = v[j][t]: a 4x4 transpose within each 128-bit half ([tile t | tile t+4]),
                    // then the halves regrouped into [tile t | tile t+1]
                    const __m256 u0 = _mm256_unpacklo_ps(v[0], v[1]), u1 = _mm256_unpackhi_ps(v[0], v[1]);
                    const __m256 u2 = _mm256_unpacklo_ps(v[2], v[3]), u3 = _mm256_unpackhi_ps(v[2], v[3]);
                    const __m256 w0 = _mm256_shuffle_ps(u0, u2, _MM_SHUFFLE(1, 0, 1, 0)); // [tile 0 | tile 4]
                    const __m256 w1 = _mm256_shuffle_ps(u0, u2, _MM_SHUFFLE(3, 2, 3, 2)); // [tile 1 | tile 5]
                    const __m256 w2 = _mm256_shuffle_ps(u1, u3, _MM_SHUFFLE(1, 0, 1, 0)); // [tile 2 | tile 6]
                    const __m256 w3 = _mm256_shuffle_ps(u1, u3, _MM_SHUFFLE(3, 2, 3, 2)); // [tile 3 | tile 7]
                    float *dst = y + ((n * OC + oc) * OH + 4 * th + a) * OW + ow0;
                    const __m256 out[4] = {_mm256_permute2f128_ps(w0, w1, 0x20), _mm256_permute2f128_ps(w2, w3, 0x20),
                                           _mm256_permute2f128_ps(w0, w1, 0x31), _mm256_permute2f128_ps(w2, w3, 0x31)};
                    for (int k = 0; k < 4; k++) {
                        if (cols[k] == 8) _mm256_storeu_ps(dst + 8 * k, out[k]);
                        else if (cols[k] > 0) _mm256_maskstore_ps(dst + 8 * k, mo[k], out[k]);
                    }
                }
            }
        }
        t += cnt;
    }
}
#else
typedef int conv_winograd4_avx2_unused; // x86-64 only: conv_winograd_suits_inference is 0 elsewhere
#endif
