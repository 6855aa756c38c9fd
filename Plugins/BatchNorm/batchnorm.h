/*
 * Private to the BatchNorm family: the batchnorm2d layer's state and the parallel drivers that
 * batchnorm.c (the layer: attributes, shapes, forward, backward, parameters) runs and
 * batchnorm_channels.c (the per-channel kernels and their drivers) holds.
 */
#ifndef PLY_BATCHNORM_H
#define PLY_BATCHNORM_H

#include <stdint.h>

#include "ply/plugin.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

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

typedef struct {
    ply_layer *self;
    const float *x, *dy;
    float *y, *dx;
    int64_t N, S;
    int batch_stats;
    const float *relu_out; // backward with a fused relu: the forward's output, else NULL
} bn_job;

// The parallel drivers (host parallel_for tasks over channels [begin, end), or over blocks of
// BN_NARROW_BLOCK channels for the _narrow ones): the forward's statistics and normalisation, and the
// backward's gradient sums and d(input).
void bn_forward_task(void *ctx, int64_t begin, int64_t end);
void bn_forward_narrow_task(void *ctx, int64_t begin, int64_t end);
void bn_backward_task(void *ctx, int64_t begin, int64_t end);
void bn_backward_narrow_task(void *ctx, int64_t begin, int64_t end);

// Synchronised statistics (sync_ranks() > 1): the training forward over every rank's share, and the
// backward's two passes, this rank's sums into sync_buf, then d(input) from the sums over ranks.
ply_status bn_forward_sync(ply_layer *self, bn_job *j);
void bn_sync_grad_sums_task(void *ctx, int64_t begin, int64_t end);
void bn_sync_backward_input_task(void *ctx, int64_t begin, int64_t end);

PLY_INTERNAL_END

#endif
