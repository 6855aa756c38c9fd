/*
 * Fault-injection plugin for Tests/PlyTests/FaultTests.swift. Built at test time with
 * `cc -std=c99 -Wall -Wextra -pedantic -Werror -shared -fPIC -I Include`.
 *
 *   faulty  y = 2 * x. Attributes `fail_forward_at` and `fail_backward_at` (1-based call
 *           numbers, 0 = never): on that call the layer fails half-way through, the way a
 *           real kernel runs out of scratch or meets a bad value: it has taken scratch
 *           memory from the host, written half of its output (or input gradient) with
 *           garbage (NaN), then frees the scratch and reports an error with its own message.
 *           Every other call works. `faulty_live_scratch` counts scratch buffers not yet
 *           returned, so a test can check that the failure path released what it took.
 *   huge    output [N, size, size] for an input [N, ...] (attribute `size`), so that a model
 *           can be asked to plan an output too large to allocate (size 2^20: 2^40 elements)
 *           or whose element count overflows 64 bits. Forward writes the first element only.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "ply/plugin.h"

/* Scratch buffers taken from the host and not yet freed (all instances). */
PLY_EXPORT long faulty_live_scratch = 0;

struct ply_layer {
    const ply_host *host;
    int64_t fail_forward_at, fail_backward_at, size;
    int64_t forward_calls, backward_calls;
};

static ply_status read_int(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t fallback,
                           int64_t *out) {
    ply_status st = host->attr_int(host, attrs, name, out);
    if (st == PLY_ERR_NOT_FOUND) {
        *out = fallback;
        return PLY_OK;
    }
    return st;
}

static ply_status faulty_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    ply_layer *self = (ply_layer *)host->alloc(host, sizeof *self);
    ply_status st;
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "faulty: out of memory");
    memset(self, 0, sizeof *self);
    self->host = host;
    if ((st = read_int(host, attrs, "fail_forward_at", 0, &self->fail_forward_at)) != PLY_OK ||
        (st = read_int(host, attrs, "fail_backward_at", 0, &self->fail_backward_at)) != PLY_OK ||
        (st = read_int(host, attrs, "size", 1, &self->size)) != PLY_OK) {
        host->free(host, self);
        return st;
    }
    *out = self;
    return PLY_OK;
}

static void faulty_destroy(ply_layer *self) {
    if (self) self->host->free(self->host, self);
}

static ply_status faulty_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)self;
    (void)n_inputs;
    *output = inputs[0];
    return PLY_OK;
}

/* Takes scratch, spoils the first half of `out`, gives the scratch back and fails. */
static ply_status fail_half_way(ply_layer *self, const char *call, int64_t number, float *out, int64_t n) {
    int64_t i;
    float *scratch = (float *)self->host->alloc(self->host, (size_t)n * sizeof(float));
    if (!scratch) return ply_errorf(self->host, PLY_ERR_OUT_OF_MEMORY, "faulty: no scratch");
    faulty_live_scratch++;
    for (i = 0; i < n; i++) scratch[i] = (float)NAN;
    if (out)
        for (i = 0; i < n / 2; i++) out[i] = scratch[i];
    self->host->free(self->host, scratch);
    faulty_live_scratch--;
    return ply_errorf(self->host, PLY_ERR_INTERNAL, "faulty: injected failure half-way through %s call %lld", call,
                      (long long)number);
}

static ply_status faulty_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    const float *x = (const float *)inputs[0].data;
    float *y = (float *)output->data;
    int64_t i, n = ply_shape_numel(&inputs[0].shape);
    (void)n_inputs;
    self->forward_calls++;
    if (self->forward_calls == self->fail_forward_at) return fail_half_way(self, "forward", self->forward_calls, y, n);
    for (i = 0; i < n; i++) y[i] = 2.0f * x[i];
    return PLY_OK;
}

static ply_status faulty_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                                  const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    const float *dy = (const float *)grad_output->data;
    float *dx = (float *)grad_inputs[0].data;
    int64_t i, n = ply_shape_numel(&inputs[0].shape);
    (void)n_inputs;
    (void)output;
    self->backward_calls++;
    if (self->backward_calls == self->fail_backward_at)
        return fail_half_way(self, "backward", self->backward_calls, dx, n);
    if (!dx) return PLY_OK;
    for (i = 0; i < n; i++) dx[i] = 2.0f * dy[i];
    return PLY_OK;
}

static ply_status huge_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)n_inputs;
    memset(output, 0, sizeof *output);
    output->ndim = 3;
    output->dims[0] = inputs[0].dims[0];
    output->dims[1] = self->size;
    output->dims[2] = self->size;
    return PLY_OK;
}

static ply_status huge_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    (void)self;
    (void)n_inputs;
    ((float *)output->data)[0] = ((const float *)inputs[0].data)[0];
    return PLY_OK;
}

static const ply_layer_type faulty_type = {
    .struct_size = sizeof(ply_layer_type), .abi_version = PLY_ABI_VERSION, .name = "faulty", .doc = "y = 2x; fails half-way through a chosen call (test plugin)",
    .min_inputs = 1, .max_inputs = 1, .create = faulty_create, .destroy = faulty_destroy, .infer_shape = faulty_infer_shape,
    .forward = faulty_forward, .backward = faulty_backward,
};
static const ply_layer_type huge_type = {
    .struct_size = sizeof(ply_layer_type), .abi_version = PLY_ABI_VERSION, .name = "huge", .doc = "output [N, size, size] (test plugin)",
    .min_inputs = 1, .max_inputs = 1, .create = faulty_create, .destroy = faulty_destroy, .infer_shape = huge_infer_shape,
    .forward = huge_forward, .backward = NULL,
};
static const ply_layer_type *const types[] = {&faulty_type, &huge_type};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = PLY_ABI_VERSION, .name = "test.faulty",
                                  .version = "1.0", .type_count = 2, .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) return NULL;
    return &plugin;
}
