/* Registers the built-in families linked into this image with the runtime (see
 * include/ply_builtins.h). Each family's entry has its own name,
 * ply_builtin_entry_<family> (PLY_BUILTIN_ENTRY in Plugins/Support/plugin_support.h):
 * the very function its shared library exports as ply_plugin_entry, so a linked family
 * and a loaded one register the same descriptor and vtables. */
#include "ply_builtins.h"

#include "cply.h"

#define FAMILIES(X) \
    X(activation) X(batchnorm) X(conv) X(dropout) X(inception) X(join) X(linear) X(loss) X(pooling) \
    X(reshape) X(residual) X(resize) X(user_activation)

#define DECLARE(family) const ply_plugin *ply_builtin_entry_##family(const ply_host *host);
FAMILIES(DECLARE)

/* Library names as the shared-library builds are called (lib<name>.so), for `ply plugins`. */
#define ENTRY(family) {.name = "ply_" #family, .entry = ply_builtin_entry_##family},
static const cply_linked_plugin families[] = {FAMILIES(ENTRY)};

int32_t ply_builtins_family_count(void) { return (int32_t)(sizeof families / sizeof families[0]); }

/* Runs when the image holding this target is loaded, before main and before any
 * Runtime exists: it only stores the table's address. */
__attribute__((constructor)) static void ply_builtins_register(void) {
    cply_link_plugins(families, ply_builtins_family_count());
}
