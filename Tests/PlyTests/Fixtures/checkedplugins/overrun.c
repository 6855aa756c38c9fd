/*
 * A plugin that writes past the end of the buffers the host hands it, for
 * Tests/PlyTests/CheckedPluginTests.swift (checked mode, PLY_CHECK_PLUGINS). Built at test
 * time with `cc -std=c99 -Wall -Wextra -pedantic -Werror -shared -fPIC -I Include`.
 *
 *   overrun  y = x. Attribute `where` picks the fault (0 = none): 1 writes `bytes` bytes
 *            past the output in forward, 2 past the input gradient in backward, 3 past a
 *            scratch block from the host's alloc in forward (freed before returning), 4 past
 *            a block from the host's alloc that the layer keeps (taken in create, written in
 *            forward). `bytes` defaults to 4 (one float).
 */
#include <stddef.h>
#include <string.h>

#include "ply/plugin.h"

struct ply_layer {
    const ply_host *host;
    int64_t where, bytes;
    unsigned char *kept;
};

enum { KEPT_BYTES = 96 };

static ply_status read_int(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t fallback,
                           int64_t *out) {
    ply_status st = host->attr_int(host, attrs, name, out);
    if (st == PLY_ERR_NOT_FOUND) {
        *out = fallback;
        return PLY_OK;
    }
    return st;
}

static ply_status overrun_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    ply_layer *self = (ply_layer *)host->alloc(host, sizeof *self);
    ply_status st;
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "overrun: out of memory");
    memset(self, 0, sizeof *self);
    self->host = host;
    if ((st = read_int(host, attrs, "where", 0, &self->where)) != PLY_OK ||
        (st = read_int(host, attrs, "bytes", 4, &self->bytes)) != PLY_OK) {
        host->free(host, self);
        return st;
    }
    self->kept = (unsigned char *)host->alloc(host, KEPT_BYTES);
    if (!self->kept) {
        host->free(host, self);
        return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "overrun: out of memory");
    }
    *out = self;
    return PLY_OK;
}

static void overrun_destroy(ply_layer *self) {
    if (!self) return;
    self->host->free(self->host, self->kept);
    self->host->free(self->host, self);
}

static ply_status overrun_infer_shape(ply_layer *self, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    (void)self;
    (void)n_inputs;
    *output = inputs[0];
    return PLY_OK;
}

/* Writes `bytes` bytes of 0x5A just past `size` bytes at `p`. */
static void spoil(void *p, size_t size, int64_t bytes) {
    if (p && bytes > 0) memset((unsigned char *)p + size, 0x5A, (size_t)bytes);
}

static ply_status overrun_forward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    int64_t n = ply_shape_numel(&inputs[0].shape);
    size_t size = (size_t)n * sizeof(float);
    (void)n_inputs;
    memcpy(output->data, inputs[0].data, size);
    if (self->where == 1) spoil(output->data, size, self->bytes);
    if (self->where == 3) {
        void *scratch = self->host->alloc(self->host, size);
        if (!scratch) return ply_errorf(self->host, PLY_ERR_OUT_OF_MEMORY, "overrun: no scratch");
        memset(scratch, 0, size);
        spoil(scratch, size, self->bytes);
        self->host->free(self->host, scratch);
    }
    if (self->where == 4) spoil(self->kept, KEPT_BYTES, self->bytes);
    return PLY_OK;
}

static ply_status overrun_backward(ply_layer *self, int32_t n_inputs, const ply_tensor *inputs, const ply_tensor *output,
                                   const ply_tensor *grad_output, ply_tensor *grad_inputs) {
    int64_t n = ply_shape_numel(&inputs[0].shape);
    size_t size = (size_t)n * sizeof(float);
    (void)n_inputs;
    (void)output;
    if (!grad_inputs[0].data) return PLY_OK;
    memcpy(grad_inputs[0].data, grad_output->data, size);
    if (self->where == 2) spoil(grad_inputs[0].data, size, self->bytes);
    return PLY_OK;
}

static const ply_layer_type overrun_type = {
    .struct_size = sizeof(ply_layer_type), .abi_version = PLY_ABI_VERSION, .name = "overrun",
    .doc = "y = x; writes past a chosen buffer (test plugin)", .min_inputs = 1, .max_inputs = 1,
    .create = overrun_create, .destroy = overrun_destroy, .infer_shape = overrun_infer_shape,
    .forward = overrun_forward, .backward = overrun_backward,
};
static const ply_layer_type *const types[] = {&overrun_type};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = PLY_ABI_VERSION,
                                  .name = "test.overrun", .version = "1.0", .type_count = 1, .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) return NULL;
    return &plugin;
}
