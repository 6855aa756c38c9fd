/*
 * Shared by the broken test plugins in this directory: one working layer
 * type body (y = SCALE * x), so that each plugin differs from a valid one
 * only in the defect it demonstrates. Built with
 * `cc -std=c99 -Wall -Wextra -pedantic -Werror -shared -fPIC -I Include`.
 */
#ifndef BADPLUGINS_COMMON_H
#define BADPLUGINS_COMMON_H

#include <stddef.h>
#include <string.h>

#include "ply/plugin.h"

#ifndef SCALE
#define SCALE 2.0f
#endif

struct ply_layer {
    const ply_host *host;
    float scale;
};

static inline ply_status common_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    ply_layer *self;
    (void)attrs;
    self = (ply_layer *)host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "out of memory");
    self->host = host;
    self->scale = SCALE;
    *out = self;
    return PLY_OK;
}

static inline void common_destroy(ply_layer *self) {
    if (self) self->host->free(self->host, self);
}

static inline ply_status common_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs,
                                            ply_shape *output) {
    (void)self;
    (void)n_inputs;
    *output = inputs[0];
    return PLY_OK;
}

static inline ply_status common_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs,
                                        ply_tensor *output) {
    const float *x = (const float *)inputs[0].data;
    float *y = (float *)output->data;
    int64_t i, n = ply_shape_numel(&inputs[0].shape);
    (void)n_inputs;
    for (i = 0; i < n; i++) y[i] = self->scale * x[i];
    return PLY_OK;
}

static inline ply_status common_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs,
                                         const ply_tensor *output, const ply_tensor *grad_output,
                                         ply_tensor *grad_inputs) {
    const float *dy = (const float *)grad_output->data;
    float *dx = (float *)grad_inputs[0].data;
    int64_t i, n = ply_shape_numel(&inputs[0].shape);
    (void)n_inputs;
    (void)output;
    if (!dx) return PLY_OK;
    for (i = 0; i < n; i++) dx[i] = self->scale * dy[i];
    return PLY_OK;
}

/* A complete, valid layer type called `type_name`. */
#define COMMON_LAYER_TYPE(var, type_name)                                                              \
    static const ply_layer_type var = {                                                              \
        .struct_size = sizeof(ply_layer_type), .abi_version = PLY_ABI_VERSION, .name = type_name,       \
        .doc = "y = scale * x (test plugin)", .min_inputs = 1, .max_inputs = 1, .create = common_create, \
        .destroy = common_destroy, .infer_shape = common_infer_shape, .forward = common_forward,        \
        .backward = common_backward,                                                                 \
    }

#endif
