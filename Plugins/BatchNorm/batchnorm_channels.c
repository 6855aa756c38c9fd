/*
 * batchnorm2d's kernels and their parallel drivers (batchnorm.h): the per-channel statistics,
 * normalisation and gradient kernels (baseline and AVX2 copies here, AVX-512 in batchnorm_narrow.c),
 * one host task per channel (or per block of channels on narrow planes), and the synchronised
 * passes with the collectives between them. The layer itself (attributes, shapes, the vtable) is
 * batchnorm.c's, which also describes the modes and the synchronised statistics.
 */
#include "plugin_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"
#include "batchnorm.h"
#include "batchnorm_narrow.h"

// ----------------------------------------------------------------------------
// kernels, one channel at a time. x, y, dy, dx are (N, C, S), S = H*W.

// Sums run in LANES independent double accumulators (added up at the end): one accumulator
// is a chain of dependent adds, 4 cycles per element, which made batch norm a tenth of a
// ResNet training step; LANES of them vectorise.
#define LANES 8

static double lanes_total(const double *acc) {
    double t = 0.0;
    for (int l = 0; l < LANES; l++) t += acc[l];
    return t;
}

// batch statistics of channel c: mean and biased variance, double accumulation
static inline __attribute__((always_inline)) void channel_stats_body(double *mean, double *var, const float *x,
                                                                  int64_t c, int64_t N, int64_t C, int64_t S) {
    double acc[LANES] = {0};
    int64_t body = S - S % LANES;
    for (int64_t n = 0; n < N; n++) {
        const float *xc = x + (n * C + c) * S;
        for (int64_t s = 0; s < body; s += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += xc[s + l];
        for (int64_t s = body; s < S; s++) acc[s % LANES] += xc[s];
    }
    double m = lanes_total(acc) / (double)(N * S);
    double sq[LANES] = {0};
    for (int64_t n = 0; n < N; n++) {
        const float *xc = x + (n * C + c) * S;
        for (int64_t s = 0; s < body; s += LANES)
            for (int l = 0; l < LANES; l++) { double d = xc[s + l] - m; sq[l] += d * d; }
        for (int64_t s = body; s < S; s++) { double d = xc[s] - m; sq[s % LANES] += d * d; }
    }
    *mean = m;
    *var = lanes_total(sq) / (double)(N * S);
}

// y = (x - mean) * invstd * w + b, or its relu (max(v, 0), NaN passed through, as the built-in)
static inline __attribute__((always_inline)) void channel_normalize_body(float *y, const float *x, float mean,
                                                                       float invstd, float w, float b, int relu,
                                                                       int64_t c, int64_t N, int64_t C, int64_t S) {
    float scale = invstd * w, shift = b - mean * invstd * w;
    for (int64_t n = 0; n < N; n++) {
        const float *xc = x + (n * C + c) * S;
        float *yc = y + (n * C + c) * S;
        if (relu) {
            for (int64_t s = 0; s < S; s++) {
                float v = xc[s] * scale + shift;
                yc[s] = (v > 0.0f || v != v) ? v : 0.0f;
            }
        } else {
            for (int64_t s = 0; s < S; s++) yc[s] = xc[s] * scale + shift;
        }
    }
}

// The forward's two passes, compiled for the baseline and for AVX2 + FMA (PLY_AVX2_CLONE): built
// for SSE2 only, bn_forward_task took ~4% more of a ResNet-18 training step (batch 64, 32x32, 2
// threads; cpu-clock samples relative to OpenBLAS's sgemm over four profiles each: 0.092-0.095
// with -march=x86-64-v3, 0.095-0.101 SSE2), and the AVX2 copy's FMA rounds as the old build did.
PLY_AVX2_CLONE(channel_stats, (double *mean, double *var, const float *x, int64_t c, int64_t N, int64_t C, int64_t S),
               (mean, var, x, c, N, C, S))
PLY_AVX2_CLONE(channel_normalize,
               (float *y, const float *x, float mean, float invstd, float w, float b, int relu, int64_t c, int64_t N,
                int64_t C, int64_t S),
               (y, x, mean, invstd, w, b, relu, c, N, C, S))

// The fused relu's derivative: dy where the output is positive, else 0 (y NULL: dy as is).
static inline float relu_grad(const float *y, const float *dy, int64_t i) {
    return y && !(y[i] > 0.0f) ? 0.0f : dy[i];
}

// sums of dy and dy * xhat over channel c (dy masked by y > 0 when y, the fused relu's output, is set)
static void channel_grad_sums_plain(double *sum_dy, double *sum_dy_xhat, const float *x, const float *dy, const float *y,
                              float mean, float invstd, int64_t c, int64_t N, int64_t C, int64_t S) {
    double a[LANES] = {0}, b[LANES] = {0};
    int64_t body = S - S % LANES;
    for (int64_t n = 0; n < N; n++) {
        const float *xc = x + (n * C + c) * S, *dyc = dy + (n * C + c) * S, *yc = y ? y + (n * C + c) * S : NULL;
        for (int64_t s = 0; s < body; s += LANES)
            for (int l = 0; l < LANES; l++) {
                float g = relu_grad(yc, dyc, s + l);
                a[l] += g;
                b[l] += (double)g * ((xc[s + l] - mean) * invstd);
            }
        for (int64_t s = body; s < S; s++) {
            float g = relu_grad(yc, dyc, s);
            a[s % LANES] += g;
            b[s % LANES] += (double)g * ((xc[s] - mean) * invstd);
        }
    }
    *sum_dy = lanes_total(a);
    *sum_dy_xhat = lanes_total(b);
}

// batch statistics: dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))
// fixed statistics: dx = w * invstd * dy
static void channel_backward_input_plain(float *dx, const float *x, const float *dy, const float *y, float mean,
                                   float invstd, float w, double sum_dy, double sum_dy_xhat, int batch_stats,
                                   double count, int64_t c, int64_t N, int64_t C, int64_t S) {
    float k = w * invstd;
    float mdy = batch_stats ? (float)(sum_dy / count) : 0.0f;
    float mdyx = batch_stats ? (float)(sum_dy_xhat / count) : 0.0f;
    for (int64_t n = 0; n < N; n++) {
        const float *xc = x + (n * C + c) * S, *dyc = dy + (n * C + c) * S, *yc = y ? y + (n * C + c) * S : NULL;
        float *dxc = dx + (n * C + c) * S;
        for (int64_t s = 0; s < S; s++) {
            float xhat = (xc[s] - mean) * invstd;
            dxc[s] = k * (relu_grad(yc, dyc, s) - mdy - xhat * mdyx);
        }
    }
}


static void channel_grad_sums(double *sum_dy, double *sum_dy_xhat, const float *x, const float *dy, const float *y,
                              float mean, float invstd, int64_t c, int64_t N, int64_t C, int64_t S) {
#if PLY_HAVE_X86_TARGETS
    if (ply_cpu_level() >= PLY_CPU_AVX512) {
        bn_channel_grad_sums512(sum_dy, sum_dy_xhat, x, dy, y, mean, invstd, c, N, C, S);
        return;
    }
#endif
    channel_grad_sums_plain(sum_dy, sum_dy_xhat, x, dy, y, mean, invstd, c, N, C, S);
}

static void channel_backward_input(float *dx, const float *x, const float *dy, const float *y, float mean,
                                   float invstd, float w, double sum_dy, double sum_dy_xhat, int batch_stats,
                                   double count, int64_t c, int64_t N, int64_t C, int64_t S) {
#if PLY_HAVE_X86_TARGETS
    if (ply_cpu_level() >= PLY_CPU_AVX512) {
        bn_channel_backward_input512(dx, x, dy, y, mean, invstd, w, sum_dy, sum_dy_xhat, batch_stats, count, c, N, C, S);
        return;
    }
#endif
    channel_backward_input_plain(dx, x, dy, y, mean, invstd, w, sum_dy, sum_dy_xhat, batch_stats, count, c, N, C, S);
}

// ----------------------------------------------------------------------------
// parallel drivers (one task per channel)

// Channel c's statistics: the batch's (mean and biased variance, with the running statistics' update in
// training) or the running ones.
static void keep_stats(ply_layer *self, const bn_job *j, int64_t c, double mean, double var) {
    if (j->batch_stats) {
        self->save_mean[c] = (float)mean;
        self->save_invstd[c] = (float)(1.0 / sqrt(var + self->eps));
        if (self->track && self->training) {
            int64_t M = j->N * j->S;
            double unbiased = var * (double)M / (double)(M - 1);
            double m = self->momentum;
            self->running_mean[c] = (float)((1.0 - m) * self->running_mean[c] + m * mean);
            self->running_var[c] = (float)((1.0 - m) * self->running_var[c] + m * unbiased);
        }
    } else {
        self->save_mean[c] = self->running_mean[c];
        self->save_invstd[c] = (float)(1.0 / sqrt((double)self->running_var[c] + self->eps));
    }
}

void bn_forward_task(void *ctx, int64_t begin, int64_t end) {
    bn_job *j = ctx;
    ply_layer *self = j->self;
    int64_t C = self->C;
    for (int64_t c = begin; c < end; c++) {
        double mean = 0.0, var = 0.0;
        if (j->batch_stats) channel_stats(&mean, &var, j->x, c, j->N, C, j->S);
        keep_stats(self, j, c, mean, var);
        float w = self->affine ? self->weight[c] : 1.0f, b = self->affine ? self->bias[c] : 0.0f;
        channel_normalize(j->y, j->x, self->save_mean[c], self->save_invstd[c], w, b, self->relu, c, j->N, C, j->S);
    }
}

// bn_forward_task on narrow planes (batchnorm_narrow.h): blocks [begin, end) of BN_NARROW_BLOCK channels.
void bn_forward_narrow_task(void *ctx, int64_t begin, int64_t end) {
    bn_job *j = ctx;
    ply_layer *self = j->self;
    int64_t C = self->C;
    for (int64_t blk = begin; blk < end; blk++) {
        int64_t c0 = blk * BN_NARROW_BLOCK, c1 = ply_min_i64(C, c0 + BN_NARROW_BLOCK);
        double mean[BN_NARROW_BLOCK] = {0}, var[BN_NARROW_BLOCK] = {0};
        if (j->batch_stats) bn_narrow_stats(mean, var, j->x, c0, c1, j->N, C, j->S);
        for (int64_t c = c0; c < c1; c++) keep_stats(self, j, c, mean[c - c0], var[c - c0]);
        bn_narrow_normalize(j->y, j->x, self->save_mean, self->save_invstd, self->affine ? self->weight : NULL,
                            self->affine ? self->bias : NULL, self->relu, c0, c1, j->N, C, j->S);
    }
}

void bn_backward_task(void *ctx, int64_t begin, int64_t end) {
    bn_job *j = ctx;
    ply_layer *self = j->self;
    int64_t C = self->C;
    for (int64_t c = begin; c < end; c++) {
        float mean = self->save_mean[c], invstd = self->save_invstd[c];
        double sum_dy, sum_dy_xhat;
        channel_grad_sums(&sum_dy, &sum_dy_xhat, j->x, j->dy, j->relu_out, mean, invstd, c, j->N, C, j->S);
        if (self->affine) {
            self->dweight[c] += (float)sum_dy_xhat;
            self->dbias[c] += (float)sum_dy;
        }
        if (j->dx) {
            float w = self->affine ? self->weight[c] : 1.0f;
            channel_backward_input(j->dx, j->x, j->dy, j->relu_out, mean, invstd, w, sum_dy, sum_dy_xhat,
                                   j->batch_stats, (double)(j->N * j->S), c, j->N, C, j->S);
        }
    }
}

// bn_backward_task on narrow planes (batchnorm_narrow.h): blocks [begin, end) of BN_NARROW_BLOCK channels.
void bn_backward_narrow_task(void *ctx, int64_t begin, int64_t end) {
    bn_job *j = ctx;
    ply_layer *self = j->self;
    int64_t C = self->C;
    for (int64_t blk = begin; blk < end; blk++) {
        int64_t c0 = blk * BN_NARROW_BLOCK, c1 = ply_min_i64(C, c0 + BN_NARROW_BLOCK);
        double sum_dy[BN_NARROW_BLOCK], sum_dy_xhat[BN_NARROW_BLOCK];
        bn_narrow_grad_sums(sum_dy, sum_dy_xhat, j->x, j->dy, j->relu_out, self->save_mean, self->save_invstd, c0, c1,
                            j->N, C, j->S);
        if (self->affine)
            for (int64_t c = c0; c < c1; c++) {
                self->dweight[c] += (float)sum_dy_xhat[c - c0];
                self->dbias[c] += (float)sum_dy[c - c0];
            }
        if (j->dx)
            bn_narrow_backward_input(j->dx, j->x, j->dy, j->relu_out, self->save_mean, self->save_invstd,
                                     self->affine ? self->weight : NULL, sum_dy, sum_dy_xhat, j->batch_stats,
                                     (double)(j->N * j->S), c0, c1, j->N, C, j->S);
    }
}

// ----------------------------------------------------------------------------
// synchronised statistics (sync_ranks() > 1): sums here, collectives between the passes

// sum over channel c of x (mean NULL), or of (x - mean[c])^2: sync_buf[c] = sum_n,s of that
static void sync_sums_task(void *ctx, int64_t begin, int64_t end) {
    bn_job *j = ctx;
    ply_layer *self = j->self;
    int64_t C = self->C, body = j->S - j->S % LANES;
    const double *mean = j->batch_stats ? self->sync_buf + C : NULL;  // pass 2 keeps the means after the sums
    for (int64_t c = begin; c < end; c++) {
        double acc[LANES] = {0}, m = mean ? mean[c] : 0.0;
        for (int64_t n = 0; n < j->N; n++) {
            const float *xc = j->x + (n * C + c) * j->S;
            for (int64_t s = 0; s < body; s += LANES)
                for (int l = 0; l < LANES; l++) { double d = xc[s + l] - m; acc[l] += mean ? d * d : d; }
            for (int64_t s = body; s < j->S; s++) { double d = xc[s] - m; acc[s % LANES] += mean ? d * d : d; }
        }
        self->sync_buf[c] = lanes_total(acc);
    }
}

// normalise with the global statistics: sync_buf[C + c] = mean, sync_buf[c] = biased variance
static void sync_normalize_task(void *ctx, int64_t begin, int64_t end) {
    bn_job *j = ctx;
    ply_layer *self = j->self;
    int64_t C = self->C;
    double M = self->saved_count;
    for (int64_t c = begin; c < end; c++) {
        double mean = self->sync_buf[C + c], var = self->sync_buf[c];
        self->save_mean[c] = (float)mean;
        self->save_invstd[c] = (float)(1.0 / sqrt(var + self->eps));
        if (self->track) {
            double m = self->momentum;
            self->running_mean[c] = (float)((1.0 - m) * self->running_mean[c] + m * mean);
            self->running_var[c] = (float)((1.0 - m) * self->running_var[c] + m * var * M / (M - 1.0));
        }
        float w = self->affine ? self->weight[c] : 1.0f, b = self->affine ? self->bias[c] : 0.0f;
        channel_normalize(j->y, j->x, self->save_mean[c], self->save_invstd[c], w, b, self->relu, c, j->N, C, j->S);
    }
}

// backward pass 1: this rank's sum(dy), sum(dy * xhat) into sync_buf[2c], [2c + 1]; the
// weight and bias gradients take this rank's sums (the trainer sums gradients over ranks)
void bn_sync_grad_sums_task(void *ctx, int64_t begin, int64_t end) {
    bn_job *j = ctx;
    ply_layer *self = j->self;
    for (int64_t c = begin; c < end; c++) {
        double sum_dy, sum_dy_xhat;
        channel_grad_sums(&sum_dy, &sum_dy_xhat, j->x, j->dy, j->relu_out, self->save_mean[c], self->save_invstd[c], c,
                          j->N, self->C, j->S);
        if (self->affine) {
            self->dweight[c] += (float)sum_dy_xhat;
            self->dbias[c] += (float)sum_dy;
        }
        self->sync_buf[2 * c] = sum_dy;
        self->sync_buf[2 * c + 1] = sum_dy_xhat;
    }
}

// backward pass 2: d(input) from the sums over ranks, means over all ranks' values
void bn_sync_backward_input_task(void *ctx, int64_t begin, int64_t end) {
    bn_job *j = ctx;
    ply_layer *self = j->self;
    for (int64_t c = begin; c < end; c++) {
        float w = self->affine ? self->weight[c] : 1.0f;
        channel_backward_input(j->dx, j->x, j->dy, j->relu_out, self->save_mean[c], self->save_invstd[c], w,
                               self->sync_buf[2 * c], self->sync_buf[2 * c + 1], 1, self->saved_count, c, j->N,
                               self->C, j->S);
    }
}

// Training forward with statistics over every rank's share (see the file comment).
ply_status bn_forward_sync(ply_layer *self, bn_job *j) {
    const ply_host *h = self->host;
    int64_t C = self->C;
    j->batch_stats = 0;  // pass 1: plain sums
    h->parallel_for(h, C, 1, sync_sums_task, j);
    self->sync_buf[C] = (double)(j->N * j->S);
    ply_status st = h->sync_allreduce_sum(h, self->sync_buf, C + 1);
    if (st != PLY_OK) return st;
    double M = self->sync_buf[C];
    if (!(M > 1.0))  // the same M on every rank: every rank fails here together
        return ply_errorf(h, PLY_ERR_SHAPE,
                          "batchnorm2d: expected more than 1 value per channel when using batch statistics "
                          "(got %.0f values per channel over all ranks)", M);
    for (int64_t c = 0; c < C; c++) self->sync_buf[C + c] = self->sync_buf[c] / M;
    j->batch_stats = 1;  // pass 2: squares about the global mean
    h->parallel_for(h, C, 1, sync_sums_task, j);
    if ((st = h->sync_allreduce_sum(h, self->sync_buf, C)) != PLY_OK) return st;
    for (int64_t c = 0; c < C; c++) self->sync_buf[c] /= M;
    self->saved_count = M;
    h->parallel_for(h, C, 1, sync_normalize_task, j);
    return PLY_OK;
}
