/*
 * The pooling family's kernels and their parallel driver: every kernel's portable path, one plane
 * at a time, and pool_dispatch, which runs a job over all planes on the host's pool and picks each
 * plane's kernel by ply_cpu_level() (the AVX2 and AVX-512 ones are pooling_x86.c's). The layers
 * themselves (attributes, shapes, the vtable) are pooling.c's.
 *
 * Output sizes, window clipping and averaging divisors follow PyTorch exactly
 * (aten/src/ATen/native/Pool.h and the CPU kernels), including ceil_mode's
 * rule that the last window must start inside the input or the left padding.
 */
#include "plugin_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"
#include "pooling.h"

// ----------------------------------------------------------------------------
// kernels: one plane at a time; in is H x W, out is OH x OW

// Max and first argmax (row-major scan) of the window at (oh, ow). Padding
// counts as -inf; a NaN wins, as in PyTorch. Returns the flat index h*W+w.
static int64_t max_window(const float *in, int64_t H, int64_t W, int64_t oh, int64_t ow,
                          int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                          float *maxval) {
    int64_t h0 = oh * sh - ph, w0 = ow * sw - pw;
    int64_t h1 = h0 + kh < H ? h0 + kh : H, w1 = w0 + kw < W ? w0 + kw : W;
    if (h0 < 0) h0 = 0;
    if (w0 < 0) w0 = 0;
    float m = -INFINITY;
    int64_t idx = h0 * W + w0;
    for (int64_t h = h0; h < h1; h++) {
        for (int64_t w = w0; w < w1; w++) {
            float v = in[h * W + w];
            if (v > m || isnan(v)) { m = v; idx = h * W + w; }
        }
    }
    *maxval = m;
    return idx;
}

// The 2x2 / stride 2 / no padding case (the tutorial's pools), branch-free so
// that it vectorises. Same rule as max_window: the first maximum in row-major
// order wins and a NaN wins, so backward can recompute the argmax exactly.
int pool_is_2x2(const ply_layer *p) {
    return p->kh == 2 && p->kw == 2 && p->sh == 2 && p->sw == 2 && p->ph == 0 && p->pw == 0;
}

// out: (OH, OW), in: (H, W) with H >= 2*OH, W >= 2*OW: out[oh][ow] = max of in[2oh + {0,1}][2ow + {0,1}]
static void maxpool2x2_forward_plane(float *out, const float *in, int64_t W, int64_t OH, int64_t OW) {
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = in + 2 * oh * W, *r1 = r0 + W;
        float *o = out + oh * OW;
        for (int64_t ow = 0; ow < OW; ow++) {
            float m = take_max(take_max(take_max(r0[2 * ow], r0[2 * ow + 1]), r1[2 * ow]), r1[2 * ow + 1]);
            o[ow] = m;
        }
    }
}

// din: (H, W), dout: (OH, OW); the argmax is recomputed from in
static void maxpool2x2_backward_plane(float *din, const float *in, const float *dout, int64_t H, int64_t W,
                                      int64_t OH, int64_t OW) {
    if (H != 2 * OH || W != 2 * OW) memset(din, 0, (size_t)(H * W) * sizeof(float));
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = in + 2 * oh * W, *r1 = r0 + W;
        float *d0 = din + 2 * oh * W, *d1 = d0 + W;
        for (int64_t ow = 0; ow < OW; ow++) {
            float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            float m = a;
            int k = 0;
            if (b > m || b != b) { m = b; k = 1; }
            if (c > m || c != c) { m = c; k = 2; }
            if (d > m || d != d) { k = 3; }
            float g = dout[oh * OW + ow];
            d0[2 * ow] = k == 0 ? g : 0.0f;
            d0[2 * ow + 1] = k == 1 ? g : 0.0f;
            d1[2 * ow] = k == 2 ? g : 0.0f;
            d1[2 * ow + 1] = k == 3 ? g : 0.0f;
        }
    }
}

// out: (OH, OW), argmax: (OH, OW) or NULL, in: (H, W)
static void maxpool2d_forward_plane(float *out, int64_t *argmax, const float *in, int64_t H, int64_t W,
                                    int64_t OH, int64_t OW, const ply_layer *p) {
    for (int64_t oh = 0; oh < OH; oh++) {
        for (int64_t ow = 0; ow < OW; ow++) {
            float m;
            int64_t idx = max_window(in, H, W, oh, ow, p->kh, p->kw, p->sh, p->sw, p->ph, p->pw, &m);
            out[oh * OW + ow] = m;
            if (argmax) argmax[oh * OW + ow] = idx;
        }
    }
}

// The same maxima without argmax (inference), a row of outputs at a time: for each window row
// and kernel column, one pass over the output row that vectorises (stride 1). Max is
// order-free and a NaN stays once taken, so the values equal max_window's.
static inline __attribute__((always_inline)) void maxpool2d_forward_plane_values_body(
    float *out, const float *in, int64_t H, int64_t W, int64_t OH, int64_t OW, const ply_layer *p, int avx512) {
    for (int64_t oh = 0; oh < OH; oh++) {
        float *o = out + oh * OW;
        int64_t h0 = oh * p->sh - p->ph, h1 = h0 + p->kh < H ? h0 + p->kh : H;
        if (h0 < 0) h0 = 0;
        for (int64_t ow = 0; ow < OW; ow++) o[ow] = -INFINITY;
        for (int64_t h = h0; h < h1; h++) {
            for (int64_t kj = 0; kj < p->kw; kj++) {
                int64_t lo, hi;
                ply_conv_out_range(kj, p->sw, p->pw, W, OW, &lo, &hi);
                const float *src = in + h * W + kj - p->pw;
#if PLY_HAVE_X86_TARGETS
                if (p->sw == 1 && avx512) {
                    max_row512(o + lo, src + lo, hi - lo);
                    continue;
                } else if (p->sw == 2 && avx512) {
                    max_row512_stride2(o + lo, src + 2 * lo, hi - lo);
                    continue;
                }
#endif
                if (p->sw == 1) {
                    for (int64_t ow = lo; ow < hi; ow++) o[ow] = take_max(o[ow], src[ow]);
                } else {
                    for (int64_t ow = lo; ow < hi; ow++) o[ow] = take_max(o[ow], src[ow * p->sw]);
                }
            }
        }
    }
}
// Compiled for the baseline and for AVX2 (PLY_AVX2_CLONE): below the AVX-512 level every max pool
// but 2x2 takes these row passes. GoogLeNet's batch-1 inference at PLY_CPU=avx2, cpu-clock samples
// relative to OpenBLAS's sgemm (two profiles each): 0.63-0.66 SSE2, 0.56-0.57 with this copy.
PLY_AVX2_CLONE(maxpool2d_forward_plane_values,
               (float *out, const float *in, int64_t H, int64_t W, int64_t OH, int64_t OW, const ply_layer *p,
                int avx512),
               (out, in, H, W, OH, OW, p, avx512))


// din: (H, W), dout: (OH, OW); argmax from forward, or NULL to recompute from in
static void maxpool2d_backward_plane(float *din, const int64_t *argmax, const float *in, const float *dout,
                                     int64_t H, int64_t W, int64_t OH, int64_t OW, const ply_layer *p) {
    memset(din, 0, (size_t)(H * W) * sizeof(float));
    for (int64_t oh = 0; oh < OH; oh++) {
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t idx;
            if (argmax) {
                idx = argmax[oh * OW + ow];
            } else {
                float m;
                idx = max_window(in, H, W, oh, ow, p->kh, p->kw, p->sh, p->sw, p->ph, p->pw, &m);
            }
            din[idx] += dout[oh * OW + ow];
        }
    }
}

// Clipped window [*h0, *h1) x [*w0, *w1) of avg pooling at (oh, ow) and its
// divisor. The divisor counts padding (but not the ceil_mode overhang past
// H + pad) when count_include_pad, else only the real input elements.
static float avg_window(int64_t H, int64_t W, int64_t oh, int64_t ow, const ply_layer *p,
                        int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1) {
    int64_t hs = oh * p->sh - p->ph, ws = ow * p->sw - p->pw;
    int64_t he = hs + p->kh < H + p->ph ? hs + p->kh : H + p->ph;
    int64_t we = ws + p->kw < W + p->pw ? ws + p->kw : W + p->pw;
    int64_t pool_size = (he - hs) * (we - ws);
    if (hs < 0) hs = 0;
    if (ws < 0) ws = 0;
    if (he > H) he = H;
    if (we > W) we = W;
    *h0 = hs; *h1 = he; *w0 = ws; *w1 = we;
    if (hs >= he || ws >= we) return 0.0f; // empty window: output 0
    return (float)(p->count_include_pad ? pool_size : (he - hs) * (we - ws));
}

// out: (OH, OW), in: (H, W). A row of outputs at a time, each window summed in the order of
// avg_window's loops (rows, then columns), so the sums are bit-identical to the plain loop.
static void avgpool2d_forward_plane(float *out, const float *in, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                    const ply_layer *p) {
    for (int64_t oh = 0; oh < OH; oh++) {
        float *o = out + oh * OW;
        int64_t h0, h1, w0, w1;
        avg_window(H, W, oh, 0, p, &h0, &h1, &w0, &w1); // the window rows are the same for the whole row
        for (int64_t ow = 0; ow < OW; ow++) o[ow] = 0.0f;
        for (int64_t h = h0; h < h1; h++) {
            for (int64_t kj = 0; kj < p->kw; kj++) {
                int64_t lo, hi;
                ply_conv_out_range(kj, p->sw, p->pw, W, OW, &lo, &hi);
                const float *src = in + h * W + kj - p->pw;
                if (p->sw == 1) {
                    for (int64_t ow = lo; ow < hi; ow++) o[ow] += src[ow];
                } else {
                    for (int64_t ow = lo; ow < hi; ow++) o[ow] += src[ow * p->sw];
                }
            }
        }
        // avg_window's divisor, split into its row and column factors so that this loop vectorises
        int64_t hs = oh * p->sh - p->ph, he = hs + p->kh < H + p->ph ? hs + p->kh : H + p->ph;
        int64_t rows = (he < H ? he : H) - (hs > 0 ? hs : 0), rows_pad = he - hs;
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t ws = ow * p->sw - p->pw, we = ws + p->kw < W + p->pw ? ws + p->kw : W + p->pw;
            int64_t cols = (we < W ? we : W) - (ws > 0 ? ws : 0);
            float div = (float)(p->count_include_pad ? rows_pad * (we - ws) : rows * cols);
            o[ow] = rows > 0 && cols > 0 ? o[ow] / div : 0.0f;
        }
    }
}

// din: (H, W), dout: (OH, OW)
static void avgpool2d_backward_plane(float *din, const float *dout, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                     const ply_layer *p) {
    memset(din, 0, (size_t)(H * W) * sizeof(float));
    for (int64_t oh = 0; oh < OH; oh++) {
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t h0, h1, w0, w1;
            float div = avg_window(H, W, oh, ow, p, &h0, &h1, &w0, &w1);
            if (div <= 0.0f) continue;
            float g = dout[oh * OW + ow] / div;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) din[h * W + w] += g;
        }
    }
}

// Adaptive windows: start = floor(i * in / out), end = ceil((i + 1) * in / out).
static int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
static int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

// out: (OH, OW), in: (H, W)
static void adaptive_avgpool2d_forward_plane(float *out, const float *in, int64_t H, int64_t W, int64_t OH,
                                             int64_t OW) {
    for (int64_t oh = 0; oh < OH; oh++) {
        int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
            float sum = 0.0f;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) sum += in[h * W + w];
            out[oh * OW + ow] = sum / (float)((h1 - h0) * (w1 - w0));
        }
    }
}

// The global case (OH = OW = 1): out = sum_{i < n} in[i] / n over the plane's n = H*W inputs, in 8
// interleaved partial sums (lane l takes i = l mod 8) that the compiler keeps in one vector, added
// pairwise at the end. The plain window loop above adds the n inputs in one chain of dependent
// additions: GoogLeNet's 1024 planes of 7x7 took 42 us of thread CPU per forward at 1 thread (the
// serial node between inception5b and the classifier at 2 threads; ORT's GlobalAveragePool 8 us).
static void global_avgpool_plane(float *out, const float *in, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += in[i + l];
    for (int l = 0; i < n; i++, l++) acc[l] += in[i];
    float sum = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    *out = sum / (float)n;
}

// din: (H, W), dout: (OH, OW)
static void adaptive_avgpool2d_backward_plane(float *din, const float *dout, int64_t H, int64_t W, int64_t OH,
                                              int64_t OW) {
    memset(din, 0, (size_t)(H * W) * sizeof(float));
    for (int64_t oh = 0; oh < OH; oh++) {
        int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
            float g = dout[oh * OW + ow] / (float)((h1 - h0) * (w1 - w0));
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) din[h * W + w] += g;
        }
    }
}

// ----------------------------------------------------------------------------
// parallel driver over planes


// The max pool kernels of one plane at the job's CPU level: the portable ones (this file), or
// pooling_x86.c's (the AVX2 ones for 2x2 only: the others' row passes are AVX-512's), or at the
// AVX2 level pooling_avx2.c's 3x3 stride 1 and 2 kernels (inference only, as at AVX-512).
// e3: the planes' edge columns when the window is 3x3, stride 1, padding 1 (is_3x3s1) and pool_run
// made them, else NULL.
static void maxpool_forward_plane_at(const pool_job *j, float *out, int64_t *argmax, const float *in,
                                     const void *e3) {
    const ply_layer *p = j->layer;
    int64_t H = j->g.H, W = j->g.W, OH = j->g.OH, OW = j->g.OW;
#if PLY_HAVE_X86_TARGETS
    if (pool_is_2x2(p) && j->level >= PLY_CPU_AVX512) { maxpool2x2_forward_plane512(out, in, W, OH, OW); return; }
    if (pool_is_2x2(p) && j->level >= PLY_CPU_AVX2) { maxpool2x2_forward_plane_avx2(out, in, W, OH, OW); return; }
    if (!pool_is_2x2(p) && j->level >= PLY_CPU_AVX512) {
        if (!argmax && e3 && maxpool3x3s1_plane512(out, in, e3)) return;
        if (!argmax && p->kh == 3 && p->kw == 3 && p->sh == 2 && p->sw == 2 && p->ph <= 1 && p->pw <= 1 &&
            maxpool3x3s2_plane512(out, in, H, W, OH, OW, p->ph, p->pw))
            return;
        if (!argmax && maxpool2d_forward_plane_values512(out, in, H, W, OH, OW, p)) return;
        if (argmax && maxpool2d_forward_plane_argmax512(out, argmax, in, H, W, OH, OW, p)) return;
    }
    if (!pool_is_2x2(p) && j->level == PLY_CPU_AVX2) { // pooling_avx2.c's ports of the two 3x3 kernels above
        if (!argmax && e3 && maxpool3x3s1_plane_avx2(out, in, e3)) return;
        if (!argmax && p->kh == 3 && p->kw == 3 && p->sh == 2 && p->sw == 2 && p->ph <= 1 && p->pw <= 1 &&
            maxpool3x3s2_plane_avx2(out, in, H, W, OH, OW, p->ph, p->pw))
            return;
    }
#else
    (void)e3;
#endif
    if (pool_is_2x2(p)) maxpool2x2_forward_plane(out, in, W, OH, OW);
    else if (!argmax) maxpool2d_forward_plane_values(out, in, H, W, OH, OW, p, j->level >= PLY_CPU_AVX512);
    else maxpool2d_forward_plane(out, argmax, in, H, W, OH, OW, p);
}

// din: (H, W), dout: (OH, OW); argmax: (OH, OW) from forward, or NULL to recompute from in
static void maxpool_backward_plane_at(const pool_job *j, float *din, const int64_t *argmax, const float *in,
                                      const float *dout) {
    const ply_layer *p = j->layer;
    int64_t H = j->g.H, W = j->g.W, OH = j->g.OH, OW = j->g.OW;
#if PLY_HAVE_X86_TARGETS
    if (pool_is_2x2(p) && j->level >= PLY_CPU_AVX512) { maxpool2x2_backward_plane512(din, in, dout, H, W, OH, OW); return; }
    if (pool_is_2x2(p) && j->level >= PLY_CPU_AVX2) { maxpool2x2_backward_plane_avx2(din, in, dout, H, W, OH, OW); return; }
#endif
    if (pool_is_2x2(p)) maxpool2x2_backward_plane(din, in, dout, H, W, OH, OW);
    else maxpool2d_backward_plane(din, argmax, in, dout, H, W, OH, OW, p);
}

// The window the 3x3 stride-1 kernels (pooling_x86.c's, pooling_avx2.c's) take: 3x3, stride 1,
// padding 1, the output the input's size; the average pool's also counts the padding (count_include_pad).
static int is_3x3s1(const ply_layer *p, int64_t H, int64_t W, int64_t OH, int64_t OW) {
    return p->kind != POOL_ADAPTIVE_AVG && p->kh == 3 && p->kw == 3 && p->sh == 1 && p->sw == 1 && p->ph == 1 &&
           p->pw == 1 && OH == H && OW == W && (p->kind == POOL_MAX || p->count_include_pad);
}

static void pool_run(void *ctx, int64_t begin, int64_t end) {
    const pool_job *j = ctx;
    const ply_layer *p = j->layer;
    int64_t H = j->g.H, W = j->g.W, OH = j->g.OH, OW = j->g.OW;
    int64_t in_sz = H * W, out_sz = OH * OW;
    if (!j->backward && p->kind == POOL_ADAPTIVE_AVG && OH == H && OW == W) {
        // Each output's window is its own input (start = i, end = i + 1 on both axes): planes
        // [begin, end) are a copy. AlexNet's 6x6 -> 6x6 after its last pool (256 planes) took 37 us
        // per forward by the window loop.
        memcpy(j->dst + begin * out_sz, j->src + begin * in_sz, (size_t)((end - begin) * in_sz) * sizeof(float));
        return;
    }
    const void *e3 = NULL; // the 3x3 stride-1 kernels' edge columns, made once for every plane
#if PLY_HAVE_X86_TARGETS
    pool3_edges edges;
    if (!j->backward && j->level >= PLY_CPU_AVX2 && is_3x3s1(p, H, W, OH, OW) && pool3_edges_make(&edges, H, W))
        e3 = &edges;
#endif
    for (int64_t c = begin; c < end; c++) {
        if (!j->backward) {
            float *out = j->dst + c * out_sz;
            const float *in = j->src + c * in_sz;
            switch (p->kind) {
            case POOL_MAX:
                maxpool_forward_plane_at(j, out, j->argmax_out ? j->argmax_out + c * out_sz : NULL, in, e3);
                break;
            case POOL_AVG:
#if PLY_HAVE_X86_TARGETS
                if (e3) {
                    if (j->level >= PLY_CPU_AVX512) avgpool3x3s1_plane512(out, in, e3);
                    else avgpool3x3s1_plane_avx2(out, in, e3);
                    break;
                }
#endif
                avgpool2d_forward_plane(out, in, H, W, OH, OW, p);
                break;
            case POOL_ADAPTIVE_AVG:
                if (OH == 1 && OW == 1) global_avgpool_plane(out, in, in_sz);
                else adaptive_avgpool2d_forward_plane(out, in, H, W, OH, OW);
                break;
            }
        } else {
            float *din = j->dst + c * in_sz;
            const float *dout = j->src + c * out_sz;
            switch (p->kind) {
            case POOL_MAX:
                maxpool_backward_plane_at(j, din, j->argmax_in ? j->argmax_in + c * out_sz : NULL, j->in + c * in_sz,
                                          dout);
                break;
            case POOL_AVG: avgpool2d_backward_plane(din, dout, H, W, OH, OW, p); break;
            case POOL_ADAPTIVE_AVG: adaptive_avgpool2d_backward_plane(din, dout, H, W, OH, OW); break;
            }
        }
    }
}

// Run the job over all planes, on the host's pool when there is enough work.
void pool_dispatch(const ply_layer *self, pool_job *job) {
    job->level = ply_cpu_level();
    const pool_geom *g = &job->g;
    int64_t per_plane = g->H * g->W + g->OH * g->OW * (self->kind == POOL_ADAPTIVE_AVG ? 1 : self->kh * self->kw);
    if (per_plane < 1) per_plane = 1;
    const int64_t min_chunk_work = 1 << 15;
    if (g->planes * per_plane < 2 * min_chunk_work || self->host->thread_count(self->host) <= 1) {
        pool_run(job, 0, g->planes);
        return;
    }
    int64_t grain = min_chunk_work / per_plane;
    if (grain < 1) grain = 1;
    self->host->parallel_for(self->host, g->planes, grain, pool_run, job);
}
