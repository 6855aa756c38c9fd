/* A shared library with a valid-looking descriptor but no `ply_plugin_entry`
 * symbol: it exports the entry under another name. */
#include "common.h"

COMMON_LAYER_TYPE(scale_type, "no_entry_scale");
static const ply_layer_type *const types[] = {&scale_type};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = PLY_ABI_VERSION, .name = "test.no_entry",
                                  .version = "1.0", .type_count = 1, .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_main(const ply_host *host) {
    (void)host;
    return &plugin;
}
