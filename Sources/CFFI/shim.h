/* libffi for Swift (Sources/Ply/Activations/ClosureActivation.swift): Debian's
 * libffi-dev installs ffi.h in the multiarch include directory, which the C
 * compiler searches by default; pkg-config libffi adds anything else. */
#include <ffi.h>
