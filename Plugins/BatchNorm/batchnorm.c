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
 *
 * The kernels and their parallel drivers (one task per channel, the synchronised passes) are
 * batchnorm_channels.c's; the layer's state is batchnorm.h's.
 */
#include "plugin_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"
#include "batchnorm_narrow.h"
#include "scale.h"
#include "batchnorm.h"

// ----------------------------------------------------------------------------
// vtable

// The host's sync_ranks(), or 1 from a host older than ABI 1.4.
static int32_t sync_ranks(const ply_host *h) {
    if (h->struct_size < offsetof(ply_host, sync_allreduce_sum) + sizeof h->sync_allreduce_sum || !h->sync_ranks)
        return 1;
    return h->sync_ranks(h);
}

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
        self->host->parallel_for(self->host, (self->C + BN_NARROW_BLOCK - 1) / BN_NARROW_BLOCK, 1, bn_forward_narrow_task, &j);
    else
        self->host->parallel_for(self->host, self->C, 1, bn_forward_task, &j);
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
        h->parallel_for(h, self->C, 1, bn_sync_grad_sums_task, &j);
        ply_status st = h->sync_allreduce_sum(h, self->sync_buf, 2 * self->C);
        if (st != PLY_OK) return st;
        if (j.dx) h->parallel_for(h, self->C, 1, bn_sync_backward_input_task, &j);
        return PLY_OK;
    }
    if (bn_narrow_suits(j.S))
        self->host->parallel_for(self->host, (self->C + BN_NARROW_BLOCK - 1) / BN_NARROW_BLOCK, 1, bn_backward_narrow_task, &j);
    else
        self->host->parallel_for(self->host, self->C, 1, bn_backward_task, &j);
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
