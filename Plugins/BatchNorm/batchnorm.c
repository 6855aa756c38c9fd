/*
 * Batch normalisation over the channel axis: batchnorm2d (PyTorch's
 * nn.BatchNorm2d). Input [N, C, H, W] (or [N, C] / [N, C, L]), output the
 * same shape.
 *
 * Train mode normalises with the batch mean and biased variance, updates the
 * running statistics with `momentum` using the unbiased variance, and counts
 * num_batches_tracked. Eval mode uses the running statistics. Without
 * track_running_stats the batch statistics are used in both modes.
 *
 * Parameters in state_dict order: weight [C], bias [C] (only when affine),
 * running_mean [C], running_var [C], num_batches_tracked (int64 scalar) (only
 * when track_running_stats).
 *
 * Synchronised (ABI 1.4 host, sync_ranks() > 1 in a training forward): the
 * statistics are those of the whole batch shared out between the ranks of a
 * data-parallel job, as PyTorch's SyncBatchNorm: the per-channel sums and the
 * count are summed over ranks (sync_allreduce_sum), then the sums of squares
 * about that global mean (two passes, as the local path, so no cancellation);
 * backward sums sum(dy) and sum(dy * xhat) over ranks for d(input), while the
 * weight and bias gradients stay this rank's (the trainer sums those). Three
 * collectives per training step per layer; N ranks give one process's answer.
 *
 * The family also holds scale (scale.c): a learnable per-channel scale and shift.
 */
#include "plugin_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"
#include "batchnorm_narrow.h"
#include "scale.h"

struct ply_layer {
    const ply_host *host;
    int64_t C;
    double eps, momentum;
    int32_t affine, track, training;
    float *weight, *bias, *dweight, *dbias;   // [C] each, NULL unless affine
    float *running_mean, *running_var;        // [C] each, NULL unless track
    int64_t *num_batches_tracked;             // scalar, NULL unless track
    // saved by forward for backward: the statistics actually used
    float *save_mean, *save_invstd;           // [C] each
    int32_t saved_batch_stats;                // 1 if forward used batch statistics
    int32_t relu;                             // a relu fused by the host (fuse_activation)
    int32_t saved_sync;                       // 1 if forward synchronised the statistics over ranks
    double saved_count;                       // values per channel behind the statistics (all ranks)
    double *sync_buf;                         // [2C + 1], sums sent through sync_allreduce_sum
};

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
// for SSE2 only, forward_task took ~4% more of a ResNet-18 training step (batch 64, 32x32, 2
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

typedef struct {
    ply_layer *self;
    const float *x, *dy;
    float *y, *dx;
    int64_t N, S;
    int batch_stats;
    const float *relu_out; // backward with a fused relu: the forward's output, else NULL
} bn_job;

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

static void forward_task(void *ctx, int64_t begin, int64_t end) {
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

// forward_task on narrow planes (batchnorm_narrow.h): blocks [begin, end) of BN_NARROW_BLOCK channels.
static void forward_narrow_task(void *ctx, int64_t begin, int64_t end) {
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

static void backward_task(void *ctx, int64_t begin, int64_t end) {
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

// backward_task on narrow planes (batchnorm_narrow.h): blocks [begin, end) of BN_NARROW_BLOCK channels.
static void backward_narrow_task(void *ctx, int64_t begin, int64_t end) {
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
static void sync_grad_sums_task(void *ctx, int64_t begin, int64_t end) {
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
static void sync_backward_input_task(void *ctx, int64_t begin, int64_t end) {
    bn_job *j = ctx;
    ply_layer *self = j->self;
    for (int64_t c = begin; c < end; c++) {
        float w = self->affine ? self->weight[c] : 1.0f;
        channel_backward_input(j->dx, j->x, j->dy, j->relu_out, self->save_mean[c], self->save_invstd[c], w,
                               self->sync_buf[2 * c], self->sync_buf[2 * c + 1], 1, self->saved_count, c, j->N,
                               self->C, j->S);
    }
}

// The host's sync_ranks(), or 1 from a host older than ABI 1.4.
static int32_t sync_ranks(const ply_host *h) {
    if (h->struct_size < offsetof(ply_host, sync_allreduce_sum) + sizeof h->sync_allreduce_sum || !h->sync_ranks)
        return 1;
    return h->sync_ranks(h);
}

// Training forward with statistics over every rank's share (see the file comment).
static ply_status bn_forward_sync(ply_layer *self, bn_job *j) {
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

// ----------------------------------------------------------------------------
// vtable

static void bn_destroy(ply_layer *self) {
    if (!self) return;
    const ply_host *h = self->host;
    h->free(h, self->weight); h->free(h, self->bias);
    h->free(h, self->dweight); h->free(h, self->dbias);
    h->free(h, self->running_mean); h->free(h, self->running_var);
    h->free(h, self->num_batches_tracked);
    h->free(h, self->save_mean); h->free(h, self->save_invstd);
    h->free(h, self->sync_buf);
    h->free(h, self);
}

static ply_status bn_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t C;
    double eps = 1e-5, momentum = 0.1;
    int32_t affine = 1, track = 1;
    ply_status st = host->attr_int(host, attrs, "num_features", &C);
    if (st == PLY_ERR_NOT_FOUND)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "batchnorm2d: missing required attribute num_features");
    if (st != PLY_OK) return st;
    if (C <= 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "batchnorm2d: num_features must be > 0 (got %lld)",
                          (long long)C);
    if ((st = host->attr_float(host, attrs, "eps", &eps)) != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if ((st = host->attr_float(host, attrs, "momentum", &momentum)) != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if ((st = host->attr_bool(host, attrs, "affine", &affine)) != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if ((st = host->attr_bool(host, attrs, "track_running_stats", &track)) != PLY_OK && st != PLY_ERR_NOT_FOUND)
        return st;
    if (!(eps > 0.0))
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "batchnorm2d: eps must be > 0 (got %g)", eps);
    if (!(momentum >= 0.0 && momentum <= 1.0))
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "batchnorm2d: momentum must be in [0, 1] (got %g)",
                          momentum);

    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "batchnorm2d: out of memory");
    memset(self, 0, sizeof *self);
    self->host = host;
    self->C = C;
    self->eps = eps;
    self->momentum = momentum;
    self->affine = affine;
    self->track = track;
    self->training = 1;
    size_t bytes = (size_t)C * sizeof(float);
    int ok = (self->save_mean = host->alloc(host, bytes)) && (self->save_invstd = host->alloc(host, bytes)) &&
             (self->sync_buf = host->alloc(host, (size_t)(2 * C + 1) * sizeof(double)));
    if (ok && affine)
        ok = (self->weight = host->alloc(host, bytes)) && (self->bias = host->alloc(host, bytes)) &&
             (self->dweight = host->alloc(host, bytes)) && (self->dbias = host->alloc(host, bytes));
    if (ok && track)
        ok = (self->running_mean = host->alloc(host, bytes)) && (self->running_var = host->alloc(host, bytes)) &&
             (self->num_batches_tracked = host->alloc(host, sizeof(int64_t)));
    if (!ok) {
        bn_destroy(self);
        return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "batchnorm2d: out of memory for %lld channels", (long long)C);
    }
    for (int64_t c = 0; c < C; c++) {
        if (affine) { self->weight[c] = 1.0f; self->bias[c] = 0.0f; self->dweight[c] = 0.0f; self->dbias[c] = 0.0f; }
        if (track) { self->running_mean[c] = 0.0f; self->running_var[c] = 1.0f; }
        self->save_mean[c] = 0.0f; self->save_invstd[c] = 1.0f;
    }
    if (track) *self->num_batches_tracked = 0;
    *out = self;
    return PLY_OK;
}

static ply_status bn_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    const ply_shape *s = &inputs[0];
    if (s->ndim < 2 || s->ndim > 4)
        return ply_errorf(self->host, PLY_ERR_SHAPE,
                          "batchnorm2d: input 0 must be [N, C, H, W] or [N, C] (got %d dimensions)", s->ndim);
    if (s->dims[1] != self->C)
        return ply_errorf(self->host, PLY_ERR_SHAPE,
                          "batchnorm2d: input 0 dimension 1 (channels) is %lld, expected num_features = %lld",
                          (long long)s->dims[1], (long long)self->C);
    *output = *s;
    return PLY_OK;
}

static ply_status bn_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    ply_shape os;
    ply_status st = bn_infer_shape(self, n_inputs, &inputs[0].shape, &os);
    if (st != PLY_OK) return st;
    if (inputs[0].strides || output->strides)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "batchnorm2d: strided tensors are not supported");
    bn_job j = {self, inputs[0].data, NULL, output->data, NULL, inputs[0].shape.dims[0], 1, 0, NULL};
    for (int32_t i = 2; i < inputs[0].shape.ndim; i++) j.S *= inputs[0].shape.dims[i];
    j.batch_stats = self->training || !self->track;
    self->saved_sync = 0;
    if (self->training && sync_ranks(self->host) > 1) {
        // every rank calls the collectives, whatever its share (plugin.h's rules)
        st = bn_forward_sync(self, &j);
        if (st != PLY_OK) return st;
        self->saved_batch_stats = 1;
        self->saved_sync = 1;
        if (self->track) *self->num_batches_tracked += 1;
        return PLY_OK;
    }
    if (j.batch_stats && j.N * j.S <= 1)
        return ply_errorf(self->host, PLY_ERR_SHAPE,
                          "batchnorm2d: expected more than 1 value per channel when using batch statistics "
                          "(got input 0 of %lld x %lld values per channel)", (long long)j.N, (long long)j.S);
    self->saved_batch_stats = j.batch_stats;
    if (bn_narrow_suits(j.S))
        self->host->parallel_for(self->host, (self->C + BN_NARROW_BLOCK - 1) / BN_NARROW_BLOCK, 1, forward_narrow_task, &j);
    else
        self->host->parallel_for(self->host, self->C, 1, forward_task, &j);
    if (self->training && self->track) *self->num_batches_tracked += 1;
    return PLY_OK;
}

static ply_status bn_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                              const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    bn_job j = {self, inputs[0].data, grad_output->data, NULL, grad_inputs[0].data, inputs[0].shape.dims[0], 1,
                self->saved_batch_stats, self->relu ? output->data : NULL};
    for (int32_t i = 2; i < inputs[0].shape.ndim; i++) j.S *= inputs[0].shape.dims[i];
    if (self->saved_sync) {
        const ply_host *h = self->host;
        h->parallel_for(h, self->C, 1, sync_grad_sums_task, &j);
        ply_status st = h->sync_allreduce_sum(h, self->sync_buf, 2 * self->C);
        if (st != PLY_OK) return st;
        if (j.dx) h->parallel_for(h, self->C, 1, sync_backward_input_task, &j);
        return PLY_OK;
    }
    if (bn_narrow_suits(j.S))
        self->host->parallel_for(self->host, (self->C + BN_NARROW_BLOCK - 1) / BN_NARROW_BLOCK, 1, backward_narrow_task, &j);
    else
        self->host->parallel_for(self->host, self->C, 1, backward_task, &j);
    return PLY_OK;
}

static int32_t bn_param_count(ply_layer *self) {
    return (self->affine ? 2 : 0) + (self->track ? 3 : 0);
}

static ply_status bn_get_param(ply_layer *self, int32_t index, ply_param *out) {
    ply_shape vec = ply_shape_make(1, self->C, 0, 0, 0);
    int32_t n = bn_param_count(self);
    if (index < 0 || index >= n)
        return ply_errorf(self->host, PLY_ERR_NOT_FOUND, "batchnorm2d: parameter index %d out of range [0, %d)",
                          index, n);
    if (!self->affine) index += 2;
    switch (index) {
    case 0: *out = ply_param_make("weight", self->weight, self->dweight, vec); break;
    case 1: *out = ply_param_make("bias", self->bias, self->dbias, vec); break;
    case 2: *out = ply_param_make("running_mean", self->running_mean, NULL, vec); break;
    case 3: *out = ply_param_make("running_var", self->running_var, NULL, vec); break;
    default:
        *out = ply_param_make("num_batches_tracked", NULL, NULL, ply_shape_make(0, 0, 0, 0, 0));
        out->value.data = self->num_batches_tracked;
        out->value.dtype = PLY_DTYPE_I64;
        out->grad.dtype = PLY_DTYPE_I64;
        break;
    }
    return PLY_OK;
}

static void bn_set_training(ply_layer *self, int32_t training) {
    self->training = training ? 1 : 0;
}

static ply_status bn_fuse_activation(ply_layer *self, const char *activation) {
    if (strcmp(activation, "relu") != 0) return PLY_ERR_UNSUPPORTED;
    self->relu = 1;
    return PLY_OK;
}

static const ply_attr_spec bn_specs[] = {
    {.name = "num_features", .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED,
     .doc = "C, the number of channels of the input"},
    {.name = "eps", .kind = PLY_ATTR_FLOAT, .default_text = "1e-05",
     .doc = "added to the variance before its square root, for stability"},
    {.name = "momentum", .kind = PLY_ATTR_FLOAT, .default_text = "0.1",
     .doc = "weight of the batch statistics in the running-statistics update, in [0, 1]"},
    {.name = "affine", .kind = PLY_ATTR_BOOL, .default_text = "true",
     .doc = "learn a per-channel scale (weight) and shift (bias)"},
    {.name = "track_running_stats", .kind = PLY_ATTR_BOOL, .default_text = "true",
     .doc = "keep running mean and variance (buffers) and use them in evaluation"},
    PLY_SPEC_END,
};

// No describe: batch norm counts no MACs and keeps the receptive field (identity window).
static const ply_layer_type batchnorm2d_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "batchnorm2d",
    .doc = "batch normalisation over channels (num_features, eps=1e-5, momentum=0.1, affine, track_running_stats)",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = bn_create,
    .destroy = bn_destroy,
    .infer_shape = bn_infer_shape,
    .forward = bn_forward,
    .backward = bn_backward,
    .param_count = bn_param_count,
    .get_param = bn_get_param,
    .set_training = bn_set_training,
    .fuse_activation = bn_fuse_activation,
    .attr_specs = bn_specs,
    .inputs_doc = "x: (N, C, H, W), (N, C, L) or (N, C)",
};

static const ply_layer_type *const types[] = {&batchnorm2d_type, &ply_scale_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.batchnorm", "1.1.0", 2, 0, types,
};

PLY_BUILTIN_ENTRY(batchnorm) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        ply_errorf(host, PLY_ERR_ABI, "ply.batchnorm: built for ABI major %u, host has %u",
                   (unsigned)PLY_ABI_VERSION_MAJOR, (unsigned)PLY_ABI_MAJOR_OF(host->abi_version));
        return NULL;
    }
    return &plugin;
}
