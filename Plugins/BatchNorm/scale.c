/*
 * scale: a learnable per-channel scale and optional shift, y = x * weight[c] + bias[c]
 * over axis 1 of an (N, C, ...) input (Caffe's Scale layer; what ONNX's Mul and Add of a
 * per-channel constant import as). With num_features 1 one weight (and bias) scales every
 * channel (a Mul by a scalar). weight starts at 1, bias at 0; both train.
 *
 * Index equations, the input viewed as (N, C, S) with S the product of the axes after 1
 * and c' = c when num_features = C, 0 when it is 1:
 *   forward   y[n, c, s] = x[n, c, s] * w[c'] + b[c']
 *   backward  dx[n, c, s] = dy[n, c, s] * w[c']
 *             dw[c'] += sum over n, s (and c, when num_features is 1) of dy[n, c, s] * x[n, c, s]
 *             db[c'] += the same sum of dy[n, c, s]
 */
#include <string.h>

#include "scale.h"

struct ply_layer {
    const ply_host *host;
    int64_t C;
    int32_t has_bias;
    float *weight, *bias, *dweight, *dbias;
};

static void scale_destroy(ply_layer *self) {
    if (!self) return;
    const ply_host *h = self->host;
    h->free(h, self->weight);
    h->free(h, self->bias);
    h->free(h, self->dweight);
    h->free(h, self->dbias);
    h->free(h, self);
}

static ply_status scale_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t C;
    int32_t bias = 0;
    ply_status st = host->attr_int(host, attrs, "num_features", &C);
    if (st == PLY_ERR_NOT_FOUND)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "scale: missing required attribute num_features");
    if (st != PLY_OK) return st;
    if (C <= 0 || C > (1 << 24))
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "scale: num_features must be in 1..16777216 (got %lld)",
                          (long long)C);
    if ((st = host->attr_bool(host, attrs, "bias", &bias)) != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "scale: out of memory");
    memset(self, 0, sizeof *self);
    self->host = host;
    self->C = C;
    self->has_bias = bias;
    size_t bytes = (size_t)C * sizeof(float);
    int ok = (self->weight = host->alloc(host, bytes)) && (self->dweight = host->alloc(host, bytes));
    if (ok && bias) ok = (self->bias = host->alloc(host, bytes)) && (self->dbias = host->alloc(host, bytes));
    if (!ok) {
        scale_destroy(self);
        return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "scale: out of memory for %lld channels", (long long)C);
    }
    for (int64_t c = 0; c < C; c++) {
        self->weight[c] = 1.0f;
        self->dweight[c] = 0.0f;
        if (bias) self->bias[c] = self->dbias[c] = 0.0f;
    }
    *out = self;
    return PLY_OK;
}

static ply_status scale_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    const ply_shape *s = &inputs[0];
    if (s->ndim < 2)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "scale: input 0 has %d dimensions (expected 2 or more: N, C, ...)",
                          s->ndim);
    if (self->C != 1 && s->dims[1] != self->C)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "scale: input 0 has %lld channels (dimension 1); expected %lld "
                          "(num_features)", (long long)s->dims[1], (long long)self->C);
    *output = *s;
    return PLY_OK;
}

// The input as (N, C, S).
static void view3(const ply_shape *s, int64_t *N, int64_t *C, int64_t *S) {
    *N = s->dims[0];
    *C = s->dims[1];
    *S = 1;
    for (int32_t i = 2; i < s->ndim; i++) *S *= s->dims[i];
}

static ply_status scale_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    if (inputs[0].strides) return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "scale: input 0 must be a compact tensor");
    int64_t N, C, S;
    view3(&inputs[0].shape, &N, &C, &S);
    const float *x = inputs[0].data;
    float *y = output->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            int64_t k = self->C == 1 ? 0 : c;
            float w = self->weight[k], b = self->has_bias ? self->bias[k] : 0.0f;
            const float *xp = x + (n * C + c) * S;
            float *yp = y + (n * C + c) * S;
            for (int64_t s = 0; s < S; s++) yp[s] = xp[s] * w + b;
        }
    return PLY_OK;
}

static ply_status scale_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                                 const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    (void)output;
    int64_t N, C, S;
    view3(&inputs[0].shape, &N, &C, &S);
    const float *x = inputs[0].data, *dy = grad_output->data;
    float *dx = grad_inputs[0].data;
    for (int64_t c = 0; c < C; c++) {
        int64_t k = self->C == 1 ? 0 : c;
        float w = self->weight[k];
        double sw = 0.0, sb = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const float *xp = x + (n * C + c) * S, *gp = dy + (n * C + c) * S;
            for (int64_t s = 0; s < S; s++) {
                sw += (double)gp[s] * xp[s];
                sb += gp[s];
            }
            if (dx) {
                float *dp = dx + (n * C + c) * S;
                for (int64_t s = 0; s < S; s++) dp[s] = gp[s] * w;
            }
        }
        self->dweight[k] += (float)sw;
        if (self->has_bias) self->dbias[k] += (float)sb;
    }
    return PLY_OK;
}

static int32_t scale_param_count(ply_layer *self) { return self->has_bias ? 2 : 1; }

static ply_status scale_get_param(ply_layer *self, int32_t index, ply_param *out) {
    ply_shape vec = ply_shape_make(1, self->C, 0, 0, 0);
    int32_t n = scale_param_count(self);
    if (index < 0 || index >= n)
        return ply_errorf(self->host, PLY_ERR_NOT_FOUND, "scale: parameter index %d out of range [0, %d)", index, n);
    *out = index == 0 ? ply_param_make("weight", self->weight, self->dweight, vec)
                      : ply_param_make("bias", self->bias, self->dbias, vec);
    return PLY_OK;
}

static const ply_attr_spec scale_specs[] = {
    {.name = "num_features", .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED,
     .doc = "C, the channels of the input (axis 1), or 1: one scale for all"},
    {.name = "bias", .kind = PLY_ATTR_BOOL, .default_text = "false", .doc = "learn a per-channel shift too"},
    PLY_SPEC_END,
};

// No describe: no MACs worth counting, identity window.
const ply_layer_type ply_scale_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "scale",
    .doc = "learnable per-channel scale and optional shift, x * weight[c] + bias[c] (ONNX Mul/Add of a constant)",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = scale_create,
    .destroy = scale_destroy,
    .infer_shape = scale_infer_shape,
    .forward = scale_forward,
    .backward = scale_backward,
    .param_count = scale_param_count,
    .get_param = scale_get_param,
    .attr_specs = scale_specs,
    .inputs_doc = "x: (N, C, ...), e.g. (N, C, H, W)",
};
