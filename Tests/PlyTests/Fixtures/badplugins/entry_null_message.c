/* An entry that refuses to load and says why through host->set_error. */
#include "common.h"

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    host->set_error(host, PLY_ERR_UNSUPPORTED, "test.entry_null_message needs an accelerator and found none");
    return NULL;
}
