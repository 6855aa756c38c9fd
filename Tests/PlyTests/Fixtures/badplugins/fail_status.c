/* A layer type `fail_status` that fails with the status it is given, so that
 * tests can check that a plugin's own ply_status reaches C callers unchanged:
 * `status: N` (a ply_status) and `call: create | infer_shape | forward`
 * (default forward). Otherwise y = SCALE * x. */
#include "common.h"

struct failing {
    struct ply_layer base; /* first: common_* take it as the layer */
    int64_t status;
    int call; /* 0 create, 1 infer_shape, 2 forward */
};

static ply_status fs_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    int64_t status = PLY_ERR_INTERNAL;
    const char *call = "forward";
    struct failing *self;
    ply_status st = host->attr_int(host, attrs, "status", &status);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    st = host->attr_string(host, attrs, "call", &call);
    if (st != PLY_OK && st != PLY_ERR_NOT_FOUND) return st;
    if (strcmp(call, "create") == 0)
        return ply_errorf(host, (ply_status)status, "fail_status: create fails with status %d as asked", (int)status);
    self = (struct failing *)host->alloc(host, sizeof *self);
    if (!self) return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "out of memory");
    self->base.host = host;
    self->base.scale = SCALE;
    self->status = status;
    self->call = strcmp(call, "infer_shape") == 0 ? 1 : 2;
    *out = &self->base;
    return PLY_OK;
}

static ply_status fs_infer_shape(ply_layer *layer, int32_t n_inputs, const ply_shape *inputs, ply_shape *output) {
    struct failing *self = (struct failing *)layer;
    if (self->call == 1)
        return ply_errorf(layer->host, (ply_status)self->status, "fail_status: infer_shape fails with status %d",
                          (int)self->status);
    return common_infer_shape(layer, n_inputs, inputs, output);
}

static ply_status fs_forward(ply_layer *layer, int32_t n_inputs, const ply_tensor *inputs, ply_tensor *output) {
    struct failing *self = (struct failing *)layer;
    if (self->call == 2)
        return ply_errorf(layer->host, (ply_status)self->status, "fail_status: forward fails with status %d",
                          (int)self->status);
    return common_forward(layer, n_inputs, inputs, output);
}

static const ply_layer_type fail_type = {
    .struct_size = sizeof(ply_layer_type), .abi_version = PLY_ABI_VERSION, .name = "fail_status",
    .doc = "fails with the status it is given", .min_inputs = 1, .max_inputs = 1, .create = fs_create,
    .destroy = common_destroy, .infer_shape = fs_infer_shape, .forward = fs_forward, .backward = common_backward,
};
static const ply_layer_type *const types[] = {&fail_type};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = PLY_ABI_VERSION,
                                  .name = "test.fail_status", .version = "1.0", .type_count = 1, .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) return NULL;
    return &plugin;
}
