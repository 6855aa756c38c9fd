/* A layer type with a NULL `forward`, which every layer type must have. */
#include "common.h"

static const ply_layer_type no_forward_type = {
    .struct_size = sizeof(ply_layer_type), .abi_version = PLY_ABI_VERSION, .name = "no_forward", .doc = "forward is NULL",
    .min_inputs = 1, .max_inputs = 1, .create = common_create, .destroy = common_destroy, .infer_shape = common_infer_shape,
    .forward = NULL, .backward = common_backward,
};
static const ply_layer_type *const types[] = {&no_forward_type};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = PLY_ABI_VERSION, .name = "test.null_forward",
                                  .version = "1.0", .type_count = 1, .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    (void)host;
    return &plugin;
}
