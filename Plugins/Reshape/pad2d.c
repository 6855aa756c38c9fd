/*
 * pad2d: pads the last two axes (height, width) of an (N, C, H, W) tensor, as
 * torch.nn.functional.pad(x, padding, mode, value) with a 4-entry `padding`
 * = [left, right, top, bottom] (nn.ZeroPad2d, nn.ConstantPad2d,
 * nn.ReflectionPad2d). ONNX's Pad and the asymmetric `pads` of Conv and the
 * pools import as this layer; it exports as Pad.
 *
 *   constant  out[n, c, i, j] = x[n, c, i - top, j - left] inside, `value` outside
 *   reflect   out[n, c, i, j] = x[n, c, r(i - top, H), r(j - left, W)] with
 *             r(k, S) = |k| mirrored at both ends: k < 0 -> -k, k >= S -> 2 (S - 1) - k
 *             (the edge is not repeated); every pad must be < the axis' size, as PyTorch requires.
 *
 * Backward: dx[n, c, h, w] = sum of dy over the output positions that read x[n, c, h, w]
 * (one, for constant; up to four, for reflect).
 */
#include <string.h>

#include "pad2d.h"

typedef enum { PAD_CONSTANT, PAD_REFLECT } pad_mode;

struct ply_layer {
    const ply_host *host;
    int64_t left, right, top, bottom;
    pad_mode mode;
    float value;
};

// r(k, S) above, for 0 <= k + pad and pad < S.
static inline int64_t reflect(int64_t k, int64_t S) { return k < 0 ? -k : (k >= S ? 2 * (S - 1) - k : k); }

static ply_status pad2d_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const ply_attr *p = ply_find_attr(attrs, "padding");
    int64_t pads[4];
    if (!p) return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "pad2d: missing required attribute 'padding'");
    if (p->kind == PLY_ATTR_INT) {
        pads[0] = pads[1] = pads[2] = pads[3] = p->v.i;
    } else if (p->kind == PLY_ATTR_INTS && p->count == 4) {
        memcpy(pads, p->v.ints, sizeof pads);
    } else {
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "pad2d: padding must be one integer or 4 integers [left, right, top, bottom] (got %d values)",
                          p->kind == PLY_ATTR_INTS ? p->count : 1);
    }
    for (int i = 0; i < 4; i++)
        if (pads[i] < 0 || pads[i] > (1 << 20))
            return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                              "pad2d: padding [%lld, %lld, %lld, %lld] must be between 0 and 1048576 "
                              "([left, right, top, bottom])",
                              (long long)pads[0], (long long)pads[1], (long long)pads[2], (long long)pads[3]);
    const char *mode = "constant";
    ply_status st = host->attr_string(host, attrs, "mode", &mode);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    pad_mode m;
    if (strcmp(mode, "constant") == 0) {
        m = PAD_CONSTANT;
    } else if (strcmp(mode, "reflect") == 0) {
        m = PAD_REFLECT;
    } else {
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "pad2d: mode '%s' is not one of constant, reflect", mode);
    }
    double value = 0.0;
    st = host->attr_float(host, attrs, "value", &value);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (value != value) return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "pad2d: value is NaN (expected a number)");
    if (m == PAD_REFLECT && value != 0.0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "pad2d: value %g is given with mode reflect (only constant uses it)",
                          value);
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "pad2d: out of memory");
    *self = (ply_layer){.host = host, .left = pads[0], .right = pads[1], .top = pads[2], .bottom = pads[3],
                        .mode = m, .value = (float)value};
    *out = self;
    return PLY_OK;
}

static void pad2d_destroy(ply_layer *self) {
    if (self) self->host->free(self->host, self);
}

static ply_status pad2d_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    const ply_shape *s = &inputs[0];
    if (s->ndim != 4)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "pad2d: input 0 has %d dimensions (expected 4: N, C, H, W)", s->ndim);
    int64_t H = s->dims[2], W = s->dims[3];
    if (self->mode == PAD_REFLECT && (self->top >= H || self->bottom >= H || self->left >= W || self->right >= W))
        return ply_errorf(self->host, PLY_ERR_SHAPE,
                          "pad2d: reflect padding [%lld, %lld, %lld, %lld] of a %lld x %lld input: each pad must be "
                          "less than its axis' size",
                          (long long)self->left, (long long)self->right, (long long)self->top, (long long)self->bottom,
                          (long long)H, (long long)W);
    *output = *s;
    output->dims[2] = H + self->top + self->bottom;
    output->dims[3] = W + self->left + self->right;
    return PLY_OK;
}

static ply_status pad2d_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    if (inputs[0].strides) return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "pad2d: input 0 must be a compact tensor");
    const ply_shape *s = &inputs[0].shape;
    int64_t planes = s->dims[0] * s->dims[1], H = s->dims[2], W = s->dims[3];
    int64_t OH = output->shape.dims[2], OW = output->shape.dims[3];
    const float *x = inputs[0].data;
    float *y = output->data;
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * OH * OW;
        for (int64_t i = 0; i < OH; i++) {
            int64_t h = i - self->top;
            float *row = yp + i * OW;
            if (self->mode == PAD_CONSTANT) {
                if (h < 0 || h >= H) {
                    for (int64_t j = 0; j < OW; j++) row[j] = self->value;
                    continue;
                }
                for (int64_t j = 0; j < self->left; j++) row[j] = self->value;
                memcpy(row + self->left, xp + h * W, (size_t)W * sizeof(float));
                for (int64_t j = self->left + W; j < OW; j++) row[j] = self->value;
            } else {
                const float *xr = xp + reflect(h, H) * W;
                for (int64_t j = 0; j < OW; j++) row[j] = xr[reflect(j - self->left, W)];
            }
        }
    }
    return PLY_OK;
}

static ply_status pad2d_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                                 const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs;
    (void)output;
    float *dx = grad_inputs[0].data;
    if (!dx) return PLY_OK;
    const ply_shape *s = &inputs[0].shape;
    int64_t planes = s->dims[0] * s->dims[1], H = s->dims[2], W = s->dims[3];
    int64_t OH = grad_output->shape.dims[2], OW = grad_output->shape.dims[3];
    const float *dy = grad_output->data;
    for (int64_t p = 0; p < planes; p++) {
        float *dxp = dx + p * H * W;
        const float *dyp = dy + p * OH * OW;
        if (self->mode == PAD_CONSTANT) {
            for (int64_t h = 0; h < H; h++)
                memcpy(dxp + h * W, dyp + (h + self->top) * OW + self->left, (size_t)W * sizeof(float));
            continue;
        }
        memset(dxp, 0, (size_t)(H * W) * sizeof(float));
        for (int64_t i = 0; i < OH; i++) {
            float *dr = dxp + reflect(i - self->top, H) * W;
            for (int64_t j = 0; j < OW; j++) dr[reflect(j - self->left, W)] += dyp[i * OW + j];
        }
    }
    return PLY_OK;
}

static const ply_attr_spec pad2d_specs[] = {
    {.name = "padding", .kind = PLY_ATTR_INTS, .flags = PLY_ATTR_REQUIRED | PLY_ATTR_SCALAR_OR_LIST,
     .doc = "[left, right, top, bottom] as torch.nn.functional.pad orders them, or one value for all four"},
    {.name = "mode", .kind = PLY_ATTR_STRING, .default_text = "constant", .doc = "constant or reflect"},
    {.name = "value", .kind = PLY_ATTR_FLOAT, .default_text = "0.0",
     .doc = "what mode constant pads with (-inf before a max pool)"},
    PLY_SPEC_END,
};


const ply_layer_type ply_pad2d_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "pad2d",
    .doc = "pad height and width, as torch.nn.functional.pad (ZeroPad2d, ConstantPad2d, ReflectionPad2d)",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = pad2d_create,
    .destroy = pad2d_destroy,
    .infer_shape = pad2d_infer_shape,
    .forward = pad2d_forward,
    .backward = pad2d_backward,
    .attr_specs = pad2d_specs,
    .inputs_doc = "x: (N, C, H, W)",
};
