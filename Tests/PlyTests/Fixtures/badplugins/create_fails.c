/* A layer type `picky` whose create refuses anything but mode='strict', with
 * its own message. */
#include "common.h"

static ply_status picky_create(const ply_host *host, const ply_attrs *attrs, ply_layer **out) {
    const char *mode = NULL;
    ply_status st = host->attr_string(host, attrs, "mode", &mode);
    if (st == PLY_ERR_NOT_FOUND) return ply_errorf(host, st, "picky: missing attribute 'mode'");
    if (st != PLY_OK) return st;
    if (strcmp(mode, "strict") != 0)
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT, "picky: mode must be 'strict' (got '%s')", mode);
    return common_create(host, attrs, out);
}

static const ply_layer_type picky_type = {
    .struct_size = sizeof(ply_layer_type), .abi_version = PLY_ABI_VERSION, .name = "picky", .doc = "create fails unless mode='strict'",
    .min_inputs = 1, .max_inputs = 1, .create = picky_create, .destroy = common_destroy, .infer_shape = common_infer_shape,
    .forward = common_forward, .backward = common_backward,
};
static const ply_layer_type *const types[] = {&picky_type};
static const ply_plugin plugin = {.struct_size = sizeof(ply_plugin), .abi_version = PLY_ABI_VERSION, .name = "test.create_fails",
                                  .version = "1.0", .type_count = 1, .types = types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) return NULL;
    return &plugin;
}
