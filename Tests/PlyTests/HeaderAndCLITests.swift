import Foundation
import Testing
@testable import Ply

/// The ABI header is the contract: it must compile on its own, strictly, as C and C++.
@Suite struct HeaderTests {
    @Test(arguments: [
        ["-x", "c", "-std=c99"], ["-x", "c", "-std=c11"], ["-x", "c++", "-std=c++11"], ["-x", "c++", "-std=c++17"],
    ])
    func headerCompilesAlone(_ language: [String]) throws {
        let dir = try CCompiler.temporaryDirectory("header")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("only_header.c")
        try "#include <ply/plugin.h>\nint ply_header_test_symbol;\n".write(to: source, atomically: true, encoding: .utf8)
        let compiler = language.contains("c++") ? "c++" : "cc"
        let result = try CCompiler.run(compiler, language + ["-Wall", "-Wextra", "-pedantic", "-Werror", "-fsyntax-only",
                                                             "-I", CCompiler.includeDirectory.path, source.path])
        #expect(result.status == 0, "\(compiler) \(language): \(result.stderr)")
    }
}

/// The `ply` executable as a user runs it.
@Suite struct CLITests {
    /// `.build/<config>/ply`, next to the test bundle.
    static let ply: URL = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("ply")
    }()

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> CCompiler.Output {
        let env = environment.map { "\($0.key)=\($0.value)" }
        return try CCompiler.run("env", env + [ply.path] + arguments)
    }

    /// The benchmarks name the OpenBLAS kernels they ran with: Ply's choice for the CPU's level, or the one
    /// OPENBLAS_CORETYPE set in the environment, which Ply leaves alone and the line says so.
    @Test func benchModelNamesTheBLASKernels() throws {
        #if arch(x86_64)
        let args = [Self.ply.path, "bench-model", "convnet", "--batch", "2", "--image-size", "28", "--channels", "1",
                    "--classes", "10", "--runs", "1", "--iterations", "1", "--warmup", "0", "--threads", "1"]
        func blasLine(_ env: [String]) throws -> String {
            let out = try CCompiler.run("env", env + args)
            try #require(out.status == 0, "\(env): \(out.stderr)")
            let lines = out.stdout.split(separator: "\n").map(String.init)
            return try #require(lines.first(where: { $0.hasPrefix("blas: ") }), "\(env): no blas line in \(out.stdout)")
        }
        let chosen = try blasLine(["-u", "OPENBLAS_CORETYPE"])
        switch cpuLevel {
        case "avx512": #expect(chosen == "blas: OpenBLAS SkylakeX")
        case "avx2": #expect(chosen == "blas: OpenBLAS Haswell")
        default: #expect(chosen.hasPrefix("blas: OpenBLAS ") && !chosen.contains("OPENBLAS_CORETYPE"), "\(chosen)")
        }
        // Prescott (SSE3) runs on every x86-64 CPU this suite does.
        #expect(try blasLine(["OPENBLAS_CORETYPE=Prescott"])
                == "blas: OpenBLAS Prescott (OPENBLAS_CORETYPE from the environment; unset, Ply picks the kernels for this CPU)")
        #endif
    }

    /// `bench-layers --training` breaks a training step down per kind and, with --layers, per layer:
    /// the first conv reads the model's input, so it has no input-gradient time ("-"); the rest do.
    @Test func benchLayersTrainingBreaksTheStepDown() throws {
        let out = try Self.run(["bench-layers", "convnet", "--training", "--layers", "--runs", "1", "--batch", "4",
                                "--image-size", "28", "--channels", "1", "--classes", "10", "--threads", "1"])
        #expect(out.status == 0, "\(out.stderr)")
        let rows = out.stdout.split(separator: "\n").map(String.init)
        for kind in ["conv 3x3", "linear", "pool", "relu", "rest of forward", "rest of backward", "optimizer", "**step**"] {
            #expect(rows.contains { $0.hasPrefix("| \(kind) |") }, "no row for \(kind): \(out.stdout)")
        }
        let conv1 = try #require(rows.first { $0.hasPrefix("| conv_1 | [4, 1, 28, 28] |") }, "\(out.stdout)")
        let conv2 = try #require(rows.first { $0.hasPrefix("| conv_2 | [4, 8, 14, 14] |") }, "\(out.stdout)")
        #expect(conv1.split(separator: "|")[4].trimmingCharacters(in: .whitespaces) == "-", "\(conv1)")
        #expect(Double(conv2.split(separator: "|")[4].trimmingCharacters(in: .whitespaces)) != nil, "\(conv2)")
    }

    @Test func pluginsListsEveryBuiltinType() throws {
        let out = try Self.run(["plugins"])
        #expect(out.status == 0, "\(out.stderr)")
        for type in ["conv2d", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "linear", "relu", "tanh", "sigmoid",
                     "flatten", "batchnorm2d", "dropout", "concat", "add", "softmax", "log_softmax", "cross_entropy"] {
            #expect(out.stdout.contains("\n\(type) "), "ply plugins does not list \(type)")
        }
        #expect(out.stdout.contains("libply_conv.so"))
    }

    /// PLY_PLUGIN_PATH names a directory holding a third-party plugin built with plain cc.
    @Test func pluginPathEnvironmentLoadsThirdPartyPlugins() throws {
        let dir = try CCompiler.temporaryDirectory("plugin-path")
        defer { try? FileManager.default.removeItem(at: dir) }
        try CCompiler.compile(CCompiler.repositoryRoot.appendingPathComponent("Examples/plugin/leaky_relu.c"),
                              to: dir.appendingPathComponent("libleaky_relu.so"), extraFlags: ["-lm"])
        let out = try Self.run(["plugins"], environment: ["PLY_PLUGIN_PATH": dir.path])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("leaky_relu"))
        #expect(out.stdout.contains(dir.appendingPathComponent("libleaky_relu.so").path))
    }

    @Test func badPluginPathIsAClearErrorNotACrash() throws {
        let out = try Self.run(["plugins"], environment: ["PLY_PLUGIN_PATH": "/nonexistent/libnope.so"])
        #expect(out.status == 1)
        #expect(out.stderr.contains("/nonexistent/libnope.so") && out.stderr.contains("no such file"), "\(out.stderr)")
    }

    /// `--no-user-libraries`: a model file naming a shared library (`library:` of
    /// user_activation, which would run that library's code) is refused at create.
    @Test func noUserLibrariesRefusesModelFilesNamingALibrary() throws {
        let dir = try CCompiler.temporaryDirectory("no-user-libraries")
        defer { try? FileManager.default.removeItem(at: dir) }
        let library = try CCompiler.compile(CCompiler.repositoryRoot.appendingPathComponent("Examples/activations/activations.c"),
                                            to: dir.appendingPathComponent("libactivations.so"), extraFlags: ["-lm"])
        let model = dir.appendingPathComponent("act.yaml")
        try """
            model: act
            layers:
              - {name: act, type: user_activation, library: "\(library)", symbol: swish, signature: "float(float)"}
              - {name: flat, type: flatten}
            """.write(to: model, atomically: true, encoding: .utf8)
        let allowed = try Self.run(["summary", model.path])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        let refused = try Self.run(["summary", "--no-user-libraries", model.path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("switched off") && refused.stderr.contains(library), "\(refused.stderr)")
    }

    @Test func badDataDirectoryIsAClearError() throws {
        let out = try Self.run(["train", "--data", "/nonexistent-data", "--epochs", "1"])
        #expect(out.status != 0)
        #expect(out.stderr.contains("/nonexistent-data"), "\(out.stderr)")
    }
}
