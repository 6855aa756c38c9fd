/*
 * conv_blocked_wino.c's F(4x4) on NCHW16c at the AVX2 level (conv_blocked_wino_x86.h): the weights, input
 * and output transforms and the products' register tiles on a 16-channel vector held as two of 8.
 */
#include "plugin_support.h"

#include "conv_blocked_wino.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "conv_avx2.h"
#include "conv_blocked_wino_x86.h"
#include "conv_winograd4_x86.h"

// bw_weights_blocks, a lane at a time (once per weight version).
PLY_TARGET_AVX2 void conv_bwino_weights8(const bw_job *j, int64_t b0, int64_t b1) {
    const conv_geom *g = j->g;
    const bw_plan *p = j->p;
    const int64_t C = g->C, OC = g->OC, Cp = p->Cp;
    for (int64_t ob = b0; ob < b1; ob++) {
        const int64_t q = ob / 4, f = ob % 4, nb = ply_min_i64(4, p->OB - 4 * q);
        float *dst = j->Uout + 64 * q * Cp + 16 * f; // + xi 16 OB Cp + c 16 nb + l
        for (int64_t c = 0; c < Cp; c++)
            for (int64_t l = 0; l < 16; l++) {
                float u[6][6] = {{0}};
                if (c < C && 16 * ob + l < OC) {
                    const float *src = j->w + ((16 * ob + l) * C + c) * 9;
                    float a[3][6];
                    for (int r = 0; r < 3; r++) g6_1(src[3 * r], src[3 * r + 1], src[3 * r + 2], a[r]); // g G^T
                    for (int k = 0; k < 6; k++) { // G (.)
                        float col[6];
                        g6_1(a[0][k], a[1][k], a[2][k], col);
                        for (int i = 0; i < 6; i++) u[i][k] = col[i];
                    }
                }
                for (int xi = 0; xi < 36; xi++) dst[xi * p->OBp * Cp + c * 16 * nb + l] = u[xi / 6][xi % 6];
            }
    }
}

// bw_input on each half of the 16 channels.
PLY_TARGET_AVX2 void conv_bwino_input8(const bw_job *j, int64_t t0, int64_t nt, int64_t tc, int64_t cb0, int64_t cb1,
                                       float *V) {
    const conv_geom *g = j->g;
    const bw_plan *p = j->p;
    const int64_t H = g->H, W = g->W, CB = p->CB;
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t cb = cb0; cb < cb1; cb++)
        for (int64_t tt = 0; tt < nt; tt++) {
            const int64_t t = t0 + tt, n = t / (p->TH * p->TW), th = t / p->TW % p->TH, tw = t % p->TW;
            const int64_t ih0 = 4 * th - g->PH, iw0 = 4 * tw - g->PW;
            const float *xb = j->x + (n * CB + cb) * H * W * 16;
            int cin[6]; // at the image's edge, the patch's columns inside it (zeros outside)
            for (int k = 0; k < 6; k++) cin[k] = iw0 + k >= 0 && iw0 + k < W;
            float *v = V + (cb * tc + tt) * 16; // + xi CB tc 16
            for (int h = 0; h < 16; h += 8) {
                __m256 e[6][6];
                for (int r = 0; r < 6; r++) {
                    __m256 d[6];
                    const int64_t ih = ih0 + r;
                    const int rin = ih >= 0 && ih < H;
                    const float *row = xb + (rin ? ih * W + iw0 : 0) * 16 + h;
                    for (int k = 0; k < 6; k++) d[k] = rin && cin[k] ? _mm256_loadu_ps(row + 16 * k) : zero;
                    bt6_8(d, e[r]); // d B, along the row
                }
                for (int k = 0; k < 6; k++) { // B^T (.), down each column
                    __m256 col[6] = {e[0][k], e[1][k], e[2][k], e[3][k], e[4][k], e[5][k]}, o[6];
                    bt6_8(col, o);
                    for (int i = 0; i < 6; i++) _mm256_storeu_ps(v + (i * 6 + k) * CB * tc * 16 + h, o[i]);
                }
            }
        }
}

// bw_tile for output block f of a group packed nb wide, NP <= 6 tiles: 12 accumulators.
PLY_TARGET_AVX2 static inline __attribute__((always_inline)) void bw_tile8(const float *V, const float *wg, int64_t tc,
                                                                          int nb, int f, int64_t tt, int NP, int64_t cb0,
                                                                          int64_t cb1, const float *src,
                                                                          const float *add, float *dst, int pf) {
    __m256 lo[6], hi[6];
    const int64_t o0 = (f * tc + tt) * 16;
    for (int i = 0; i < NP; i++) {
        lo[i] = src ? _mm256_loadu_ps(src + o0 + i * 16) : _mm256_setzero_ps();
        hi[i] = src ? _mm256_loadu_ps(src + o0 + i * 16 + 8) : _mm256_setzero_ps();
    }
    for (int64_t cb = cb0; cb < cb1; cb++) {
        const float *vb = V + (cb * tc + tt) * 16;
        const float *wb = wg + cb * 16 * nb * 16 + f * 16;
        for (int k = 0; k < 16; k++) {
            const __m256 w0 = _mm256_loadu_ps(wb + k * nb * 16), w1 = _mm256_loadu_ps(wb + k * nb * 16 + 8);
            if (pf) __builtin_prefetch(wb + k * nb * 16 + BW_PF * CCHUNK * nb * 16, 0, 2); // as bw_tile's
            for (int i = 0; i < NP; i++) {
                const __m256 x = _mm256_broadcast_ss(vb + i * 16 + k);
                lo[i] = _mm256_fmadd_ps(w0, x, lo[i]);
                hi[i] = _mm256_fmadd_ps(w1, x, hi[i]);
            }
        }
    }
    for (int i = 0; i < NP; i++) {
        const int64_t o = o0 + i * 16;
        _mm256_storeu_ps(dst + o, add ? _mm256_add_ps(lo[i], _mm256_loadu_ps(add + o)) : lo[i]);
        _mm256_storeu_ps(dst + o + 8, add ? _mm256_add_ps(hi[i], _mm256_loadu_ps(add + o + 8)) : hi[i]);
    }
}

typedef void bw_tile8_fn(const float *, const float *, int64_t, int, int, int64_t, int64_t, int64_t, const float *,
                         const float *, float *, int);
#define BW_TILE8(NP)                                                                                                  \
    PLY_TARGET_AVX2 static void bw_tile8x##NP(const float *V, const float *wg, int64_t tc, int nb, int f, int64_t tt, \
                                              int64_t cb0, int64_t cb1, const float *src, const float *add,          \
                                              float *dst, int pf) {                                                  \
        bw_tile8(V, wg, tc, nb, f, tt, NP, cb0, cb1, src, add, dst, pf);                                              \
    }
BW_TILE8(1) BW_TILE8(2) BW_TILE8(3) BW_TILE8(4) BW_TILE8(5) BW_TILE8(6)
static bw_tile8_fn *const bw_tiles8[6] = {bw_tile8x1, bw_tile8x2, bw_tile8x3, bw_tile8x4, bw_tile8x5, bw_tile8x6};

void conv_bwino_products8(const float *V, const float *wg, int64_t tc, int nb, int64_t nt, int64_t cb0, int64_t cb1,
                          const float *src, const float *add, float *dst) {
    for (int64_t tt = 0; tt < nt; tt += 6)
        for (int f = 0; f < nb; f++)
            bw_tiles8[ply_min_i64(6, nt - tt) - 1](V, wg, tc, nb, f, tt, cb0, cb1, src, add, dst, BW_PF && tt == 0);
}

// bw_output on each half of the 16 channels.
PLY_TARGET_AVX2 void conv_bwino_output8(const bw_job *j, const float *M, int64_t t0, int64_t nt, int64_t tc,
                                        int64_t ob0, int64_t ob1) {
    const conv_geom *g = j->g;
    const bw_plan *p = j->p;
    const int64_t H = g->OH, W = g->OW, OB = p->OB, OC = g->OC; // the output's plane
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t ob = ob0; ob < ob1; ob++)
        for (int h = 0; h < 16; h += 8) {
            const __m256i om = conv_lanes8(OC - 16 * ob - h); // the lanes of real output channels
            const __m256 b = j->bias ? _mm256_maskload_ps(j->bias + 16 * ob + h, om) : zero;
            for (int64_t tt = 0; tt < nt; tt++) {
                const int64_t t = t0 + tt, n = t / (p->TH * p->TW), th = t / p->TW % p->TH, tw = t % p->TW;
                const float *mc = M + (ob * tc + tt) * 16 + h; // + xi OB tc 16
                __m256 s[6][4];
                for (int i = 0; i < 6; i++) { // (.) A, along each row
                    __m256 rv[6];
                    for (int k = 0; k < 6; k++) rv[k] = _mm256_loadu_ps(mc + (i * 6 + k) * OB * tc * 16);
                    at6_8(rv, s[i]);
                }
                const int64_t oh0 = 4 * th, ow0 = 4 * tw;
                const int64_t rows = ply_min_i64(4, H - oh0), cols = ply_min_i64(4, W - ow0);
                const int64_t base = ((n * OB + ob) * H + oh0) * W + ow0;
                for (int k = 0; k < cols; k++) { // A^T (.), down each column
                    __m256 col[6] = {s[0][k], s[1][k], s[2][k], s[3][k], s[4][k], s[5][k]}, o[4];
                    at6_8(col, o);
                    for (int u = 0; u < rows; u++) {
                        const int64_t at = (base + u * W + k) * 16 + h;
                        __m256 v = _mm256_add_ps(o[u], b);
                        if (j->r) v = _mm256_add_ps(v, _mm256_loadu_ps(j->r + at));
                        if (j->relu) v = _mm256_and_ps(v, _mm256_cmp_ps(v, zero, _CMP_NLE_UQ)); // NaN kept
                        _mm256_storeu_ps(j->y + at, _mm256_and_ps(v, _mm256_castsi256_ps(om)));
                    }
                }
            }
        }
}
#endif
