/* Gives SwiftPM a compiled unit, so edits to Include/ply/plugin.h rebuild
 * everything that imports CPly. */
#include "cply.h"

uint32_t cply_abi_version(void) { return PLY_ABI_VERSION; }
