/* A plugin that registers `relu`, a name the built-in activation plugin
 * already provides, next to a type of its own. All or nothing: neither may
 * be registered. */
#include "common.h"

COMMON_LAYER_TYPE(own_type, "clash_own_type");
COMMON_LAYER_TYPE(relu_type, "relu");
static const ply_layer_type *const types[] = {&own_type, &relu_type};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = PLY_ABI_VERSION, .name = "test.builtin_clash",
                                  .version = "1.0", .type_count = 2, .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) return NULL;
    return &plugin;
}
