/*
 * mul: the element-wise product of two inputs with broadcasting, as torch.mul
 * (a * b) -- a squeeze-and-excitation block's x * sigmoid(fc(pool(x))), where
 * b is (N, C, 1, 1) and a is (N, C, H, W); ONNX's Mul of two computed tensors.
 * Both inputs have the same rank; along every axis their sizes are equal or one
 * of them is 1 (which is then repeated). No parameters.
 *
 * Index equations, with o an output index and ia(o), ib(o) the indices into a
 * and b that drop o's coordinate on the axes where that input has size 1:
 *   forward   y[o] = a[ia(o)] * b[ib(o)]
 *   backward  da[i] = sum over o with ia(o) = i of dy[o] * b[ib(o)]
 *             db[j] = sum over o with ib(o) = j of dy[o] * a[ia(o)]
 */
#include <string.h>

#include "mul.h"

struct ply_layer {
    const ply_host *host;
};

static ply_status mul_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    (void)attrs;
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "mul: out of memory");
    self->host = host;
    *out = self;
    return PLY_OK;
}

static void mul_destroy(ply_layer *self) {
    if (self) self->host->free(self->host, self);
}

static ply_status mul_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *s, ply_shape *output) {
    (void)n_inputs;
    if (s[0].ndim != s[1].ndim)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "mul: input 1 has %d dimensions (expected %d, as input 0)",
                          s[1].ndim, s[0].ndim);
    *output = s[0];
    for (int32_t k = 0; k < s[0].ndim; k++) {
        int64_t a = s[0].dims[k], b = s[1].dims[k];
        if (a != b && a != 1 && b != 1)
            return ply_errorf(self->host, PLY_ERR_SHAPE,
                              "mul: dimension %d is %lld in input 0 and %lld in input 1 (expected equal sizes, or 1 in "
                              "one of them)", k, (long long)a, (long long)b);
        output->dims[k] = a > b ? a : b;
    }
    return PLY_OK;
}

// Element strides of `s` with 0 on its broadcast axes (size 1 where the output's is not).
static void broadcast_strides(const ply_shape *s, const ply_shape *out, int64_t st[PLY_MAX_NDIM]) {
    int64_t acc = 1;
    for (int32_t k = s->ndim - 1; k >= 0; k--) {
        st[k] = s->dims[k] == 1 && out->dims[k] != 1 ? 0 : acc;
        acc *= s->dims[k];
    }
}

// Walks the output in order, calling the body with o, ia(o), ib(o).
#define FOR_EACH_OUTPUT(out, sa, sb, BODY)                                                    \
    do {                                                                                       \
        int64_t idx_[PLY_MAX_NDIM] = {0}, ia = 0, ib = 0, n_ = ply_shape_numel(out);            \
        int32_t nd_ = (out)->ndim;                                                             \
        for (int64_t o = 0; o < n_; o++) {                                                     \
            BODY;                                                                              \
            for (int32_t k = nd_ - 1; k >= 0; k--) { /* odometer step */                       \
                ia += (sa)[k];                                                                 \
                ib += (sb)[k];                                                                 \
                if (++idx_[k] < (out)->dims[k]) break;                                         \
                ia -= (sa)[k] * idx_[k];                                                       \
                ib -= (sb)[k] * idx_[k];                                                       \
                idx_[k] = 0;                                                                   \
            }                                                                                  \
        }                                                                                      \
    } while (0)

static ply_status mul_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    if (inputs[0].strides || inputs[1].strides)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "mul: inputs must be compact tensors");
    int64_t sa[PLY_MAX_NDIM], sb[PLY_MAX_NDIM];
    broadcast_strides(&inputs[0].shape, &output->shape, sa);
    broadcast_strides(&inputs[1].shape, &output->shape, sb);
    const float *a = inputs[0].data, *b = inputs[1].data;
    float *y = output->data;
    FOR_EACH_OUTPUT(&output->shape, sa, sb, y[o] = a[ia] * b[ib]);
    return PLY_OK;
}

static ply_status mul_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                               const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)self;
    (void)n_inputs;
    (void)output;
    float *da = grad_inputs[0].data, *db = grad_inputs[1].data;
    int64_t sa[PLY_MAX_NDIM], sb[PLY_MAX_NDIM];
    broadcast_strides(&inputs[0].shape, &grad_output->shape, sa);
    broadcast_strides(&inputs[1].shape, &grad_output->shape, sb);
    const float *a = inputs[0].data, *b = inputs[1].data, *dy = grad_output->data;
    if (da) {
        memset(da, 0, (size_t)ply_shape_numel(&inputs[0].shape) * sizeof(float));
        FOR_EACH_OUTPUT(&grad_output->shape, sa, sb, da[ia] += dy[o] * b[ib]);
    }
    if (db) {
        memset(db, 0, (size_t)ply_shape_numel(&inputs[1].shape) * sizeof(float));
        FOR_EACH_OUTPUT(&grad_output->shape, sa, sb, db[ib] += dy[o] * a[ia]);
    }
    return PLY_OK;
}

static const ply_attr_spec mul_specs[] = {PLY_SPEC_END};

// No describe: no MACs, identity window (the host joins the inputs' fields).
const ply_layer_type ply_mul_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "mul",
    .doc = "element-wise product of two inputs, broadcasting axes of size 1, as torch.mul",
    .min_inputs = 2,
    .max_inputs = 2,
    .create = mul_create,
    .destroy = mul_destroy,
    .infer_shape = mul_infer_shape,
    .forward = mul_forward,
    .backward = mul_backward,
    .attr_specs = mul_specs,
    .inputs_doc = "a, b: equal rank, each axis equal or 1 in one of them, e.g. (N, C, H, W) and (N, C, 1, 1)",
};
