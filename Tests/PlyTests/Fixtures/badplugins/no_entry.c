/* A shared library with a valid-looking descriptor but no `ply_plugin_entry`
 * symbol: it exports the entry under another name. */
#include "common.h"

COMMON_LAYER_TYPE(scale_type, "no_entry_scale");
static const ply_layer_type *const types[] = {&scale_type};
static const ply_plugin plugin = {sizeof(ply_plugin), PLY_ABI_VERSION, "test.no_entry", "1.0", 1, 0, types};

PLY_EXPORT const ply_plugin *ply_plugin_main(const ply_host *host) {
    (void)host;
    return &plugin;
}
