/* A descriptor that claims to be built against Ply ABI 2.3. */
#include "common.h"

#define FUTURE_ABI ((uint32_t)((2u << 16) | 3u))

COMMON_LAYER_TYPE(scale_type, "abi_major2_scale");
static const ply_layer_type *const types[] = {&scale_type};
static const ply_plugin plugin = {sizeof(ply_plugin), FUTURE_ABI, "test.abi_major2", "1.0", 1, 0, types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    (void)host;
    return &plugin;
}
