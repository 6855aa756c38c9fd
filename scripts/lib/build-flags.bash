# Sourced (not run) by scripts/test, scripts/docs, scripts/sanitize and scripts/leaks: the flags of
# their SwiftPM builds, in one place, because a `swift build` or `swift package` given other flags
# than the build it finds rebuilds it.
#
# debug_build_flags: the debug build the tests run. SwiftPM's debug configuration compiles the C
#   targets (every plugin's kernels, the C API) at -O0, which nobody ships: the release build and a
#   consumer package's are optimised. -Xcc -O2 comes after SwiftPM's -O0 on clang's command line
#   and wins; the Swift code stays at -Onone with its checks, and DEBUG=1 (assert) stays defined.
#   Measured (2-vCPU AMD EPYC Zen 3, 2026-12-07): `swift test --filter
#   "ZooTests|ConvWinogradAVX2Tests|BlockedConvTests"` 227 s at -O0, 88 s at -O2.
# sanitizer_build_flags: scripts/sanitize's builds. -O1, as clang's AddressSanitizer and
#   ThreadSanitizer documentation advise for reasonable speed (at -O0 every intrinsic of the
#   kernels is a call through the stack, instrumented).
debug_build_flags=(-Xcc -O2)
sanitizer_build_flags=(-Xcc -O1)
