/*
 * conv2d forward for 3x3 kernels on small planes, vectorised over output channels (see conv_panels.h).
 *
 * Layouts (OP = ceil(OC/32) panels of 32 output channels, CB input channels per block,
 * Hp = H + 2*PH, Wq = W + 2*PW, P = N*OH*OW positions):
 *   xp [N][C][Hp][Wq]                 the input with its zero border
 *   Wp [C/CB][OP][cb][3][3][32]       packed weights (cb = CB but in the last block), zeros past OC
 *   yT [OP][P][32]                    the sums before bias and relu
 */
#include "plugin_support.h"

#include "conv_panels.h"
#include "conv_spans.h"
#include "conv_winograd.h"

#include <string.h>

// Input channels per block: a panel's block of weights (CB*9*32 floats, 18 KB) stays in L1 (48 KB)
// beside the 7 rows of input the kernel reads. 8, 16 and 32 measured alike (1 512->512 7x7, thread CPU
// time, best of 20, two passes, loaded machine: 1.79 / 1.65, 1.60 / 2.12, 1.70 / 1.65 ms; 1 256->256
// 14x14: 1.47 / 1.48, 1.47 / 1.45, 1.46 / 1.42 ms); prefetching two blocks ahead instead of one
// neither (1.70 / 1.63, 1.46 / 1.49 ms).
#define CB 16
// Positions per kernel call: 7 x 32 channels are 14 accumulators. ResNet's planes (56, 28, 14, 7)
// are multiples of 7.
#define MR 7

// "auto" takes the panels in evaluation (where the live taps do not suit, conv.c) for 3x3 layers of
// stride 2 with at most PANELS_MAX_POSITIONS output positions, and of stride 1 where Winograd F(2x2)
// would have fewer than 64 tiles and evaluation's Winograd does not run (conv_winograd_suits_inference:
// from 32 tiles, with U of at most 8 MB, ResNet's 14x14 and AlexNet's 13x13 layers at batch 1 take
// Winograd since branch rn50s; the measurements below are from before, at 64 tiles).
// Measured one thread, `ply bench-layers --batch 1 --threads 1 --cpu-time --layers`, main (im2col +
// GEMM there) / panels, ms, loaded machine (load 7-23; within ~15%):
//   stride 2: 64->128 56 (784 positions) 1.14 / 0.95, 128->128 56 2.15 / 2.05, 128->256 28 0.94 / 0.90,
//             256->256 28 2.14 / 1.82, 256->512 14 1.36 / 0.99, 512->512 14 2.99 / 2.01
//   stride 1: 256->256 14x14 (49 tiles) ~1.9 / ~1.6, 512->512 7x7 (16 tiles) ~2.9 / ~2.1
// and where Winograd runs it stays ahead: 1 128->128 28x28 (196 tiles) Winograd ~1.0-1.1 ms, panels
// 1.48 (the kernel alone). 16 256->512 14 s2 (784 positions): 13.9 ms alone, no regression at
// batch 16 (ResNet-18: 356 / 350 ms a batch).
#define PANELS_MAX_POSITIONS 1024

int conv_panels_fits(const conv_geom *g) {
    return g->KH == 3 && g->KW == 3 && g->SH == g->SW && (g->SH == 1 || g->SH == 2) && g->DH == 1 && g->DW == 1 &&
           g->OH >= 1 && g->OW >= 1 && ply_cpu_level() >= PLY_CPU_AVX512;
}

int conv_panels_suits(const conv_geom *g) {
    if (!conv_panels_fits(g) || g->C < 16 || g->OC < 32) return 0;
    const int64_t P = g->N * g->OH * g->OW;
    if (g->SH == 2) return P <= PANELS_MAX_POSITIONS;
    return !conv_winograd_suits_inference(g);
}

// A batch of stride-2 layers whose whole the panels do not suit: as many images per call as keep
// the call within PANELS_MAX_POSITIONS outputs (one at least). ResNet-50 at batch 16, 1 thread,
// `ply bench-layers resnet50 --batch 16 --runs 2 --cpu-time --layers` (load ~14 on 2 cores), ms per
// batch, im2col + GEMM on the whole batch -> panels a call of 1 image (784 outputs) / 5 images
// (980): layer2.0.conv2 (128->128, 56x56 s2) 49.9 -> 33.0, layer3.0.conv2 (256->256, 28x28 s2)
// 39.6 -> 30.9 (at batch 1 the panels ran 1.8 and 1.6 ms an image).
int64_t conv_panels_images_per_call(const conv_geom *g) {
    if (!conv_panels_fits(g) || g->C < 16 || g->OC < 32 || g->SH != 2) return 0;
    const int64_t P = g->OH * g->OW;
    return P <= PANELS_MAX_POSITIONS ? ply_min_i64(g->N, PANELS_MAX_POSITIONS / P) : 0;
}

static int64_t panels_of(const conv_geom *g) { return (g->OC + 31) / 32; }

size_t conv_panels_weights_floats(const conv_geom *g) { return (size_t)(panels_of(g) * 32 * g->C * 9); }

static int64_t padded_h(const conv_geom *g) { return ply_max_i64(g->H + 2 * g->PH, (g->OH - 1) * g->SH + 3); }
static int64_t padded_w(const conv_geom *g) { return ply_max_i64(g->W + 2 * g->PW, (g->OW - 1) * g->SW + 3); }

static size_t xp_floats(const conv_geom *g) {
    // + 16: the kernel's last broadcast reads stay inside the buffer
    return (size_t)(g->N * g->C * padded_h(g) * padded_w(g)) + 16;
}

size_t conv_panels_forward_floats(const conv_geom *g) {
    return xp_floats(g) + (size_t)(panels_of(g) * 32 * g->N * g->OH * g->OW);
}

// Wp (layout above) from w [OC][C][3][3].
static void pack_weights(const conv_geom *g, const float *w, float *Wp) {
    const int64_t C = g->C, OC = g->OC, OP = panels_of(g);
    float *dst = Wp;
    for (int64_t c0 = 0; c0 < C; c0 += CB) {
        const int64_t cb = ply_min_i64(CB, C - c0);
        for (int64_t op = 0; op < OP; op++)
            for (int64_t c = c0; c < c0 + cb; c++)
                for (int64_t t = 0; t < 9; t++, dst += 32)
                    for (int64_t j = 0; j < 32; j++) {
                        int64_t o = op * 32 + j;
                        dst[j] = o < OC ? w[(o * C + c) * 9 + t] : 0.0f;
                    }
    }
}

ply_status conv_panels_cache_get(conv_weight_cache *cache, const ply_host *host, int64_t threads, const conv_geom *g,
                                 const float *w, int host_only, const float **Wp) {
    // form 1: the packed weights (the panels have one form; the cache is the panels' own)
    float *u;
    int stale;
    ply_status st = conv_weight_cache_check(cache, host, threads, w, (size_t)(g->OC * g->C * 9), 1, host_only,
                                            conv_panels_weights_floats(g), "packed weights", &u, &stale);
    if (st != PLY_OK) return st;
    if (stale) pack_weights(g, w, u);
    *Wp = u;
    return PLY_OK;
}

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

// c[r][0:32] (+)= sum_{c < cb, kh, kw} w[(c*9 + kh*3 + kw)*32 .. +32] * x[c*plane + kh*Wq + S*r + kw] for r < R:
// R positions of one output row (x at the padded input of its first tap), one panel.
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void micro(const int R, const int S, int64_t cb,
                                                                         const float *x, int64_t plane, int64_t Wq,
                                                                         const float *w, float *c, int first) {
    const int64_t next = cb * 9 * 32;
    __m512 a0[MR], a1[MR];
    for (int r = 0; r < R; r++) {
        a0[r] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + 32 * r);
        a1[r] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + 32 * r + 16);
    }
    for (int64_t ci = 0; ci < cb; ci++, x += plane)
        for (int kh = 0; kh < 3; kh++) {
            const float *xr = x + kh * Wq;
            for (int kw = 0; kw < 3; kw++, w += 32) {
                __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16);
                // the next block of Wp (it follows this one) into L2: with 7 positions a row, a block is
                // used 7 times per row and streams from memory otherwise (1 512->512 7x7, thread CPU time,
                // best of 20, loaded machine: 2.20 ms without, 2.08 / 2.04 into L1, 1.85 / 1.82 into L2;
                // 14x14 planes unchanged within the noise)
                _mm_prefetch((const char *)(w + next), _MM_HINT_T1);
                _mm_prefetch((const char *)(w + next + 16), _MM_HINT_T1);
                for (int r = 0; r < R; r++) {
                    __m512 b = _mm512_set1_ps(xr[S * r + kw]);
                    a0[r] = _mm512_fmadd_ps(b, w0, a0[r]);
                    a1[r] = _mm512_fmadd_ps(b, w1, a1[r]);
                }
            }
        }
    for (int r = 0; r < R; r++) {
        _mm512_storeu_ps(c + 32 * r, a0[r]);
        _mm512_storeu_ps(c + 32 * r + 16, a1[r]);
    }
}

#define MICRO(R, S)                                                                                                   \
    PLY_TARGET_AVX512 static void micro##R##_##S(int64_t cb, const float *x, int64_t plane, int64_t Wq, const float *w, \
                                                 float *c, int first) {                                               \
        micro(R, S, cb, x, plane, Wq, w, c, first);                                                                   \
    }
MICRO(1, 1) MICRO(2, 1) MICRO(3, 1) MICRO(4, 1) MICRO(5, 1) MICRO(6, 1) MICRO(7, 1)
MICRO(1, 2) MICRO(2, 2) MICRO(3, 2) MICRO(4, 2) MICRO(5, 2) MICRO(6, 2) MICRO(7, 2)

typedef void (*micro_fn)(int64_t, const float *, int64_t, int64_t, const float *, float *, int);
static const micro_fn micros[2][MR + 1] = {
    {0, micro1_1, micro2_1, micro3_1, micro4_1, micro5_1, micro6_1, micro7_1},
    {0, micro1_2, micro2_2, micro3_2, micro4_2, micro5_2, micro6_2, micro7_2},
};

typedef struct {
    const conv_geom *g;
    const float *Wp, *bias, *x;
    float *y, *xp, *yT;
    int relu;
    int64_t threads;
} panels_job;

// xp for images [n0, n1): the input inside a border of zeros.
static void pad_input(const panels_job *j, int64_t n0, int64_t n1) {
    conv_spans_pad(j->g, padded_h(j->g), padded_w(j->g), j->x, j->xp, n0, n1);
}

// Units [u0, u1) of panel rows (unit u = op * N*OH + n*OH + oh: output row oh of image n for the
// 32 channels of panel op): yT by blocks of input channels, then y = relu(yT + bias) for them.
// A thread's share is a range of units rather than of whole panels: 7 panels (GoogLeNet's 96->208
// and 112->224 at 14x14) split 3 + 4 left one thread 33% behind the other at batch 1, 2 threads
// (branch thr2c, PLY_REGION_TRACE). Each unit's sums run in the same order whatever the split.
PLY_TARGET_AVX512 static void run_panels(const panels_job *j, int64_t u0, int64_t u1) {
    const conv_geom *g = j->g;
    const int64_t C = g->C, OP = panels_of(g), OH = g->OH, OW = g->OW, S = g->SH;
    const int64_t Hp = padded_h(g), Wq = padded_w(g), plane = Hp * Wq, P = g->N * OH * OW, R = g->N * OH;
    const micro_fn *mf = micros[S - 1];
    for (int64_t c0 = 0; c0 < C; c0 += CB) {
        const int64_t cb = ply_min_i64(CB, C - c0);
        const float *wblock = j->Wp + c0 * OP * 9 * 32;
        for (int64_t u = u0; u < u1; u++) {
            const int64_t op = u / R, r = u % R, n = r / OH, oh = r % OH;
            const float *w = wblock + op * cb * 9 * 32;
            const float *xrow = j->xp + ((n * C + c0) * Hp + oh * S) * Wq;
            float *crow = j->yT + op * P * 32 + r * OW * 32;
            for (int64_t ow = 0; ow < OW; ow += MR) {
                int mr = (int)ply_min_i64(MR, OW - ow);
                mf[mr](cb, xrow + ow * S, plane, Wq, w, crow + ow * 32, c0 == 0);
            }
        }
    }
    for (int64_t op = u0 / R; op * R < u1; op++) { // y = relu(yT + bias), the units' positions of each panel
        const int64_t ra = ply_max_i64(u0, op * R) - op * R, rb = ply_min_i64(u1, (op + 1) * R) - op * R;
        conv_spans_store(g, j->yT, j->bias, j->relu, j->y, op, op + 1, ra * OW, rb * OW);
    }
}

// Thread th's planes of xp: planes [NC th / threads, NC (th + 1) / threads) of the N*C (plane
// n*C + c is image n's channel c in x and xp alike, so a range of planes is one call on a run of
// them). By planes rather than images: at batch 1 the padding ran on the calling thread alone,
// part of the 66-103 us of serial time per GoogLeNet inception block at 2 threads (branch thr2c).
// Padded inputs smaller than this are padded on the calling thread: at batch 1, 2 threads (branch
// thr2c, PLY_REGION_TRACE, loaded machine, thread CPU time) GoogLeNet's 24->64 layers' 6k floats took
// 3 us a thread split (a region of its own for little), ResNet-18's layer3/layer4 inputs (65k-82k
// floats) 51-53 us serial and 26-27 us a thread split, layer2.0's 121 us and 61 us.
#define PAD_SPLIT_FLOATS 16384

static void step_pad(void *ctx, int64_t t0, int64_t t1) {
    const panels_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t planes = g->N * g->C, Hp = padded_h(g), Wq = padded_w(g);
    for (int64_t th = t0; th < t1; th++)
        conv_spans_pad_planes(g, Hp, Wq, j->x, j->xp, planes * th / j->threads, planes * (th + 1) / j->threads);
}

static void step_panels(void *ctx, int64_t t0, int64_t t1) {
    const panels_job *j = ctx;
    const int64_t units = panels_of(j->g) * j->g->N * j->g->OH;
    for (int64_t th = t0; th < t1; th++) {
        int64_t u0 = units * th / j->threads, u1 = units * (th + 1) / j->threads;
        if (u0 < u1) run_panels(j, u0, u1);
    }
}

void conv_panels_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *Wp, const float *bias,
                         int relu, const float *x, float *y, float *scratch) {
    panels_job j = {.g = g, .Wp = Wp, .bias = bias, .x = x, .y = y, .xp = scratch, .yT = scratch + xp_floats(g),
                    .relu = relu, .threads = ply_max_i64(1, ply_min_i64(threads, panels_of(g)))};
    memset(j.xp + xp_floats(g) - 16, 0, 16 * sizeof(float));
    if (j.threads > 1) {
        if (xp_floats(g) >= PAD_SPLIT_FLOATS) host->parallel_for(host, j.threads, 1, step_pad, &j);
        else pad_input(&j, 0, g->N);
        host->parallel_for(host, j.threads, 1, step_panels, &j);
    } else {
        pad_input(&j, 0, g->N);
        run_panels(&j, 0, panels_of(g) * g->N * g->OH);
    }
}
#else
void conv_panels_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *Wp, const float *bias,
                         int relu, const float *x, float *y, float *scratch) {
    (void)host; (void)threads; (void)g; (void)Wp; (void)bias; (void)relu; (void)x; (void)y; (void)scratch;
}
#endif
