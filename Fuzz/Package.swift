// swift-tools-version:6.0
// libFuzzer targets for every reader of outside input (see RELIABILITY.md and scripts/fuzz).
// A package of its own so the fuzzing flags never touch the main build or CI. Build with
//
//   swift build -c release --package-path Fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
//     -Xcc -fsanitize=fuzzer-no-link,address
//
// (scripts/fuzz does this). Each target defines LLVMFuzzerTestOneInput; libFuzzer supplies main.
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name, so work it out rather than assume
// the checkout is called "main" (worktrees and clones get other names).
let plyIdentity = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

let ply = Target.Dependency.product(name: "Ply", package: plyIdentity)
/// Every fuzzer also links FuzzDriver, which supplies the `<Target>_main` SwiftPM aliases main to.
let driver = Target.Dependency.target(name: "FuzzDriver")

/// The built-in plugins FuzzModelFile builds models with. Depending on their products puts
/// libply_*.so next to the fuzzer, where it loads them from. user_activation is left out on
/// purpose: a model naming it loads a library or calls an address the text gives.
let plugins = ["ply_activation", "ply_batchnorm", "ply_conv", "ply_dropout", "ply_inception", "ply_join",
               "ply_linear", "ply_loss", "ply_pooling", "ply_reshape", "ply_residual", "ply_resize"]

let package = Package(
    name: "PlyFuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "FuzzIDX", dependencies: [ply, driver]),
        .executableTarget(name: "FuzzSafeTensors", dependencies: [ply, driver]),
        .executableTarget(name: "FuzzModelFile",
                          dependencies: [ply, driver] + plugins.map { .product(name: $0, package: plyIdentity) }),
        .executableTarget(name: "FuzzNumPy", dependencies: [ply, driver]),
        .executableTarget(name: "FuzzCLI", dependencies: [.product(name: "PlyCLI", package: plyIdentity), driver]),
        .executableTarget(name: "FuzzONNX",
                          dependencies: [ply, driver, .product(name: "PlyONNX", package: plyIdentity)]
                              + plugins.map { .product(name: $0, package: plyIdentity) }),
        .executableTarget(name: "FuzzCheckpoint",
                          dependencies: [ply, driver, .product(name: "ply_linear", package: plyIdentity)]),
    ],
    swiftLanguageModes: [.v6]
)
