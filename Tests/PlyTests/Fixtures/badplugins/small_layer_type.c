/* A layer type whose struct_size ends before the required `forward` slot
 * (create, destroy and infer_shape fit; forward does not). */
#include "common.h"

static const ply_layer_type short_type = {
    (uint32_t)offsetof(ply_layer_type, forward), PLY_ABI_VERSION, "short_type", "struct_size too small", 1, 1,
    common_create, common_destroy, common_infer_shape, common_forward, common_backward, NULL, NULL, NULL, NULL,
};
static const ply_layer_type *const types[] = {&short_type};
static const ply_plugin plugin = {sizeof(ply_plugin), PLY_ABI_VERSION, "test.small_layer_type", "1.0", 1, 0, types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    (void)host;
    return &plugin;
}
