/*
 * An example third-party Ply layer plugin, in plain C99. It depends on
 * nothing but <ply/plugin.h> and libc, and is built without SwiftPM:
 *
 *     cc -std=c99 -shared -fPIC -I<ply>/Include leaky_relu.c -o libleaky_relu.so
 *
 * Layer types (PyTorch semantics):
 *
 *   leaky_relu       torch.nn.LeakyReLU(negative_slope=0.01):
 *                    y = x if x > 0 else negative_slope * x, element-wise.
 *   channel_shuffle  torch.nn.ChannelShuffle(groups): view the channels of an
 *                    (N, C, *) input as (groups, C / groups), transpose to
 *                    (C / groups, groups) and flatten back, so output channel
 *                    k * groups + g is input channel g * (C / groups) + k.
 *
 * Both take one input, have no parameters and support backward.
 */
#include <string.h>

#include "ply/plugin.h"

/* One struct serves both types; `kind` says which one an instance is. */
typedef enum { KIND_LEAKY_RELU, KIND_CHANNEL_SHUFFLE } layer_kind;

struct ply_layer {
    const ply_host *host;
    layer_kind kind;
    float negative_slope; /* leaky_relu */
    int64_t groups;       /* channel_shuffle */
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static const char *kind_name(const ply_layer *self) {
    return self->kind == KIND_LEAKY_RELU ? "leaky_relu" : "channel_shuffle";
}

static ply_layer *new_layer(const ply_host *host, layer_kind kind) {
    ply_layer *self = (ply_layer *)host->alloc(host, sizeof *self);
    if (!self) return NULL;
    memset(self, 0, sizeof *self);
    self->host = host;
    self->kind = kind;
    return self;
}

/* This plugin handles compact float32 tensors only (what the host passes). */
static ply_status check_tensor(const ply_layer *self, const char *what, const ply_tensor *t) {
    if (t->dtype != PLY_DTYPE_F32 || t->strides != NULL)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "%s: %s must be a compact float32 tensor",
                          kind_name(self), what);
    return PLY_OK;
}

/* channel_shuffle views an (N, C, *) shape as (outer = N, C, inner = prod(*)). */
static ply_status shuffle_view(const ply_layer *self, const ply_shape *s, int64_t *outer, int64_t *channels,
                               int64_t *inner) {
    int32_t i;
    if (s->ndim < 3)
        return ply_errorf(self->host, PLY_ERR_SHAPE,
                          "channel_shuffle: input 0 must have at least 3 dims [N, C, *] (got %d)", (int)s->ndim);
    if (s->dims[1] % self->groups != 0)
        return ply_errorf(self->host, PLY_ERR_SHAPE,
                          "channel_shuffle: input 0 dim 1 (channels) is %lld, not divisible by groups=%lld",
                          (long long)s->dims[1], (long long)self->groups);
    *outer = s->dims[0];
    *channels = s->dims[1];
    *inner = 1;
    for (i = 2; i < s->ndim; i++) *inner *= s->dims[i];
    return PLY_OK;
}

/* dst[n, k * G + g, :] = src[n, g * (C / G) + k, :] when `inverse` is 0; the
 * inverse permutation (used by backward) when `inverse` is 1. */
static void shuffle(float *dst, const float *src, int64_t outer, int64_t channels, int64_t inner, int64_t groups,
                    int inverse) {
    int64_t per_group = channels / groups;
    size_t bytes = (size_t)inner * sizeof(float);
    int64_t n, oc;
    for (n = 0; n < outer; n++) {
        for (oc = 0; oc < channels; oc++) {
            int64_t ic = (oc % groups) * per_group + oc / groups;
            const float *from = src + (n * channels + (inverse ? oc : ic)) * inner;
            float *to = dst + (n * channels + (inverse ? ic : oc)) * inner;
            memcpy(to, from, bytes);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                */
/* ------------------------------------------------------------------------ */

static ply_status leaky_relu_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    double slope = 0.01;
    ply_layer *self;
    ply_status st = host->attr_float(host, attrs, "negative_slope", &slope);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st; /* host already said why */
    if (!(slope == slope)) /* NaN */
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "leaky_relu: negative_slope must be a number (got NaN)");
    self = new_layer(host, KIND_LEAKY_RELU);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "leaky_relu: out of memory");
    self->negative_slope = (float)slope;
    *out = self;
    return PLY_OK;
}

static ply_status channel_shuffle_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t groups = 0;
    ply_layer *self;
    ply_status st = host->attr_int(host, attrs, "groups", &groups);
    if (st == PLY_ERR_NOT_FOUND)
        return ply_errorf(host, PLY_ERR_NOT_FOUND, "channel_shuffle: missing attribute 'groups'");
    if (st != PLY_OK) return st;
    if (groups < 1)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "channel_shuffle: groups must be positive (got %lld)",
                          (long long)groups);
    self = new_layer(host, KIND_CHANNEL_SHUFFLE);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "channel_shuffle: out of memory");
    self->groups = groups;
    *out = self;
    return PLY_OK;
}

static void layer_destroy(ply_layer *self) {
    if (self) self->host->free(self->host, self);
}

static ply_status layer_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    if (n_inputs != 1)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: takes 1 input (got %d)", kind_name(self), (int)n_inputs);
    if (self->kind == KIND_CHANNEL_SHUFFLE) {
        int64_t outer, channels, inner;
        ply_status st = shuffle_view(self, &inputs[0], &outer, &channels, &inner);
        if (st != PLY_OK) return st;
    }
    *output = inputs[0];
    return PLY_OK;
}

static ply_status layer_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    const float *x;
    float *y;
    int64_t n, i;
    ply_status st;
    if (n_inputs != 1)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: takes 1 input (got %d)", kind_name(self), (int)n_inputs);
    if ((st = check_tensor(self, "input 0", &inputs[0])) != PLY_OK) return st;
    if ((st = check_tensor(self, "the output", output)) != PLY_OK) return st;
    x = (const float *)inputs[0].data;
    y = (float *)output->data;
    if (self->kind == KIND_LEAKY_RELU) {
        float slope = self->negative_slope;
        n = ply_shape_numel(&inputs[0].shape);
        for (i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
    } else {
        int64_t outer, channels, inner;
        if ((st = shuffle_view(self, &inputs[0].shape, &outer, &channels, &inner)) != PLY_OK) return st;
        shuffle(y, x, outer, channels, inner, self->groups, 0);
    }
    return PLY_OK;
}

static ply_status layer_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs,
                                 const ply_tensor *output, const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    const float *x, *dy;
    float *dx;
    int64_t n, i;
    ply_status st;
    (void)output;
    if (n_inputs != 1)
        return ply_errorf(self->host, PLY_ERR_SHAPE, "%s: takes 1 input (got %d)", kind_name(self), (int)n_inputs);
    if (grad_inputs[0].data == NULL) return PLY_OK; /* input gradient not wanted; no parameters */
    if ((st = check_tensor(self, "input 0", &inputs[0])) != PLY_OK) return st;
    if ((st = check_tensor(self, "the output gradient", grad_output)) != PLY_OK) return st;
    if ((st = check_tensor(self, "the input gradient", &grad_inputs[0])) != PLY_OK) return st;
    x = (const float *)inputs[0].data;
    dy = (const float *)grad_output->data;
    dx = (float *)grad_inputs[0].data;
    if (self->kind == KIND_LEAKY_RELU) {
        /* As PyTorch: the gradient at exactly 0 uses the negative slope. */
        float slope = self->negative_slope;
        n = ply_shape_numel(&inputs[0].shape);
        for (i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * slope;
    } else {
        int64_t outer, channels, inner;
        if ((st = shuffle_view(self, &inputs[0].shape, &outer, &channels, &inner)) != PLY_OK) return st;
        shuffle(dx, dy, outer, channels, inner, self->groups, 1);
    }
    return PLY_OK;
}

/* ------------------------------------------------------------------------ */
/* Descriptor                                                               */
/* ------------------------------------------------------------------------ */

/* Attribute schemas (ABI 1.2): the host checks every attribute list against them before create,
 * so a typo ("negative_slop") is an error naming the closest valid name, and `ply plugins
 * --describe leaky_relu` lists them. Each list ends with a NULL name. */
static const ply_attr_spec leaky_relu_specs[] = {
    {.name = "negative_slope", .kind = PLY_ATTR_FLOAT, .default_text = "0.01",
     .doc = "slope for x < 0 (and at 0, as PyTorch's gradient)"},
    {.name = NULL},
};
static const ply_attr_spec channel_shuffle_specs[] = {
    {.name = "groups", .kind = PLY_ATTR_INT, .flags = PLY_ATTR_REQUIRED,
     .doc = "number of channel groups; the channel count must be a multiple of it"},
    {.name = NULL},
};

/* Designated initializers: fields a later ABI minor version appends stay NULL (absent) when this
 * file is rebuilt against a newer header, without a -Wmissing-field-initializers warning.
 * No parameters, the same in training and evaluation, no fused activation; no describe either:
 * neither layer has multiply-accumulates, children or a spatial window (the host's defaults). */
static const ply_layer_type leaky_relu_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "leaky_relu",
    .doc = "x if x > 0 else negative_slope * x (default 0.01), element-wise",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = leaky_relu_create,
    .destroy = layer_destroy,
    .infer_shape = layer_infer_shape,
    .forward = layer_forward,
    .backward = layer_backward,
    .attr_specs = leaky_relu_specs,
    .inputs_doc = "x: any shape",
};

static const ply_layer_type channel_shuffle_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "channel_shuffle",
    .doc = "interleave the channels of `groups` groups, as torch.nn.ChannelShuffle",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = channel_shuffle_create,
    .destroy = layer_destroy,
    .infer_shape = layer_infer_shape,
    .forward = layer_forward,
    .backward = layer_backward,
    .attr_specs = channel_shuffle_specs,
    .inputs_doc = "x: (N, C, ...) with C a multiple of groups",
};

static const ply_layer_type *const types[] = {&leaky_relu_type, &channel_shuffle_type};

static const ply_plugin plugin = {
    .struct_size = sizeof(ply_plugin),
    .abi_version = PLY_ABI_VERSION,
    .name = "example.leaky_relu",
    .version = "1.0.0",
    .type_count = 2,
    .types = types,
};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (host == NULL) return NULL;
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        ply_errorf(host, PLY_ERR_ABI, "example.leaky_relu was built for Ply ABI %d.%d; the host speaks %u.%u",
                   PLY_ABI_VERSION_MAJOR, PLY_ABI_VERSION_MINOR, (unsigned)PLY_ABI_MAJOR_OF(host->abi_version),
                   (unsigned)PLY_ABI_MINOR_OF(host->abi_version));
        return NULL;
    }
    return &plugin;
}
