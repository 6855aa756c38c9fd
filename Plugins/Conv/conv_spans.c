/*
 * conv2d forward for any kernel shape, vectorised over output channels, positions in spans of up to 8
 * across rows (see conv_spans.h).
 *
 * Layouts (OP = ceil(OC/32) panels of 32 output channels, CB input channels per block,
 * Hp, Wq the padded plane, P = N*OH*OW positions, KK = KH*KW taps):
 *   xp [N][C][Hp][Wq]                 the input with its zero border (x itself when there is none)
 *   Wp [C/CB][OP][cb][KH][KW][32]     packed weights (cb = CB but in the last block), zeros past OC
 *   po [P]                            int64: where position p's first tap is in xp, n*C*Hp*Wq + oh*SH*Wq + ow*SW
 *   yT [OP][P][32]                    the sums before bias and relu
 */
#include "plugin_support.h"

#include "conv_spans.h"
#include "conv_winograd.h"

#include <string.h>

// Positions per kernel call: 8 x 32 channels are 16 accumulators, 2 weight registers and a broadcast
// (19 of 32 registers); the 8 position pointers fit the general registers.
#define MR 8
// The same at the AVX2 level (16 registers of 8 floats): a call takes up to 6 positions and runs the
// panel's 32 channels in two halves of 16, each 6 x 2 = 12 accumulators, 2 weight registers and a
// broadcast (15 of 16), 8 loads per 12 multiply-adds (the shape of OpenBLAS's Haswell SGEMM tile).
#define MR2 6
// Taps (input channel x kernel tap) per block: a panel's block of weights (MAX_BLOCK_TAPS * 32 floats,
// 18 KB) stays in L1 (48 KB) beside the input the spans read, as conv_panels.c's 16 channels x 9 taps
// (measured there: 8, 16 and 32 channels of 3x3 alike). 1x7 and 7x1: blocks of 16 channels (112 taps),
// 5x5: 5 channels (125 taps).
#define MAX_BLOCK_TAPS 144
// At the AVX2 level half as many (9 KB of weights): the L1 of the AVX2 machine measured (AMD EPYC Zen 3) is
// 32 KB. Benchmarks/spans_kernel.c, 1 thread, 2 alternating rounds (the test suite on the other core), N C->OC HxW
// kernel stride, GFLOPS 144 / 72 taps: 1 288->384 35x35 3x3 s2 66, 65 / 85, 82; 1 48->64 35x35 5x5 78, 78 / 85,
// 83; 1 128->128 17x17 1x7 76, 76 / 83, 72; 1 512->512 7x7 3x3 72, 68 / 80, 60; one round: 1 160->160 17x17 7x1
// 38 / 46, 1 192->192 17x17 1x7 65 / 69, 1 192->320 17x17 3x3 s2 48 / 53, 1 64->64 56x56 3x3 s2 38 / 44.
#define AVX2_BLOCK_TAPS 72
// Spans per chunk of positions: the chunk's sums (CHUNK_SPANS * 8 positions x 32 channels, 64 KB a
// panel) stay in L2 while the blocks of input channels pass over them; one chunk at batch 1 up to
// 512 positions (22x22). Without chunks, batch 16: N16 48->64 35x35 5x5 spans 23.95 ms, im2col 24.90;
// N16 128->128 17x17 1x7 7.87 / 9.06 (thread CPU time, benchmark below, loaded machine).
#define CHUNK_SPANS 64
// Kernel taps at most (the offsets of one block's taps are kept on the stack).
#define MAX_TAPS 64

// "auto" takes the spans in evaluation (conv.c: after the live taps, before the panels, s2d and Winograd) for
//  - 1xK and Kx1 kernels with K >= 5, and 5x5 kernels, of stride 1 with at least 32 input and output
//    channels (im2col + GEMM before); 1x3 and 3x1 stay there;
//  - 3x3 layers the panels suit (conv_panels_suits) whose output rows leave the panels' row spans of 7
//    a call of 1 to 3 positions (17 = 7 + 7 + 3, 8 = 7 + 1): 2 to 6 accumulators, fewer than the 8
//    the multiply-add units need. A call of 6 keeps 12 (13 = 7 + 6, AlexNet's 13x13): the panels stay.
// Measured one layer, 1 thread, thread CPU time, median of 9 (Benchmarks/spans_kernel.c, loaded machine,
// load 12-20), spans / im2col (/ panels) ms:
//   Inception v3, batch 1: 128->128 17x17 1x7 0.44 / 0.51-0.54, 7x1 0.45 / 0.54; 160->160 1x7 0.70 / 0.80;
//     192->192 7x1 0.98 / 1.15; 48->64 35x35 5x5 1.26-1.29 / 1.50-1.58;
//     448->384 8x8 3x3 1.36 / 1.39 / 1.77; 288->384 35x35 3x3 s2 3.70 / 4.82 / 4.13;
//     192->320 17x17 3x3 s2 0.50 / 0.53 / 0.63; 96->96 35x35 3x3 s2 0.30 / 0.46 / 0.34;
//     384->384 8x8 1x3 0.41 / 0.38, 3x1 0.39 / 0.37 (im2col ahead: left to it)
//   batch 16: 48->64 35x35 5x5 23.7 / 24.1; 128->128 17x17 1x7 7.75 / 8.73
//   AlexNet's 5x5 64->192 27x27: batch 1 2.95 / 3.36, batch 16 51.4 / 53.5
//   where the rows are multiples of 7 the panels stay ahead: 256->256 14x14 1.50 / 1.79 / 1.43,
//     512->512 7x7 1.68 / 2.00 / 1.57, 64->96 35x35 1.02 / 1.04 / 0.93 (Winograd takes that one);
//     and on 13x13 rows: 192->384 1.54 / 1.66 / 1.45, 384->256 2.04 / 2.32 / 1.96, 256->256 1.35 / 1.53 / 1.33
int conv_spans_fits(const conv_geom *g) {
    return g->DH == 1 && g->DW == 1 && g->KH * g->KW <= MAX_TAPS && g->SH >= 1 && g->SW >= 1 && g->OH >= 1 &&
           g->OW >= 1 && ply_cpu_level() >= PLY_CPU_AVX2;
}

// At the AVX2 level (no Winograd or panels there: 3x3 layers took im2col + OpenBLAS's Haswell GEMM)
// "auto" also takes the spans for 3x3 layers, stride 1 or 2, of at least 64 input and 32 output
// channels and at most AVX2_MAX_POSITIONS output positions (N*OH*OW). Single thread, thread CPU time,
// medians of 9 (Benchmarks/spans_kernel.c with OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell
// PLY_CPU=avx2, load ~10-15 on 2 cores), GFLOPS spans / im2col:
//   batch 1: 64->64 56x56 74 / 54, 128->128 28x28 79 / 65, 256->256 14x14 79 / 61, 512->512 7x7 67 / 47,
//     128->128 56x56 s2 74 / 48, 256->256 28x28 s2 56 / 45, 192->384 13x13 78 / 63, 96->128 28x28 78 / 60,
//     64->192 56x56 66 / 52, 448->384 8x8 73 / 50;
//   batch 4 and 16: N4 128->128 28x28 62 / 51, N16 128->128 28x28 76 / 58, 256->256 14x14 77 / 57,
//     512->512 7x7 73 / 55; N16 64->64 56x56 (50176 positions) 50 / 51: the sums no longer stay in L2;
//   fewer input channels lose: 3->64 224x224 9 / 36, 32->64 147x147 40 / 54, 3->32 299x299 s2 12 / 33.
#define AVX2_MAX_POSITIONS 16384
#define AVX2_MIN_CHANNELS 64

int conv_spans_suits(const conv_geom *g, int panels_suit) {
    if (!conv_spans_fits(g)) return 0;
    if (g->KH == 3 && g->KW == 3 && ply_cpu_level() < PLY_CPU_AVX512)
        return g->C >= AVX2_MIN_CHANNELS && g->OC >= 32 && g->SH == g->SW && (g->SH == 1 || g->SH == 2) &&
               g->N * g->OH * g->OW <= AVX2_MAX_POSITIONS && !conv_winograd_suits_inference(g);
    if (g->KH == 3 && g->KW == 3) return panels_suit && g->OW % 7 >= 1 && g->OW % 7 <= 3;
    if (g->C < 32 || g->OC < 32 || g->SH != 1 || g->SW != 1) return 0;
    const int64_t lo = ply_min_i64(g->KH, g->KW), hi = ply_max_i64(g->KH, g->KW);
    return (lo == 1 && hi >= 5) || (g->KH == 5 && g->KW == 5);
}

static int64_t panels_of(const conv_geom *g) { return (g->OC + 31) / 32; }
static int64_t taps_of(const conv_geom *g) { return g->KH * g->KW; }
static int64_t block_channels(const conv_geom *g) {
    const int64_t taps = ply_cpu_level() >= PLY_CPU_AVX512 ? MAX_BLOCK_TAPS : AVX2_BLOCK_TAPS;
    return ply_max_i64(1, ply_min_i64(48, taps / taps_of(g)));
}

size_t conv_spans_weights_floats(const conv_geom *g) { return (size_t)(panels_of(g) * 32 * g->C * taps_of(g)); }

static int64_t padded_h(const conv_geom *g) { return ply_max_i64(g->H + 2 * g->PH, (g->OH - 1) * g->SH + g->KH); }
static int64_t padded_w(const conv_geom *g) { return ply_max_i64(g->W + 2 * g->PW, (g->OW - 1) * g->SW + g->KW); }

// Whether xp is x itself: no border and no room past it.
static int reads_x(const conv_geom *g) { return padded_h(g) == g->H && padded_w(g) == g->W; }

static size_t xp_floats(const conv_geom *g) {
    // rounded to 16 floats: po's int64s after it stay aligned
    return reads_x(g) ? 0 : (size_t)ply_round_up_i64(g->N * g->C * padded_h(g) * padded_w(g), 16);
}

static size_t positions(const conv_geom *g) { return (size_t)(g->N * g->OH * g->OW); }

size_t conv_spans_forward_floats(const conv_geom *g) {
    // po's int64s take 2 floats each
    return xp_floats(g) + 2 * positions(g) + (size_t)(panels_of(g) * 32) * positions(g);
}

// Wp (layout above) from w [OC][C][KH][KW].
static void pack_weights(const conv_geom *g, const float *w, float *Wp) {
    const int64_t C = g->C, OC = g->OC, OP = panels_of(g), KK = taps_of(g), CB = block_channels(g);
    float *dst = Wp;
    for (int64_t c0 = 0; c0 < C; c0 += CB) {
        const int64_t cb = ply_min_i64(CB, C - c0);
        for (int64_t op = 0; op < OP; op++)
            for (int64_t c = c0; c < c0 + cb; c++)
                for (int64_t t = 0; t < KK; t++, dst += 32)
                    for (int64_t j = 0; j < 32; j++) {
                        int64_t o = op * 32 + j;
                        dst[j] = o < OC ? w[(o * C + c) * KK + t] : 0.0f;
                    }
    }
}

ply_status conv_spans_cache_get(conv_weight_cache *cache, const ply_host *host, int64_t threads, const conv_geom *g,
                                const float *w, int host_only, const float **Wp) {
    // form 1: the packed weights (one form; the cache is the spans' own)
    float *u;
    int stale;
    ply_status st = conv_weight_cache_check(cache, host, threads, w, (size_t)(g->OC * g->C * taps_of(g)), 1, host_only,
                                            conv_spans_weights_floats(g), "packed weights", &u, &stale);
    if (st != PLY_OK) return st;
    if (stale) pack_weights(g, w, u);
    *Wp = u;
    return PLY_OK;
}

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

// conv_spans_pad for padded rows of at most 16 floats (Wq <= 16: GoogLeNet's 14x14 and 7x7 planes,
// Inception v3's 8x8 with pad 1): xp[plane][h][w] = x[plane][h - PH][w - PW] where 0 <= h - PH < H and
// 0 <= w - PW < W, else 0; per padded row one masked load of its W inputs, a permute that moves input
// lane w to lane w + PW (the other lanes zero), and one masked store of Wq lanes. The general loop
// below makes three libc calls per row (memset, memcpy, memset of a few floats): at batch 1, 2
// threads these pads run on the calling thread (conv_panels.c's PAD_SPLIT_FLOATS), between regions:
// GoogLeNet's inception5b branch2.1 (192 planes of 9x9) was a 13.6 us gap, the 24->64 / 48->128
// branch3.1 layers 5-6 us (PLY_REGION_TRACE, loaded machine, medians of 20 forwards).
PLY_TARGET_AVX512 static void pad_rows512(const conv_geom *g, int64_t Hp, int64_t Wq, const float *x, float *xp,
                                          int64_t n0, int64_t n1) {
    const int64_t C = g->C, H = g->H, W = g->W, PH = g->PH, PW = g->PW;
    const int64_t copied = ply_max_i64(0, ply_min_i64(W, Wq - PW)); // inputs of a row that land in xp
    const __mmask16 row = (__mmask16)((1u << Wq) - 1), in = (__mmask16)((1u << copied) - 1);
    const __mmask16 placed = (__mmask16)(in << PW);
    const __m512i shift = _mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32((int)PW)); // lane w reads lane w - PW
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t n = n0; n < n1; n++)
        for (int64_t c = 0; c < C; c++) {
            float *dst = xp + (n * C + c) * Hp * Wq;
            const float *src = x + (n * C + c) * H * W;
            for (int64_t h = 0; h < Hp; h++) {
                const int64_t ih = h - PH;
                __m512 v = zero;
                if (ih >= 0 && ih < H)
                    v = _mm512_maskz_permutexvar_ps(placed, shift, _mm512_maskz_loadu_ps(in, src + ih * W));
                _mm512_mask_storeu_ps(dst + h * Wq, row, v);
            }
        }
}
#endif

void conv_spans_pad(const conv_geom *g, int64_t Hp, int64_t Wq, const float *x, float *xp, int64_t n0, int64_t n1) {
#if PLY_HAVE_X86_TARGETS
    if (Wq <= 16 && g->PW < 16 && ply_cpu_level() >= PLY_CPU_AVX512) {
        pad_rows512(g, Hp, Wq, x, xp, n0, n1);
        return;
    }
#endif
    const int64_t C = g->C, H = g->H, W = g->W;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t c = 0; c < C; c++) {
            float *dst = xp + (n * C + c) * Hp * Wq;
            const float *src = x + (n * C + c) * H * W;
            memset(dst, 0, (size_t)(g->PH * Wq) * sizeof(float));
            for (int64_t h = 0; h < H && g->PH + h < Hp; h++) {
                float *row = dst + (g->PH + h) * Wq;
                memset(row, 0, (size_t)g->PW * sizeof(float));
                memcpy(row + g->PW, src + h * W, (size_t)ply_min_i64(W, Wq - g->PW) * sizeof(float));
                if (g->PW + W < Wq) memset(row + g->PW + W, 0, (size_t)(Wq - g->PW - W) * sizeof(float));
            }
            if (g->PH + H < Hp) memset(dst + (g->PH + H) * Wq, 0, (size_t)((Hp - g->PH - H) * Wq) * sizeof(float));
        }
}

void conv_spans_pad_planes(const conv_geom *g, int64_t Hp, int64_t Wq, const float *x, float *xp, int64_t p0,
                           int64_t p1) {
    if (p0 >= p1) return;
    conv_geom run = *g; // planes [p0, p1) are one run of p1 - p0 channels of one image, in x and xp alike
    run.N = 1;
    run.C = p1 - p0;
    conv_spans_pad(&run, Hp, Wq, x + p0 * g->H * g->W, xp + p0 * Hp * Wq, 0, 1);
}

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

PLY_TARGET_AVX512 static void store_avx512(const conv_geom *g, const float *yT, const float *bias, int relu, float *y,
                                          int64_t p0, int64_t p1, int64_t qa, int64_t qb) {
    const int64_t OC = g->OC, P = g->N * g->OH * g->OW, OHW = g->OH * g->OW;
    // y[n][o][q] = relu(yT[o/32][n*OHW + q][o%32] + bias[o]) for positions n*OHW + q in [qa, qb), 16
    // positions at a time by a gather
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(32));
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t op = p0; op < p1; op++)
        for (int64_t o = op * 32; o < ply_min_i64(OC, op * 32 + 32); o++) {
            const __m512 b = _mm512_set1_ps(bias ? bias[o] : 0.0f);
            const float *src = yT + op * P * 32 + (o - op * 32);
            for (int64_t n = qa / OHW; n * OHW < qb; n++) {
                float *dst = y + (n * OC + o) * OHW;
                const float *s = src + n * OHW * 32;
                const int64_t e = ply_min_i64(OHW, qb - n * OHW);
                for (int64_t q = ply_max_i64(0, qa - n * OHW); q < e; q += 16) {
                    __mmask16 m = e - q >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (e - q)) - 1);
                    __m512 v = _mm512_add_ps(_mm512_mask_i32gather_ps(zero, m, idx, s + q * 32, 4), b);
                    if (relu) // max(v, 0) with NaN passed through, as the fused relu everywhere
                        v = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ) |
                                                         _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
                    _mm512_mask_storeu_ps(dst + q, m, v);
                }
            }
        }
}

// c[r][0:32] (+)= sum_{t < T} w[t*32 .. +32] * x[po[r] + off[t]] for r < R: R positions, one panel,
// one block of T = cb*KH*KW taps (off[t] = ci*Hp*Wq + kh*Wq + kw for t = ci*KK + kh*KW + kw).
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void micro(const int R, int64_t T, const int64_t *off,
                                                                         const float *x, const int64_t *po,
                                                                         const float *w, float *c, int first) {
    const float *p[MR];
    __m512 a0[MR], a1[MR];
    for (int r = 0; r < R; r++) {
        p[r] = x + po[r];
        a0[r] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + 32 * r);
        a1[r] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + 32 * r + 16);
    }
    const int64_t next = T * 32;
    for (int64_t t = 0; t < T; t++, w += 32) {
        const int64_t o = off[t];
        __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16);
        // the next block of Wp (it follows this one) into L2, as conv_panels.c (measured there)
        _mm_prefetch((const char *)(w + next), _MM_HINT_T1);
        _mm_prefetch((const char *)(w + next + 16), _MM_HINT_T1);
        for (int r = 0; r < R; r++) {
            __m512 b = _mm512_set1_ps(p[r][o]);
            a0[r] = _mm512_fmadd_ps(b, w0, a0[r]);
            a1[r] = _mm512_fmadd_ps(b, w1, a1[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        _mm512_storeu_ps(c + 32 * r, a0[r]);
        _mm512_storeu_ps(c + 32 * r + 16, a1[r]);
    }
}

#define MICRO(R)                                                                                                     \
    PLY_TARGET_AVX512 static void micro##R(int64_t T, const int64_t *off, const float *x, const int64_t *po,          \
                                           const float *w, float *c, int first) {                                    \
        micro(R, T, off, x, po, w, c, first);                                                                        \
    }
MICRO(1) MICRO(2) MICRO(3) MICRO(4) MICRO(5) MICRO(6) MICRO(7) MICRO(8)

typedef void (*micro_fn)(int64_t, const int64_t *, const float *, const int64_t *, const float *, float *, int);
static const micro_fn micros[MR + 1] = {0, micro1, micro2, micro3, micro4, micro5, micro6, micro7, micro8};

// The AVX2 kernel, the same sums as micro: for each half h of the panel, c[r][16h : 16h + 16] (+)=
// sum_{t < T} w[t*32 + 16h .. +16] * x[po[r] + off[t]] for r < R <= MR2.
PLY_TARGET_AVX2 static inline __attribute__((always_inline)) void micro_avx2(const int R, int64_t T, const int64_t *off,
                                                                            const float *x, const int64_t *po,
                                                                            const float *w, float *c, int first) {
    const float *p[MR2];
    for (int r = 0; r < R; r++) p[r] = x + po[r];
    const int64_t next = T * 32;
    for (int h = 0; h < 2; h++) {
        __m256 a0[MR2], a1[MR2];
        for (int r = 0; r < R; r++) {
            a0[r] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(c + 32 * r + 16 * h);
            a1[r] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(c + 32 * r + 16 * h + 8);
        }
        const float *wh = w + 16 * h;
        for (int64_t t = 0; t < T; t++, wh += 32) {
            const int64_t o = off[t];
            __m256 w0 = _mm256_loadu_ps(wh), w1 = _mm256_loadu_ps(wh + 8);
            // the next block of Wp into L2 (one line of this tap's 32 floats per half), as micro does
            _mm_prefetch((const char *)(wh + next), _MM_HINT_T1);
            for (int r = 0; r < R; r++) {
                __m256 b = _mm256_broadcast_ss(p[r] + o);
                a0[r] = _mm256_fmadd_ps(b, w0, a0[r]);
                a1[r] = _mm256_fmadd_ps(b, w1, a1[r]);
            }
        }
        for (int r = 0; r < R; r++) {
            _mm256_storeu_ps(c + 32 * r + 16 * h, a0[r]);
            _mm256_storeu_ps(c + 32 * r + 16 * h + 8, a1[r]);
        }
    }
}

#define MICRO2(R)                                                                                                    \
    PLY_TARGET_AVX2 static void micro_avx2_##R(int64_t T, const int64_t *off, const float *x, const int64_t *po,     \
                                               const float *w, float *c, int first) {                                \
        micro_avx2(R, T, off, x, po, w, c, first);                                                                   \
    }
MICRO2(1) MICRO2(2) MICRO2(3) MICRO2(4) MICRO2(5) MICRO2(6)
static const micro_fn micros2[MR2 + 1] = {0,              micro_avx2_1,   micro_avx2_2, micro_avx2_3,
                                          micro_avx2_4,   micro_avx2_5,   micro_avx2_6};

// Positions per span at this CPU level, and the spans the N*OH*OW positions are cut into.
static int64_t span_positions(void) { return ply_cpu_level() >= PLY_CPU_AVX512 ? MR : MR2; }
static int64_t spans_of(const conv_geom *g) { return ((int64_t)positions(g) + span_positions() - 1) / span_positions(); }

// conv_spans_store at the AVX2 level: the same, 8 positions at a time by a gather.
PLY_TARGET_AVX2 static void store_avx2(const conv_geom *g, const float *yT, const float *bias, int relu, float *y,
                                       int64_t p0, int64_t p1, int64_t qa, int64_t qb) {
    const int64_t OC = g->OC, P = g->N * g->OH * g->OW, OHW = g->OH * g->OW;
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), idx = _mm256_slli_epi32(iota, 5); // 32 apart
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t op = p0; op < p1; op++)
        for (int64_t o = op * 32; o < ply_min_i64(OC, op * 32 + 32); o++) {
            const __m256 b = _mm256_set1_ps(bias ? bias[o] : 0.0f);
            const float *src = yT + op * P * 32 + (o - op * 32);
            for (int64_t n = qa / OHW; n * OHW < qb; n++) {
                float *dst = y + (n * OC + o) * OHW;
                const float *s = src + n * OHW * 32;
                const int64_t e = ply_min_i64(OHW, qb - n * OHW);
                for (int64_t q = ply_max_i64(0, qa - n * OHW); q < e; q += 8) {
                    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)ply_min_i64(8, e - q)), iota);
                    __m256 v = _mm256_add_ps(_mm256_mask_i32gather_ps(zero, s + q * 32, idx, _mm256_castsi256_ps(m), 4), b);
                    if (relu) v = _mm256_and_ps(v, _mm256_cmp_ps(v, zero, _CMP_NLE_UQ)); // NaN passes
                    _mm256_maskstore_ps(dst + q, m, v);
                }
            }
        }
}

void conv_spans_store(const conv_geom *g, const float *yT, const float *bias, int relu, float *y, int64_t p0, int64_t p1,
                      int64_t qa, int64_t qb) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) store_avx512(g, yT, bias, relu, y, p0, p1, qa, qb);
    else store_avx2(g, yT, bias, relu, y, p0, p1, qa, qb);
}

typedef struct {
    const conv_geom *g;
    const float *Wp, *bias, *x;
    float *y, *xp, *yT;
    int64_t *po;
    int relu;
    int64_t threads;
    int by_spans; // the threads split the spans rather than the panels
} spans_job;

// xp for images [n0, n1): the input inside a border of zeros.
static void pad_input(const spans_job *j, int64_t n0, int64_t n1) {
    conv_spans_pad(j->g, padded_h(j->g), padded_w(j->g), j->x, j->xp, n0, n1);
}

// po[p] for every position p = (n*OH + oh)*OW + ow.
static void position_offsets(const conv_geom *g, int64_t *po) {
    const int64_t Wq = padded_w(g), image = g->C * padded_h(g) * Wq;
    int64_t p = 0;
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) po[p++] = n * image + oh * g->SH * Wq + ow * g->SW;
}

// Panels [p0, p1) x positions [qa, qb): yT by blocks of input channels, then y = relu(yT + bias) for
// those channels and positions. The positions are cut into S = ceil((qb - qa)/mr) spans, span s covering
// [qa + Q*s/S, qa + Q*(s+1)/S) (Q = qb - qa): mr or mr-1 each (fewer when Q < mr), mr = span_positions()
// (MR at the AVX-512 level, MR2 at AVX2), each span by mk[its length]. A position's sums do not depend
// on the span it falls in (the taps are added in the same order), so any cut gives the same y.
static inline __attribute__((always_inline)) void run_part_body(const spans_job *j, int64_t p0, int64_t p1,
                                                                 int64_t qa, int64_t qb, const int64_t mr,
                                                                 const micro_fn *mk) {
    const conv_geom *g = j->g;
    const int64_t C = g->C, OP = panels_of(g), KK = taps_of(g), CB = block_channels(g);
    const int64_t Wq = padded_w(g), plane = padded_h(g) * Wq, P = g->N * g->OH * g->OW;
    const int64_t Q = qb - qa, S = (Q + mr - 1) / mr;
    int64_t off[MAX_BLOCK_TAPS]; // T <= MAX_BLOCK_TAPS: cb <= MAX_BLOCK_TAPS / KK (KK <= MAX_TAPS: cb >= 2)
    for (int64_t s0 = 0; s0 < S; s0 += CHUNK_SPANS) {
        const int64_t s1 = ply_min_i64(S, s0 + CHUNK_SPANS);
        for (int64_t c0 = 0; c0 < C; c0 += CB) {
            const int64_t cb = ply_min_i64(CB, C - c0), T = cb * KK;
            for (int64_t ci = 0, t = 0; ci < cb; ci++)
                for (int64_t kh = 0; kh < g->KH; kh++)
                    for (int64_t kw = 0; kw < g->KW; kw++) off[t++] = ci * plane + kh * Wq + kw;
            const float *xc = j->xp + c0 * plane;
            const float *wblock = j->Wp + c0 * OP * KK * 32;
            for (int64_t op = p0; op < p1; op++) {
                const float *w = wblock + op * T * 32;
                float *yp = j->yT + op * P * 32;
                for (int64_t s = s0; s < s1; s++) {
                    const int64_t q0 = qa + Q * s / S, q1 = qa + Q * (s + 1) / S;
                    mk[q1 - q0](T, off, xc, j->po + q0, w, yp + q0 * 32, c0 == 0);
                }
            }
        }
    }
    conv_spans_store(g, j->yT, j->bias, j->relu, j->y, p0, p1, qa, qb);
}

PLY_TARGET_AVX512 static void run_part_avx512(const spans_job *j, int64_t p0, int64_t p1, int64_t qa, int64_t qb) {
    run_part_body(j, p0, p1, qa, qb, MR, micros);
}
PLY_TARGET_AVX2 static void run_part_avx2(const spans_job *j, int64_t p0, int64_t p1, int64_t qa, int64_t qb) {
    run_part_body(j, p0, p1, qa, qb, MR2, micros2);
}
static void run_part(const spans_job *j, int64_t p0, int64_t p1, int64_t qa, int64_t qb) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) run_part_avx512(j, p0, p1, qa, qb);
    else run_part_avx2(j, p0, p1, qa, qb);
}

// Padded inputs of at least this many floats are padded by all the threads, each a range of the N*C
// planes (plane n*C + c is image n's channel c in x and xp alike, so a range of planes is one call on a
// run of them): at batch 1 the padding ran on the calling thread alone. Inception v3 at batch 1, 2
// threads (PLY_REGION_TRACE, loaded machine): 36-56 us serial before each of its 1x7 / 7x1 layers on
// 17x17 (128-192 channels, 50k-75k floats padded) and its 5x5 ones on 35x35, 6 per Mixed_6 block. The
// threshold is conv_panels.c's PAD_SPLIT_FLOATS, measured there (a region of its own costs more than
// padding a few thousand floats).
#define SPANS_PAD_SPLIT_FLOATS 16384

static void step_pad(void *ctx, int64_t t0, int64_t t1) {
    const spans_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t planes = g->N * g->C, Hp = padded_h(g), Wq = padded_w(g);
    for (int64_t th = t0; th < t1; th++)
        conv_spans_pad_planes(g, Hp, Wq, j->x, j->xp, planes * th / j->threads, planes * (th + 1) / j->threads);
}

// Thread th's part: its share of the panels (all positions), or with by_spans its share of the P
// positions, [P*th/T, P*(th+1)/T) (all panels), cut into its own spans. Splitting whole spans of the
// P positions instead gave 17x17's 37 spans as 18 + 19, 140 + 149 positions: the second thread 6% more
// (Inception v3 b1, 2 threads, PLY_REGION_TRACE: 160->160 1x7 / 7x1 regions 474 / 496, 478 / 509,
// 464 / 496 us of CPU per thread, loaded machine; measured after the change in BENCHMARKS.md).
// Tried (eighteenth session, AMD Zen 3, AVX2): claimed units (ply_claim) of one panel x a run of the
// spans, 4+ per thread, so that a thread whose vCPU runs slow leaves part of its share to the other.
// Each unit then reads its input rows again per panel (one part per thread reads them once for all its
// panels, within a block of channels): step_parts' CPU time over Inception v3's 35 regions, batch 1,
// 2 threads, the worker starved by a build on the other core, 6 alternating rounds, medians:
// 56.2 ms -> 60.8 (+8%). Runs of spans over all panels instead (each unit reading all the weights):
// +4%. Neither is taken: on a quiet machine the static split waits 1.6% of the regions' wall.
static void step_parts(void *ctx, int64_t t0, int64_t t1) {
    const spans_job *j = ctx;
    const int64_t OP = panels_of(j->g), P = (int64_t)positions(j->g), T = j->threads;
    for (int64_t th = t0; th < t1; th++) {
        if (j->by_spans) {
            int64_t qa = P * th / T, qb = P * (th + 1) / T;
            if (qa < qb) run_part(j, 0, OP, qa, qb);
        } else {
            int64_t p0 = OP * th / T, p1 = OP * (th + 1) / T;
            if (p0 < p1) run_part(j, p0, p1, 0, P);
        }
    }
}

void conv_spans_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *Wp, const float *bias,
                        int relu, const float *x, float *y, float *scratch) {
    const size_t xf = xp_floats(g);
    const int64_t OP = panels_of(g), S = spans_of(g);
    threads = ply_max_i64(1, threads);
    // The threads split the panels where they divide evenly; else the spans (each thread then reads all
    // the weights): 5 panels (160 output channels, Inception v3's 17x17 blocks) on 2 threads would be 3 + 2.
    const int by_spans = OP % threads != 0;
    spans_job j = {.g = g, .Wp = Wp, .bias = bias, .x = x, .y = y, .xp = reads_x(g) ? (float *)x : scratch,
                   .po = (int64_t *)(void *)(scratch + xf), .yT = scratch + xf + 2 * positions(g), .relu = relu,
                   .threads = by_spans ? ply_min_i64(threads, S) : threads, .by_spans = by_spans};
    position_offsets(g, j.po);
    if (!reads_x(g)) {
        int64_t pt = xf >= SPANS_PAD_SPLIT_FLOATS ? ply_min_i64(threads, g->N * g->C) : 1;
        spans_job jp = j;
        jp.threads = pt;
        if (pt > 1) host->parallel_for(host, pt, 1, step_pad, &jp);
        else pad_input(&jp, 0, g->N);
    }
    if (j.threads > 1) host->parallel_for(host, j.threads, 1, step_parts, &j);
    else run_part(&j, 0, OP, 0, (int64_t)positions(g));
}
#else
void conv_spans_store(const conv_geom *g, const float *yT, const float *bias, int relu, float *y, int64_t p0, int64_t p1,
                      int64_t qa, int64_t qb) {
    (void)g; (void)yT; (void)bias; (void)relu; (void)y; (void)p0; (void)p1; (void)qa; (void)qb;
}
void conv_spans_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *Wp, const float *bias,
                        int relu, const float *x, float *y, float *scratch) {
    (void)host; (void)threads; (void)g; (void)Wp; (void)bias; (void)relu; (void)x; (void)y; (void)scratch;
}
#endif
