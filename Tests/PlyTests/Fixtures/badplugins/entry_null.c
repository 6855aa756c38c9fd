/* An entry that returns NULL without saying why. */
#include "common.h"

PLY_EXPORT const ply_plugin *ply_plugin_entry(const ply_host *host) {
    (void)host;
    return NULL;
}
