/*
 * Reshape family: flatten, and pad2d (pad2d.c). No parameters, one input. flatten merges the
 * dimensions start_dim..end_dim (defaults 1 and -1, negative counts from
 * the end) into one, as torch.nn.Flatten / torch.flatten. The data layout
 * does not change, so forward and backward are plain copies.
 */
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"
#include "pad2d.h"

struct ply_layer {
    const ply_host *host;
    int64_t start_dim, end_dim; // as given, may be negative
};

// ----------------------------------------------------------------------------
// kernels

static void copy_forward(float *out, const float *in, int64_t n) { memcpy(out, in, (size_t)n * sizeof(float)); }

// ----------------------------------------------------------------------------
// vtable

static ply_status flatten_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t start = 1, end = -1;
    ply_status st = host->attr_int(host, attrs, "start_dim", &start);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    st = host->attr_int(host, attrs, "end_dim", &end);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if ((start < 0) == (end < 0) && start > end)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "flatten: start_dim cannot come after end_dim (got start_dim %lld, end_dim %lld)",
                          (long long)start, (long long)end);
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "flatten: out of memory");
    self->host = host;
    self->start_dim = start;
    self->end_dim = end;
    *out = self;
    return PLY_OK;
}

static void flatten_destroy(ply_layer *self) {
    if (self) self->host->free(self->host, self);
}

// Resolve a possibly negative dim against `ndim` dims (a scalar counts as 1-d, as in PyTorch).
static ply_status resolve_dim(const ply_layer *self, const char *what, int64_t dim, int32_t ndim, int64_t *out) {
    int64_t n = ndim > 0 ? ndim : 1;
    int64_t d = dim < 0 ? dim + n : dim;
    if (d < 0 || d >= n)
        return ply_errorf(self->host, PLY_ERR_SHAPE,
                          "flatten: %s %lld is out of range for input 0 with %d dimensions (expected %lld..%lld)",
                          what, (long long)dim, ndim, (long long)-n, (long long)(n - 1));
    *out = d;
    return PLY_OK;
}

static ply_status flatten_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    const ply_shape *s = &inputs[0];
    int64_t start = 0, end = 0;
    ply_status st = resolve_dim(self, "start_dim", self->start_dim, s->ndim, &start);
    if (st == PLY_OK) st = resolve_dim(self, "end_dim", self->end_dim, s->ndim, &end);
    if (st != PLY_OK) return st;
    if (start > end)
        return ply_errorf(self->host, PLY_ERR_SHAPE,
                          "flatten: start_dim cannot come after end_dim (got start_dim %lld -> %lld, end_dim %lld -> %lld)",
                          (long long)self->start_dim, (long long)start, (long long)self->end_dim, (long long)end);
    ply_shape o;
    memset(&o, 0, sizeof o);
    if (s->ndim == 0) { // a scalar flattens to a 1-element vector
        o.ndim = 1;
        o.dims[0] = 1;
        *output = o;
        return PLY_OK;
    }
    int64_t merged = 1;
    for (int64_t i = start; i <= end; i++) merged *= s->dims[i];
    for (int64_t i = 0; i < start; i++) o.dims[o.ndim++] = s->dims[i];
    o.dims[o.ndim++] = merged;
    for (int64_t i = end + 1; i < s->ndim; i++) o.dims[o.ndim++] = s->dims[i];
    *output = o;
    return PLY_OK;
}

static ply_status flatten_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    if (inputs[0].strides)
        return ply_errorf(self->host, PLY_ERR_UNSUPPORTED, "flatten: input 0 must be a compact tensor");
    copy_forward(output->data, inputs[0].data, ply_shape_numel(&inputs[0].shape));
    return PLY_OK;
}

static ply_status flatten_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs,
                                   const ply_tensor *output, const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)self;
    (void)n_inputs;
    (void)output;
    if (!grad_inputs[0].data) return PLY_OK;
    copy_forward(grad_inputs[0].data, grad_output->data, ply_shape_numel(&inputs[0].shape));
    return PLY_OK;
}

static const ply_attr_spec flatten_specs[] = {
    {.name = "start_dim", .kind = PLY_ATTR_INT, .default_text = "1",
     .doc = "first axis merged (negative counts from the end)"},
    {.name = "end_dim", .kind = PLY_ATTR_INT, .default_text = "-1",
     .doc = "last axis merged (negative counts from the end)"},
    PLY_SPEC_END,
};

// No describe: no MACs, identity window (the host keeps the last feature map's size for a linear after it).
static const ply_layer_type flatten_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "flatten",
    .doc = "merge dims start_dim (1) .. end_dim (-1) into one, as torch.flatten",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = flatten_create,
    .destroy = flatten_destroy,
    .infer_shape = flatten_infer_shape,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .attr_specs = flatten_specs,
    .inputs_doc = "x: (N, C, H, W) or any shape with the axes start_dim..end_dim",
};

static const ply_layer_type *const types[] = {&flatten_type, &ply_pad2d_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.reshape", "1.1.0", 2, 0, types,
};

PLY_BUILTIN_ENTRY(reshape) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "ply.reshape: host ABI major version differs from the plugin's (1)");
        return NULL;
    }
    return &plugin;
}
