/*
 * conv2d on ABI 1.7's blocked channel layout (PLY_LAYOUT_NCHW16C: [N][C/16][H][W][16], zero lanes
 * past C), evaluation only, AVX-512, groups 1, dilation 1.
 *
 * Which calls take it (conv_eval_layouts):
 *  - Input and output NCHW16c: every such layer with at least 16 input channels and a kernel of at most
 *    MAX_TAPS taps, with an optional residual (input 1, conv_residual.h) in either layout.
 *  - NCHW input, NCHW16c output: every such layer (the stem: its NCHW forward into blk_tmp, then a
 *    reorder; a 3-channel input would waste 13 of 16 lanes in the blocked kernels).
 *
 * The kernels:
 *  - 1x1, stride 1, no padding ("flat"): the positions of a plane in order, the kernel of
 *    Benchmarks/pointwise_nchwc.c, which matched ONNX Runtime's node on ResNet-50's 56x56 and 28x28
 *    shapes (BENCHMARKS.md, fourteenth session):
 *      y[n][ob][p][j] = act(b[16 ob + j] + sum_c w[16 ob + j][c] * x[n][c/16][p][c%16] (+ r[n][ob][p][j]))
 *  - any other kernel ("rows"): the input copied once per call into a zero-bordered buffer xp
 *    [N][C/16][H + 2 PH][W + 2 PW][16], then per output row
 *      y[n][ob][oy][ox][j] = act(b + sum_{c, ky, kx} w[16 ob + j][c][ky][kx]
 *                                    * xp[n][c/16][oy SH + ky][ox SW + kx][c%16] (+ r))
 *  - 3x3, stride 1, padding 1 or 0: Winograd F(4x4, 3x3) on the layout where conv_bwino_tile says so
 *    (conv_blocked_wino.c: bit for bit the NCHW F(4x4)'s sums, 1.4-1.9x faster on ResNet's shapes),
 *    its transformed weights kept per weight version (L->bwino).
 *
 * Tiles of 4 output blocks (64 channels) x 6 positions: 24 accumulators; per input channel and tap 4
 * weight vectors and 6 broadcast inputs. Weights packed once per weight version (L->blk) per group of
 * up to 4 blocks (group_start: ceil(OB/4) groups of nearly equal size nb, group g from block b_g):
 * wp[g][c/16][t][c%16][f][j] = w[16 (b_g + f) + j][c][t] (t = ky KW + kx, f < nb), group g at
 * 16 b_g Cp T floats, zero for c >= C and for output channels past OC, so padding lanes stay 0.
 */
#include <string.h>

#include "conv_blocked_wino.h"
#include "conv_layer.h"
#include "conv_reorder_avx2.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#include "plugin_simd.h"
#endif

#define MAX_TAPS 49 // 7x7: larger kernels (AlexNet's 11x11 stem) stay NCHW in
// Input planes smaller than this stay NCHW in: ResNet-50 at batch 1, 1 thread, per block (PLY_REGION_TRACE,
// 31 forwards, median us, blocked / NCHW): on 14x14 planes (layer3) 3536-3939 / 4489-4660, but on 7x7 (layer4)
// 7043 and 6687 / 4593 and 4592: 49 positions fill 8 tiles of 6 and one of 1, and F(4x4)'s U of a
// 512->512 layer (38 MB) is read from memory for 4 tiles.
#define MIN_PLANE (14 * 14)

// Whether the layer can run on blocked values at all: the evaluation of a plain conv on AVX-512.
static int blocked_layer(const ply_layer *L) {
#if PLY_HAVE_X86_TARGETS
    return !L->training && L->G == 1 && L->DH == 1 && L->DW == 1 && ply_cpu_level() >= PLY_CPU_AVX512 &&
           (L->algorithm == ALGO_AUTO || L->algorithm == ALGO_POINTWISE);
#else
    (void)L;
    return 0;
#endif
}

// Whether its input can be blocked: the kernels above (16 channels or more, at most MAX_TAPS taps, planes of
// MIN_PLANE positions or more).
static int blocked_input(const ply_layer *L, int32_t n_inputs, const ply_shape *x) {
    return blocked_layer(L) && n_inputs >= 1 && n_inputs <= 2 && x->ndim == 4 && L->C >= 16 &&
           L->KH * L->KW <= MAX_TAPS && x->dims[2] * x->dims[3] >= MIN_PLANE;
}

ply_status conv_eval_layouts(ply_layer *L, int32_t n_inputs, const ply_shape *inputs, uint32_t *accepts,
                             uint32_t *produces) {
    const uint32_t nchw = PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW), blk = PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW16C);
    const int in = blocked_input(L, n_inputs, &inputs[0]);
    for (int32_t i = 0; i < n_inputs; i++) accepts[i] = nchw | (in ? blk : 0);
    *produces = nchw | (blocked_layer(L) && inputs[0].ndim == 4 ? blk : 0);
    return PLY_OK;
}


typedef struct {
    float *dst;
    const float *src;
    int32_t ld;
    int64_t C, P;
} reorder_job;

#if PLY_HAVE_X86_TARGETS
// NCHW to NCHW16c on AVX-512, units as reorder_units: 16 positions at a time, a vector from each of the
// block's 16 planes (zero past C) transposed in registers into the 16 positions' vectors; the last
// positions one gather each. The stem's 64 x 112 x 112 at batch 1 took 1.0 ms of its 3.8 ms in the
// scalar loops, ~0.4 ms with a gather per position (PLY_REGION_TRACE, ResNet-50, 1 thread).
PLY_TARGET_AVX512 static void reorder_in512(const reorder_job *j, int64_t begin, int64_t end) {
    const int64_t CB = (j->C + 15) / 16, P = j->P;
    const __m512i planes = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                              _mm512_set1_epi32((int)P));
    for (int64_t u = begin; u < end; u++) {
        const int64_t n = u / CB, c0 = u % CB * 16, lanes = j->C - c0 < 16 ? j->C - c0 : 16;
        const __mmask16 live = (__mmask16)((1u << lanes) - 1);
        const float *src = j->src + (n * j->C + c0) * P;
        float *blk = j->dst + u * P * 16;
        int64_t p = 0;
        for (; p + 16 <= P; p += 16) {
            __m512 r[16];
            for (int64_t l = 0; l < 16; l++) r[l] = l < lanes ? _mm512_loadu_ps(src + l * P + p) : _mm512_setzero_ps();
            ply_transpose16(r);
            for (int i = 0; i < 16; i++) _mm512_storeu_ps(blk + (p + i) * 16, r[i]);
        }
        for (; p < P; p++)
            _mm512_storeu_ps(blk + p * 16, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, planes, src + p, 4));
    }
}
#endif

// Units [begin, end) of (image, block of 16 channels): the block's channels moved between layouts, a
// position at a time (16 reads a plane apart, one contiguous vector written, or the reverse).
static void reorder_units(void *ctx, int64_t begin, int64_t end) {
    const reorder_job *j = ctx;
#if PLY_HAVE_X86_TARGETS
    // (16 planes of at most 2^31 / 16 floats: int32 gather offsets)
    if (j->ld == PLY_LAYOUT_NCHW16C && ply_cpu_level() >= PLY_CPU_AVX512 && j->P < (INT64_C(1) << 27)) {
        reorder_in512(j, begin, end);
        return;
    }
    if (ply_cpu_level() >= PLY_CPU_AVX2) { // 8 x 8 transposes in registers (conv_reorder_avx2.c)
        if (j->ld == PLY_LAYOUT_NCHW16C) conv_reorder_in_avx2(j->dst, j->src, j->C, j->P, begin, end);
        else conv_reorder_out_avx2(j->dst, j->src, j->C, j->P, begin, end);
        return;
    }
#endif
    const int64_t CB = (j->C + 15) / 16, P = j->P;
    for (int64_t u = begin; u < end; u++) {
        const int64_t n = u / CB, c0 = u % CB * 16, lanes = j->C - c0 < 16 ? j->C - c0 : 16;
        float *blk = j->ld == PLY_LAYOUT_NCHW16C ? j->dst + u * P * 16 : NULL;
        const float *cblk = j->ld == PLY_LAYOUT_NCHW16C ? NULL : j->src + u * P * 16;
        // in runs of 64 positions, a lane at a time: reads (or writes) of a plane in order, the 4 KB of
        // blocked vectors they fill in L1 (a position at a time, the 16 lanes' planes in turn, the stem's
        // 64 x 112 x 112 reorder took 1.0 ms of a 3.8 ms stem)
        for (int64_t p0 = 0; p0 < P; p0 += 64) {
            const int64_t p1 = p0 + 64 < P ? p0 + 64 : P;
            for (int64_t l = 0; l < 16; l++) {
                const int64_t plane = (n * j->C + c0 + l) * P;
                if (blk && l < lanes)
                    for (int64_t p = p0; p < p1; p++) blk[p * 16 + l] = j->src[plane + p];
                else if (blk)
                    for (int64_t p = p0; p < p1; p++) blk[p * 16 + l] = 0.0f;
                else if (l < lanes)
                    for (int64_t p = p0; p < p1; p++) j->dst[plane + p] = cblk[p * 16 + l];
            }
        }
    }
}

// dst (layout ld) = src (the other layout), channels past C in a blocked dst written 0; on the host's threads.
static void reorder(const ply_layer *L, float *dst, int32_t ld, const float *src, int64_t N, int64_t C, int64_t P) {
    reorder_job j = {.dst = dst, .src = src, .ld = ld, .C = C, .P = P};
    const int64_t units = N * ((C + 15) / 16);
    if (L->host->thread_count(L->host) <= 1 || units < 2 || units * P < (1 << 15)) reorder_units(&j, 0, units);
    else L->host->parallel_for(L->host, units, 1, reorder_units, &j);
}

#if PLY_HAVE_X86_TARGETS
// Input channels per chunk times taps whose weights (4 blocks x 16 floats each: 128 x 256 B = 32 KB)
// stay in L1 while the positions pass (Benchmarks/pointwise_nchwc.c's CHUNK).
#define CHUNK_TAPS 128

typedef struct {
    const float *x, *wp, *b, *r;
    float *y;
    int64_t CB, OB, OW, OP;      // input blocks, output blocks, output row and plane
    int64_t xcs, xps, ximg;      // floats between input blocks, between a tile's positions, between images
    int64_t xrow;                // "rows": floats between the inputs of two output rows (SH input rows)
    int64_t T, tapoff[MAX_TAPS]; // taps and their offsets in floats
    int64_t cbchunk;             // input blocks per chunk
    int64_t ranges, span;        // position ranges per (image, group), positions (flat) or rows per range
    int flat, relu;
} blk_job;

// One tile: NB blocks from ob x NP positions, input blocks [cb0, cb1). x: the first position's input
// (tap 0, block 0), y and r: the image's output and residual; p: the first position's index in the plane.
PLY_TARGET_AVX512 __attribute__((always_inline)) static inline void tile(const blk_job *j, const float *x, float *y, const float *r, const float *wg,
                                          int64_t ob, int NB, int64_t p, int NP, int64_t cb0, int64_t cb1, int first,
                                          int last) {
    __m512 acc[4][6];
    for (int f = 0; f < NB; f++)
        for (int i = 0; i < NP; i++)
            acc[f][i] = first ? _mm512_loadu_ps(j->b + (ob + f) * 16) : _mm512_loadu_ps(y + ((ob + f) * j->OP + p + i) * 16);
    // one loop over (cb, t), not two: with the taps' loop inside the blocks', clang kept the accumulators on
    // the stack between blocks (24 stores and 24 loads per 16 channels of a 1x1 layer)
    const float *wb = wg + cb0 * j->T * 16 * NB * 16;
    for (int64_t s = 0, cb = cb0, t = 0, steps = (cb1 - cb0) * j->T; s < steps; s++, wb += 16 * NB * 16) {
        const float *xb = x + cb * j->xcs + j->tapoff[t];
        if (++t == j->T) t = 0, cb++;
        for (int k = 0; k < 16; k++) {
            __m512 w[4];
            for (int f = 0; f < NB; f++) w[f] = _mm512_loadu_ps(wb + (k * NB + f) * 16);
            for (int i = 0; i < NP; i++) {
                const __m512 v = _mm512_set1_ps(xb[i * j->xps + k]);
                for (int f = 0; f < NB; f++) acc[f][i] = _mm512_fmadd_ps(w[f], v, acc[f][i]);
            }
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    for (int f = 0; f < NB; f++)
        for (int i = 0; i < NP; i++) {
            const int64_t o = ((ob + f) * j->OP + p + i) * 16;
            __m512 v = acc[f][i];
            if (last && r) v = _mm512_add_ps(v, _mm512_loadu_ps(r + o));
            _mm512_storeu_ps(y + o, last && j->relu ? _mm512_max_ps(v, zero) : v);
        }
}

// The first output block of group g of ceil(OB/4) groups of nearly equal size (at most 4 blocks, sizes
// differing by at most 1): no group of one block where OB > 4 (OB = 5 as 3 + 2, not 4 + 1). A one-block
// tile loads a weight vector per 6 FMAs, load-bound: Inception v3's Conv2d_3b_1x1 (64 -> 80 channels,
// 73x73) ran 1.17x its NCHW time blocked with groups of 4 + 1.
static inline int64_t group_start(int64_t OB, int64_t g) {
    const int64_t groups = (OB + 3) / 4;
    return g >= groups ? OB : g * OB / groups;
}

typedef void tile_fn(const blk_job *, const float *, float *, const float *, const float *, int64_t, int64_t, int64_t,
                     int64_t, int, int);
#define TILE(NB, NP)                                                                                                   \
    PLY_TARGET_AVX512 static void tile##NB##x##NP(const blk_job *j, const float *x, float *y, const float *r,       \
                                                  const float *wg, int64_t ob, int64_t p, int64_t cb0, int64_t cb1,  \
                                                  int first, int last) {                                            \
        tile(j, x, y, r, wg, ob, NB, p, NP, cb0, cb1, first, last);                                                   \
    }
#define TILES(NB) TILE(NB, 1) TILE(NB, 2) TILE(NB, 3) TILE(NB, 4) TILE(NB, 5) TILE(NB, 6)
TILES(1)
TILES(2)
TILES(3)
TILES(4)
static tile_fn *const tiles_by[4][6] = {
    {tile1x1, tile1x2, tile1x3, tile1x4, tile1x5, tile1x6},
    {tile2x1, tile2x2, tile2x3, tile2x4, tile2x5, tile2x6},
    {tile3x1, tile3x2, tile3x3, tile3x4, tile3x5, tile3x6},
    {tile4x1, tile4x2, tile4x3, tile4x4, tile4x5, tile4x6},
};

// Positions [p0, p1) of one output row (or of the flat plane) for input blocks [cb0, cb1); x0: the
// input of position p0.
static void run_positions(const blk_job *j, const float *x0, float *y, const float *r, const float *wg, int64_t ob,
                          int nb, int64_t p0, int64_t p1, int64_t cb0, int64_t cb1) {
    const int first = cb0 == 0, last = cb1 == j->CB;
    int64_t p = p0;
    for (; p + 6 <= p1; p += 6) tiles_by[nb - 1][5](j, x0 + (p - p0) * j->xps, y, r, wg, ob, p, cb0, cb1, first, last);
    if (p < p1) tiles_by[nb - 1][p1 - p - 1](j, x0 + (p - p0) * j->xps, y, r, wg, ob, p, cb0, cb1, first, last);
}

// Units [begin, end): (image, group of 4 output blocks, range of positions or rows), each over every
// input chunk.
static void blk_units(void *ctx, int64_t begin, int64_t end) {
    const blk_job *j = ctx;
    const int64_t groups = (j->OB + 3) / 4;
    for (int64_t u = begin; u < end; u++) {
        const int64_t n = u / (groups * j->ranges), g = u / j->ranges % groups, range = u % j->ranges;
        const int64_t ob = group_start(j->OB, g);
        const int nb = (int)(group_start(j->OB, g + 1) - ob);
        const float *x = j->x + n * j->ximg, *wg = j->wp + ob * 16 * j->CB * 16 * j->T;
        float *y = j->y + n * j->OB * 16 * j->OP;
        const float *r = j->r ? j->r + n * j->OB * 16 * j->OP : NULL;
        const int64_t s0 = range * j->span, s1 = s0 + j->span;
        for (int64_t cb0 = 0; cb0 < j->CB; cb0 += j->cbchunk) {
            const int64_t cb1 = cb0 + j->cbchunk < j->CB ? cb0 + j->cbchunk : j->CB;
            if (j->flat) {
                const int64_t p1 = s1 < j->OP ? s1 : j->OP;
                if (s0 < p1) run_positions(j, x + s0 * 16, y, r, wg, ob, nb, s0, p1, cb0, cb1);
            } else {
                const int64_t rows = j->OP / j->OW, r1 = s1 < rows ? s1 : rows;
                for (int64_t oy = s0; oy < r1; oy++)
                    run_positions(j, x + oy * j->xrow, y, r, wg, ob, nb, oy * j->OW, (oy + 1) * j->OW, cb0, cb1);
            }
        }
    }
}

// wp (see the top) from w [OC][C][T].
static void pack_weights(const ply_layer *L, int64_t CB, int64_t OB, int64_t T, float *wp) {
    const int64_t C = L->C, OC = L->OC;
    memset(wp, 0, (size_t)(OB * 16 * CB * 16 * T) * sizeof(float));
    for (int64_t g = 0; g < (OB + 3) / 4; g++) {
        const int64_t ob = group_start(OB, g), nb = group_start(OB, g + 1) - ob;
        float *wg = wp + ob * 16 * CB * 16 * T;
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t f = 0; f < nb; f++)
                    for (int64_t k = 0; k < 16 && (ob + f) * 16 + k < OC; k++)
                        wg[(((c / 16) * T + t) * 16 + c % 16) * nb * 16 + f * 16 + k] =
                            L->weight[(((ob + f) * 16 + k) * C + c) * T + t];
    }
}

// y (NCHW16c) = the conv of x (NCHW16c), with r (NCHW16c or NULL); the scratch holds the bias and the
// padded input ("rows" with padding).
static ply_status blocked_conv(ply_layer *L, const float *x, const float *r, float *y, int64_t N, int64_t H, int64_t W,
                               int64_t OH, int64_t OW) {
    const int64_t CB = (L->C + 15) / 16, OB = (L->OC + 15) / 16, T = L->KH * L->KW;
    const int64_t threads = L->host->thread_count(L->host);
    ply_status st;
    if (L->KH == 3 && L->KW == 3 && L->SH == 1 && L->SW == 1 && L->PH == L->PW && L->PH <= 1) {
        const conv_geom g = {.N = N, .C = L->C, .H = H, .W = W, .OC = L->OC, .KH = 3, .KW = 3, .SH = 1, .SW = 1,
                             .PH = L->PH, .PW = L->PW, .OH = OH, .OW = OW, .DH = 1, .DW = 1, .XC = L->C, .YC = L->OC};
        const int m = conv_bwino_tile(&g);
        if (m) {
            if ((st = conv_grow_scratch(L, conv_bwino_forward_floats(&g, m, threads))) != PLY_OK) return st;
            float *U;
            int stale;
            if ((st = conv_weight_cache_check(&L->bwino, L->host, threads, L->weight, (size_t)(L->OC * L->C * 9), m, 1,
                                              conv_bwino_weights_floats(&g, m), "Winograd NCHW16c weights", &U,
                                              &stale)) != PLY_OK)
                return st;
            if (stale) conv_bwino_weights(L->host, threads, &g, m, L->weight, U);
            conv_bwino_forward(L->host, threads, &g, m, U, L->has_bias ? L->bias : NULL, r, L->relu, x, y, L->scratch);
            return PLY_OK;
        }
    }
    const int flat = T == 1 && L->SH == 1 && L->SW == 1 && L->PH == 0 && L->PW == 0;
    const int64_t Hp = H + 2 * L->PH, Wp = W + 2 * L->PW;
    const int pad = !flat && (L->PH || L->PW);
    const size_t bf = (size_t)(OB * 16), xf = pad ? (size_t)(N * CB * Hp * Wp * 16) : 0;
    st = conv_grow_scratch(L, bf + xf);
    if (st != PLY_OK) return st;
    float *wp, *b = L->scratch, *xp = b + bf;
    int stale;
    if ((st = conv_weight_cache_check(&L->blk, L->host, threads, L->weight, (size_t)(L->OC * L->C * T), 1, 1,
                                      (size_t)(OB * 16 * CB * 16 * T), "packed NCHW16c weights", &wp, &stale)) != PLY_OK)
        return st;
    if (stale) pack_weights(L, CB, OB, T, wp);
    memset(b, 0, bf * sizeof(float));
    if (L->has_bias) memcpy(b, L->bias, (size_t)L->OC * sizeof(float));
    if (pad) {
        memset(xp, 0, xf * sizeof(float));
        for (int64_t nc = 0; nc < N * CB; nc++)
            for (int64_t h = 0; h < H; h++)
                memcpy(xp + ((nc * Hp + h + L->PH) * Wp + L->PW) * 16, x + (nc * H + h) * W * 16,
                       (size_t)(W * 16) * sizeof(float));
        x = xp;
    }
    blk_job j = {.x = x, .wp = wp, .b = b, .r = r, .y = y, .CB = CB, .OB = OB, .OW = OW, .OP = OH * OW,
                 .xcs = Hp * Wp * 16, .xps = flat ? 16 : L->SW * 16, .ximg = CB * Hp * Wp * 16,
                 .xrow = L->SH * Wp * 16, .T = T, .flat = flat, .relu = L->relu};
    for (int64_t ky = 0; ky < L->KH; ky++)
        for (int64_t kx = 0; kx < L->KW; kx++) j.tapoff[ky * L->KW + kx] = (ky * Wp + kx) * 16;
    j.cbchunk = CHUNK_TAPS / 16 / T > 1 ? CHUNK_TAPS / 16 / T : 1;
    // ranges of positions (multiples of 6) or rows, so that every thread has a few units
    const int64_t groups = (OB + 3) / 4, lines = flat ? (OH * OW + 5) / 6 : OH;
    int64_t ranges = threads > 1 ? (4 * threads + N * groups - 1) / (N * groups) : 1;
    if (ranges > lines) ranges = lines;
    const int64_t per = (lines + ranges - 1) / ranges;
    j.span = flat ? per * 6 : per;
    j.ranges = (lines + per - 1) / per;
    const int64_t units = N * groups * j.ranges;
    if (threads <= 1 || units < 2) blk_units(&j, 0, units);
    else L->host->parallel_for(L->host, units, 1, blk_units, &j);
    return PLY_OK;
}
#endif

// blk_tmp grown to `floats`.
static ply_status grow_tmp(ply_layer *L, size_t floats) {
    if (floats <= L->blk_tmp_floats) return PLY_OK;
    L->host->free(L->host, L->blk_tmp);
    L->blk_tmp = L->host->alloc(L->host, floats * sizeof(float));
    L->blk_tmp_floats = L->blk_tmp ? floats : 0;
    if (!L->blk_tmp)
        return ply_errorf(L->host, PLY_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %zu bytes for a blocked output",
                          floats * sizeof(float));
    return PLY_OK;
}

// ---- Winograd F(4x4) on the blocked layout inside an NCHW forward (conv_bwino_through).
//
// At the AVX2 level the NCHW F(4x4) (conv_winograd4_avx2.c) holds 8 tiles of a tile row in a vector: a 28x28
// plane's rows of 7 tiles fill 7 of 8 lanes, a 35x35 plane's 9 tiles two vectors. conv_blocked_wino.c holds 16
// channels in its vectors whatever the plane, and its sums are the NCHW F(4x4)'s (the same bits at AVX2: its
// products summed in conv_kernel_avx2.c's blocks of 128 channels). So on mid-sized planes the NCHW forward
// reorders x into NCHW16c, runs the blocked F(4x4) and reorders y back. Benchmarks/blocked_winograd.c (batch 1,
// alternating in one process, Zen 3, wall ms of the NCHW F(4x4) / the blocked one with both reorders, medians
// of 9; two runs where given): 1 thread, 64->64 56x56 1.37 / 1.05, 2.29 / 1.77; 128->128 28x28 1.81 / 1.19,
// 2.79 / 1.99; 96->128 28x28 1.42 / 0.91; 16->32 28x28 0.10 / 0.06; 32->96 28x28 0.60 / 0.33; 64->96 35x35
// 1.32 / 0.89; 96->96 35x35 1.79 / 1.20; 48->64 35x35 0.78 / 0.46; 256->256 56x56 25.5 / 23.2; 512->512 28x28
// 18.7 / 18.0; 2 threads (the reorders on one), 64->64 56x56 1.17 / 0.91, 128->128 28x28 1.57 / 1.07, 96->96
// 35x35 1.56 / 0.97. Outside the range it does not pay: 256->256 14x14 2.11 / 2.18, 128->128 112x112 16.2 /
// 16.7, 64->64 224x224 21.1 / 25.6 (the reorders of 3.2M floats each way). At AVX-512 the NCHW F(4x4) fills 16
// lanes and blocked values come through the layout negotiation instead (conv_eval_layouts). At larger batches
// the reorders move data that no longer fits the caches: batch 16, 1 thread, 64->64 56x56 33.1 / 33.9 (6.4M
// floats in and out), 128->128 28x28 29.6 / 24.7 (3.2M); so at most THROUGH_MAX_FLOATS of x and y together.
// Within it larger batches gain too (1 thread): batch 16 32->96 28x28 9.36 / 8.02, 16->32 28x28 2.86 / 1.92;
// batch 2 64->64 56x56 5.02 / 4.01; batch 4 128->128 28x28 8.88 / 6.53; batch 8 96->128 28x28 13.1 / 11.0.
#define THROUGH_MIN_PLANE (28 * 28)
#define THROUGH_MAX_PLANE (56 * 56)
#define THROUGH_MAX_FLOATS (INT64_C(1) << 21)

int conv_bwino_through_suits(const ply_layer *L, const conv_geom *g) {
    const int64_t P = g->OH * g->OW;
    return !L->training && ply_cpu_level() == PLY_CPU_AVX2 && g->C >= 16 && P >= THROUGH_MIN_PLANE &&
           P <= THROUGH_MAX_PLANE && g->N * (g->C + g->OC) * P <= THROUGH_MAX_FLOATS && conv_bwino_tile(g) == 4;
}

ply_status conv_bwino_through(ply_layer *L, const conv_geom *g, const float *x, float *y) {
    const int64_t threads = L->host->thread_count(L->host), N = g->N, P = g->H * g->W, OP = g->OH * g->OW;
    const size_t xf = (size_t)(N * ((g->C + 15) / 16 * 16) * P), yf = (size_t)(N * ((g->OC + 15) / 16 * 16) * OP);
    ply_status st;
    if ((st = grow_tmp(L, xf + yf)) != PLY_OK) return st;
    if ((st = conv_grow_scratch(L, conv_bwino_forward_floats(g, 4, threads))) != PLY_OK) return st;
    float *U;
    int stale;
    if ((st = conv_weight_cache_check(&L->bwino, L->host, threads, L->weight, (size_t)(g->OC * g->C * 9), 4, 1,
                                      conv_bwino_weights_floats(g, 4), "Winograd NCHW16c weights", &U, &stale)) != PLY_OK)
        return st;
    if (stale) conv_bwino_weights(L->host, threads, g, 4, L->weight, U);
    float *xb = L->blk_tmp, *yb = L->blk_tmp + xf;
    reorder(L, xb, PLY_LAYOUT_NCHW16C, x, N, g->C, P);
    conv_bwino_forward(L->host, threads, g, 4, U, L->has_bias ? L->bias : NULL, NULL, L->relu, xb, yb, L->scratch);
    reorder(L, y, PLY_LAYOUT_NCHW, yb, N, g->OC, OP);
    return PLY_OK;
}

ply_status conv_forward_layout(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, const int32_t *in_layouts,
                               ply_tensor *output, int32_t out_layout) {
    int all_nchw = out_layout == PLY_LAYOUT_NCHW, any_blocked_in = 0, valid = 1;
    for (int32_t i = 0; i < n_inputs; i++) {
        all_nchw &= in_layouts[i] == PLY_LAYOUT_NCHW;
        any_blocked_in |= in_layouts[i] == PLY_LAYOUT_NCHW16C;
        valid &= in_layouts[i] == PLY_LAYOUT_NCHW || in_layouts[i] == PLY_LAYOUT_NCHW16C;
    }
    if (all_nchw) return conv_forward_nchw(L, n_inputs, inputs, output);
    valid &= out_layout == PLY_LAYOUT_NCHW || out_layout == PLY_LAYOUT_NCHW16C;
    valid &= blocked_layer(L) && inputs[0].shape.ndim == 4 &&
             (!any_blocked_in || blocked_input(L, n_inputs, &inputs[0].shape));
    if (!valid)
        return ply_errorf(L->host, PLY_ERR_UNSUPPORTED, "conv2d: forward_layout with input layout %d and output layout %d "
                          "is not one eval_layouts offers for this layer", (int)in_layouts[0], (int)out_layout);
#if PLY_HAVE_X86_TARGETS
    const ply_shape *s = &inputs[0].shape, *os = &output->shape;
    const int64_t N = s->dims[0], C = L->C, OC = L->OC, H = s->dims[2], W = s->dims[3];
    if (s->dims[1] != C) return ply_errorf(L->host, PLY_ERR_SHAPE, "conv2d: input has %lld channels, expected %lld",
                                           (long long)s->dims[1], (long long)C);
    const int64_t OH = os->dims[2], OW = os->dims[3], P = H * W, OP = OH * OW;
    const int64_t Cp = (C + 15) / 16 * 16, OCp = (OC + 15) / 16 * 16;
    ply_status st;
    if (!blocked_input(L, n_inputs, s)) {
        // the stem: NCHW in (and an NCHW residual, if any), the NCHW forward, then a reorder to NCHW16c
        if ((st = grow_tmp(L, (size_t)(N * OC * OP))) != PLY_OK) return st;
        ply_tensor tmp = *output;
        tmp.data = L->blk_tmp;
        if ((st = conv_forward_nchw(L, n_inputs, inputs, &tmp)) != PLY_OK) return st;
        reorder(L, output->data, PLY_LAYOUT_NCHW16C, L->blk_tmp, N, OC, OP);
        return PLY_OK;
    }
    // blocked kernels: NCHW sides reordered through blk_tmp (input, residual, output)
    const size_t xf = in_layouts[0] == PLY_LAYOUT_NCHW ? (size_t)(N * Cp * P) : 0;
    const size_t rf = n_inputs > 1 && in_layouts[1] == PLY_LAYOUT_NCHW ? (size_t)(N * OCp * OP) : 0;
    const size_t yf = out_layout == PLY_LAYOUT_NCHW ? (size_t)(N * OCp * OP) : 0;
    if (xf + rf + yf && (st = grow_tmp(L, xf + rf + yf)) != PLY_OK) return st;
    const float *x = inputs[0].data, *r = n_inputs > 1 ? inputs[1].data : NULL;
    float *y = yf ? L->blk_tmp + xf + rf : output->data;
    if (xf) {
        reorder(L, L->blk_tmp, PLY_LAYOUT_NCHW16C, x, N, C, P);
        x = L->blk_tmp;
    }
    if (rf) {
        reorder(L, L->blk_tmp + xf, PLY_LAYOUT_NCHW16C, r, N, OC, OP);
        r = L->blk_tmp + xf;
    }
    if ((st = blocked_conv(L, x, r, y, N, H, W, OH, OW)) != PLY_OK) return st;
    if (yf) reorder(L, output->data, PLY_LAYOUT_NCHW, y, N, OC, OP);
    return PLY_OK;
#else
    return PLY_ERR_UNSUPPORTED;
#endif
}
