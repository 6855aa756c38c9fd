/*
 * Winograd F(4x4, 3x3) on the blocked channel layout NCHW16c (conv_blocked_wino.h), evaluation,
 * AVX-512, and at the AVX2 level through conv_blocked_wino_avx2.c's functions (the same operations per
 * lane, 12-accumulator tiles of one output block; its products summed in conv_kernel_avx2.c's blocks of
 * 128 channels, as the NCHW path there). At AVX2 the NCHW forward runs it between two reorders on
 * mid-sized planes (conv_blocked.c's conv_bwino_through). The matrices are conv_winograd4.c's (ncnn's "winograd43": points 0, +-sqrt(2),
 * +-sqrt(2)/2, infinity; s = sqrt(2)), so the numerics are those of the NCHW path:
 *
 *   B^T = [1    0    -5/2   0    1  0]    G = [  1      0     0 ]    A^T = [1  1    1    1   1  0]
 *         [0   -s    -2     s/2  1  0]        [-2/3  -s/3  -1/3]          [0 s/2 -s/2   s  -s  0]
 *         [0    s    -2    -s/2  1  0]        [-2/3   s/3  -1/3]          [0 1/2  1/2   2   2  0]
 *         [0   -s/2  -1/2   s    1  0]        [ 1/6   s/6   1/3]          [0 s/4 -s/4  2s -2s  1]
 *         [0    s/2  -1/2  -s    1  0]        [ 1/6  -s/6   1/3]
 *         [0    1     0    -5/2  0  1]        [  0      0     1 ]
 *
 * Index equations (m = 4, a = 6, xi = 6 i + j in [0, 36); CB = ceil(C/16), OB = ceil(OC/16),
 * Cp = 16 CB; tiles t = (n TH + th) TW + tw over the batch, TH = ceil(OH/4), TW = ceil(OW/4); a
 * chunk holds tiles [t0, t0 + nt), tt = t - t0 < tc):
 *
 *   d[r][k][l]   = x[n][cb][4 th - P + r][4 tw - P + k][l]           (padding P = 0 or 1; 0 outside the image)
 *   V[xi][cb][tt][l] = (B^T d B)[i][j][l]                              (channel 16 cb + l)
 *   U[xi][q][c][16 f + l] = (G w[oc][c] G^T)[i][j],  oc = 64 q + 16 f + l   (0 past C and OC;
 *                           group q of nb = min(4, OB - 4q) output blocks at xi's offset 64 q Cp)
 *   M[xi][ob][tt][l] = sum_{c < Cp} V[xi][c/16][tt][c%16] * U[xi][ob/4][c][16 (ob%4) + l]
 *   y[n][ob][4 th + u][4 tw + v][l] = act(bias[16 ob + l] + r[same] + (A^T M A)[u][v][l])
 *                           for 4 th + u < OH = H + 2P - 2, 4 tw + v < OW, and 0 for 16 ob + l >= OC.
 *
 * The products are conv_blocked.c's register tile: 4 output blocks x 6 tiles = 24 accumulators,
 * per input channel 4 weight vectors and 6 broadcasts, over input channels in passes of CCHUNK
 * whose weights (4 blocks: 32 KB) stay in L1, summed in blocks of KC as conv_kernel.c does (so
 * the result is the NCHW path's to the bit). No transposes: the transforms are whole-vector adds
 * and FMAs on 16 channels at a time.
 *
 * Plans: "columns" gives each thread a contiguous run of chunks of tc tiles, each chunk
 * transformed, multiplied and transformed back in the thread's own scratch (V, M and P of a chunk:
 * (36 (Cp + 16 OB) + 64) tc floats); "rows" (few tiles, or a U too big to stream once per chunk
 * per thread: the rule at BWINO_ROWS_TILES) transforms all the tiles once, the input blocks split
 * over the threads, then splits the groups of 4 output blocks.
 *
 * F(6x6) is not here (conv_bwino_tile never returns 6; for m != 4 the sizes are 0 and the calls do
 * nothing): on ResNet's planes it would need 0.91 (56x56, 28x28), 1.0 (14x14) and 1.78 (7x7) of
 * F(4x4)'s products at ~5x its rounding, and the NCHW path measured no gain from it (conv_winograd.c).
 */
#include "plugin_support.h"

#include "conv_blocked_wino.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "conv_blocked_wino_x86.h"
#include "conv_winograd4_x86.h"


// Tuning constants, measured with Benchmarks/blocked_winograd.c (thread CPU ms, medians of 9, each
// forward alternating with the NCHW path's, 2-vCPU Xeon VM, 48 KB L1d and 2 MB L2 per core, shared
// with another engineer's swift build, so within ~20%; ratios NCHW / blocked of the same round are
// steadier than the times and are what is quoted). Each -D overridable for a sweep.
//
// tc, the tiles of a chunk: V + M of a chunk within BWINO_CHUNK_FLOATS (1 MB, half the L2), but at
// least BWINO_TC_MIN tiles, since U (36 Cp 16 OB floats) is read once per chunk: 1 thread, ratio per
// round with TC_MIN 24 / 32 / 64 / 128: 16 512->512 7x7 0.89-0.98 / 0.96-1.06 / 1.26-1.30 / 1.18-1.28,
// 16 256->256 14x14 1.05-1.06 / 1.20-1.32 / 1.34-1.66 / 1.26-1.45, 16 128->128 28x28 1.40-1.50 /
// 1.48-1.65 / 1.39-1.62 / 1.34-1.77, 16 64->64 56x56 about 1.2-1.5 for all. So BWINO_TC_MIN decides on
// every ResNet shape (CHUNK_FLOATS only below C + OC = 114). The chunks are as even as they can be, a
// multiple of the threads; rounding tc up to whole register tiles of 6 measured no change (16 256->256
// 14x14, 1 thread) and would split 1 128->128 28x28's 49 tiles 30 / 19 over 2 threads.
#ifndef BWINO_CHUNK_FLOATS
#define BWINO_CHUNK_FLOATS (1 << 18)
#endif
#ifndef BWINO_TC_MIN
#define BWINO_TC_MIN 64
#endif
// "rows" (2 threads or more, at least a group of 4 output blocks per thread) below BWINO_ROWS_TILES tiles
// per thread, and where U has at least BWINO_ROWS_BIG_U floats (in "columns" every thread would stream
// all of it from memory per chunk; in "rows" each its share once) while V and M of all the tiles
// stay within BWINO_ROWS_MAX_AREA floats. Measured 2 threads, CPU ms summed over the threads, 5 rounds
// each alternating with the NCHW path, on the shared VM (another build running): "rows" / "columns":
// 1 256->256 14x14 (16 tiles) 1.02-1.15 / 1.35-1.37; 1 128->128 28x28 (49 tiles) 0.83-1.03 /
// 0.72-1.01 (wall 0.68-1.08 / 0.51-0.78); 16 512->512 7x7 (64 tiles, U 9.4M floats) 15.6-16.9 /
// 16.7-19.6; 16 256->256 14x14 (256 tiles, U 2.4M) 15.2-17.5 / 16.4-18.3; but 16 128->128 28x28
// (784 tiles, U 0.6M) 14.0-17.1 / 11.9-13.5.
#ifndef BWINO_ROWS_TILES
#define BWINO_ROWS_TILES 24
#endif
#define BWINO_ROWS_BIG_U (1 << 21)
#define BWINO_ROWS_MAX_AREA (1 << 23)
// conv_bwino_tile: 4 wherever the geometry fits. The one ResNet shape where the blocked F(4x4) does not
// clearly win is 1 512->512 7x7 (4 tiles: each forward streams 37.7 MB of U against the NCHW path's
// F(2x2), 16.8 MB), a tie: 1 thread, alternating, NCHW / blocked ratio per round 0.78-1.24 over 15
// rounds (median ~1.0; the memory bandwidth left by the other build decides), 2 threads 0.94-1.12.
// Returning 0 there would send a blocked network through two reorders to tie, so it stays 4.
// conv_kernel.c's KC: the products sum each block of KC input channels from zero and add it to M, as
// conv_kernel_gemm does, so the two paths agree to the bit (a pass of CCHUNK continues the block's
// partial sum; summing in CCHUNKs straight into M instead differed from the NCHW path by up to 1e-4
// of |y| on 512 channels, both within rounding of the double sum).
#define KC 256
// At the AVX2 level the NCHW path's products are conv_kernel_avx2.c's, whose blocks are of 128 channels.
#define KC_AVX2 128


static void bw_make_plan(const conv_geom *g, int64_t threads, bw_plan *p) {
    p->CB = (g->C + 15) / 16;
    p->OB = (g->OC + 15) / 16;
    p->Cp = p->CB * 16;
    p->OBp = p->OB * 16;
    p->TH = (g->OH + 3) / 4;
    p->TW = (g->OW + 3) / 4;
    p->T = g->N * p->TH * p->TW;
    p->threads = threads < 1 ? 1 : threads;
    int64_t tc_max = ply_max_i64(BWINO_TC_MIN, BWINO_CHUNK_FLOATS / (36 * (p->Cp + p->OBp)));
    int64_t chunks = (p->T + tc_max - 1) / tc_max;
    chunks = (chunks + p->threads - 1) / p->threads * p->threads;
    p->tc = (p->T + chunks - 1) / chunks;
    p->chunks = (p->T + p->tc - 1) / p->tc;
    const double u = 36.0 * (double)p->Cp * (double)p->OBp, area = 36.0 * (double)(p->Cp + p->OBp) * (double)p->T;
    p->rows = p->threads > 1 && (p->OB + 3) / 4 >= p->threads &&
              (p->T < BWINO_ROWS_TILES * p->threads || (u >= BWINO_ROWS_BIG_U && area <= BWINO_ROWS_MAX_AREA));
    if (p->rows) {
        p->tc = p->T;
        p->chunks = 1;
    }
}


// U of output blocks [b0, b1): for 16 output channels in the lanes and each input channel.
PLY_TARGET_AVX512 static void bw_weights_blocks(const bw_job *j, int64_t b0, int64_t b1) {
    const conv_geom *g = j->g;
    const bw_plan *p = j->p;
    const int64_t C = g->C, OC = g->OC, Cp = p->Cp;
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32((int)(C * 9)));
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t ob = b0; ob < b1; ob++) {
        const int64_t q = ob / 4, f = ob % 4, nb = ply_min_i64(4, p->OB - 4 * q);
        const __mmask16 m = OC - 16 * ob >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (OC - 16 * ob)) - 1);
        float *dst = j->Uout + 64 * q * Cp + 16 * f; // + xi 16 OB Cp + c 16 nb
        for (int64_t c = 0; c < Cp; c++) {
            __m512 u[6][6];
            if (c < C) {
                const float *src = j->w + (16 * ob * C + c) * 9;
                __m512 a[3][6];
                for (int r = 0; r < 3; r++) // g G^T, along each kernel row
                    g6(_mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r, 4),
                       _mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r + 1, 4),
                       _mm512_mask_i32gather_ps(zero, m, idx, src + 3 * r + 2, 4), a[r]);
                for (int k = 0; k < 6; k++) { // G (.), down each column
                    __m512 col[6];
                    g6(a[0][k], a[1][k], a[2][k], col);
                    for (int i = 0; i < 6; i++) u[i][k] = col[i];
                }
            } else {
                for (int i = 0; i < 6; i++)
                    for (int k = 0; k < 6; k++) u[i][k] = zero;
            }
            for (int xi = 0; xi < 36; xi++)
                _mm512_storeu_ps(dst + xi * p->OBp * Cp + c * 16 * nb, u[xi / 6][xi % 6]);
        }
    }
}

// V of tiles [t0, t0 + nt) (a chunk with nt <= tc), input blocks [cb0, cb1): 36 loads, B^T d B, 36 stores.
PLY_TARGET_AVX512 static void bw_input(const bw_job *j, int64_t t0, int64_t nt, int64_t tc, int64_t cb0, int64_t cb1,
                                       float *V) {
    const conv_geom *g = j->g;
    const bw_plan *p = j->p;
    const int64_t H = g->H, W = g->W, CB = p->CB;
    for (int64_t cb = cb0; cb < cb1; cb++)
        for (int64_t tt = 0; tt < nt; tt++) {
            const int64_t t = t0 + tt, n = t / (p->TH * p->TW), th = t / p->TW % p->TH, tw = t % p->TW;
            const int64_t ih0 = 4 * th - g->PH, iw0 = 4 * tw - g->PW;
            const float *xb = j->x + (n * CB + cb) * H * W * 16;
            const int inside = ih0 >= 0 && ih0 + 6 <= H && iw0 >= 0 && iw0 + 6 <= W;
            __mmask16 cm[6]; // at the image's edge, the patch's columns inside it: masked loads, zeros outside
            for (int k = 0; k < 6; k++) cm[k] = iw0 + k >= 0 && iw0 + k < W ? (__mmask16)0xFFFF : 0;
            __m512 e[6][6];
            for (int r = 0; r < 6; r++) {
                __m512 d[6];
                const int64_t ih = ih0 + r;
                const int rin = ih >= 0 && ih < H;
                const float *row = xb + (rin ? ih * W + iw0 : 0) * 16;
                if (inside)
                    for (int k = 0; k < 6; k++) d[k] = _mm512_loadu_ps(row + 16 * k);
                else
                    for (int k = 0; k < 6; k++) d[k] = _mm512_maskz_loadu_ps(rin ? cm[k] : 0, row + 16 * k);
                bt6(d, e[r]); // d B, along the row
            }
            float *v = V + (cb * tc + tt) * 16; // + xi CB tc 16
            for (int k = 0; k < 6; k++) {       // B^T (.), down each column
                __m512 col[6] = {e[0][k], e[1][k], e[2][k], e[3][k], e[4][k], e[5][k]}, o[6];
                bt6(col, o);
                for (int i = 0; i < 6; i++) _mm512_storeu_ps(v + (i * 6 + k) * CB * tc * 16, o[i]);
            }
        }
}

// conv_blocked.c's tile: NB output blocks (of a group whose weights are packed NB wide) x NP tiles from
// tt, input blocks [cb0, cb1), for one xi: dst = add + src + sum_c V[c/16][tt][c%16] U[c][16 f + l], src
// and add NULL for none; dst, src and add laid out as M ([f][tc][16] from the tile).
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void bw_tile(const float *V, const float *wg, int64_t tc,
                                                                           int NB, int64_t tt, int NP, int64_t cb0,
                                                                           int64_t cb1, const float *src, const float *add,
                                                                           float *dst, int pf) {
    __m512 acc[4][6];
    for (int f = 0; f < NB; f++)
        for (int i = 0; i < NP; i++) acc[f][i] = src ? _mm512_loadu_ps(src + (f * tc + tt + i) * 16) : _mm512_setzero_ps();
    for (int64_t cb = cb0; cb < cb1; cb++) {
        const float *vb = V + (cb * tc + tt) * 16;
        const float *wb = wg + cb * 16 * NB * 16;
        for (int k = 0; k < 16; k++) {
            __m512 w[4];
            for (int f = 0; f < NB; f++) w[f] = _mm512_loadu_ps(wb + (k * NB + f) * 16);
            if (pf) // the next CCHUNK's weights (the next in memory) into L2, a line per vector
                for (int f = 0; f < NB; f++) __builtin_prefetch(wb + (k * NB + f) * 16 + BW_PF * CCHUNK * NB * 16, 0, 2);
            for (int i = 0; i < NP; i++) {
                const __m512 v = _mm512_set1_ps(vb[i * 16 + k]);
                for (int f = 0; f < NB; f++) acc[f][i] = _mm512_fmadd_ps(w[f], v, acc[f][i]);
            }
        }
    }
    for (int f = 0; f < NB; f++)
        for (int i = 0; i < NP; i++) {
            const int64_t o = (f * tc + tt + i) * 16;
            _mm512_storeu_ps(dst + o, add ? _mm512_add_ps(acc[f][i], _mm512_loadu_ps(add + o)) : acc[f][i]);
        }
}

typedef void bw_tile_fn(const float *, const float *, int64_t, int64_t, int64_t, int64_t, const float *, const float *,
                        float *, int);
#define BW_TILE(NB, NP)                                                                                               \
    PLY_TARGET_AVX512 static void bw_tile##NB##x##NP(const float *V, const float *wg, int64_t tc, int64_t tt,        \
                                                     int64_t cb0, int64_t cb1, const float *src, const float *add,  \
                                                     float *dst, int pf) {                                           \
        bw_tile(V, wg, tc, NB, tt, NP, cb0, cb1, src, add, dst, pf);                                                  \
    }
#define BW_TILES(NB) BW_TILE(NB, 1) BW_TILE(NB, 2) BW_TILE(NB, 3) BW_TILE(NB, 4) BW_TILE(NB, 5) BW_TILE(NB, 6)
BW_TILES(1)
BW_TILES(2)
BW_TILES(3)
BW_TILES(4)
static bw_tile_fn *const bw_tiles[4][6] = {
    {bw_tile1x1, bw_tile1x2, bw_tile1x3, bw_tile1x4, bw_tile1x5, bw_tile1x6},
    {bw_tile2x1, bw_tile2x2, bw_tile2x3, bw_tile2x4, bw_tile2x5, bw_tile2x6},
    {bw_tile3x1, bw_tile3x2, bw_tile3x3, bw_tile3x4, bw_tile3x5, bw_tile3x6},
    {bw_tile4x1, bw_tile4x2, bw_tile4x3, bw_tile4x4, bw_tile4x5, bw_tile4x6},
};

// M of groups [q0, q1) of 4 output blocks for the nt tiles of a chunk: each xi, each group, each
// CCHUNK of input channels over all the tiles (the group's CCHUNK x 64 weights stay in L1). The sum
// over the channels is conv_kernel.c's (what the NCHW path runs), so the two agree to the bit: per
// block of KC channels from zero, then added to M; a block's second CCHUNK continues from its
// first's partial (in M for the first block, else in P, 4 tc 16 floats).
static void bw_products(const bw_job *j, const float *V, float *M, float *P, int64_t nt, int64_t tc, int64_t q0,
                        int64_t q1) {
    const bw_plan *p = j->p;
    const int64_t CB = p->CB, OB = p->OB, Cp = p->Cp, kb = (ply_cpu_level() >= PLY_CPU_AVX512 ? KC : KC_AVX2) / 16;
    for (int64_t xi = 0; xi < 36; xi++) {
        const float *Vx = V + xi * CB * tc * 16, *Ux = j->U + xi * p->OBp * Cp;
        float *Mx = M + xi * OB * tc * 16;
        for (int64_t q = q0; q < q1; q++) {
            const int nb = (int)ply_min_i64(4, OB - 4 * q);
            const float *wg = Ux + 64 * q * Cp;
            float *Mq = Mx + 4 * q * tc * 16;
            for (int64_t cb0 = 0; cb0 < CB; cb0 += CCHUNK / 16) {
                const int64_t cb1 = ply_min_i64(CB, cb0 + CCHUNK / 16), k0 = cb0 / kb * kb;
                const int start = cb0 == k0, end = cb1 == ply_min_i64(CB, k0 + kb);
                float *part = k0 == 0 ? Mq : P; // where this block's partial sum lives until its end
                const float *src = start ? NULL : part, *add = end && k0 > 0 ? Mq : NULL;
                float *dst = end ? Mq : part;
                if (ply_cpu_level() < PLY_CPU_AVX512) {
                    conv_bwino_products8(Vx, wg, tc, nb, nt, cb0, cb1, src, add, dst);
                    continue;
                }
                int64_t tt = 0;
                for (; tt + 6 <= nt; tt += 6) bw_tiles[nb - 1][5](Vx, wg, tc, tt, cb0, cb1, src, add, dst, BW_PF && tt == 0);
                if (tt < nt) bw_tiles[nb - 1][nt - tt - 1](Vx, wg, tc, tt, cb0, cb1, src, add, dst, BW_PF && tt == 0);
            }
        }
    }
}

// y of tiles [t0, t0 + nt), output blocks [ob0, ob1): A^T M A + bias (+ r), relu'd, lanes past OC 0.
PLY_TARGET_AVX512 static void bw_output(const bw_job *j, const float *M, int64_t t0, int64_t nt, int64_t tc,
                                        int64_t ob0, int64_t ob1) {
    const conv_geom *g = j->g;
    const bw_plan *p = j->p;
    const int64_t H = g->OH, W = g->OW, OB = p->OB, OC = g->OC; // the output's plane
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t ob = ob0; ob < ob1; ob++) {
        const __mmask16 om = OC - 16 * ob >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (OC - 16 * ob)) - 1);
        const __m512 b = j->bias ? _mm512_maskz_loadu_ps(om, j->bias + 16 * ob) : zero;
        for (int64_t tt = 0; tt < nt; tt++) {
            const int64_t t = t0 + tt, n = t / (p->TH * p->TW), th = t / p->TW % p->TH, tw = t % p->TW;
            const float *mc = M + (ob * tc + tt) * 16; // + xi OB tc 16
            __m512 s[6][4];
            for (int i = 0; i < 6; i++) { // (.) A, along each row
                __m512 rv[6];
                for (int k = 0; k < 6; k++) rv[k] = _mm512_loadu_ps(mc + (i * 6 + k) * OB * tc * 16);
                at6(rv, s[i]);
            }
            const int64_t oh0 = 4 * th, ow0 = 4 * tw;
            const int64_t rows = ply_min_i64(4, H - oh0), cols = ply_min_i64(4, W - ow0);
            const int64_t base = ((n * OB + ob) * H + oh0) * W + ow0;
            for (int k = 0; k < cols; k++) { // A^T (.), down each column
                __m512 col[6] = {s[0][k], s[1][k], s[2][k], s[3][k], s[4][k], s[5][k]}, o[4];
                at6(col, o);
                for (int u = 0; u < rows; u++) {
                    const int64_t at = (base + u * W + k) * 16;
                    __m512 v = _mm512_add_ps(o[u], b);
                    if (j->r) v = _mm512_add_ps(v, _mm512_loadu_ps(j->r + at));
                    if (j->relu) // max(v, 0) with NaN passed through, as the fused relu everywhere
                        v = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ) |
                                                         _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
                    _mm512_storeu_ps(j->y + at, _mm512_maskz_mov_ps(om, v));
                }
            }
        }
    }
}

// The level's functions: AVX-512's above, else the AVX2 ones.
static void bw_weights_level(const bw_job *j, int64_t b0, int64_t b1) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) bw_weights_blocks(j, b0, b1);
    else conv_bwino_weights8(j, b0, b1);
}
static void bw_input_level(const bw_job *j, int64_t t0, int64_t nt, int64_t tc, int64_t cb0, int64_t cb1, float *V) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) bw_input(j, t0, nt, tc, cb0, cb1, V);
    else conv_bwino_input8(j, t0, nt, tc, cb0, cb1, V);
}
static void bw_output_level(const bw_job *j, const float *M, int64_t t0, int64_t nt, int64_t tc, int64_t ob0,
                            int64_t ob1) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) bw_output(j, M, t0, nt, tc, ob0, ob1);
    else conv_bwino_output8(j, M, t0, nt, tc, ob0, ob1);
}

static void bw_weights_slot(void *ctx, int64_t s0, int64_t s1) {
    const bw_job *j = ctx;
    const int64_t OB = j->p->OB, T = j->p->threads;
    for (int64_t s = s0; s < s1; s++) bw_weights_level(j, OB * s / T, OB * (s + 1) / T);
}

static size_t bw_area(const bw_plan *p) { return (size_t)((36 * (p->Cp + p->OBp) + 64) * p->tc); } // V, M, P

// "columns", thread slot s: chunks [chunks s / threads, chunks (s + 1) / threads), a contiguous run.
static void bw_columns(void *ctx, int64_t s0, int64_t s1) {
    const bw_job *j = ctx;
    const bw_plan *p = j->p;
    for (int64_t s = s0; s < s1; s++) {
        float *V = j->scratch + (size_t)s * bw_area(p), *M = V + 36 * p->Cp * p->tc;
        for (int64_t k = p->chunks * s / p->threads; k < p->chunks * (s + 1) / p->threads; k++) {
            const int64_t t0 = k * p->tc, nt = ply_min_i64(p->T - t0, p->tc);
            bw_input_level(j, t0, nt, p->tc, 0, p->CB, V);
            bw_products(j, V, M, M + 36 * p->OBp * p->tc, nt, p->tc, 0, (p->OB + 3) / 4);
            bw_output_level(j, M, t0, nt, p->tc, 0, p->OB);
        }
    }
}

// "rows", step 1, thread slot s: V of its input blocks, all the tiles.
static void bw_rows_input(void *ctx, int64_t s0, int64_t s1) {
    const bw_job *j = ctx;
    const bw_plan *p = j->p;
    for (int64_t s = s0; s < s1; s++)
        bw_input_level(j, 0, p->T, p->tc, p->CB * s / p->threads, p->CB * (s + 1) / p->threads, j->scratch);
}

// "rows", step 2, thread slot s: the products and y of its groups of output blocks.
static void bw_rows_output(void *ctx, int64_t s0, int64_t s1) {
    const bw_job *j = ctx;
    const bw_plan *p = j->p;
    const int64_t groups = (p->OB + 3) / 4;
    float *M = j->scratch + 36 * p->Cp * p->tc;
    for (int64_t s = s0; s < s1; s++) {
        const int64_t q0 = groups * s / p->threads, q1 = groups * (s + 1) / p->threads;
        if (q0 >= q1) continue;
        float *P = M + 36 * p->OBp * p->tc + s * 64 * p->tc; // this slot's partial sums
        bw_products(j, j->scratch, M, P, p->T, p->tc, q0, q1);
        bw_output_level(j, M, 0, p->T, p->tc, 4 * q0, ply_min_i64(p->OB, 4 * q1));
    }
}

size_t conv_bwino_weights_floats(const conv_geom *g, int m) {
    if (m != 4) return 0;
    bw_plan p;
    bw_make_plan(g, 1, &p);
    return (size_t)(36 * p.OBp * p.Cp);
}

void conv_bwino_weights(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *w, float *U) {
    if (m != 4) return;
    bw_plan p;
    bw_make_plan(g, threads, &p);
    bw_job j = {.g = g, .p = &p, .w = w, .Uout = U};
    if (p.threads > 1) host->parallel_for(host, p.threads, 1, bw_weights_slot, &j);
    else bw_weights_slot(&j, 0, 1);
}

size_t conv_bwino_forward_floats(const conv_geom *g, int m, int64_t threads) {
    if (m != 4) return 0;
    bw_plan p;
    bw_make_plan(g, threads, &p);
    // "columns": an area (V, M, P) per thread; "rows": one V and M, a P per thread
    return p.rows ? (size_t)((36 * (p.Cp + p.OBp) + 64 * p.threads) * p.tc) : bw_area(&p) * (size_t)p.threads;
}

void conv_bwino_forward(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *U,
                        const float *bias, const float *r, int relu, const float *x, float *y, float *scratch) {
    if (m != 4) return;
    bw_plan p;
    bw_make_plan(g, threads, &p);
    bw_job j = {.g = g, .p = &p, .U = U, .bias = bias, .r = r, .x = x, .y = y, .scratch = scratch, .relu = relu};
    if (p.threads <= 1) {
        bw_columns(&j, 0, 1);
    } else if (p.rows) {
        host->parallel_for(host, p.threads, 1, bw_rows_input, &j);
        host->parallel_for(host, p.threads, 1, bw_rows_output, &j);
    } else {
        host->parallel_for(host, p.threads, 1, bw_columns, &j);
    }
}

int conv_bwino_tile(const conv_geom *g) {
    if (!(g->KH == 3 && g->KW == 3 && g->SH == 1 && g->SW == 1 && g->PH == g->PW && (g->PH == 0 || g->PH == 1) &&
          g->DH == 1 && g->DW == 1 && g->OH == g->H + 2 * g->PH - 2 && g->OW == g->W + 2 * g->PW - 2 && g->OH > 0 &&
          g->OW > 0 && ply_cpu_level() >= PLY_CPU_AVX2))
        return 0;
    return 4;
}
#else
size_t conv_bwino_weights_floats(const conv_geom *g, int m) { (void)g; (void)m; return 0; }
void conv_bwino_weights(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *w, float *U) {
    (void)host; (void)threads; (void)g; (void)m; (void)w; (void)U;
}
size_t conv_bwino_forward_floats(const conv_geom *g, int m, int64_t threads) { (void)g; (void)m; (void)threads; return 0; }
void conv_bwino_forward(const ply_host *host, int64_t threads, const conv_geom *g, int m, const float *U,
                        const float *bias, const float *r, int relu, const float *x, float *y, float *scratch) {
    (void)host; (void)threads; (void)g; (void)m; (void)U; (void)bias; (void)r; (void)relu; (void)x; (void)y; (void)scratch;
}
int conv_bwino_tile(const conv_geom *g) { (void)g; return 0; }
#endif
