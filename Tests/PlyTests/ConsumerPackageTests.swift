import Foundation
import Testing
@testable import Ply

/// Ply's Swift front door from the outside: a package in a temporary directory that names Ply
/// by version from a git URL (a `file://` URL of a tagged copy of this checkout), depends on
/// the `Ply` library product alone, builds with plain `swift build` and runs. Its program
/// (Fixtures/consumer) checks that `Runtime()` has every built-in layer type and that a few
/// training steps of the ConvNet lower the loss.
///
/// `PLY_SKIP_CONSUMER_TEST=1` skips it (the sanitizer pass of CI does: it would rebuild Ply a
/// second time to prove the same thing).
@Suite(.serialized) struct ConsumerPackageTests {
    static let skip = ProcessInfo.processInfo.environment["PLY_SKIP_CONSUMER_TEST"] == "1"

    @Test(.enabled(if: !skip), .timeLimit(.minutes(20)))
    func packageDependingOnPlyByVersionTrains() throws {
        let work = try CCompiler.temporaryDirectory("consumer")
        defer { try? FileManager.default.removeItem(at: work) }

        // A git repository holding this checkout's files (tracked and new, not ignored: what
        // a commit of the working tree would hold), tagged with a release version.
        let ply = work.appendingPathComponent("Ply")
        try FileManager.default.createDirectory(at: ply, withIntermediateDirectories: true)
        let root = CCompiler.repositoryRoot.path
        let listed = try CCompiler.run("git", ["-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        try #require(listed.status == 0, "git ls-files: \(listed.stderr)")
        for file in listed.stdout.split(separator: "\0").map(String.init) {
            let source = URL(fileURLWithPath: root).appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: source.path) else { continue }   // deleted, not yet committed
            let target = ply.appendingPathComponent(file)
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: source, to: target)
        }
        for args in [["init", "-q"], ["add", "-A"],
                     ["-c", "user.name=Ply tests", "-c", "user.email=tests@ply.invalid", "commit", "-q", "-m", "release"],
                     ["tag", "1.0.0"]] {
            let r = try CCompiler.run("git", ["-C", ply.path] + args)
            try #require(r.status == 0, "git \(args.joined(separator: " ")): \(r.stderr)")
        }

        // The consumer package, pointed at that repository by URL and version.
        let consumer = work.appendingPathComponent("consumer")
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("consumer"), to: consumer)
        let manifest = consumer.appendingPathComponent("Package.swift")
        let text = try String(contentsOf: manifest, encoding: .utf8)
            .replacingOccurrences(of: "PLY_PACKAGE_URL", with: "file://\(ply.path)")
        try text.write(to: manifest, atomically: true, encoding: .utf8)

        let build = try CCompiler.run("swift", ["build", "--package-path", consumer.path])
        try #require(build.status == 0, "swift build of the consumer failed:\n\(build.stdout.suffix(4000))\n\(build.stderr.suffix(4000))")
        #expect(!build.stdout.contains("unsafe"), "\(build.stdout)")

        let bin = try CCompiler.run("swift", ["build", "--package-path", consumer.path, "--show-bin-path"])
        let binDir = bin.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // Nothing to dlopen: the layers are linked into the consumer's program.
        let built = (try? FileManager.default.contentsOfDirectory(atPath: binDir)) ?? []
        #expect(!built.contains { $0.hasPrefix("libply_") }, "plugin libraries were built for the consumer: \(built)")

        let run = try CCompiler.run(URL(fileURLWithPath: binDir).appendingPathComponent("PlyConsumer").path, [])
        #expect(run.status == 0, "consumer exited \(run.status):\n\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("consumer: ok"), "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("linked into"), "the layer types should come linked in:\n\(run.stdout)")
    }
}
