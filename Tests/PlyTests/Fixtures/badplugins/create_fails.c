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
    sizeof(ply_layer_type), PLY_ABI_VERSION, "picky", "create fails unless mode='strict'", 1, 1,
    picky_create, common_destroy, common_infer_shape, common_forward, common_backward, NULL, NULL, NULL, NULL,
};
static const ply_layer_type *const types[] = {&picky_type};
static const ply_plugin plugin = {sizeof(ply_plugin), PLY_ABI_VERSION, "test.create_fails", "1.0", 1, 0, types};

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    if (PLY_ABI_MAJOR_OF(host->abi_version) != PLY_ABI_VERSION_MAJOR) return NULL;
    return &plugin;
}
