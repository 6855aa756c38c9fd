/* A layer type whose struct_size ends before the required `forward` slot
 * (create, destroy and infer_shape fit; forward does not). */
#include "common.h"

static const ply_layer_type short_type = {
    .struct_size = (uint32_t)offsetof(ply_layer_type, forward), .abi_version = PLY_ABI_VERSION, .name = "short_type", .doc = "struct_size too small",
    .min_inputs = 1, .max_inputs = 1, .create = common_create, .destroy = common_destroy, .infer_shape = common_infer_shape,
    .forward = common_forward, .backward = common_backward,
};
static const ply_layer_type *const types[] = {&short_type};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = PLY_ABI_VERSION, .name = "test.small_layer_type",
                                  .version = "1.0", .type_count = 1, .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    (void)host;
    return &plugin;
}
