/*
 * Activation family: relu, tanh, sigmoid (element-wise) and softmax,
 * log_softmax (along a dimension). No parameters, one input, output shape =
 * input shape.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"

typedef enum { ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_SOFTMAX, ACT_LOG_SOFTMAX } act_kind;

struct ply_layer {
    const ply_host *host;
    act_kind kind;
    int64_t dim; // softmax dimension, may be negative (counted from the end)
};

// ----------------------------------------------------------------------------
// kernels

// NaN passes through, as in PyTorch (so a poisoned input reaches the loss).
static void relu_forward(float *out, const float *in, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = (in[i] > 0.0f || in[i] != in[i]) ? in[i] : 0.0f;
}
static void relu_backward(float *din, const float *in, const float *dout, int64_t n) {
    // dout is read unconditionally so that the loop vectorises to a compare and a blend
    // (a conditional read becomes a masked load, several times slower)
    for (int64_t i = 0; i < n; i++) {
        float g = dout[i];
        din[i] = in[i] > 0.0f ? g : 0.0f;
    }
}
static void tanh_forward(float *out, const float *in, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = tanhf(in[i]);
}
static void tanh_backward(float *din, const float *out, const float *dout, int64_t n) {
    for (int64_t i = 0; i < n; i++) din[i] = dout[i] * (1.0f - out[i] * out[i]);
}
static void sigmoid_forward(float *out, const float *in, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-in[i]));
}
static void sigmoid_backward(float *din, const float *out, const float *dout, int64_t n) {
    for (int64_t i = 0; i < n; i++) din[i] = dout[i] * out[i] * (1.0f - out[i]);
}

// softmax over the middle axis of a tensor viewed as (outer, C, inner).
static void softmax_forward(float *out, const float *in, int64_t outer, int64_t C, int64_t inner, int log) {
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            const float *x = in + o * C * inner + i;
            float *y = out + o * C * inner + i;
            float maxv = -INFINITY;
            for (int64_t c = 0; c < C; c++) maxv = fmaxf(maxv, x[c * inner]);
            double sum = 0.0;
            for (int64_t c = 0; c < C; c++) sum += expf(x[c * inner] - maxv);
            if (log) {
                float lse = (float)logf((float)sum);
                for (int64_t c = 0; c < C; c++) y[c * inner] = x[c * inner] - maxv - lse;
            } else {
                float inv = (float)(1.0 / sum);
                for (int64_t c = 0; c < C; c++) y[c * inner] = expf(x[c * inner] - maxv) * inv;
            }
        }
    }
}

// softmax:     dx = y * (dy - sum(dy * y))
// log_softmax: dx = dy - exp(y) * sum(dy)
static void softmax_backward(float *din, const float *out, const float *dout,
                             int64_t outer, int64_t C, int64_t inner, int log) {
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * C * inner + i;
            const float *y = out + base, *dy = dout + base;
            float *dx = din + base;
            double s = 0.0;
            for (int64_t c = 0; c < C; c++) s += log ? dy[c * inner] : dy[c * inner] * y[c * inner];
            for (int64_t c = 0; c < C; c++) {
                int64_t k = c * inner;
                dx[k] = log ? dy[k] - expf(y[k]) * (float)s : y[k] * (dy[k] - (float)s);
            }
        }
    }
}

// ----------------------------------------------------------------------------
// vtable

static ply_status create_kind(const ply_host *host, const ply_attrs *attrs, ply_layer **out, act_kind kind) {
    int64_t dim = 1;
    if (kind == ACT_SOFTMAX || kind == ACT_LOG_SOFTMAX) {
        ply_status st = host->attr_int(host, attrs, "dim", &dim);
        if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    }
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "activation: out of memory");
    self->host = host;
    self->kind = kind;
    self->dim = dim;
    *out = self;
    return PLY_OK;
}

#define DEFINE_CREATE(fn, kind) \
    static ply_status fn(const ply_host *host, const ply_attrs *attrs, ply_layer **out) { \
        return create_kind(host, attrs, out, kind); \
    }
DEFINE_CREATE(relu_create, ACT_RELU)
DEFINE_CREATE(tanh_create, ACT_TANH)
DEFINE_CREATE(sigmoid_create, ACT_SIGMOID)
DEFINE_CREATE(softmax_create, ACT_SOFTMAX)
DEFINE_CREATE(log_softmax_create, ACT_LOG_SOFTMAX)

static void act_destroy(ply_layer *self) {
    if (self) self->host->free(self->host, self);
}

// Resolve the softmax dim and view the shape as (outer, C, inner).
static ply_status softmax_view(ply_layer *self, const ply_shape *s, int64_t *outer, int64_t *C, int64_t *inner) {
    int64_t d = self->dim < 0 ? self->dim + s->ndim : self->dim;
    if (d < 0 || d >= s->ndim)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "softmax: dim %lld is out of range for a %d-d input",
                          (long long)self->dim, s->ndim);
    *outer = 1; *inner = 1;
    for (int64_t i = 0; i < d; i++) *outer *= s->dims[i];
    for (int64_t i = d + 1; i < s->ndim; i++) *inner *= s->dims[i];
    *C = s->dims[d];
    return PLY_OK;
}

static ply_status act_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    if (self->kind == ACT_SOFTMAX || self->kind == ACT_LOG_SOFTMAX) {
        int64_t o, c, i;
        ply_status st = softmax_view(self, &inputs[0], &o, &c, &i);
        if (st != PLY_OK) return st;
    }
    *output = inputs[0];
    return PLY_OK;
}

// Element-wise kernels over [begin, end) of one call, for the host's parallel_for.
typedef struct {
    act_kind kind;
    float *out;
    const float *a, *b; // forward: a = input; backward: a = input (relu) or output, b = grad_output
    int backward;
} elementwise_job;

static void elementwise_run(void *ctx, int64_t begin, int64_t end) {
    const elementwise_job *j = ctx;
    int64_t n = end - begin;
    float *out = j->out + begin;
    const float *a = j->a + begin, *b = j->b ? j->b + begin : NULL;
    if (!j->backward) {
        switch (j->kind) {
        case ACT_RELU: relu_forward(out, a, n); break;
        case ACT_TANH: tanh_forward(out, a, n); break;
        case ACT_SIGMOID: sigmoid_forward(out, a, n); break;
        default: break;
        }
    } else {
        switch (j->kind) {
        case ACT_RELU: relu_backward(out, a, b, n); break;
        case ACT_TANH: tanh_backward(out, a, b, n); break;
        case ACT_SIGMOID: sigmoid_backward(out, a, b, n); break;
        default: break;
        }
    }
}

// Below this many elements one thread does it all (a parallel_for costs a few microseconds).
#define ELEMENTWISE_GRAIN (1 << 16)

static void elementwise(const ply_layer *self, elementwise_job *j, int64_t n) {
    const ply_host *h = self->host;
    int64_t threads = h->thread_count(h);
    if (threads <= 1 || n < 2 * ELEMENTWISE_GRAIN) { elementwise_run(j, 0, n); return; }
    // chunks of whole cache lines
    int64_t grain = ((n + threads - 1) / threads + 15) / 16 * 16;
    h->parallel_for(h, n, grain, elementwise_run, j);
}

static ply_status act_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    const float *x = inputs[0].data;
    float *y = output->data;
    int64_t n = ply_shape_numel(&inputs[0].shape);
    switch (self->kind) {
    case ACT_RELU:
    case ACT_TANH:
    case ACT_SIGMOID: {
        elementwise_job j = {self->kind, y, x, NULL, 0};
        elementwise(self, &j, n);
        break;
    }
    case ACT_SOFTMAX:
    case ACT_LOG_SOFTMAX: {
        int64_t outer, C, inner;
        ply_status st = softmax_view(self, &inputs[0].shape, &outer, &C, &inner);
        if (st != PLY_OK) return st;
        softmax_forward(y, x, outer, C, inner, self->kind == ACT_LOG_SOFTMAX);
        break;
    }
    }
    return PLY_OK;
}

static ply_status act_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                               const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    float *dx = grad_inputs[0].data;
    if (!dx) return PLY_OK;
    const float *x = inputs[0].data, *y = output->data, *dy = grad_output->data;
    int64_t n = ply_shape_numel(&inputs[0].shape);
    switch (self->kind) {
    case ACT_RELU:
    case ACT_TANH:
    case ACT_SIGMOID: {
        elementwise_job j = {self->kind, dx, self->kind == ACT_RELU ? x : y, dy, 1};
        elementwise(self, &j, n);
        break;
    }
    case ACT_SOFTMAX:
    case ACT_LOG_SOFTMAX: {
        int64_t outer, C, inner;
        ply_status st = softmax_view(self, &inputs[0].shape, &outer, &C, &inner);
        if (st != PLY_OK) return st;
        softmax_backward(dx, y, dy, outer, C, inner, self->kind == ACT_LOG_SOFTMAX);
        break;
    }
    }
    return PLY_OK;
}

// Attribute schemas (ABI 1.2): the element-wise types take none; softmax and log_softmax read `dim`.
static const ply_attr_spec no_specs[] = {PLY_SPEC_END};
static const ply_attr_spec softmax_specs[] = {
    {.name = "dim", .kind = PLY_ATTR_INT, .default_text = "1",
     .doc = "the axis the values are normalised along (negative counts from the end)"},
    PLY_SPEC_END,
};

// No describe: no MACs, an identity window and no children (plugin.h's meaning of NULL).
#define ACT_TYPE(var, type_name, type_doc, create_fn, specs, inputs) \
    static const ply_layer_type var = { \
        .struct_size = sizeof(ply_layer_type), \
        .abi_version = PLY_ABI_VERSION, \
        .name = type_name, \
        .doc = type_doc, \
        .min_inputs = 1, \
        .max_inputs = 1, \
        .create = create_fn, \
        .destroy = act_destroy, \
        .infer_shape = act_infer_shape, \
        .forward = act_forward, \
        .backward = act_backward, \
        .attr_specs = specs, \
        .inputs_doc = inputs, \
    };
ACT_TYPE(relu_type, "relu", "max(x, 0), element-wise", relu_create, no_specs, "x: any shape")
ACT_TYPE(tanh_type, "tanh", "hyperbolic tangent, element-wise", tanh_create, no_specs, "x: any shape")
ACT_TYPE(sigmoid_type, "sigmoid", "1 / (1 + exp(-x)), element-wise", sigmoid_create, no_specs, "x: any shape")
ACT_TYPE(softmax_type, "softmax", "softmax along `dim` (default 1)", softmax_create, softmax_specs,
         "x: any shape with the axis `dim`, e.g. (N, C)")
ACT_TYPE(log_softmax_type, "log_softmax", "log of softmax along `dim` (default 1), computed stably",
         log_softmax_create, softmax_specs, "x: any shape with the axis `dim`, e.g. (N, C)")

static const ply_layer_type *const types[] = {&relu_type, &tanh_type, &sigmoid_type, &softmax_type,
                                              &log_softmax_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.activation", "1.0.0", 5, 0, types,
};

PLY_BUILTIN_ENTRY(activation) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        ply_errorf(host, PLY_ERR_ABI, "ply.activation: built for Ply ABI %d, the host speaks ABI %u", PLY_ABI_VERSION_MAJOR,
                   (unsigned)PLY_ABI_MAJOR_OF(host->abi_version));
        return NULL;
    }
    return &plugin;
}
