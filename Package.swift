// swift-tools-version:6.0
import PackageDescription

/// Every built-in layer plugin: (folder under Plugins/, library name).
/// Each becomes its own shared library `lib<name>.so`, found by the runtime
/// next to the `ply` executable.
let plugins: [(folder: String, library: String, blas: Bool)] = [
    ("Activation", "ply_activation", false),  // relu, tanh, sigmoid, softmax, log_softmax,
                                              // hardtanh, relu6, leakyrelu, hardswish, hardsigmoid
    ("BatchNorm", "ply_batchnorm", false),    // batchnorm2d, scale
    ("Conv", "ply_conv", true),               // conv2d
    ("Dropout", "ply_dropout", false),        // dropout
    ("Inception", "ply_inception", false),    // basic_conv2d, inception_googlenet, inception_v3_{a,b,c,d,e,aux}
    ("Join", "ply_join", false),              // concat, add, mul
    ("Linear", "ply_linear", true),           // linear
    ("Loss", "ply_loss", false),              // cross_entropy
    ("Pooling", "ply_pooling", false),        // maxpool2d, avgpool2d, adaptive_avgpool2d
    ("Reshape", "ply_reshape", false),        // flatten, pad2d
    ("Residual", "ply_residual", false),      // residual_basic, residual_bottleneck
    ("Resize", "ply_resize", false),          // interpolate
    ("UserActivation", "ply_user_activation", false),  // user_activation (libffi; links ffi and dl)
]

/// CBLAS: OpenBLAS on Linux (Debian's libopenblas-dev), Accelerate on Apple platforms.
let blasLinkage: [LinkerSetting] = [
    .linkedLibrary("openblas", .when(platforms: [.linux, .android, .windows])),
    .linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS, .tvOS, .watchOS, .visionOS])),
]

/// Each family is one C target compiled once, for the baseline of its architecture: no
/// `-march`, no `unsafeFlags` (SwiftPM refuses those in a package resolved by version).
/// Faster paths are per-function `target` attributes chosen at run time
/// (Plugins/Support/plugin_support.h). The same objects go two ways: into the family's own
/// shared library (`lib<name>.so`, dlopen()ed by `ply`, the C library and other hosts) and,
/// through PlyBuiltins, into the `Ply` library product.
let pluginTargets: [Target] = plugins.map { plugin in
    .target(
        name: "PlyPlugin\(plugin.folder)",
        path: "Plugins/\(plugin.folder)",
        publicHeadersPath: ".",
        cSettings: [
            .headerSearchPath("../../Include"),
            .headerSearchPath("../Support"),
            .define("ACCELERATE_NEW_LAPACK", .when(platforms: [.macOS, .iOS, .tvOS, .watchOS, .visionOS])),
        ],
        linkerSettings: (plugin.blas ? blasLinkage : []) + [.linkedLibrary("m", .when(platforms: [.linux, .android]))]
            + (plugin.folder == "UserActivation"
                ? [.linkedLibrary("ffi"), .linkedLibrary("dl", .when(platforms: [.linux, .android]))] : [])
    )
}

let pluginProducts: [Product] = plugins.map { plugin in
    .library(name: plugin.library, type: .dynamic, targets: ["PlyPlugin\(plugin.folder)"])
}

let package = Package(
    name: "Ply",
    products: [
        // What a package that depends on Ply uses: the Swift library with every built-in
        // layer family linked in (PlyBuiltins registers them with the runtime at load).
        .library(name: "Ply", targets: ["Ply", "PlyBuiltins"]),
        // ONNX import and export (docs/onnx.md): its own product, so a package that only runs Ply
        // models does not compile swift-protobuf; the `ply` tool includes it.
        .library(name: "PlyONNX", targets: ["PlyONNX"]),
        .executable(name: "ply", targets: ["PlyTool"]),
        // The `ply` tool's commands as a library: for Fuzz/'s option-parsing fuzzer, not a stable API.
        .library(name: "PlyCLI", targets: ["PlyCLI"]),
        .executable(name: "ply-swift-example", targets: ["PlySwiftExample"]),
        .executable(name: "ply-swift-distributed-example", targets: ["PlySwiftDistributedExample"]),
        // LeakTests' and scripts/leaks' runtime/model cycles, in a process of their own (not installed).
        .executable(name: "ply-leak-cycles", targets: ["PlyLeakCycles"]),
        // Conformance checker for plugin authors (C only; also builds with plain cc).
        .executable(name: "ply-plugin-check", targets: ["PlyPluginCheck"]),
        // The C API (Include/ply/ply.h): libPlyC.so, installed as libply.so by scripts/install.
        // Not named ply_*: the runtime loads every libply_*.so next to it as a plugin.
        .library(name: "PlyC", type: .dynamic, targets: ["PlyCAPI"]),
    ] + pluginProducts,
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .target(name: "CPly", path: "Sources/CPly", cSettings: [.headerSearchPath("../../Include")], linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux, .android]))]),
        // The built-in families linked into the Swift library product, registered through the
        // same entry and vtables as when loaded from their own shared libraries.
        .target(
            name: "PlyBuiltins",
            dependencies: ["CPly"] + plugins.map { .target(name: "PlyPlugin\($0.folder)") },
            path: "Sources/PlyBuiltins",
            cSettings: [.headerSearchPath("../../Include")]
        ),
        .systemLibrary(name: "CFFI", path: "Sources/CFFI", pkgConfig: "libffi", providers: [.apt(["libffi-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .target(name: "Ply", dependencies: ["CPly", "CFFI", "CPNG", "CTurboJPEG", .product(name: "Yams", package: "Yams")], path: "Sources/Ply"),
        // ONNX <-> Ply model file + safetensors. onnx.pb.swift is generated once and committed
        // (no protoc build plugin: it would add minutes to every clean build).
        .target(
            name: "PlyONNX",
            dependencies: ["Ply", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Sources/PlyONNX"
        ),
        .target(name: "CPlyAPI", path: "Sources/CPlyAPI"),
        .target(name: "PlyCAPI", dependencies: ["Ply", "CPlyAPI", .product(name: "Yams", package: "Yams")], path: "Sources/PlyCAPI"),
        .executableTarget(name: "PlySwiftExample", dependencies: ["Ply", "PlyBuiltins"], path: "Examples/swift"),
        .executableTarget(name: "PlySwiftDistributedExample", dependencies: ["Ply", "PlyBuiltins"],
                          path: "Examples/swift-distributed", exclude: ["README.md"]),
        .executableTarget(name: "PlyLeakCycles", dependencies: ["Ply", "CPly"], path: "Tests/LeakCycles"),
        .executableTarget(
            name: "PlyPluginCheck",
            path: "Sources/PlyPluginCheck",
            cSettings: [.headerSearchPath("../../Include")],
            linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux])), .linkedLibrary("m")]
        ),
        // The `ply` commands as a library, so the option-parsing fuzzer (Fuzz/) can call them.
        .target(
            name: "PlyCLI",
            dependencies: ["Ply", "PlyONNX", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/PlyCLI"
        ),
        .executableTarget(name: "PlyTool", dependencies: ["PlyCLI"], path: "Sources/PlyTool"),
        .testTarget(name: "PlyTests", dependencies: ["Ply", "PlyBuiltins", "PlyONNX"], path: "Tests/PlyTests", exclude: ["Fixtures"]),
    ] + pluginTargets,
    swiftLanguageModes: [.v6]
)
