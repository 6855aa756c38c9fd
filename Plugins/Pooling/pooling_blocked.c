/*
 * Max, average and adaptive average pooling on the blocked channel layout (ABI 1.7's
 * PLY_LAYOUT_NCHW16C: [N][C/16][H][W][16], zero lanes past C), evaluation only:
 * maxpool2d and avgpool2d read and write either layout (a blocked run passes through them: Inception's
 * pool branches), adaptive_avgpool2d reads either and writes NCHW (the global pool before a classifier
 * ends a run).
 *
 * Results equal the NCHW kernels' bit for bit: a window is visited in the same order (rows, then
 * columns) with the same NaN rule, and the global average adds its inputs in the same 8
 * interleaved partial sums as pooling_planes.c's global_avgpool_plane, per channel lane.
 */
#include <string.h>

#include "pooling.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>
#endif

// Offset of element (n, c, h, w) of an (N, C, H, W) value laid out as `layout`.
static inline int64_t at(int32_t layout, int64_t C, int64_t H, int64_t W, int64_t n, int64_t c, int64_t h, int64_t w) {
    if (layout == PLY_LAYOUT_NCHW) return ((n * C + c) * H + h) * W + w;
    return (((n * ((C + 15) / 16) + c / 16) * H + h) * W + w) * 16 + c % 16;
}

ply_status pool_eval_layouts(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, uint32_t *accepts,
                             uint32_t *produces) {
    (void)n_inputs;
    const uint32_t nchw = PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW), both = nchw | PLY_LAYOUT_BIT(PLY_LAYOUT_NCHW16C);
    const int four = inputs[0].ndim == 4;
    accepts[0] = four ? both : nchw;
    *produces = four && self->kind != POOL_ADAPTIVE_AVG ? both : nchw;
    return PLY_OK;
}

typedef struct {
    const ply_layer *p;
    const float *x;
    float *y;
    int32_t lin, lout;
    int64_t N, C, H, W, OH, OW;
} blocked_job;

#if PLY_HAVE_X86_TARGETS
// Max pooling from NCHW16c to NCHW16c over units [begin, end), a vector of 16 channels per position:
// take_max's rule (the later value where it is larger or NaN) as a compare-and-blend.
// An NCHW output (a run's last max pool, GoogLeNet's maxpool4: 0.53 ms in the scalar lanes against
// 0.05 for the NCHW kernel) takes each vector's real lanes by a scatter to their planes.
PLY_TARGET_AVX512 static void max_units_blocked512(void *ctx, int64_t begin, int64_t end) {
    const blocked_job *j = ctx;
    const ply_layer *p = j->p;
    const int nchw_out = j->lout == PLY_LAYOUT_NCHW;
    const int64_t CB = (j->C + 15) / 16, OP = j->OH * j->OW;
    const __m512i planes = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                              _mm512_set1_epi32((int)OP));
    for (int64_t u = begin; u < end; u++) {
        const int64_t c0 = u % CB * 16, lanes = j->C - c0 < 16 ? j->C - c0 : 16;
        const __mmask16 live = (__mmask16)((1u << lanes) - 1);
        const float *x = j->x + u * j->H * j->W * 16;
        float *y = nchw_out ? j->y + (u / CB * j->C + c0) * OP : j->y + u * OP * 16;
        for (int64_t oh = 0; oh < j->OH; oh++) {
            const int64_t h0 = oh * p->sh - p->ph, h1 = h0 + p->kh;
            for (int64_t ow = 0; ow < j->OW; ow++) {
                const int64_t w0 = ow * p->sw - p->pw, w1 = w0 + p->kw;
                __m512 m = _mm512_setzero_ps();
                int first = 1;
                for (int64_t h = h0 < 0 ? 0 : h0; h < h1 && h < j->H; h++)
                    for (int64_t w = w0 < 0 ? 0 : w0; w < w1 && w < j->W; w++) {
                        const __m512 v = _mm512_loadu_ps(x + (h * j->W + w) * 16);
                        const __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
                        m = first ? v : _mm512_mask_blend_ps(take, m, v);
                        first = 0;
                    }
                if (nchw_out) // the lanes of real channels, a plane apart
                    _mm512_mask_i32scatter_epi32(y + oh * j->OW + ow, live, planes, _mm512_castps_si512(m), 4);
                else
                    _mm512_storeu_ps(y + (oh * j->OW + ow) * 16, m);
            }
        }
    }
}
#endif

#if PLY_HAVE_X86_TARGETS
// Rows of a window and floats of a row of horizontal maxima that max_rows_blocked512 keeps on the stack
// (4 x 8 KB).
#define MAX_RING_ROWS 4
#define MAX_RING_FLOATS 2048

// m folded with v by take_max's rule, lane by lane.
PLY_TARGET_AVX512 static inline __m512 fold_max(__m512 m, __m512 v) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), m, v);
}

// max_units_blocked512 for an NCHW16c output by rows: each input row's horizontal maxima, hm[ow] = its
// window columns folded in order, made once into a ring of kh rows and kept for every output row whose
// window holds that row; an output is then its window rows' hm folded in order. That is the row-major
// order of the general kernel, so the result is the same, bit for bit: the first of the largest values,
// or the last NaN. The general kernel visited each window where it lay (a 3x3 stride-2 window reads 3 rows
// 16 W floats apart for each output), and waited on the loads: ResNet's max pool of 64 x 112 x 112 planes
// at batch 16 took 6.7 ms in the model, 68% of its samples on the compare after a load (perf annotate),
// where ONNX Runtime's node takes 2.55. Here each row is read once, in order.
PLY_TARGET_AVX512 static void max_rows_blocked512(const blocked_job *j, int64_t begin, int64_t end) {
    const ply_layer *p = j->p;
    float ring[MAX_RING_ROWS][MAX_RING_FLOATS] __attribute__((aligned(64)));
    for (int64_t u = begin; u < end; u++) {
        const float *x = j->x + u * j->H * j->W * 16;
        float *y = j->y + u * j->OH * j->OW * 16;
        int64_t made = 0; // input rows [0, made) are in the ring or behind every window left
        for (int64_t oh = 0; oh < j->OH; oh++) {
            int64_t h0 = oh * p->sh - p->ph, h1 = h0 + p->kh;
            if (h0 < 0) h0 = 0;
            if (h1 > j->H) h1 = j->H;
            for (int64_t r = h0 > made ? h0 : made; r < h1; r++) {
                const float *xr = x + r * j->W * 16;
                float *hm = ring[r % p->kh];
                for (int64_t ow = 0; ow < j->OW; ow++) {
                    int64_t w0 = ow * p->sw - p->pw, w1 = w0 + p->kw;
                    if (w0 < 0) w0 = 0;
                    if (w1 > j->W) w1 = j->W;
                    __m512 m = _mm512_setzero_ps();
                    if (w0 < w1) m = _mm512_loadu_ps(xr + w0 * 16);
                    for (int64_t w = w0 + 1; w < w1; w++) m = fold_max(m, _mm512_loadu_ps(xr + w * 16));
                    _mm512_store_ps(hm + ow * 16, m);
                }
            }
            if (h1 > made) made = h1;
            for (int64_t ow = 0; ow < j->OW; ow++) {
                __m512 m = _mm512_setzero_ps();
                if (h0 < h1) m = _mm512_load_ps(ring[h0 % p->kh] + ow * 16);
                for (int64_t r = h0 + 1; r < h1; r++) m = fold_max(m, _mm512_load_ps(ring[r % p->kh] + ow * 16));
                _mm512_storeu_ps(y + (oh * j->OW + ow) * 16, m);
            }
        }
    }
}
#endif

// Max pooling over (image, channel block) units [begin, end): 16 lanes at a time.
static void max_units(void *ctx, int64_t begin, int64_t end) {
    const blocked_job *j = ctx;
    const ply_layer *p = j->p;
#if PLY_HAVE_X86_TARGETS
    if (j->lin == PLY_LAYOUT_NCHW16C && j->lout == PLY_LAYOUT_NCHW16C && ply_cpu_level() >= PLY_CPU_AVX512 &&
        p->kh <= MAX_RING_ROWS && j->OW * 16 <= MAX_RING_FLOATS) {
        max_rows_blocked512(j, begin, end);
        return;
    }
    // (an NCHW output: 16 planes of at most 2^31 / 16 floats, int32 scatter offsets)
    if (j->lin == PLY_LAYOUT_NCHW16C && ply_cpu_level() >= PLY_CPU_AVX512 &&
        (j->lout == PLY_LAYOUT_NCHW16C || j->OH * j->OW < (INT64_C(1) << 27))) {
        max_units_blocked512(ctx, begin, end);
        return;
    }
#endif
    const int64_t CB = (j->C + 15) / 16;
    for (int64_t u = begin; u < end; u++) {
        const int64_t n = u / CB, c0 = u % CB * 16;
        for (int64_t oh = 0; oh < j->OH; oh++) {
            const int64_t h0 = oh * p->sh - p->ph, h1 = h0 + p->kh;
            for (int64_t ow = 0; ow < j->OW; ow++) {
                const int64_t w0 = ow * p->sw - p->pw, w1 = w0 + p->kw;
                float m[16];
                int first = 1;
                for (int64_t h = h0 < 0 ? 0 : h0; h < h1 && h < j->H; h++)
                    for (int64_t w = w0 < 0 ? 0 : w0; w < w1 && w < j->W; w++) {
                        for (int l = 0; l < 16; l++) {
                            const int64_t c = c0 + l;
                            const float v = c < j->C ? j->x[at(j->lin, j->C, j->H, j->W, n, c, h, w)] : 0.0f;
                            m[l] = first ? v : take_max(m[l], v);
                        }
                        first = 0;
                    }
                for (int l = 0; l < 16; l++) {
                    const int64_t c = c0 + l;
                    if (c < j->C) j->y[at(j->lout, j->C, j->OH, j->OW, n, c, oh, ow)] = m[l];
                    else if (j->lout == PLY_LAYOUT_NCHW16C) j->y[at(j->lout, j->C, j->OH, j->OW, n, c, oh, ow)] = 0.0f;
                }
            }
        }
    }
}

// Average pooling over (image, channel block) units [begin, end), either layout in and out: each window
// summed in pooling_planes.c's order (rows, then columns, from 0) and divided as its avg_window does
// (count_include_pad counts the padding but not the ceil_mode overhang), so the bits are the NCHW
// kernels'. An empty window gives 0; so do the padding lanes of a blocked output.
#if PLY_HAVE_X86_TARGETS
// avg_units from NCHW16c to NCHW16c, a vector of 16 channels per position (the same sums, lane by lane).
PLY_TARGET_AVX512 static void avg_units_blocked512(const blocked_job *j, int64_t begin, int64_t end) {
    const ply_layer *p = j->p;
    for (int64_t u = begin; u < end; u++) {
        const float *x = j->x + u * j->H * j->W * 16;
        float *y = j->y + u * j->OH * j->OW * 16;
        for (int64_t oh = 0; oh < j->OH; oh++) {
            int64_t hs = oh * p->sh - p->ph, he = hs + p->kh < j->H + p->ph ? hs + p->kh : j->H + p->ph;
            const int64_t rows_pad = he - hs;
            if (hs < 0) hs = 0;
            if (he > j->H) he = j->H;
            for (int64_t ow = 0; ow < j->OW; ow++) {
                int64_t ws = ow * p->sw - p->pw, we = ws + p->kw < j->W + p->pw ? ws + p->kw : j->W + p->pw;
                const int64_t cols_pad = we - ws;
                if (ws < 0) ws = 0;
                if (we > j->W) we = j->W;
                __m512 acc = _mm512_setzero_ps();
                for (int64_t h = hs; h < he; h++)
                    for (int64_t w = ws; w < we; w++) acc = _mm512_add_ps(acc, _mm512_loadu_ps(x + (h * j->W + w) * 16));
                const float div = (float)(p->count_include_pad ? rows_pad * cols_pad : (he - hs) * (we - ws));
                const int empty = hs >= he || ws >= we;
                _mm512_storeu_ps(y + (oh * j->OW + ow) * 16, empty ? _mm512_setzero_ps() : _mm512_div_ps(acc, _mm512_set1_ps(div)));
            }
        }
    }
}
#endif

static void avg_units(void *ctx, int64_t begin, int64_t end) {
    const blocked_job *j = ctx;
    const ply_layer *p = j->p;
    const int64_t CB = (j->C + 15) / 16;
#if PLY_HAVE_X86_TARGETS
    if (j->lin == PLY_LAYOUT_NCHW16C && j->lout == PLY_LAYOUT_NCHW16C && ply_cpu_level() >= PLY_CPU_AVX512) {
        avg_units_blocked512(j, begin, end);
        return;
    }
#endif
    for (int64_t u = begin; u < end; u++) {
        const int64_t n = u / CB, c0 = u % CB * 16;
        for (int64_t oh = 0; oh < j->OH; oh++) {
            int64_t hs = oh * p->sh - p->ph, he = hs + p->kh < j->H + p->ph ? hs + p->kh : j->H + p->ph;
            const int64_t rows_pad = he - hs;
            if (hs < 0) hs = 0;
            if (he > j->H) he = j->H;
            for (int64_t ow = 0; ow < j->OW; ow++) {
                int64_t ws = ow * p->sw - p->pw, we = ws + p->kw < j->W + p->pw ? ws + p->kw : j->W + p->pw;
                const int64_t cols_pad = we - ws;
                if (ws < 0) ws = 0;
                if (we > j->W) we = j->W;
                const int empty = hs >= he || ws >= we;
                const float div = (float)(p->count_include_pad ? rows_pad * cols_pad : (he - hs) * (we - ws));
                float acc[16] = {0};
                for (int64_t h = hs; h < he; h++)
                    for (int64_t w = ws; w < we; w++)
                        for (int l = 0; l < 16; l++) {
                            const int64_t c = c0 + l;
                            if (c < j->C) acc[l] += j->x[at(j->lin, j->C, j->H, j->W, n, c, h, w)];
                        }
                for (int l = 0; l < 16; l++) {
                    const int64_t c = c0 + l;
                    if (c < j->C) j->y[at(j->lout, j->C, j->OH, j->OW, n, c, oh, ow)] = empty ? 0.0f : acc[l] / div;
                    else if (j->lout == PLY_LAYOUT_NCHW16C) j->y[at(j->lout, j->C, j->OH, j->OW, n, c, oh, ow)] = 0.0f;
                }
            }
        }
    }
}

// Adaptive average pooling over (image, channel block) units [begin, end), each lane summed as the
// NCHW plane kernels sum it (global: 8 interleaved partial sums; else one chain per window).
static void adaptive_units(void *ctx, int64_t begin, int64_t end) {
    const blocked_job *j = ctx;
    const int64_t CB = (j->C + 15) / 16;
    for (int64_t u = begin; u < end; u++) {
        const int64_t n = u / CB, c0 = u % CB * 16;
        for (int64_t oh = 0; oh < j->OH; oh++) {
            const int64_t h0 = oh * j->H / j->OH, h1 = ((oh + 1) * j->H + j->OH - 1) / j->OH;
            for (int64_t ow = 0; ow < j->OW; ow++) {
                const int64_t w0 = ow * j->W / j->OW, w1 = ((ow + 1) * j->W + j->OW - 1) / j->OW;
                for (int l = 0; l < 16 && c0 + l < j->C; l++) {
                    const int64_t c = c0 + l;
                    float r;
                    if (j->OH == 1 && j->OW == 1) {
                        const int64_t len = j->H * j->W;
                        float acc[8] = {0};
                        int64_t i = 0;
                        for (; i + 8 <= len; i += 8)
                            for (int k = 0; k < 8; k++)
                                acc[k] += j->x[at(j->lin, j->C, j->H, j->W, n, c, (i + k) / j->W, (i + k) % j->W)];
                        for (int k = 0; i < len; i++, k++)
                            acc[k] += j->x[at(j->lin, j->C, j->H, j->W, n, c, i / j->W, i % j->W)];
                        const float sum = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
                        r = sum / (float)len;
                    } else {
                        float sum = 0.0f;
                        for (int64_t h = h0; h < h1; h++)
                            for (int64_t w = w0; w < w1; w++) sum += j->x[at(j->lin, j->C, j->H, j->W, n, c, h, w)];
                        r = sum / (float)((h1 - h0) * (w1 - w0));
                    }
                    j->y[at(j->lout, j->C, j->OH, j->OW, n, c, oh, ow)] = r;
                }
            }
        }
    }
}

ply_status pool_forward_layout(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const int32_t *in_layouts,
                               ply_tensor *output, int32_t out_layout) {
    const ply_shape *s = &inputs[0].shape;
    const int32_t lin = in_layouts[0];
    if (self->training || s->ndim != 4 || (lin != PLY_LAYOUT_NCHW && lin != PLY_LAYOUT_NCHW16C) ||
        (out_layout != PLY_LAYOUT_NCHW && !(out_layout == PLY_LAYOUT_NCHW16C && self->kind != POOL_ADAPTIVE_AVG)))
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: forward_layout with input layout %d and output layout %d "
                          "is not one eval_layouts offers",
                          self->kind == POOL_MAX ? "maxpool2d" : self->kind == POOL_AVG ? "avgpool2d" : "adaptive_avgpool2d",
                          (int)lin, (int)out_layout);
    if (lin == PLY_LAYOUT_NCHW && out_layout == PLY_LAYOUT_NCHW) {
        return pool_forward_nchw(self, n_inputs, inputs, output);
    }
    const ply_shape *o = &output->shape;
    blocked_job j = {.p = self, .x = inputs[0].data, .y = output->data, .lin = lin, .lout = out_layout,
                     .N = s->dims[0], .C = s->dims[1], .H = s->dims[2], .W = s->dims[3], .OH = o->dims[2], .OW = o->dims[3]};
    const int64_t units = j.N * ((j.C + 15) / 16);
    ply_parallel_fn fn = self->kind == POOL_MAX ? max_units : self->kind == POOL_AVG ? avg_units : adaptive_units;
    if (self->host->thread_count(self->host) <= 1 || units < 2) fn(&j, 0, units);
    else self->host->parallel_for(self->host, units, 1, fn, &j);
    return PLY_OK;
}
