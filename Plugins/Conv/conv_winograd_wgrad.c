/*
 * conv2d's weight gradient by Winograd F(2x2, 3x3) (see conv_winograd_wgrad.h).
 *
 * Layouts (xi = 4*i + j, the element of a 4x4 transform; tiles as conv_winograd.c's,
 * t = (n*TH + th)*TW + tw, tile (th, tw) covers outputs [2*th, 2*th + 2) x [2*tw, 2*tw + 2) and
 * reads inputs [2*th - PH, 2*th - PH + 4) x [2*tw - PW, 2*tw - PW + 4), zeros outside; a chunk
 * holds tiles [cbase, cbase + tc)):
 *   V  [16][C][tc]    B^T d B of the chunk's tiles, tiles contiguous (the products' K)
 *   Z  [16][OC][tc]   A dy A^T of the chunk's tiles
 *   dU [16][OC][C]    sum over the chunks of Z_xi V_xi^T (conv_kernel_product, "NT")
 *
 *   B^T = [1  0 -1  0]   G = [ 1    0    0 ]   A^T = [1 1  1  0]
 *         [0  1  1  0]       [1/2  1/2  1/2]         [0 1 -1 -1]
 *         [0 -1  1  0]       [1/2 -1/2  1/2]
 *         [0  1  0 -1]       [ 0    0    1 ]
 *
 * With several threads every chunk is transformed by all of them (tiles split), then its 16
 * products are split by xi (each thread owns its dU_xi: no partial sums), and at the end the
 * inverse transform is split by output channel.
 */
#include "plugin_support.h"

#include "conv_winograd_wgrad.h"

#include "conv_kernel.h"
#include "conv_winograd.h"

#include <string.h>

// Floats of V and Z per chunk (1 MB, about this CPU's L2 per core: the products read back what the
// transforms wrote from cache; ResNet-18 at 32x32, 64 images: layer1's 1024 tiles in 8 chunks of
// 128, layer2's 256 in 4 of 64). Layer1's weight gradient (one thread, thread CPU time, best of
// 20, standalone harness, shared machine at load ~20): 1.85-1.86 ms with 256 KB chunks, 1.87-1.88 ms
// with 1 MB, 2.28-2.30 ms with 4 MB.
#define WG_CHUNK_FLOATS (1 << 18)
#define WG_MIN_TC 64

int conv_winograd_wgrad_suits(const conv_geom *g) {
    return g->KH == 3 && g->KW == 3 && g->SH == 1 && g->SW == 1 && g->DH == 1 && g->DW == 1 && g->XC == g->C &&
           g->YC == g->OC && conv_winograd_suits(g) &&
           // (the gathers' 32-bit offsets span up to 16 images)
           16 * ply_max_i64(g->C * g->H * g->W, g->OC * g->OH * g->OW) < INT32_MAX;
}

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "conv_winograd_x86.h"

static void make_plan(const conv_geom *g, conv_wino_plan *p) {
    memset(p, 0, sizeof *p);
    p->m = 2;
    p->a = 4;
    p->xi = 16;
    p->threads = 1;
    p->TH = (g->OH + 1) / 2;
    p->TW = (g->OW + 1) / 2;
    p->T = g->N * p->TH * p->TW;
    int64_t tc_max = ply_max_i64(WG_MIN_TC, WG_CHUNK_FLOATS / (16 * (g->C + g->OC)) / 16 * 16);
    p->chunks = (p->T + tc_max - 1) / tc_max;
    int64_t per = (p->T + p->chunks - 1) / p->chunks;
    p->tc = (per + 15) / 16 * 16;
    p->chunks = (p->T + p->tc - 1) / p->tc;
}

size_t conv_winograd_wgrad_floats(const conv_geom *g, int64_t threads) {
    (void)threads;
    conv_wino_plan p;
    make_plan(g, &p);
    return (size_t)(16 * g->OC * g->C + 16 * (g->C + g->OC) * p.tc);
}

// Z = A dy A^T of 16 tiles' 2x2 output-gradient pieces [p q; r s] (lane by lane), stored at
// z[xi * ldz] (lanes km): rows [p q], [p+r q+s], [p-r q-s], [-r -s] of A dy, each row [a b] ->
// [a, a+b, a-b, -b].
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void store_z(__m512 pv, __m512 qv, __m512 rv, __m512 sv,
                                                                           __mmask16 km, float *z, int64_t ldz) {
    const __m512 zero = _mm512_setzero_ps();
    __m512 rows[4][2] = {{pv, qv},
                         {_mm512_add_ps(pv, rv), _mm512_add_ps(qv, sv)},
                         {_mm512_sub_ps(pv, rv), _mm512_sub_ps(qv, sv)},
                         {_mm512_sub_ps(zero, rv), _mm512_sub_ps(zero, sv)}};
    for (int i = 0; i < 4; i++) {
        __m512 a = rows[i][0], b = rows[i][1];
        __m512 e[4] = {a, _mm512_add_ps(a, b), _mm512_sub_ps(a, b), _mm512_sub_ps(zero, b)};
        for (int j = 0; j < 4; j++) _mm512_mask_storeu_ps(z + (i * 4 + j) * ldz, km, e[j]);
    }
}

// V and Z of tiles [t0, t1) of the chunk at cbase: 16 tiles of a tile row at a time, their
// 4-wide input patches and 2-wide output-gradient pieces the even and odd lanes of two loads.
PLY_TARGET_AVX512 static void transform_tiles(const conv_geom *g, const conv_wino_plan *p, const float *x,
                                              const float *dy, int64_t cbase, int64_t tc, int64_t t0, int64_t t1,
                                              float *V, float *Z) {
    const int64_t C = g->C, OC = g->OC, H = g->H, W = g->W, OH = g->OH, OW = g->OW, HW = H * W, P = OH * OW;
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t t = t0; t < t1;) {
        int64_t n, th, tw, cnt;
        conv_wino_segment(p, t, t1, cbase, &n, &th, &tw, &cnt);
        const int64_t rel = t - cbase, base = 2 * tw - g->PW;
        const __mmask16 km = conv_wino_first_lanes(cnt);
        const uint32_t ma = conv_wino_lanes_in(base, 2 * cnt, W), mb = conv_wino_lanes_in(base + 2, 2 * cnt, W);
        // V = B^T d B, input channel by channel
        for (int64_t c = 0; c < C; c++) {
            __m512 d[4][4], v[4][4];
            conv_wino2_patches(x + (n * C + c) * HW, H, W, 2 * th - g->PH, base, ma, mb, d);
            conv_wino2_btdb(d, v);
            for (int j = 0; j < 4; j++)
                for (int i = 0; i < 4; i++) _mm512_mask_storeu_ps(V + ((i * 4 + j) * C + c) * tc + rel, km, v[i][j]);
        }
        // Z = A dy A^T, output channel by channel (store_z)
        const uint32_t mo = conv_wino_lanes_in(2 * tw, 2 * cnt, OW);
        const int second = 2 * th + 1 < OH;
        for (int64_t o = 0; o < OC; o++) {
            const float *r0 = dy + (n * OC + o) * P + 2 * th * OW + 2 * tw;
            __m512 a0 = _mm512_maskz_loadu_ps((__mmask16)mo, r0);
            __m512 a1 = _mm512_maskz_loadu_ps((__mmask16)(mo >> 16), r0 + 16);
            __m512 pv = _mm512_permutex2var_ps(a0, ie, a1), qv = _mm512_permutex2var_ps(a0, io, a1);
            __m512 rv = zero, sv = zero;
            if (second) {
                __m512 b0 = _mm512_maskz_loadu_ps((__mmask16)mo, r0 + OW);
                __m512 b1 = _mm512_maskz_loadu_ps((__mmask16)(mo >> 16), r0 + OW + 16);
                rv = _mm512_permutex2var_ps(b0, ie, b1);
                sv = _mm512_permutex2var_ps(b0, io, b1);
            }
            store_z(pv, qv, rv, sv, km, Z + o * tc + rel, OC * tc);
        }
        t += cnt;
    }
}

// The same for planes of fewer than 16 tiles a row (ResNet's 8x8 and 4x4 at 32x32 images), where a
// tile row would fill only a few lanes: 16 consecutive tiles per vector wherever they lie (several
// tile rows, several images), each patch element gathered. ResNet-18's layer1 (64 images,
// 64->64, 8x8, 4 tiles a row), the whole weight gradient, one thread, thread CPU time, best of 20,
// standalone harness on the shared machine (load ~20), then 4 MB chunks: 5.5-5.7 ms by tile rows
// (4 of 16 lanes used), 3.4-3.7 ms gathered. Loading the planes of a vector's tiles whole into four
// registers and picking each patch element with two permutes instead was no faster (1.85-1.86 ms
// gathered, 1.89-1.91 ms permuted, with the 1 MB chunks).
PLY_TARGET_AVX512 static void transform_tiles_gather(const conv_geom *g, const conv_wino_plan *p, const float *x,
                                                     const float *dy, int64_t cbase, int64_t tc, int64_t t0,
                                                     int64_t t1, float *V, float *Z) {
    const int64_t C = g->C, OC = g->OC, H = g->H, W = g->W, OH = g->OH, OW = g->OW, HW = H * W, P = OH * OW;
    const int64_t per = p->TH * p->TW;
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t t = t0; t < t1; t += 16) {
        const int64_t cnt = ply_min_i64(16, t1 - t), n0 = t / per, rel = t - cbase;
        const __mmask16 km = conv_wino_first_lanes(cnt);
        // per lane: the image (relative to n0), the patch's first input row and column
        int32_t li[16], lr[16], lc[16];
        for (int l = 0; l < 16; l++) {
            int64_t tt = t + (l < cnt ? l : 0), r = tt % per;
            li[l] = (int32_t)(tt / per - n0);
            lr[l] = (int32_t)(2 * (r / p->TW));
            lc[l] = (int32_t)(2 * (r % p->TW));
        }
        const __m512i vn = _mm512_loadu_si512(li), vr = _mm512_loadu_si512(lr), vc = _mm512_loadu_si512(lc);
        // input: element (r, s) of lane l at image li, row lr - PH + r, column lc - PW + s
        __m512i xi[16];
        __mmask16 xm[16];
        const __m512i xbase = _mm512_mullo_epi32(vn, _mm512_set1_epi32((int32_t)(C * HW)));
        for (int r = 0; r < 4; r++) {
            __m512i ih = _mm512_add_epi32(vr, _mm512_set1_epi32((int32_t)(r - g->PH)));
            __mmask16 mr = km & _mm512_cmpge_epi32_mask(ih, _mm512_setzero_si512()) &
                           _mm512_cmplt_epi32_mask(ih, _mm512_set1_epi32((int32_t)H));
            __m512i rowoff = _mm512_add_epi32(xbase, _mm512_mullo_epi32(ih, _mm512_set1_epi32((int32_t)W)));
            for (int s = 0; s < 4; s++) {
                __m512i iw = _mm512_add_epi32(vc, _mm512_set1_epi32((int32_t)(s - g->PW)));
                xm[4 * r + s] = mr & _mm512_cmpge_epi32_mask(iw, _mm512_setzero_si512()) &
                                _mm512_cmplt_epi32_mask(iw, _mm512_set1_epi32((int32_t)W));
                xi[4 * r + s] = _mm512_add_epi32(rowoff, iw);
            }
        }
        for (int64_t c = 0; c < C; c++) {
            const float *xc = x + (n0 * C + c) * HW;
            __m512 d[4][4], v[4][4];
            for (int r = 0; r < 4; r++)
                for (int s = 0; s < 4; s++) d[r][s] = _mm512_mask_i32gather_ps(zero, xm[4 * r + s], xi[4 * r + s], xc, 4);
            conv_wino2_btdb(d, v);
            for (int j = 0; j < 4; j++)
                for (int i = 0; i < 4; i++) _mm512_mask_storeu_ps(V + ((i * 4 + j) * C + c) * tc + rel, km, v[i][j]);
        }
        // output gradient: element (r, s) of lane l at image li, row lr + r, column lc + s
        __m512i yi[4];
        __mmask16 ym[4];
        const __m512i ybase = _mm512_mullo_epi32(vn, _mm512_set1_epi32((int32_t)(OC * P)));
        for (int r = 0; r < 2; r++) {
            __m512i oh = _mm512_add_epi32(vr, _mm512_set1_epi32(r));
            __mmask16 mr = km & _mm512_cmplt_epi32_mask(oh, _mm512_set1_epi32((int32_t)OH));
            __m512i rowoff = _mm512_add_epi32(ybase, _mm512_mullo_epi32(oh, _mm512_set1_epi32((int32_t)OW)));
            for (int s = 0; s < 2; s++) {
                __m512i ow = _mm512_add_epi32(vc, _mm512_set1_epi32(s));
                ym[2 * r + s] = mr & _mm512_cmplt_epi32_mask(ow, _mm512_set1_epi32((int32_t)OW));
                yi[2 * r + s] = _mm512_add_epi32(rowoff, ow);
            }
        }
        for (int64_t o = 0; o < OC; o++) {
            const float *yo = dy + (n0 * OC + o) * P;
            __m512 pv = _mm512_mask_i32gather_ps(zero, ym[0], yi[0], yo, 4);
            __m512 qv = _mm512_mask_i32gather_ps(zero, ym[1], yi[1], yo, 4);
            __m512 rv = _mm512_mask_i32gather_ps(zero, ym[2], yi[2], yo, 4);
            __m512 sv = _mm512_mask_i32gather_ps(zero, ym[3], yi[3], yo, 4);
            store_z(pv, qv, rv, sv, km, Z + o * tc + rel, OC * tc);
        }
    }
}

// dw[o][c] += G^T dU[o][c] G for output channels [o0, o1), 16 input channels at a time.
PLY_TARGET_AVX512 static void inverse_transform(const conv_geom *g, const float *dU, int64_t o0, int64_t o1, float *dw) {
    const int64_t C = g->C, OC = g->OC;
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(9));
    const __m512 half = _mm512_set1_ps(0.5f), zero = _mm512_setzero_ps();
    for (int64_t o = o0; o < o1; o++)
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
            const __mmask16 m = conv_wino_first_lanes(C - c0);
            __m512 t[4][3];
            for (int i = 0; i < 4; i++) { // (.) G, along each row
                const float *src = dU + (i * 4 * OC + o) * C + c0;
                __m512 u0 = _mm512_maskz_loadu_ps(m, src), u1 = _mm512_maskz_loadu_ps(m, src + OC * C);
                __m512 u2 = _mm512_maskz_loadu_ps(m, src + 2 * OC * C), u3 = _mm512_maskz_loadu_ps(m, src + 3 * OC * C);
                __m512 s = _mm512_mul_ps(_mm512_add_ps(u1, u2), half);
                t[i][0] = _mm512_add_ps(u0, s);
                t[i][1] = _mm512_mul_ps(_mm512_sub_ps(u1, u2), half);
                t[i][2] = _mm512_add_ps(s, u3);
            }
            float *dst = dw + (o * C + c0) * 9;
            for (int j = 0; j < 3; j++) { // G^T (.), down each column
                __m512 s = _mm512_mul_ps(_mm512_add_ps(t[1][j], t[2][j]), half);
                __m512 r[3] = {_mm512_add_ps(t[0][j], s), _mm512_mul_ps(_mm512_sub_ps(t[1][j], t[2][j]), half),
                               _mm512_add_ps(s, t[3][j])};
                for (int k = 0; k < 3; k++) {
                    float *at = dst + 3 * k + j;
                    __m512 old = _mm512_mask_i32gather_ps(zero, m, idx, at, 4);
                    _mm512_mask_i32scatter_ps(at, m, idx, _mm512_add_ps(old, r[k]), 4);
                }
            }
        }
}

typedef struct {
    const conv_geom *g;
    conv_wino_plan p;
    const float *x, *dy;
    float *dw, *db, *dU, *V, *Z;
    int64_t threads, cbase, cend;
} wg_job;

// The chunk's transforms, thread th's share of its tiles (whole vectors of 16).
static void step_transform(void *ctx, int64_t t0, int64_t t1) {
    const wg_job *j = ctx;
    const int64_t blocks = (j->cend - j->cbase + 15) / 16;
    for (int64_t th = t0; th < t1; th++) {
        int64_t a = ply_min_i64(j->cend, j->cbase + 16 * (blocks * th / j->threads));
        int64_t b = ply_min_i64(j->cend, j->cbase + 16 * (blocks * (th + 1) / j->threads));
        if (a >= b) continue;
        if (j->p.TW >= 16) transform_tiles(j->g, &j->p, j->x, j->dy, j->cbase, j->p.tc, a, b, j->V, j->Z);
        else transform_tiles_gather(j->g, &j->p, j->x, j->dy, j->cbase, j->p.tc, a, b, j->V, j->Z);
    }
}

// The chunk's products, thread th's share of the 16 xi: dU_xi (+)= Z_xi V_xi^T.
static void step_products(void *ctx, int64_t t0, int64_t t1) {
    const wg_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t tc = j->p.tc, K = j->cend - j->cbase;
    const int accumulate = j->cbase != 0;
    for (int64_t th = t0; th < t1; th++)
        for (int64_t xi = 16 * th / j->threads; xi < 16 * (th + 1) / j->threads; xi++)
            conv_kernel_product(0, 1, g->OC, g->C, K, j->Z + xi * g->OC * tc, tc, j->V + xi * g->C * tc, tc,
                                j->dU + xi * g->OC * g->C, g->C, accumulate);
}

// dw (and db) of thread th's output channels.
static void step_inverse(void *ctx, int64_t t0, int64_t t1) {
    const wg_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t P = g->OH * g->OW;
    for (int64_t th = t0; th < t1; th++) {
        int64_t o0 = g->OC * th / j->threads, o1 = g->OC * (th + 1) / j->threads;
        if (o0 >= o1) continue;
        inverse_transform(g, j->dU, o0, o1, j->dw);
        if (j->db)
            for (int64_t o = o0; o < o1; o++) {
                float s = 0.0f;
                for (int64_t n = 0; n < g->N; n++)
                    for (int64_t i = 0; i < P; i++) s += j->dy[(n * g->OC + o) * P + i];
                j->db[o] += s;
            }
    }
}

void conv_winograd_wgrad(const ply_host *host, int64_t threads, const conv_geom *g, const float *x, const float *dy,
                         float *dw, float *db, float *scratch) {
    wg_job j = {.g = g, .x = x, .dy = dy, .dw = dw, .db = db, .threads = ply_max_i64(threads, 1)};
    make_plan(g, &j.p);
    j.dU = scratch;
    j.V = scratch + 16 * g->OC * g->C;
    j.Z = j.V + 16 * g->C * j.p.tc;
    for (int64_t k = 0; k < j.p.chunks; k++) {
        j.cbase = k * j.p.tc;
        j.cend = ply_min_i64(j.p.T, j.cbase + j.p.tc);
        if (j.threads > 1) {
            host->parallel_for(host, j.threads, 1, step_transform, &j);
            host->parallel_for(host, j.threads, 1, step_products, &j);
        } else {
            step_transform(&j, 0, 1);
            step_products(&j, 0, 1);
        }
    }
    if (j.threads > 1) host->parallel_for(host, j.threads, 1, step_inverse, &j);
    else step_inverse(&j, 0, 1);
}
#else
size_t conv_winograd_wgrad_floats(const conv_geom *g, int64_t threads) {
    (void)g; (void)threads;
    return 0;
}
void conv_winograd_wgrad(const ply_host *host, int64_t threads, const conv_geom *g, const float *x, const float *dy,
                         float *dw, float *db, float *scratch) {
    (void)host; (void)threads; (void)g; (void)x; (void)dy; (void)dw; (void)db; (void)scratch;
}
#endif
