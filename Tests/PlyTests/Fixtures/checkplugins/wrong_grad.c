/*
 * A plugin that is correct in every way ply-plugin-check can see without
 * differentiating, and wrong in backward: y = weight * x + bias (scalar
 * weight and bias), whose weight gradient forgets the factor x
 * (d/d weight = sum(dy) instead of sum(dy * x)). Forward, shapes, parameters
 * and the input gradient are right, so only the central-difference check
 * can catch it. Built with `cc -std=c99 -Wall -Wextra -pedantic -Werror
 * -shared -fPIC -I Include`.
 */
#include <stddef.h>

#include "ply/plugin.h"

struct ply_layer {
    const ply_host *host;
    float *weight, *bias, *grad_weight, *grad_bias; /* one float each, from host->alloc */
};

static ply_status wg_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    ply_layer *self;
    float *mem;
    (void)attrs;
    self = (ply_layer *)host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "wrong_grad_scale: out of memory");
    mem = (float *)host->alloc(host, 4 * sizeof(float));
    if (!mem) {
        host->free(host, self);
        return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "wrong_grad_scale: out of memory");
    }
    self->host = host;
    self->weight = mem;
    self->bias = mem + 1;
    self->grad_weight = mem + 2;
    self->grad_bias = mem + 3;
    mem[0] = 1.5f;
    mem[1] = 0.25f;
    mem[2] = mem[3] = 0.0f;
    *out = self;
    return PLY_OK;
}

static void wg_destroy(ply_layer *self) {
    if (!self) return;
    self->host->free(self->host, self->weight);
    self->host->free(self->host, self);
}

static ply_status wg_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)self;
    (void)n_inputs;
    *output = inputs[0];
    return PLY_OK;
}

static ply_status wg_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    const float *x = (const float *)inputs[0].data;
    float *y = (float *)output->data;
    int64_t i, n = ply_shape_numel(&inputs[0].shape);
    (void)n_inputs;
    for (i = 0; i < n; i++) y[i] = *self->weight * x[i] + *self->bias;
    return PLY_OK;
}

static ply_status wg_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                              const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    const float *dy = (const float *)grad_output->data;
    float *dx = (float *)grad_inputs[0].data;
    int64_t i, n = ply_shape_numel(&inputs[0].shape);
    (void)n_inputs;
    (void)output;
    for (i = 0; i < n; i++) {
        if (dx) dx[i] = *self->weight * dy[i];
        *self->grad_weight += dy[i]; /* THE BUG: should be dy[i] * x[i] */
        *self->grad_bias += dy[i];
    }
    return PLY_OK;
}

static int32_t wg_param_count(ply_layer *self) {
    (void)self;
    return 2;
}

static ply_status wg_get_param(ply_layer *self, int32_t index, ply_param *out) {
    ply_shape one = ply_shape_make(1, 1, 0, 0, 0);
    if (index == 0) *out = ply_param_make("weight", self->weight, self->grad_weight, one);
    else if (index == 1) *out = ply_param_make("bias", self->bias, self->grad_bias, one);
    else return ply_errorf(self->host, PLY_ERR_INVALID_ARGUMENT, "wrong_grad_scale: no parameter %d", (int)index);
    return PLY_OK;
}

static const ply_layer_type wrong_grad_type = {
    .struct_size = sizeof(ply_layer_type), .abi_version = PLY_ABI_VERSION, .name = "wrong_grad_scale",
    .doc = "y = weight * x + bias, with a deliberately wrong weight gradient (test plugin)", .min_inputs = 1,
    .max_inputs = 1, .create = wg_create, .destroy = wg_destroy, .infer_shape = wg_infer_shape, .forward = wg_forward,
    .backward = wg_backward, .param_count = wg_param_count, .get_param = wg_get_param,
};
static const ply_layer_type *const types[] = {&wrong_grad_type};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = PLY_ABI_VERSION,
                                  .name = "test.wrong_grad", .version = "1.0", .type_count = 1, .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) {
        host->set_error(host, PLY_ERR_ABI, "test.wrong_grad: built for Ply ABI 1.x");
        return NULL;
    }
    return &plugin;
}
