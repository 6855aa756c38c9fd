/*
 * Activation family: relu, tanh, sigmoid, hardtanh, relu6, leakyrelu,
 * hardswish, hardsigmoid (element-wise) and softmax, log_softmax (along a
 * dimension). No parameters, one input, output shape = input shape.
 *
 * The piecewise-linear ones follow PyTorch exactly, at the kinks too (the
 * gradient there is what torch's autograd gives, checked by the goldens):
 *   hardtanh    clamp(x, min_val, max_val); grad 1 where min_val < x < max_val, else 0
 *   relu6       hardtanh(x, 0, 6)
 *   leakyrelu   x > 0 ? x : negative_slope * x; grad 1 where x > 0, else negative_slope
 *   hardswish   x * relu6(x + 3) / 6; grad 0 where x <= -3, x / 3 + 1/2 where -3 < x < 3, else 1
 *   hardsigmoid alpha = 1/6, beta = 1/2 (PyTorch's Hardsigmoid, the defaults): relu6(x + 3) / 6,
 *               grad 1/6 where -3 < x < 3, else 0. Other alpha, beta (ONNX's HardSigmoid, whose
 *               own defaults are alpha 0.2, beta 0.5): clamp(alpha * x + beta, 0, 1), grad alpha
 *               where 0 < alpha * x + beta < 1, else 0.
 * Type names are PyTorch's module names in lower case (LeakyReLU -> leakyrelu; the
 * example third-party plugin, Examples/plugin, owns the name leaky_relu). NaN passes
 * through every forward (comparisons with NaN are false, so the clamps below keep it),
 * as in PyTorch.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"

typedef enum {
    ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_SOFTMAX, ACT_LOG_SOFTMAX,
    ACT_HARDTANH, ACT_LEAKY_RELU, ACT_HARDSWISH, ACT_HARDSIGMOID
} act_kind;

struct ply_layer {
    const ply_host *host;
    act_kind kind;
    int64_t dim; // softmax dimension, may be negative (counted from the end)
    float p0, p1; // hardtanh: min, max; leakyrelu: slope; hardsigmoid: alpha, beta
    int torch_hardsigmoid; // hardsigmoid with PyTorch's alpha 1/6, beta 1/2: its exact formula
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

// hardtanh: y = clamp(x, lo, hi); dx = dy where lo < x < hi, else 0 (torch's hardtanh_backward)
static void hardtanh_forward(float *out, const float *in, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = x < lo ? lo : (x > hi ? hi : x);
    }
}
static void hardtanh_backward(float *din, const float *in, const float *dout, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) {
        float g = dout[i];
        din[i] = (in[i] <= lo || in[i] >= hi) ? 0.0f : g;
    }
}
// leakyrelu: y = x > 0 ? x : s * x; dx = x > 0 ? dy : s * dy
static void leaky_relu_forward(float *out, const float *in, int64_t n, float s) {
    for (int64_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : in[i] * s;
}
static void leaky_relu_backward(float *din, const float *in, const float *dout, int64_t n, float s) {
    for (int64_t i = 0; i < n; i++) din[i] = in[i] > 0.0f ? dout[i] : dout[i] * s;
}
// min(max(v, 0), 6) keeping NaN, as std::min(std::max(...)) does in torch's kernels
static inline float relu6_of(float v) {
    v = v < 0.0f ? 0.0f : v;
    return v > 6.0f ? 6.0f : v;
}
// hardswish: y = x * relu6(x + 3) / 6 (torch's order of operations)
static void hardswish_forward(float *out, const float *in, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = in[i] * relu6_of(in[i] + 3.0f) / 6.0f;
}
static void hardswish_backward(float *din, const float *in, const float *dout, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float x = in[i], g = dout[i];
        din[i] = x <= -3.0f ? 0.0f : (x < 3.0f ? g * (x / 3.0f + 0.5f) : g);
    }
}
// hardsigmoid: torch's relu6(x + 3) / 6, or ONNX's clamp(alpha * x + beta, 0, 1)
static void hardsigmoid_forward(float *out, const float *in, int64_t n, float alpha, float beta, int torch) {
    if (torch) {
        for (int64_t i = 0; i < n; i++) out[i] = relu6_of(in[i] + 3.0f) / 6.0f;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float v = alpha * in[i] + beta;
        v = v < 0.0f ? 0.0f : v;
        out[i] = v > 1.0f ? 1.0f : v;
    }
}
static void hardsigmoid_backward(float *din, const float *in, const float *dout, int64_t n, float alpha, float beta,
                                 int torch) {
    if (torch) {
        for (int64_t i = 0; i < n; i++) din[i] = (in[i] > -3.0f && in[i] < 3.0f) ? dout[i] / 6.0f : 0.0f;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float v = alpha * in[i] + beta;
        din[i] = (v > 0.0f && v < 1.0f) ? dout[i] * alpha : 0.0f;
    }
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

// A float attribute (default `dflt` when absent) that must not be NaN.
static ply_status float_attr(const ply_host *host, const ply_attrs *attrs, const char *type, const char *name, double dflt,
                             float *out) {
    double v = dflt;
    ply_status st = host->attr_float(host, attrs, name, &v);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (v != v) return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "%s: %s is NaN (expected a number)", type, name);
    *out = (float)v;
    return PLY_OK;
}

static ply_status create_kind(const ply_host *host, const ply_attrs *attrs, ply_layer **out, act_kind kind,
                              const char *type) {
    int64_t dim = 1;
    float p0 = 0.0f, p1 = 0.0f;
    ply_status st = PLY_OK;
    switch (kind) {
    case ACT_SOFTMAX:
    case ACT_LOG_SOFTMAX:
        st = host->attr_int(host, attrs, "dim", &dim);
        if (st == PLY_ERR_NOT_FOUND) st = PLY_OK;
        break;
    case ACT_HARDTANH:
        if (strcmp(type, "relu6") == 0) {
            p0 = 0.0f;
            p1 = 6.0f;
            break;
        }
        if ((st = float_attr(host, attrs, type, "min_val", -1.0, &p0)) != PLY_OK) return st;
        if ((st = float_attr(host, attrs, type, "max_val", 1.0, &p1)) != PLY_OK) return st;
        if (!(p0 <= p1))
            return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                              "hardtanh: min_val %g is greater than max_val %g (expected min_val <= max_val)", (double)p0,
                              (double)p1);
        break;
    case ACT_LEAKY_RELU:
        st = float_attr(host, attrs, type, "negative_slope", 0.01, &p0);
        if (st == PLY_OK && !isfinite(p0))
            return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "leakyrelu: negative_slope %g is not finite", (double)p0);
        break;
    case ACT_HARDSIGMOID:
        if ((st = float_attr(host, attrs, type, "alpha", 1.0 / 6.0, &p0)) != PLY_OK) return st;
        if ((st = float_attr(host, attrs, type, "beta", 0.5, &p1)) != PLY_OK) return st;
        if (!isfinite(p0) || !isfinite(p1))
            return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "hardsigmoid: alpha %g and beta %g must be finite",
                              (double)p0, (double)p1);
        break;
    default: break;
    }
    if (st != PLY_OK) return st;
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "%s: out of memory", type);
    self->host = host;
    self->kind = kind;
    self->dim = dim;
    self->p0 = p0;
    self->p1 = p1;
    self->torch_hardsigmoid = kind == ACT_HARDSIGMOID && p0 == (float)(1.0 / 6.0) && p1 == 0.5f;
    *out = self;
    return PLY_OK;
}

#define DEFINE_CREATE(fn, kind, type) \
    static ply_status fn(const ply_host *host, const ply_attrs *attrs, ply_layer **out) { \
        return create_kind(host, attrs, out, kind, type); \
    }
DEFINE_CREATE(relu_create, ACT_RELU, "relu")
DEFINE_CREATE(tanh_create, ACT_TANH, "tanh")
DEFINE_CREATE(sigmoid_create, ACT_SIGMOID, "sigmoid")
DEFINE_CREATE(softmax_create, ACT_SOFTMAX, "softmax")
DEFINE_CREATE(log_softmax_create, ACT_LOG_SOFTMAX, "log_softmax")
DEFINE_CREATE(hardtanh_create, ACT_HARDTANH, "hardtanh")
DEFINE_CREATE(relu6_create, ACT_HARDTANH, "relu6")
DEFINE_CREATE(leaky_relu_create, ACT_LEAKY_RELU, "leakyrelu")
DEFINE_CREATE(hardswish_create, ACT_HARDSWISH, "hardswish")
DEFINE_CREATE(hardsigmoid_create, ACT_HARDSIGMOID, "hardsigmoid")

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
    const float *a, *b; // forward: a = input; backward: a = input (all but tanh, sigmoid) or output, b = grad_output
    int backward;
    float p0, p1; // the layer's
    int torch;    // the layer's torch_hardsigmoid
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
        case ACT_HARDTANH: hardtanh_forward(out, a, n, j->p0, j->p1); break;
        case ACT_LEAKY_RELU: leaky_relu_forward(out, a, n, j->p0); break;
        case ACT_HARDSWISH: hardswish_forward(out, a, n); break;
        case ACT_HARDSIGMOID: hardsigmoid_forward(out, a, n, j->p0, j->p1, j->torch); break;
        default: break;
        }
    } else {
        switch (j->kind) {
        case ACT_RELU: relu_backward(out, a, b, n); break;
        case ACT_TANH: tanh_backward(out, a, b, n); break;
        case ACT_SIGMOID: sigmoid_backward(out, a, b, n); break;
        case ACT_HARDTANH: hardtanh_backward(out, a, b, n, j->p0, j->p1); break;
        case ACT_LEAKY_RELU: leaky_relu_backward(out, a, b, n, j->p0); break;
        case ACT_HARDSWISH: hardswish_backward(out, a, b, n); break;
        case ACT_HARDSIGMOID: hardsigmoid_backward(out, a, b, n, j->p0, j->p1, j->torch); break;
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
    if (self->kind != ACT_SOFTMAX && self->kind != ACT_LOG_SOFTMAX) {
        elementwise_job j = {self->kind, y, x, NULL, 0, self->p0, self->p1, self->torch_hardsigmoid};
        elementwise(self, &j, n);
        return PLY_OK;
    }
    int64_t outer, C, inner;
    ply_status st = softmax_view(self, &inputs[0].shape, &outer, &C, &inner);
    if (st != PLY_OK) return st;
    softmax_forward(y, x, outer, C, inner, self->kind == ACT_LOG_SOFTMAX);
    return PLY_OK;
}

static ply_status act_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                               const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    float *dx = grad_inputs[0].data;
    if (!dx) return PLY_OK;
    const float *x = inputs[0].data, *y = output->data, *dy = grad_output->data;
    int64_t n = ply_shape_numel(&inputs[0].shape);
    if (self->kind != ACT_SOFTMAX && self->kind != ACT_LOG_SOFTMAX) {
        // tanh and sigmoid differentiate through their output, the others through their input
        const float *a = self->kind == ACT_TANH || self->kind == ACT_SIGMOID ? y : x;
        elementwise_job j = {self->kind, dx, a, dy, 1, self->p0, self->p1, self->torch_hardsigmoid};
        elementwise(self, &j, n);
        return PLY_OK;
    }
    int64_t outer, C, inner;
    ply_status st = softmax_view(self, &inputs[0].shape, &outer, &C, &inner);
    if (st != PLY_OK) return st;
    softmax_backward(dx, y, dy, outer, C, inner, self->kind == ACT_LOG_SOFTMAX);
    return PLY_OK;
}

// Attribute schemas (ABI 1.2): relu, tanh, sigmoid, relu6 and hardswish take none.
static const ply_attr_spec no_specs[] = {PLY_SPEC_END};
static const ply_attr_spec softmax_specs[] = {
    {.name = "dim", .kind = PLY_ATTR_INT, .default_text = "1",
     .doc = "the axis the values are normalised along (negative counts from the end)"},
    PLY_SPEC_END,
};
static const ply_attr_spec hardtanh_specs[] = {
    {.name = "min_val", .kind = PLY_ATTR_FLOAT, .default_text = "-1.0",
     .doc = "the lower bound (-inf: none); ONNX Clip's min"},
    {.name = "max_val", .kind = PLY_ATTR_FLOAT, .default_text = "1.0",
     .doc = "the upper bound, at least min_val (inf: none); ONNX Clip's max"},
    PLY_SPEC_END,
};
static const ply_attr_spec leaky_relu_specs[] = {
    {.name = "negative_slope", .kind = PLY_ATTR_FLOAT, .default_text = "0.01",
     .doc = "the slope for x <= 0 (ONNX LeakyRelu's alpha)"},
    PLY_SPEC_END,
};
static const ply_attr_spec hardsigmoid_specs[] = {
    {.name = "alpha", .kind = PLY_ATTR_FLOAT, .default_text = "0.16666666666666666",
     .doc = "slope: clamp(alpha * x + beta, 0, 1); PyTorch's 1/6 by default (ONNX HardSigmoid's default is 0.2)"},
    {.name = "beta", .kind = PLY_ATTR_FLOAT, .default_text = "0.5", .doc = "offset: clamp(alpha * x + beta, 0, 1)"},
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

ACT_TYPE(hardtanh_type, "hardtanh", "clamp(x, min_val, max_val), element-wise (torch.nn.Hardtanh; ONNX Clip)",
         hardtanh_create, hardtanh_specs, "x: any shape")
ACT_TYPE(relu6_type, "relu6", "min(max(x, 0), 6), element-wise (torch.nn.ReLU6)", relu6_create, no_specs, "x: any shape")
ACT_TYPE(leaky_relu_type, "leakyrelu", "x > 0 ? x : negative_slope * x, element-wise (torch.nn.LeakyReLU)",
         leaky_relu_create, leaky_relu_specs, "x: any shape")
ACT_TYPE(hardswish_type, "hardswish", "x * relu6(x + 3) / 6, element-wise (torch.nn.Hardswish)", hardswish_create,
         no_specs, "x: any shape")
ACT_TYPE(hardsigmoid_type, "hardsigmoid",
         "clamp(alpha * x + beta, 0, 1), element-wise; the defaults are torch.nn.Hardsigmoid, relu6(x + 3) / 6",
         hardsigmoid_create, hardsigmoid_specs, "x: any shape")

static const ply_layer_type *const types[] = {&relu_type,     &tanh_type,       &sigmoid_type,   &softmax_type,
                                              &log_softmax_type, &hardtanh_type, &relu6_type, &leaky_relu_type,
                                              &hardswish_type, &hardsigmoid_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.activation", "1.1.0", 10, 0, types,
};

PLY_BUILTIN_ENTRY(activation) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        ply_errorf(host, PLY_ERR_ABI, "ply.activation: built for Ply ABI %d, the host speaks ABI %u", PLY_ABI_VERSION_MAJOR,
                   (unsigned)PLY_ABI_MAJOR_OF(host->abi_version));
        return NULL;
    }
    return &plugin;
}
