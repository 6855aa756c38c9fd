/*
 * The entry points of the fuzzers.
 *
 * On Linux SwiftPM links every executable with `--defsym main=<Target>_main` (so tests can
 * import executable targets) and expects the Swift module to emit <Target>_main. Under
 * -parse-as-library nothing does, so the link fails with "undefined symbol
 * 'FuzzIDX_main'". Each <Target>_main below hands control to libFuzzer's driver with the
 * target's LLVMFuzzerTestOneInput (defined in Swift with @_cdecl), which is what
 * libFuzzer's own main would do. Should SwiftPM stop adding the alias, libFuzzer's main is
 * used and these functions are simply never called.
 */
#include <stddef.h>
#include <stdint.h>

#include "FuzzDriver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *, size_t));

#define PLY_FUZZ_MAIN(target) \
    int target##_main(int argc, char **argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }

PLY_FUZZ_MAIN(FuzzIDX)
PLY_FUZZ_MAIN(FuzzSafeTensors)
PLY_FUZZ_MAIN(FuzzModelFile)
PLY_FUZZ_MAIN(FuzzNumPy)
PLY_FUZZ_MAIN(FuzzCheckpoint)
PLY_FUZZ_MAIN(FuzzCLI)
PLY_FUZZ_MAIN(FuzzONNX)
