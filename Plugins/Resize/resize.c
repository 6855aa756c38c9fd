/*
 * Resize family: interpolate. No parameters, one NCHW input. Resizes the two
 * spatial dimensions as torch.nn.functional.interpolate does:
 *
 *   size          [h, w] (or one int for both): the output size, or
 *   scale_factor  a float (or [sh, sw]): output = floor(input * scale_factor);
 *                 exactly one of size and scale_factor is given
 *   mode          "nearest" (default) or "bilinear"
 *   align_corners bilinear only, default false
 *
 * Source coordinates follow PyTorch (recompute_scale_factor=None): the scale
 * is input/output when `size` is given and 1/scale_factor when
 * `scale_factor` is. nearest: src = min(floor(dst * scale), in - 1).
 * bilinear, align_corners false: src = max((dst + 0.5) * scale - 0.5, 0);
 * align_corners true: src = dst * (in - 1) / (out - 1) (0 when out == 1).
 * Backward scatters each output gradient back with the same weights.
 */
#include <math.h>
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"

enum { MODE_NEAREST = 0, MODE_BILINEAR = 1 };

struct ply_layer {
    const ply_host *host;
    int64_t size[2];     // > 0 when given
    double scale[2];     // > 0 when given
    int32_t mode;
    int32_t align_corners;
};

// ----------------------------------------------------------------------------
// attributes

// scale_factor: FLOAT, INT, or FLOATS / INTS with 1 or 2 entries.
static ply_status read_scale(const ply_host *host, const ply_attr *a, double out[2]) {
    switch (a->kind) {
    case PLY_ATTR_FLOAT: out[0] = out[1] = a->v.f; break;
    case PLY_ATTR_INT: out[0] = out[1] = (double)a->v.i; break;
    case PLY_ATTR_FLOATS:
    case PLY_ATTR_INTS:
        if (a->count != 1 && a->count != 2)
            return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                              "interpolate: scale_factor must have 1 or 2 entries (got %d)", a->count);
        for (int i = 0; i < 2; i++) {
            int k = a->count == 2 ? i : 0;
            out[i] = a->kind == PLY_ATTR_FLOATS ? a->v.floats[k] : (double)a->v.ints[k];
        }
        break;
    default:
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "interpolate: scale_factor must be a number or a pair of numbers");
    }
    if (!(out[0] > 0) || !(out[1] > 0) || !isfinite(out[0]) || !isfinite(out[1]))
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "interpolate: scale_factor must be positive (got %g, %g)",
                          out[0], out[1]);
    return PLY_OK;
}

static ply_status interpolate_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t size[2] = {0, 0};
    double scale[2] = {0, 0};
    ply_status st = host->attr_pair(host, attrs, "size", size);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    int has_size = st == PLY_OK;
    if (has_size && (size[0] <= 0 || size[1] <= 0))
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "interpolate: size must be positive (got [%lld, %lld])",
                          (long long)size[0], (long long)size[1]);
    const ply_attr *sf = ply_find_attr(attrs, "scale_factor");
    if (sf) {
        st = read_scale(host, sf, scale);
        if (st != PLY_OK) return st;
    }
    if (has_size == (sf != NULL))
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "interpolate: give exactly one of size and scale_factor");
    const char *mode = "nearest";
    st = host->attr_string(host, attrs, "mode", &mode);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    int32_t m;
    if (strcmp(mode, "nearest") == 0) m = MODE_NEAREST;
    else if (strcmp(mode, "bilinear") == 0) m = MODE_BILINEAR;
    else
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "interpolate: mode must be \"nearest\" or \"bilinear\" (got \"%s\")", mode);
    int32_t align = 0;
    st = host->attr_bool(host, attrs, "align_corners", &align);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (st == PLY_OK && align && m == MODE_NEAREST)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "interpolate: align_corners only applies to mode \"bilinear\"");
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "interpolate: out of memory");
    memset(self, 0, sizeof *self);
    self->host = host;
    self->size[0] = size[0];
    self->size[1] = size[1];
    self->scale[0] = scale[0];
    self->scale[1] = scale[1];
    self->mode = m;
    self->align_corners = align;
    *out = self;
    return PLY_OK;
}

static void interpolate_destroy(ply_layer *self) {
    if (self) self->host->free(self->host, self);
}

static ply_status interpolate_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs,
                                          ply_shape *output) {
    (void)n_inputs;
    const ply_shape *s = &inputs[0];
    if (s->ndim != 4)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "interpolate: input 0 must be 4-d NCHW (got %d dimensions)",
                          s->ndim);
    ply_shape o = *s;
    for (int i = 0; i < 2; i++) {
        o.dims[2 + i] = self->size[0] > 0 ? self->size[i] : (int64_t)floor((double)s->dims[2 + i] * self->scale[i]);
        if (o.dims[2 + i] <= 0)
            return ply_errorf(self->host, PLY_ERR_SHAPE,
                              "interpolate: input 0 dimension %d of %lld with scale_factor %g gives an empty output",
                              2 + i, (long long)s->dims[2 + i], self->scale[i]);
    }
    *output = o;
    return PLY_OK;
}

// ----------------------------------------------------------------------------
// coordinate tables

// For each output index along one axis: the two source indices and their weights
// (nearest: i1 == i0 and w1 == 0).
typedef struct {
    int64_t *i0, *i1;
    float *w0, *w1;
} axis_table;

static float area_scale(const ply_layer *self, int axis, int64_t in, int64_t out) {
    if (self->size[0] > 0 || self->scale[axis] <= 0) return (float)in / (float)out;
    return (float)(1.0 / self->scale[axis]);
}

static void fill_axis(const ply_layer *self, int axis, int64_t in, int64_t out, axis_table *t) {
    float scale = area_scale(self, axis, in, out);
    for (int64_t d = 0; d < out; d++) {
        if (self->mode == MODE_NEAREST) {
            int64_t s = (int64_t)floorf((float)d * scale);
            if (s > in - 1) s = in - 1;
            t->i0[d] = t->i1[d] = s;
            t->w0[d] = 1;
            t->w1[d] = 0;
            continue;
        }
        float src;
        if (self->align_corners) {
            src = out > 1 ? (float)d * ((float)(in - 1) / (float)(out - 1)) : 0.0f;
        } else {
            src = ((float)d + 0.5f) * scale - 0.5f;
            if (src < 0) src = 0;
        }
        int64_t i0 = (int64_t)src;
        if (i0 > in - 1) i0 = in - 1;
        int64_t i1 = i0 < in - 1 ? i0 + 1 : i0;
        float l1 = src - (float)i0;
        t->i0[d] = i0;
        t->i1[d] = i1;
        t->w0[d] = 1.0f - l1;
        t->w1[d] = l1;
    }
}

typedef struct {
    const ply_layer *self;
    const float *in;
    float *out;
    int64_t ih, iw, oh, ow;
    axis_table ty, tx;
} job;

static void forward_planes(void *context, int64_t begin, int64_t end) {
    const job *j = context;
    for (int64_t p = begin; p < end; p++) {
        const float *src = j->in + p * j->ih * j->iw;
        float *dst = j->out + p * j->oh * j->ow;
        for (int64_t y = 0; y < j->oh; y++) {
            const float *r0 = src + j->ty.i0[y] * j->iw, *r1 = src + j->ty.i1[y] * j->iw;
            float wy0 = j->ty.w0[y], wy1 = j->ty.w1[y];
            for (int64_t x = 0; x < j->ow; x++) {
                int64_t x0 = j->tx.i0[x], x1 = j->tx.i1[x];
                float wx0 = j->tx.w0[x], wx1 = j->tx.w1[x];
                dst[y * j->ow + x] = wy0 * (wx0 * r0[x0] + wx1 * r0[x1]) + wy1 * (wx0 * r1[x0] + wx1 * r1[x1]);
            }
        }
    }
}

// Here `in` is the output gradient and `out` the input gradient (zeroed, then accumulated).
static void backward_planes(void *context, int64_t begin, int64_t end) {
    const job *j = context;
    for (int64_t p = begin; p < end; p++) {
        const float *g = j->in + p * j->oh * j->ow;
        float *gi = j->out + p * j->ih * j->iw;
        memset(gi, 0, (size_t)(j->ih * j->iw) * sizeof(float));
        for (int64_t y = 0; y < j->oh; y++) {
            float *r0 = gi + j->ty.i0[y] * j->iw, *r1 = gi + j->ty.i1[y] * j->iw;
            float wy0 = j->ty.w0[y], wy1 = j->ty.w1[y];
            for (int64_t x = 0; x < j->ow; x++) {
                int64_t x0 = j->tx.i0[x], x1 = j->tx.i1[x];
                float wx0 = j->tx.w0[x], wx1 = j->tx.w1[x];
                float v = g[y * j->ow + x];
                r0[x0] += wy0 * wx0 * v;
                r0[x1] += wy0 * wx1 * v;
                r1[x0] += wy1 * wx0 * v;
                r1[x1] += wy1 * wx1 * v;
            }
        }
    }
}

static ply_status run(ply_layer *self, const ply_shape *is, const ply_shape *os, const float *in, float *out,
                      ply_parallel_fn fn) {
    job j;
    j.self = self;
    j.in = in;
    j.out = out;
    j.ih = is->dims[2];
    j.iw = is->dims[3];
    j.oh = os->dims[2];
    j.ow = os->dims[3];
    size_t n = (size_t)(j.oh + j.ow);
    void *mem = self->host->alloc(self->host, n * (2 * sizeof(int64_t) + 2 * sizeof(float)));
    if (!mem) return ply_errorf(self->host, PLY_ERR_OUT_OF_MEMORY, "interpolate: out of memory");
    int64_t *ints = mem;
    float *floats = (float *)(ints + 2 * n);
    j.ty = (axis_table){ints, ints + j.oh, floats, floats + j.oh};
    j.tx = (axis_table){ints + 2 * j.oh, ints + 2 * j.oh + j.ow, floats + 2 * j.oh, floats + 2 * j.oh + j.ow};
    fill_axis(self, 0, j.ih, j.oh, &j.ty);
    fill_axis(self, 1, j.iw, j.ow, &j.tx);
    self->host->parallel_for(self->host, is->dims[0] * is->dims[1], 1, fn, &j);
    self->host->free(self->host, mem);
    return PLY_OK;
}

static ply_status interpolate_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs,
                                      ply_tensor *output) {
    (void)n_inputs;
    if (inputs[0].strides)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "interpolate: input 0 must be a compact tensor");
    return run(self, &inputs[0].shape, &output->shape, inputs[0].data, output->data, forward_planes);
}

static ply_status interpolate_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs,
                                       const ply_tensor *output, const ply_tensor *grad_output,
                                       ply_tensor *grad_inputs) {
    (void)n_inputs;
    if (!grad_inputs[0].data) return PLY_OK;
    return run(self, &inputs[0].shape, &output->shape, grad_output->data, grad_inputs[0].data, backward_planes);
}

// ----------------------------------------------------------------------------
// self-description (ABI 1.2)

static const ply_attr_spec interpolate_specs[] = {
    {.name = "size", .kind = PLY_ATTR_INTS, .flags = PLY_ATTR_PAIR, .default_text = NULL,
     .doc = "output height and width: an int or [h, w]; give exactly one of size and scale_factor"},
    {.name = "scale_factor", .kind = PLY_ATTR_FLOAT, .flags = PLY_ATTR_SCALAR_OR_LIST, .default_text = NULL,
     .doc = "output size = floor(input size x scale_factor), one factor or [sh, sw]; give exactly one of size and "
            "scale_factor"},
    {.name = "mode", .kind = PLY_ATTR_STRING, .default_text = "nearest", .doc = "nearest or bilinear"},
    {.name = "align_corners", .kind = PLY_ATTR_BOOL, .default_text = "false",
     .doc = "bilinear only: align the corner pixels of input and output"},
    PLY_SPEC_END,
};

// No MACs. Window: 2 input pixels per output for bilinear, 1 for nearest, spaced in/out apart.
static ply_status interpolate_describe(ply_layer *self, int32_t n_inputs, const ply_shape *inputs,
                                       ply_layer_info *info) {
    ply_shape out;
    ply_status st = interpolate_infer_shape(self, n_inputs, inputs, &out);
    if (st != PLY_OK) return st;
    double k = self->mode == MODE_BILINEAR ? 2.0 : 1.0;
    ply_info_set_window(info, ply_window_make(k, k, (double)inputs[0].dims[2] / (double)out.dims[2],
                                              (double)inputs[0].dims[3] / (double)out.dims[3]));
    return PLY_OK;
}

static const ply_layer_type interpolate_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "interpolate",
    .doc = "resize H and W as F.interpolate: size [h, w] or scale_factor, mode \"nearest\" (default) | "
           "\"bilinear\", align_corners (false)",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = interpolate_create,
    .destroy = interpolate_destroy,
    .infer_shape = interpolate_infer_shape,
    .forward = interpolate_forward,
    .backward = interpolate_backward,
    .attr_specs = interpolate_specs,
    .inputs_doc = "x: (N, C, H, W)",
    .describe = interpolate_describe,
};

static const ply_layer_type *const types[] = {&interpolate_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.resize", "1.0.0", 1, 0, types,
};

PLY_BUILTIN_ENTRY(resize) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "ply.resize: host ABI major version differs from the plugin's (1)");
        return NULL;
    }
    return &plugin;
}
