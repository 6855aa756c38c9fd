/* A descriptor that claims to be built against Ply ABI 2.3. */
#include "common.h"

#define FUTURE_ABI ((uint32_t)((2u << 16) | 3u))

COMMON_LAYER_TYPE(scale_type, "abi_major2_scale");
static const ply_layer_type *const types[] = {&scale_type};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = FUTURE_ABI, .name = "test.abi_major2",
                                  .version = "1.0", .type_count = 1, .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    (void)host;
    return &plugin;
}
