/* A layer type with a NULL `forward`, which every layer type must have. */
#include "common.h"

static const ply_layer_type no_forward_type = {
    sizeof(ply_layer_type), PLY_ABI_VERSION, "no_forward", "forward is NULL", 1, 1,
    common_create, common_destroy, common_infer_shape, NULL, common_backward, NULL, NULL, NULL, NULL,
};
static const ply_layer_type *const types[] = {&no_forward_type};
static const ply_plugin plugin = {sizeof(ply_plugin), PLY_ABI_VERSION, "test.null_forward", "1.0", 1, 0, types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    (void)host;
    return &plugin;
}
