/*
 * Pooling family: maxpool2d, avgpool2d, adaptive_avgpool2d. No parameters,
 * one input of shape (N, C, H, W) or (C, H, W); every (n, c) plane is pooled
 * on its own, so the kernels work on `planes` = N*C independent H x W images
 * and parallelise over them.
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

// Sizes of one call: planes of H x W pooled to OH x OW.
typedef struct {
    int64_t planes, H, W, OH, OW;
} pool_geom;

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
static int is_pool2x2(const ply_layer *p) {
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

typedef struct {
    const ply_layer *layer;
    pool_geom g;
    int backward;
    float *dst;          // forward: output, backward: grad_input
    const float *src;    // forward: input,  backward: grad_output
    const float *in;     // backward (maxpool recompute): input
    int64_t *argmax_out; // forward (maxpool, training)
    const int64_t *argmax_in; // backward (maxpool)
    ply_cpu level;       // max pool: the kernels' CPU level (ply_cpu_level())
} pool_job;

// The max pool kernels of one plane at the job's CPU level: the portable ones (pooling.c), or
// pooling_x86.c's (the AVX2 ones for 2x2 only: the others' row passes are AVX-512's).
// e3: the planes' edge columns when the window is 3x3, stride 1, padding 1 (is_3x3s1) and pool_run
// made them, else NULL.
static void maxpool_forward_plane_at(const pool_job *j, float *out, int64_t *argmax, const float *in,
                                     const void *e3) {
    const ply_layer *p = j->layer;
    int64_t H = j->g.H, W = j->g.W, OH = j->g.OH, OW = j->g.OW;
#if PLY_HAVE_X86_TARGETS
    if (is_pool2x2(p) && j->level >= PLY_CPU_AVX512) { maxpool2x2_forward_plane512(out, in, W, OH, OW); return; }
    if (is_pool2x2(p) && j->level >= PLY_CPU_AVX2) { maxpool2x2_forward_plane_avx2(out, in, W, OH, OW); return; }
    if (!is_pool2x2(p) && j->level >= PLY_CPU_AVX512) {
        if (!argmax && e3 && maxpool3x3s1_plane512(out, in, e3)) return;
        if (!argmax && p->kh == 3 && p->kw == 3 && p->sh == 2 && p->sw == 2 && p->ph <= 1 && p->pw <= 1 &&
            maxpool3x3s2_plane512(out, in, H, W, OH, OW, p->ph, p->pw))
            return;
        if (!argmax && maxpool2d_forward_plane_values512(out, in, H, W, OH, OW, p)) return;
        if (argmax && maxpool2d_forward_plane_argmax512(out, argmax, in, H, W, OH, OW, p)) return;
    }
#else
    (void)e3;
#endif
    if (is_pool2x2(p)) maxpool2x2_forward_plane(out, in, W, OH, OW);
    else if (!argmax) maxpool2d_forward_plane_values(out, in, H, W, OH, OW, p, j->level >= PLY_CPU_AVX512);
    else maxpool2d_forward_plane(out, argmax, in, H, W, OH, OW, p);
}

// din: (H, W), dout: (OH, OW); argmax: (OH, OW) from forward, or NULL to recompute from in
static void maxpool_backward_plane_at(const pool_job *j, float *din, const int64_t *argmax, const float *in,
                                      const float *dout) {
    const ply_layer *p = j->layer;
    int64_t H = j->g.H, W = j->g.W, OH = j->g.OH, OW = j->g.OW;
#if PLY_HAVE_X86_TARGETS
    if (is_pool2x2(p) && j->level >= PLY_CPU_AVX512) { maxpool2x2_backward_plane512(din, in, dout, H, W, OH, OW); return; }
    if (is_pool2x2(p) && j->level >= PLY_CPU_AVX2) { maxpool2x2_backward_plane_avx2(din, in, dout, H, W, OH, OW); return; }
#endif
    if (is_pool2x2(p)) maxpool2x2_backward_plane(din, in, dout, H, W, OH, OW);
    else maxpool2d_backward_plane(din, argmax, in, dout, H, W, OH, OW, p);
}

// The window pooling_x86.c's 3x3 stride-1 kernels take: 3x3, stride 1, padding 1, the output the
// input's size; the average pool's also counts the padding (count_include_pad).
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
    if (!j->backward && j->level >= PLY_CPU_AVX512 && is_3x3s1(p, H, W, OH, OW) && pool3_edges_make(&edges, H, W))
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
                    avgpool3x3s1_plane512(out, in, e3);
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
static void pool_dispatch(const ply_layer *self, pool_job *job) {
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

// ----------------------------------------------------------------------------
// vtable

static const char *kind_name(pool_kind k) {
    return k == POOL_MAX ? "maxpool2d" : k == POOL_AVG ? "avgpool2d" : "adaptive_avgpool2d";
}

// Does attribute `name` exist at all (whatever its kind)?
// Read a pair attribute; absent (or an empty list, PyTorch's "default") keeps *out.
static ply_status read_pair(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t out[2]) {
    const ply_attr *a = ply_find_attr(attrs, name);
    if (a && a->kind == PLY_ATTR_INTS && a->count == 0) return PLY_OK;
    ply_status st = host->attr_pair(host, attrs, name, out);
    return st == PLY_ERR_NOT_FOUND ? PLY_OK : st;
}

static ply_status read_flag(const ply_host *host, const ply_attrs *attrs, const char *name, int32_t *out) {
    ply_status st = host->attr_bool(host, attrs, name, out);
    return st == PLY_ERR_NOT_FOUND ? PLY_OK : st;
}

static ply_status create_window_pool(const ply_host *host, const ply_attrs *attrs, ply_layer *self) {
    const char *nm = kind_name(self->kind);
    int64_t k[2], s[2], p[2] = {0, 0};
    ply_status st = host->attr_pair(host, attrs, "kernel_size", k);
    if (st == PLY_ERR_NOT_FOUND) return ply_errorf(host, PLY_ERR_NOT_FOUND, "%s: missing attribute 'kernel_size'", nm);
    if (st != PLY_OK) return st;
    s[0] = k[0]; s[1] = k[1];
    if ((st = read_pair(host, attrs, "stride", s)) != PLY_OK) return st;
    if ((st = read_pair(host, attrs, "padding", p)) != PLY_OK) return st;
    if ((st = read_flag(host, attrs, "ceil_mode", &self->ceil_mode)) != PLY_OK) return st;
    if (k[0] <= 0 || k[1] <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: kernel_size must be positive (got %lld x %lld)", nm,
                          (long long)k[0], (long long)k[1]);
    if (s[0] <= 0 || s[1] <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: stride must be positive (got %lld x %lld)", nm,
                          (long long)s[0], (long long)s[1]);
    if (p[0] < 0 || p[1] < 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: padding must be non-negative (got %lld x %lld)", nm,
                          (long long)p[0], (long long)p[1]);
    if (p[0] > k[0] / 2 || p[1] > k[1] / 2)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "%s: padding must be at most half the kernel size (got padding %lld x %lld, kernel_size "
                          "%lld x %lld)",
                          nm, (long long)p[0], (long long)p[1], (long long)k[0], (long long)k[1]);
    if (self->kind == POOL_MAX) {
        int64_t d[2] = {1, 1};
        if ((st = read_pair(host, attrs, "dilation", d)) != PLY_OK) return st;
        if (d[0] != 1 || d[1] != 1)
            return ply_errorf(host, PLY_ERR_UNSUPPORTED, "maxpool2d: only dilation 1 is supported (got %lld x %lld)",
                              (long long)d[0], (long long)d[1]);
        int32_t ri = 0;
        if ((st = read_flag(host, attrs, "return_indices", &ri)) != PLY_OK) return st;
        if (ri) return ply_errorf(host, PLY_ERR_UNSUPPORTED, "maxpool2d: return_indices=true is not supported");
    } else {
        self->count_include_pad = 1;
        if ((st = read_flag(host, attrs, "count_include_pad", &self->count_include_pad)) != PLY_OK) return st;
        const ply_attr *dv = ply_find_attr(attrs, "divisor_override");
        if (dv && dv->kind != PLY_ATTR_STRING) // a string would be a serialised "None"
            return ply_errorf(host, PLY_ERR_UNSUPPORTED, "avgpool2d: divisor_override is not supported");
    }
    self->kh = k[0]; self->kw = k[1];
    self->sh = s[0]; self->sw = s[1];
    self->ph = p[0]; self->pw = p[1];
    return PLY_OK;
}

static ply_status create_kind(const ply_host *host, const ply_attrs *attrs, ply_layer **out, pool_kind kind) {
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory", kind_name(kind));
    memset(self, 0, sizeof *self);
    self->host = host;
    self->kind = kind;
    self->training = 1;
    ply_status st;
    if (kind == POOL_ADAPTIVE_AVG) {
        int64_t os[2];
        st = host->attr_pair(host, attrs, "output_size", os);
        if (st == PLY_ERR_NOT_FOUND)
            st = ply_errorf(host, PLY_ERR_NOT_FOUND, "adaptive_avgpool2d: missing attribute 'output_size'");
        else if (st == PLY_OK && (os[0] <= 0 || os[1] <= 0))
            st = ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                            "adaptive_avgpool2d: output_size must be positive (got %lld x %lld)", (long long)os[0],
                            (long long)os[1]);
        self->oh = os[0];
        self->ow = os[1];
    } else {
        st = create_window_pool(host, attrs, self);
    }
    if (st != PLY_OK) {
        host->free(host, self);
        return st;
    }
    *out = self;
    return PLY_OK;
}

#define DEFINE_CREATE(fn, kind) \
    static ply_status fn(const ply_host *host, const ply_attrs *attrs, ply_layer **out) { \
        return create_kind(host, attrs, out, kind); \
    }
DEFINE_CREATE(maxpool2d_create, POOL_MAX)
DEFINE_CREATE(avgpool2d_create, POOL_AVG)
DEFINE_CREATE(adaptive_avgpool2d_create, POOL_ADAPTIVE_AVG)

static void pool_destroy(ply_layer *self) {
    if (!self) return;
    self->host->free(self->host, self->argmax);
    self->host->free(self->host, self);
}

static void pool_set_training(ply_layer *self, int32_t training) { self->training = training != 0; }

// Check the input shape and compute the geometry of the call.
static ply_status pool_geometry(const ply_layer *self, const ply_shape *s, pool_geom *g) {
    const char *nm = kind_name(self->kind);
    if (s->ndim != 3 && s->ndim != 4)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: input must be 3-d (C, H, W) or 4-d (N, C, H, W) (got %d-d)",
                          nm, s->ndim);
    static const char *const dim_names[] = {"N", "C", "H", "W"};
    for (int32_t i = s->ndim == 4 ? 1 : 0; i < s->ndim; i++) {
        if (s->dims[i] <= 0)
            return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: input 0 dimension %d (%s) must be non-zero (got %lld)", nm,
                              i, dim_names[i + 4 - s->ndim], (long long)s->dims[i]);
    }
    int32_t hd = s->ndim - 2, wd = s->ndim - 1;
    g->H = s->dims[hd];
    g->W = s->dims[wd];
    g->planes = s->dims[0] * (s->ndim == 4 ? s->dims[1] : 1);
    if (self->kind == POOL_ADAPTIVE_AVG) {
        g->OH = self->oh;
        g->OW = self->ow;
        return PLY_OK;
    }
    int64_t in[2] = {g->H, g->W}, k[2] = {self->kh, self->kw}, pad[2] = {self->ph, self->pw};
    for (int i = 0; i < 2; i++) {
        if (in[i] + 2 * pad[i] < k[i])
            return ply_errorf(self->host, PLY_ERR_SHAPE,
                              "%s: input 0 dimension %d (%s) is %lld, %lld with padding, smaller than kernel_size "
                              "%lld",
                              nm, s->ndim - 2 + i, i ? "W" : "H", (long long)in[i], (long long)(in[i] + 2 * pad[i]),
                              (long long)k[i]);
    }
    // PyTorch's pooling_output_shape (dilation 1)
    g->OH = ply_conv_out_size(g->H, self->kh, self->sh, self->ph, 1, self->ceil_mode);
    g->OW = ply_conv_out_size(g->W, self->kw, self->sw, self->pw, 1, self->ceil_mode);
    if (g->OH < 1 || g->OW < 1)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: output size %lld x %lld is too small for input %lld x %lld",
                          nm, (long long)g->OH, (long long)g->OW, (long long)g->H, (long long)g->W);
    return PLY_OK;
}

static ply_status pool_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = pool_geometry(self, &inputs[0], &g);
    if (st != PLY_OK) return st;
    *output = inputs[0];
    output->dims[output->ndim - 2] = g.OH;
    output->dims[output->ndim - 1] = g.OW;
    return PLY_OK;
}

static ply_status check_compact(const ply_layer *self, const ply_tensor *t, const char *what) {
    if (t->strides || t->dtype != PLY_DTYPE_F32)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: %s must be a compact float32 tensor",
                          kind_name(self->kind), what);
    return PLY_OK;
}

static ply_status pool_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = check_compact(self, &inputs[0], "input");
    if (st == PLY_OK) st = pool_geometry(self, &inputs[0].shape, &g);
    if (st != PLY_OK) return st;
    pool_job job = {self, g, 0, output->data, inputs[0].data, NULL, NULL, NULL};
    self->argmax_len = 0;
    if (self->kind == POOL_MAX && self->training && !is_pool2x2(self)) {
        int64_t n = g.planes * g.OH * g.OW;
        if (n > self->argmax_cap) {
            int64_t *a = self->host->alloc(self->host, (size_t)n * sizeof(int64_t));
            if (!a) return ply_errorf(self->host, PLY_ERR_OUT_OF_MEMORY, "maxpool2d: out of memory for argmax");
            self->host->free(self->host, self->argmax);
            self->argmax = a;
            self->argmax_cap = n;
        }
        job.argmax_out = self->argmax;
    }
    pool_dispatch(self, &job);
    if (job.argmax_out) self->argmax_len = g.planes * g.OH * g.OW;
    return PLY_OK;
}

static ply_status pool_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                                const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    (void)output;
    if (!grad_inputs[0].data) return PLY_OK;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = pool_geometry(self, &inputs[0].shape, &g);
    if (st != PLY_OK) return st;
    pool_job job = {self, g, 1, grad_inputs[0].data, grad_output->data, inputs[0].data, NULL, NULL};
    // argmax from the last forward when it matches this call; else recompute from the input
    if (self->kind == POOL_MAX && self->argmax_len == g.planes * g.OH * g.OW) job.argmax_in = self->argmax;
    pool_dispatch(self, &job);
    return PLY_OK;
}

// ----------------------------------------------------------------------------
// self-description (ABI 1.2)

#define POOL_STRIDE_SPEC PLY_SPEC_STRIDE(NULL, "input pixels between neighbouring windows: an int or [sh, sw]; " \
                                               "absent or [] means kernel_size")
#define POOL_CEIL_MODE_SPEC                                               \
    {.name = "ceil_mode", .kind = PLY_ATTR_BOOL, .default_text = "false", \
     .doc = "round the output size up, so a last partial window counts"}

static const ply_attr_spec maxpool_specs[] = {
    PLY_SPEC_KERNEL_SIZE,
    POOL_STRIDE_SPEC,
    PLY_SPEC_PADDING,
    PLY_SPEC_DILATION("spacing between window taps: an int or [dh, dw]; only 1 is supported"),
    POOL_CEIL_MODE_SPEC,
    {.name = "return_indices", .kind = PLY_ATTR_BOOL, .default_text = "false",
     .doc = "also return the argmax indices; only false is supported"},
    PLY_SPEC_END,
};

static const ply_attr_spec avgpool_specs[] = {
    PLY_SPEC_KERNEL_SIZE,
    POOL_STRIDE_SPEC,
    PLY_SPEC_PADDING,
    POOL_CEIL_MODE_SPEC,
    {.name = "count_include_pad", .kind = PLY_ATTR_BOOL, .default_text = "true",
     .doc = "count the zero padding in the divisor of each average"},
    {.name = "divisor_override", .kind = PLY_ATTR_STRING, .default_text = NULL,
     .doc = "PyTorch's fixed divisor; only None (absent, or the string a serialised None gives) is supported"},
    PLY_SPEC_END,
};

static const ply_attr_spec adaptive_specs[] = {
    {.name = "output_size", .kind = PLY_ATTR_INTS, .flags = PLY_ATTR_REQUIRED | PLY_ATTR_PAIR,
     .doc = "output height and width: an int or [oh, ow]"},
    PLY_SPEC_END,
};

// The largest window adaptive pooling uses along an axis of n inputs pooled to o outputs: output i spans
// [floor(i*n/o), ceil((i+1)*n/o)).
static double adaptive_window(int64_t n, int64_t o) {
    int64_t w = 0;
    for (int64_t i = 0; i < o; i++) {
        int64_t start = i * n / o, end = ((i + 1) * n + o - 1) / o;
        if (end - start > w) w = end - start;
    }
    return (double)w;
}

// No MACs (pooling counts 0). Window: the kernel and stride (dilation is 1); adaptive pooling its largest
// window and the fractional stride in/out, or global when it pools to 1x1.
static ply_status pool_describe(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_layer_info *info) {
    (void)n_inputs;
    pool_geom g = {0, 0, 0, 0, 0};
    ply_status st = pool_geometry(self, &inputs[0], &g);
    if (st != PLY_OK) return st;
    if (self->kind != POOL_ADAPTIVE_AVG) {
        ply_info_set_window(info, ply_window_make((double)self->kh, (double)self->kw, (double)self->sh,
                                                  (double)self->sw));
    } else if (g.OH == 1 && g.OW == 1) {
        ply_info_set_global(info);
    } else {
        ply_info_set_window(info, ply_window_make(adaptive_window(g.H, g.OH), adaptive_window(g.W, g.OW),
                                                  (double)g.H / (double)g.OH, (double)g.W / (double)g.OW));
    }
    return PLY_OK;
}

#define POOL_TYPE(var, type_name, type_doc, create_fn, specs) \
    static const ply_layer_type var = { \
        .struct_size = sizeof(ply_layer_type), \
        .abi_version = PLY_ABI_VERSION, \
        .name = type_name, \
        .doc = type_doc, \
        .min_inputs = 1, \
        .max_inputs = 1, \
        .create = create_fn, \
        .destroy = pool_destroy, \
        .infer_shape = pool_infer_shape, \
        .forward = pool_forward, \
        .backward = pool_backward, \
        .set_training = pool_set_training, \
        .attr_specs = specs, \
        .inputs_doc = "x: (N, C, H, W) or (C, H, W)", \
        .describe = pool_describe, \
    };
POOL_TYPE(maxpool2d_type, "maxpool2d",
          "2-d max pooling: kernel_size, stride (= kernel_size), padding (0), ceil_mode (false)", maxpool2d_create,
          maxpool_specs)
POOL_TYPE(avgpool2d_type, "avgpool2d",
          "2-d average pooling: kernel_size, stride (= kernel_size), padding (0), ceil_mode (false), "
          "count_include_pad (true)",
          avgpool2d_create, avgpool_specs)
POOL_TYPE(adaptive_avgpool2d_type, "adaptive_avgpool2d",
          "2-d adaptive average pooling to output_size (int or pair)", adaptive_avgpool2d_create, adaptive_specs)

static const ply_layer_type *const types[] = {&maxpool2d_type, &avgpool2d_type, &adaptive_avgpool2d_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.pooling", "1.0.0", 3, 0, types,
};

PLY_BUILTIN_ENTRY(pooling) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "ply.pooling: host ABI major version differs from the plugin's (1)");
        return NULL;
    }
    return &plugin;
}
