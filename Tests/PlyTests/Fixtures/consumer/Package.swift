// swift-tools-version:6.0
// A package that uses Ply as any other package would: by version, from a git URL, through
// the `Ply` library product alone. ConsumerPackageTests copies this folder to a temporary
// directory, replaces PLY_PACKAGE_URL with a file:// URL of a tagged clone of Ply, builds it
// with plain `swift build` and runs it.
import PackageDescription

let package = Package(
    name: "PlyConsumer",
    dependencies: [
        .package(url: "PLY_PACKAGE_URL", from: "1.0.0"),
    ],
    targets: [
        .executableTarget(
            name: "PlyConsumer",
            dependencies: [.product(name: "Ply", package: "Ply")]
        ),
    ]
)
