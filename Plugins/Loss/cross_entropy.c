/*
 * Loss family: cross_entropy (PyTorch's F.cross_entropy with class-index
 * targets). inputs[0] = logits [N, C], inputs[1] = targets [N] holding class
 * indices (float32 whole numbers; int64 is accepted too). Output: a scalar,
 * the mean (reduction "mean", default) or sum ("sum") over the batch of
 *     loss[n] = logsumexp(logits[n, :]) - logits[n, target[n]]
 * No parameters. Targets get no gradient (grad_inputs[1] is zeroed).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"

struct ply_layer {
    const ply_host *host;
    int32_t mean;  // 1: reduction "mean", 0: "sum"
};

// ----------------------------------------------------------------------------
// kernels

// max and log(sum(exp(x - max))) of one row of C logits, in double
static void row_logsumexp(double *maxv, double *lse, const float *x, int64_t C) {
    float m = -INFINITY;
    for (int64_t c = 0; c < C; c++) m = fmaxf(m, x[c]);
    double s = 0.0;
    for (int64_t c = 0; c < C; c++) s += exp((double)x[c] - (double)m);
    *maxv = m;
    *lse = log(s);
}

// total loss over the batch: sum_n (max + lse - x[n, t[n]]); logits (N, C), target (N)
static double cross_entropy_forward(const float *logits, const int64_t *target, int64_t N, int64_t C) {
    double total = 0.0;
    for (int64_t n = 0; n < N; n++) {
        const float *x = logits + n * C;
        double m, lse;
        row_logsumexp(&m, &lse, x, C);
        total += m + lse - (double)x[target[n]];
    }
    return total;
}

// dlogits[n, c] = (softmax(x[n])[c] - (c == t[n])) * scale; logits, dlogits (N, C)
static void cross_entropy_backward(float *dlogits, const float *logits, const int64_t *target, double scale,
                                   int64_t N, int64_t C) {
    for (int64_t n = 0; n < N; n++) {
        const float *x = logits + n * C;
        float *dx = dlogits + n * C;
        double m, lse;
        row_logsumexp(&m, &lse, x, C);
        for (int64_t c = 0; c < C; c++) {
            double p = exp((double)x[c] - m - lse);
            dx[c] = (float)((p - (c == target[n] ? 1.0 : 0.0)) * scale);
        }
    }
}

// ----------------------------------------------------------------------------
// helpers

// Read and validate the N targets as class indices in [0, C). *out is
// allocated with host->alloc; the caller frees it.
static ply_status read_targets(ply_layer *self, const ply_tensor *t, int64_t N, int64_t C, int64_t **out) {
    const ply_host *h = self->host;
    int64_t *idx = h->alloc(h, (size_t)(N > 0 ? N : 1) * sizeof(int64_t));
    if (!idx) return ply_errorf(h, PLY_ERR_OUT_OF_MEMORY, "cross_entropy: out of memory");
    for (int64_t n = 0; n < N; n++) {
        if (t->dtype == PLY_DTYPE_I64) {
            int64_t v = ((const int64_t *)t->data)[n];
            if (v < 0 || v >= C) {
                h->free(h, idx);
                return ply_errorf(h, PLY_ERR_INVALID_ARGUMENT,
                                  "cross_entropy: target of sample %lld is %lld, expected a class index in [0, %lld)",
                                  (long long)n, (long long)v, (long long)C);
            }
            idx[n] = v;
        } else {
            float v = ((const float *)t->data)[n];
            if (!(v >= 0.0f && v < (float)C && v == floorf(v))) {
                h->free(h, idx);
                return ply_errorf(h, PLY_ERR_INVALID_ARGUMENT,
                                  "cross_entropy: target of sample %lld is %g, expected a class index in [0, %lld)",
                                  (long long)n, (double)v, (long long)C);
            }
            idx[n] = (int64_t)v;
        }
    }
    *out = idx;
    return PLY_OK;
}

// ----------------------------------------------------------------------------
// vtable

static ply_status ce_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const char *reduction = "mean";
    ply_status st = host->attr_string(host, attrs, "reduction", &reduction);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    int32_t mean;
    if (strcmp(reduction, "mean") == 0) mean = 1;
    else if (strcmp(reduction, "sum") == 0) mean = 0;
    else
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "cross_entropy: reduction must be \"mean\" or \"sum\" (got \"%s\")", reduction);
    double smoothing = 0.0;
    st = host->attr_float(host, attrs, "label_smoothing", &smoothing);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (smoothing != 0.0)
        return ply_errorf(host, PLY_ERR_UNSUPPORTED, "cross_entropy: label_smoothing is not supported (got %g)",
                          smoothing);
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "cross_entropy: out of memory");
    self->host = host;
    self->mean = mean;
    *out = self;
    return PLY_OK;
}

static void ce_destroy(ply_layer *self) {
    if (self) self->host->free(self->host, self);
}

static ply_status ce_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    if (n_inputs != 2)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "cross_entropy: expected 2 inputs (logits, targets), got %d",
                          n_inputs);
    const ply_shape *x = &inputs[0], *t = &inputs[1];
    if (x->ndim != 2)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "cross_entropy: input 0 (logits) must be [N, C] (got %d dimensions)",
                          x->ndim);
    if (x->dims[0] < 1 || x->dims[1] < 1)
        return ply_errorf(self->host, PLY_ERR_SHAPE,
                          "cross_entropy: input 0 (logits) must have N >= 1 and C >= 1 (got [%lld, %lld])",
                          (long long)x->dims[0], (long long)x->dims[1]);
    if (t->ndim != 1 || t->dims[0] != x->dims[0])
        return ply_errorf(self->host, PLY_ERR_SHAPE,
                          "cross_entropy: input 1 (targets) must be [N] with N = %lld (got %d dimensions, dimension 0 = %lld)",
                          (long long)x->dims[0], t->ndim, (long long)(t->ndim > 0 ? t->dims[0] : 0));
    *output = ply_shape_make(0, 0, 0, 0, 0);
    return PLY_OK;
}

static ply_status ce_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    ply_shape os;
    ply_shape in_shapes[2] = {inputs[0].shape, n_inputs > 1 ? inputs[1].shape : inputs[0].shape};
    ply_status st = ce_infer_shape(self, n_inputs, in_shapes, &os);
    if (st != PLY_OK) return st;
    int64_t N = inputs[0].shape.dims[0], C = inputs[0].shape.dims[1];
    int64_t *target;
    if ((st = read_targets(self, &inputs[1], N, C, &target)) != PLY_OK) return st;
    double total = cross_entropy_forward(inputs[0].data, target, N, C);
    self->host->free(self->host, target);
    ((float *)output->data)[0] = (float)(self->mean ? total / (double)N : total);
    return PLY_OK;
}

static ply_status ce_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                              const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)output;
    int64_t N = inputs[0].shape.dims[0], C = inputs[0].shape.dims[1];
    if (n_inputs > 1 && grad_inputs[1].data) {
        if (grad_inputs[1].dtype == PLY_DTYPE_I64) memset(grad_inputs[1].data, 0, (size_t)N * sizeof(int64_t));
        else memset(grad_inputs[1].data, 0, (size_t)N * sizeof(float));
    }
    if (!grad_inputs[0].data) return PLY_OK;
    int64_t *target;
    ply_status st = read_targets(self, &inputs[1], N, C, &target);
    if (st != PLY_OK) return st;
    double scale = (double)((const float *)grad_output->data)[0];
    if (self->mean) scale /= (double)N;
    cross_entropy_backward(grad_inputs[0].data, inputs[0].data, target, scale, N, C);
    self->host->free(self->host, target);
    return PLY_OK;
}

static const ply_attr_spec ce_specs[] = {
    {.name = "reduction", .kind = PLY_ATTR_STRING, .default_text = "mean",
     .doc = "how per-sample losses combine: mean or sum"},
    {.name = "label_smoothing", .kind = PLY_ATTR_FLOAT, .default_text = "0.0",
     .doc = "PyTorch's label smoothing; only 0 is supported"},
    PLY_SPEC_END,
};

// No describe: no MACs, identity window.
static const ply_layer_type cross_entropy_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "cross_entropy",
    .doc = "cross-entropy of logits [N, C] against class-index targets [N]; reduction \"mean\" (default) or \"sum\"",
    .min_inputs = 2,
    .max_inputs = 2,
    .create = ce_create,
    .destroy = ce_destroy,
    .infer_shape = ce_infer_shape,
    .forward = ce_forward,
    .backward = ce_backward,
    .attr_specs = ce_specs,
    .inputs_doc = "logits: (N, C); targets: (N), class indices 0..C-1",
};

static const ply_layer_type *const types[] = {&cross_entropy_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.loss", "1.0.0", 1, 0, types,
};

PLY_BUILTIN_ENTRY(loss) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        ply_errorf(host, PLY_ERR_ABI, "ply.loss: built for ABI major %u, host has %u",
                   (unsigned)PLY_ABI_VERSION_MAJOR, (unsigned)PLY_ABI_MAJOR_OF(host->abi_version));
        return NULL;
    }
    return &plugin;
}
