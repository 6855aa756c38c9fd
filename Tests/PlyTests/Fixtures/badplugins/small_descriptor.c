/* A descriptor whose struct_size stops before `type_count` and `types`. */
#include "common.h"

COMMON_LAYER_TYPE(scale_type, "small_descriptor_scale");
static const ply_layer_type *const types[] = {&scale_type};
static const ply_plugin plugin = {
    (uint32_t)offsetof(ply_plugin, type_count), PLY_ABI_VERSION, "test.small_descriptor", "1.0", 1, 0, types,
};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    (void)host;
    return &plugin;
}
