/*
 * Dropout (PyTorch's nn.Dropout): in training mode each element is zeroed
 * with probability p and the kept ones are scaled by 1 / (1 - p); in eval
 * mode the layer is the identity. Any input shape, output shape = input shape.
 *
 * The random draws come from host->fill_uniform (U(0, 1) < p => drop), so a
 * given host seed reproduces the same mask. The mask (0 or 1 / (1 - p) per
 * element) is kept for backward.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"

struct ply_layer {
    const ply_host *host;
    double p;
    int32_t training;
    int32_t mask_valid;  // the last forward was in training mode and filled mask
    float *mask;         // [mask_cap], 0 or 1/(1-p) for the first mask_n elements
    int64_t mask_cap, mask_n;
};

// ----------------------------------------------------------------------------
// kernels

// u: uniform draws in [0, 1), turned in place into the mask {0, scale}
static void dropout_make_mask(float *mask, int64_t n, float p, float scale) {
    for (int64_t i = 0; i < n; i++) mask[i] = mask[i] < p ? 0.0f : scale;
}

// out = in * mask (also the backward: din = dout * mask)
static void dropout_apply(float *out, const float *in, const float *mask, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = in[i] * mask[i];
}

// ----------------------------------------------------------------------------
// vtable

static ply_status dropout_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    double p = 0.5;
    ply_status st = host->attr_float(host, attrs, "p", &p);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (!(p >= 0.0 && p <= 1.0))
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "dropout: p must be in [0, 1] (got %g)", p);
    ply_layer *self = host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "dropout: out of memory");
    memset(self, 0, sizeof *self);
    self->host = host;
    self->p = p;
    self->training = 1;
    *out = self;
    return PLY_OK;
}

static void dropout_destroy(ply_layer *self) {
    if (!self) return;
    self->host->free(self->host, self->mask);
    self->host->free(self->host, self);
}

static ply_status dropout_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)self; (void)n_inputs;
    *output = inputs[0];
    return PLY_OK;
}

static ply_status dropout_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)n_inputs;
    const float *x = inputs[0].data;
    float *y = output->data;
    int64_t n = ply_shape_numel(&inputs[0].shape);
    self->mask_valid = 0;
    if (!self->training) {
        if (y != x) memcpy(y, x, (size_t)n * sizeof(float));
        return PLY_OK;
    }
    if (n > self->mask_cap) {
        float *m = self->host->alloc(self->host, (size_t)n * sizeof(float));
        if (!m)
            return ply_errorf(self->host, PLY_ERR_OUT_OF_MEMORY, "dropout: out of memory for a mask of %lld elements",
                              (long long)n);
        self->host->free(self->host, self->mask);
        self->mask = m;
        self->mask_cap = n;
    }
    if (self->p >= 1.0) {
        memset(self->mask, 0, (size_t)n * sizeof(float));
    } else if (self->p <= 0.0) {
        for (int64_t i = 0; i < n; i++) self->mask[i] = 1.0f;
    } else {
        self->host->fill_uniform(self->host, self->mask, n, 0.0f, 1.0f);
        dropout_make_mask(self->mask, n, (float)self->p, (float)(1.0 / (1.0 - self->p)));
    }
    self->mask_n = n;
    self->mask_valid = 1;
    dropout_apply(y, x, self->mask, n);
    return PLY_OK;
}

static ply_status dropout_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs,
                                   const ply_tensor *output, const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    (void)n_inputs; (void)output;
    float *dx = grad_inputs[0].data;
    if (!dx) return PLY_OK;
    const float *dy = grad_output->data;
    int64_t n = ply_shape_numel(&inputs[0].shape);
    if (!self->mask_valid) {  // eval-mode forward: identity
        memcpy(dx, dy, (size_t)n * sizeof(float));
        return PLY_OK;
    }
    if (n != self->mask_n)
        return ply_errorf(self->host, PLY_ERR_SHAPE,
                          "dropout: backward got input 0 of %lld elements, the forward mask has %lld",
                          (long long)n, (long long)self->mask_n);
    dropout_apply(dx, dy, self->mask, n);
    return PLY_OK;
}

static void dropout_set_training(ply_layer *self, int32_t training) {
    self->training = training ? 1 : 0;
}

static const ply_attr_spec dropout_specs[] = {
    {.name = "p", .kind = PLY_ATTR_FLOAT, .default_text = "0.5",
     .doc = "probability of zeroing an element in training, in [0, 1]"},
    PLY_SPEC_END,
};

// No describe: no MACs, identity window.
static const ply_layer_type dropout_type = {
    .struct_size = sizeof(ply_layer_type),
    .abi_version = PLY_ABI_VERSION,
    .name = "dropout",
    .doc = "zero elements with probability p (default 0.5) and scale the rest by 1/(1-p) in training; identity in eval",
    .min_inputs = 1,
    .max_inputs = 1,
    .create = dropout_create,
    .destroy = dropout_destroy,
    .infer_shape = dropout_infer_shape,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .set_training = dropout_set_training,
    .attr_specs = dropout_specs,
    .inputs_doc = "x: any shape",
};

static const ply_layer_type *const types[] = {&dropout_type};

static const ply_plugin plugin = {
    sizeof(ply_plugin), PLY_ABI_VERSION, "ply.dropout", "1.0.0", 1, 0, types,
};

PLY_BUILTIN_ENTRY(dropout) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        ply_errorf(host, PLY_ERR_ABI, "ply.dropout: built for ABI major %u, host has %u",
                   (unsigned)PLY_ABI_VERSION_MAJOR, (unsigned)PLY_ABI_MAJOR_OF(host->abi_version));
        return NULL;
    }
    return &plugin;
}
