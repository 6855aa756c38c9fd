/* A valid plugin with the layer type `acme_scale` (y = SCALE * x). The tests
 * build it twice, with different -DSCALE, into two libraries that both
 * claim the same type name. */
#include "common.h"

COMMON_LAYER_TYPE(scale_type, "acme_scale");
static const ply_layer_type *const types[] = {&scale_type};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = PLY_ABI_VERSION, .name = "test.duplicate",
                                  .version = "1.0", .type_count = 1, .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) return NULL;
    return &plugin;
}
