/*
 * conv2d on ABI 1.7's blocked channel layout (PLY_LAYOUT_NCHW16C: [N][C/16][H][W][16], zero lanes
 * past C), evaluation only. Today: 1x1 convolutions, stride 1, no padding, groups 1, one input, on
 * AVX-512 — the kernel of Benchmarks/pointwise_nchwc.c, where it matched ONNX Runtime's node on
 * ResNet-50's 56x56 and 28x28 shapes (BENCHMARKS.md, fourteenth session). Not yet tuned: the weights
 * are packed on every call, and an NCHW input or output goes through a reorder in the scratch.
 *
 *   y[n][ob][p][j] = act(b[16 ob + j] + sum_c w[16 ob + j][c] * x[n][c/16][p][c%16])
 *
 * Tiles of 4 output blocks (64 channels) x 6 positions: 24 accumulators; per input channel 4 weight
 * vectors and 6 broadcast inputs. Weights packed per group of 4 blocks: wp[g][c][16 f + j] =
 * w[64 g + 16 f + j][c], zero for c >= C and for output channels past OC (so padding lanes stay 0).
 */
#include <string.h>

#include "conv_layer.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>
#endif

// Whether this call can take the blocked layout.
static int blocked_suits(const ply_layer *L, int32_t n_inputs, const ply_shape *x) {
#if PLY_HAVE_X86_TARGETS
    return n_inputs == 1 && x->ndim == 4 && !L->training && L->G == 1 && L->KH == 1 && L->KW == 1 && L->SH == 1 &&
           L->SW == 1 && L->PH == 0 && L->PW == 0 && L->DH == 1 && L->DW == 1 && ply_cpu_level() >= PLY_CPU_AVX512 &&
           (L->algorithm == ALGO_AUTO || L->algorithm == ALGO_POINTWISE);
#else
    (void)L; (void)n_inputs; (void)x;
    return 0;
#endif
}

ply_status conv_eval_layouts(ply_layer *L, int32_t n_inputs, const ply_shape *inputs, uint32_t *accepts,
                             uint32_t *produces) {
    const uint32_t nchw = PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW);
    const uint32_t both = nchw | (blocked_suits(L, n_inputs, &inputs[0]) ? PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW16C) : 0);
    for (int32_t i = 0; i < n_inputs; i++) accepts[i] = i == 0 ? both : nchw;
    *produces = both;
    return PLY_OK;
}

// (image, position) of a value laid out as `layout`, channel c: its offset.
static inline int64_t at(int32_t layout, int64_t C, int64_t P, int64_t n, int64_t c, int64_t p) {
    if (layout == PLY_LAYOUT_NCHW) return (n * C + c) * P + p;
    return ((n * ((C + 15) / 16) + c / 16) * P + p) * 16 + c % 16;
}

// dst (layout ld) = src (layout ls), channels past C in a blocked dst written 0.
static void reorder(float *dst, int32_t ld, const float *src, int32_t ls, int64_t N, int64_t C, int64_t P) {
    const int64_t Cp = (C + 15) / 16 * 16;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < (ld == PLY_LAYOUT_NCHW16C ? Cp : C); c++)
            for (int64_t p = 0; p < P; p++) dst[at(ld, C, P, n, c, p)] = c < C ? src[at(ls, C, P, n, c, p)] : 0.0f;
}

#if PLY_HAVE_X86_TARGETS
#define CHUNK 128  // input channels whose weights (4 blocks: 32 KB) stay in L1 while the positions pass

typedef struct {
    const float *x, *wp, *b;
    float *y;
    int64_t N, Cp, OB, P;
    int relu;
} blk_job;

// One tile: NB blocks from ob x NP positions from p, input channels [c0, c1) of Cp (multiples of 16).
PLY_TARGET_AVX512 static inline void tile(const blk_job *j, const float *x, float *y, const float *wg, int64_t ob,
                                          int NB, int64_t p, int NP, int64_t c0, int64_t c1, int first, int last) {
    __m512 acc[4][6];
    for (int f = 0; f < NB; f++)
        for (int i = 0; i < NP; i++)
            acc[f][i] = first ? _mm512_loadu_ps(j->b + (ob + f) * 16) : _mm512_loadu_ps(y + ((ob + f) * j->P + p + i) * 16);
    for (int64_t cb = c0 / 16; cb < c1 / 16; cb++) {
        const float *xb = x + (cb * j->P + p) * 16;
        const float *wb = wg + cb * 16 * NB * 16;
        for (int k = 0; k < 16; k++) {
            __m512 w[4];
            for (int f = 0; f < NB; f++) w[f] = _mm512_loadu_ps(wb + (k * NB + f) * 16);
            for (int i = 0; i < NP; i++) {
                const __m512 v = _mm512_set1_ps(xb[i * 16 + k]);
                for (int f = 0; f < NB; f++) acc[f][i] = _mm512_fmadd_ps(w[f], v, acc[f][i]);
            }
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    for (int f = 0; f < NB; f++)
        for (int i = 0; i < NP; i++)
            _mm512_storeu_ps(y + ((ob + f) * j->P + p + i) * 16, last && j->relu ? _mm512_max_ps(acc[f][i], zero) : acc[f][i]);
}

typedef void tile_fn(const blk_job *, const float *, float *, const float *, int64_t, int64_t, int64_t, int64_t, int, int);
#define TILE(NB, NP)                                                                                                    \
    PLY_TARGET_AVX512 static void tile##NB##x##NP(const blk_job *j, const float *x, float *y, const float *wg,       \
                                                  int64_t ob, int64_t p, int64_t c0, int64_t c1, int first, int last) { \
        tile(j, x, y, wg, ob, NB, p, NP, c0, c1, first, last);                                                          \
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

// Units [begin, end): (image, group of 4 output blocks), each over every input chunk and position.
static void blk_units(void *ctx, int64_t begin, int64_t end) {
    const blk_job *j = ctx;
    const int64_t groups = (j->OB + 3) / 4;
    for (int64_t u = begin; u < end; u++) {
        const int64_t n = u / groups, ob = u % groups * 4;
        const int nb = (int)(j->OB - ob < 4 ? j->OB - ob : 4);
        const float *x = j->x + n * j->Cp * j->P, *wg = j->wp + ob * 16 * j->Cp;
        float *y = j->y + n * j->OB * 16 * j->P;
        for (int64_t c0 = 0; c0 < j->Cp; c0 += CHUNK) {
            const int64_t c1 = c0 + CHUNK < j->Cp ? c0 + CHUNK : j->Cp;
            int64_t p = 0;
            for (; p + 6 <= j->P; p += 6) tiles_by[nb - 1][5](j, x, y, wg, ob, p, c0, c1, c0 == 0, c1 == j->Cp);
            if (p < j->P) tiles_by[nb - 1][j->P - p - 1](j, x, y, wg, ob, p, c0, c1, c0 == 0, c1 == j->Cp);
        }
    }
}
#endif

ply_status conv_forward_layout(ply_layer *L, int32_t n_inputs, const ply_tensor *inputs, const int32_t *in_layouts,
                               ply_tensor *output, int32_t out_layout) {
    const int32_t lin = in_layouts[0];
    if (lin == PLY_LAYOUT_NCHW && out_layout == PLY_LAYOUT_NCHW) return conv_forward_nchw(L, n_inputs, inputs, output);
    if (!blocked_suits(L, n_inputs, &inputs[0].shape) || (lin != PLY_LAYOUT_NCHW && lin != PLY_LAYOUT_NCHW16C) ||
        (out_layout != PLY_LAYOUT_NCHW && out_layout != PLY_LAYOUT_NCHW16C))
        return ply_errorf(L->host, PLY_ERR_UNSUPPORTED, "conv2d: forward_layout with input layout %d and output layout %d "
                          "is not one eval_layouts offers for this layer", (int)lin, (int)out_layout);
#if PLY_HAVE_X86_TARGETS
    const ply_shape *s = &inputs[0].shape;
    const int64_t N = s->dims[0], C = L->C, OC = L->OC, P = s->dims[2] * s->dims[3];
    if (s->dims[1] != C) return ply_errorf(L->host, PLY_ERR_SHAPE, "conv2d: input has %lld channels, expected %lld",
                                           (long long)s->dims[1], (long long)C);
    const int64_t Cp = (C + 15) / 16 * 16, OB = (OC + 15) / 16;
    // scratch: packed weights and bias, then the blocked input and output where the call's are NCHW
    const size_t wf = (size_t)(OB * 16 * Cp), bf = (size_t)(OB * 16);
    const size_t xf = lin == PLY_LAYOUT_NCHW ? (size_t)(N * Cp * P) : 0;
    const size_t yf = out_layout == PLY_LAYOUT_NCHW ? (size_t)(N * OB * 16 * P) : 0;
    ply_status st = conv_grow_scratch(L, wf + bf + xf + yf);
    if (st != PLY_OK) return st;
    float *wp = L->scratch, *b = wp + wf, *xb = b + bf, *yb = xb + xf;
    memset(wp, 0, (wf + bf) * sizeof(float));
    for (int64_t ob = 0; ob < OB; ob += 4) {
        const int64_t nb = OB - ob < 4 ? OB - ob : 4;
        for (int64_t c = 0; c < C; c++)
            for (int64_t f = 0; f < nb; f++)
                for (int64_t k = 0; k < 16 && (ob + f) * 16 + k < OC; k++)
                    wp[ob * 16 * Cp + (c * nb + f) * 16 + k] = L->weight[((ob + f) * 16 + k) * C + c];
    }
    if (L->has_bias) memcpy(b, L->bias, (size_t)OC * sizeof(float));
    const float *x = inputs[0].data;
    if (lin == PLY_LAYOUT_NCHW) {
        reorder(xb, PLY_LAYOUT_NCHW16C, x, PLY_LAYOUT_NCHW, N, C, P);
        x = xb;
    }
    blk_job j = {.x = x, .wp = wp, .b = b, .y = out_layout == PLY_LAYOUT_NCHW ? yb : output->data,
                 .N = N, .Cp = Cp, .OB = OB, .P = P, .relu = L->relu};
    const int64_t units = N * ((OB + 3) / 4);
    if (L->host->thread_count(L->host) <= 1 || units < 2) blk_units(&j, 0, units);
    else L->host->parallel_for(L->host, units, 1, blk_units, &j);
    if (out_layout == PLY_LAYOUT_NCHW) reorder(output->data, PLY_LAYOUT_NCHW, yb, PLY_LAYOUT_NCHW16C, N, OC, P);
    return PLY_OK;
#else
    return PLY_ERR_UNSUPPORTED;
#endif
}
