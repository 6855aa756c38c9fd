import Foundation
import Testing
@testable import Ply

/// Builds plugin libraries at test time with the system C compiler, the way a third party
/// would: plain `cc` against Include/ply/plugin.h, no SwiftPM, no Swift runtime.
enum CCompiler {
    /// The root of the Ply checkout (this file is Tests/PlyTests/CCompiler.swift).
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// The directory holding `ply/plugin.h`.
    static let includeDirectory = repositoryRoot.appendingPathComponent("Include")
    /// C sources of the deliberately broken plugins.
    static let badPlugins = fixtures.appendingPathComponent("badplugins")

    /// Flags every test plugin is built with: strict C99, warnings are errors.
    static let strictFlags = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-shared", "-fPIC"]

    /// The output of a finished child process.
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `tool` (found on PATH through /usr/bin/env) with `arguments`. Output goes through
    /// files, not pipes, so a chatty tool cannot block on a full pipe.
    static func run(_ tool: String, _ arguments: [String]) throws -> Output {
        let scratch = try temporaryDirectory("run-\(tool)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout"), errURL = scratch.appendingPathComponent("stderr")
        guard FileManager.default.createFile(atPath: outURL.path, contents: nil),
              FileManager.default.createFile(atPath: errURL.path, contents: nil) else {
            throw PlyError.invalid("cannot create output files in \(scratch.path) for \(tool)")
        }
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        defer { try? out.close(); try? err.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        return Output(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// Whether `tool` can be run at all (e.g. `readelf`, which not every system has).
    static func available(_ tool: String) -> Bool {
        (try? run(tool, ["--version"]).status) == 0
    }

    /// Compiles `source` into the shared library `output` with `strictFlags` plus `extraFlags`;
    /// the compiler's diagnostics become the thrown error.
    @discardableResult
    static func compile(_ source: URL, to output: URL, extraFlags: [String] = []) throws -> String {
        let args = strictFlags + extraFlags + ["-I", includeDirectory.path, source.path, "-o", output.path]
        let result = try run("cc", args)
        guard result.status == 0 else {
            throw PlyError.invalid("cc \(args.joined(separator: " ")) failed (status \(result.status)):\n\(result.stderr)")
        }
        return output.path
    }

    /// Compiles Fixtures/badplugins/`name`.c into `directory`/lib`library ?? name`.so.
    @discardableResult
    static func compileBadPlugin(_ name: String, into directory: URL, library: String? = nil,
                                 extraFlags: [String] = []) throws -> String {
        try compile(badPlugins.appendingPathComponent("\(name).c"),
                    to: directory.appendingPathComponent("lib\(library ?? name).so"), extraFlags: extraFlags)
    }

    /// A new, empty directory unique to the caller (tests run in parallel).
    static func temporaryDirectory(_ tag: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("ply-\(tag)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Log messages a runtime emitted, collected for assertions.
final class LogRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(LogLevel, String)] = []

    func record(_ level: LogLevel, _ message: String) { lock.withLock { entries.append((level, message)) } }
    var messages: [String] { lock.withLock { entries.map(\.1) } }
}

/// A runtime of its own, so a test that loads plugins does not change `sharedRuntime`'s
/// registry; built-ins are loaded, `PLY_PLUGIN_PATH` is ignored.
func isolatedRuntime(builtins: Bool = true, log: LogRecorder? = nil) throws -> Runtime {
    var options = Runtime.Options()
    options.loadBuiltins = builtins
    options.useEnvironment = false
    options.threads = 2
    if let log { options.log = { level, message in log.record(level, message) } } else { options.log = { _, _ in } }
    return try Runtime(options: options)
}

/// Checks that `runtime` still creates and runs a built-in layer (relu) correctly: whatever
/// failed before did not damage the host.
func expectHostSurvives(_ runtime: Runtime, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let relu = try Layer("relu", runtime: runtime)
    let out = try relu.forward([try Tensor(shape: [1, 4], data: [-2, -0.5, 0, 3])])
    #expect(out.data == [0, 0, 0, 3], "built-in relu after the failure", sourceLocation: sourceLocation)
}
