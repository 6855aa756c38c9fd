import Foundation
import Testing
@testable import Ply

/// `ply-plugin-check` (Sources/PlyPluginCheck), the conformance checker for plugin authors, run
/// as a child process the way an author runs it: on every built-in plugin with the golden
/// cases (all must pass), on the example plugin built with plain `cc`, on a plugin whose
/// backward is wrong (the central-difference check must catch it) and on broken plugins.
@Suite struct PluginCheckTests {
    /// The build directory: the test bundle, the plugins and ply-plugin-check are side by side.
    static let buildDirectory = CAPITests.buildDirectory
    static let goldenDirectory = fixtures.appendingPathComponent("golden/layers").path

    /// The built-in plugin libraries of this build, by file name.
    static let builtins: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: buildDirectory)) ?? []
        return names.filter { $0.hasPrefix("libply_") && $0.hasSuffix(".so") }.sorted()
    }()

    static func checker() throws -> String {
        let path = (buildDirectory as NSString).appendingPathComponent("ply-plugin-check")
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw PlyError.invalid("\(path) is missing: run `swift build` before `swift test --skip-build`")
        }
        return path
    }

    static func check(_ arguments: [String]) throws -> CCompiler.Output {
        try CCompiler.run(try checker(), arguments)
    }

    /// The summary line's counts.
    static func summary(_ output: CCompiler.Output) -> String {
        output.stdout.split(separator: "\n").last { $0.hasPrefix("ply-plugin-check: ") }.map(String.init) ?? "(no summary)"
    }

    @Test func builtinsArePresent() {
        #expect(Self.builtins.count >= 13, "\(Self.builtins)")
    }

    /// Every built-in plugin, with the others loaded for the blocks' children, against every
    /// golden case whose op it provides.
    @Test(arguments: builtins)
    func builtinPasses(_ library: String) throws {
        let path = (Self.buildDirectory as NSString).appendingPathComponent(library)
        var args: [String] = []
        for other in Self.builtins where other != library {
            args += ["--with", (Self.buildDirectory as NSString).appendingPathComponent(other)]
        }
        args += ["--golden-dir", Self.goldenDirectory, "--quiet", path]
        let result = try Self.check(args)
        #expect(result.status == 0, "\(library): \(result.stdout)\(result.stderr)")
        #expect(Self.summary(result).hasSuffix(" 0 failed") || Self.summary(result).contains(" 0 failed, "),
                "\(Self.summary(result))")
    }

    @Test func goldenCasesAreRunAndGradientsChecked() throws {
        let dir = (Self.buildDirectory as NSString)
        let result = try Self.check(["--with", dir.appendingPathComponent("libply_conv.so"),
                                     "--with", dir.appendingPathComponent("libply_batchnorm.so"),
                                     "--with", dir.appendingPathComponent("libply_activation.so"),
                                     "--golden", "\(Self.goldenDirectory)/residual_basic_s2_downsample_train.json",
                                     "--type", "residual_basic", dir.appendingPathComponent("libply_residual.so")])
        #expect(result.status == 0, "\(result.stdout)")
        for expected in ["PASS  residual_basic_s2_downsample_train.json: forward output within",
                         "PASS  residual_basic_s2_downsample_train.json: backward:",
                         "d/d downsample.0.weight matches central differences",
                         "PASS  residual_basic_s2_downsample_train.json: destroy freed every host allocation"] {
            #expect(result.stdout.contains(expected), "missing '\(expected)' in:\n\(result.stdout)")
        }
    }

    /// Examples/plugin/leaky_relu.c, built as its README says, passes.
    @Test func examplePluginPasses() throws {
        let dir = try CCompiler.temporaryDirectory("check-example")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try CCompiler.compile(CCompiler.repositoryRoot.appendingPathComponent("Examples/plugin/leaky_relu.c"),
                                         to: dir.appendingPathComponent("libleaky_relu.so"))
        let result = try Self.check([path])
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("leaky_relu: d/d input[0] matches central differences"), "\(result.stdout)")
    }

    /// A backward with a wrong weight gradient passes everything but the central differences.
    @Test func wrongGradientFailsCentralDifferences() throws {
        let dir = try CCompiler.temporaryDirectory("check-wrong-grad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try CCompiler.compile(fixtures.appendingPathComponent("checkplugins/wrong_grad.c"),
                                         to: dir.appendingPathComponent("libwrong_grad.so"))
        let result = try Self.check([path])
        #expect(result.status == 1, "\(result.stdout)")
        let failures = result.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        #expect(failures.count == 1, "\(result.stdout)")
        #expect(failures.first?.contains("wrong_grad_scale: backward's d/d weight[0]") == true, "\(failures)")
        #expect(failures.first?.contains("central differences") == true, "\(failures)")
        #expect(result.stdout.contains("PASS  wrong_grad_scale: d/d input[0] matches central differences"))
        #expect(Self.summary(result).contains(" 1 failed"), "\(Self.summary(result))")

        // Without the central differences nothing can see the bug.
        let skipped = try Self.check(["--no-fd", path])
        #expect(skipped.status == 0, "\(skipped.stdout)")
    }

    /// Broken plugins from the runtime's own tests: a non-zero exit naming the problem.
    @Test(arguments: [
        ("no_entry", "no exported symbol 'ply_plugin_entry'"),
        ("small_descriptor", "descriptor struct_size 24, the host needs at least 40"),
        ("null_forward", "type no_forward: required callback forward is NULL"),
        ("small_layer_type", "types[0]: struct_size"),
        ("entry_null", "ply_plugin_entry returned NULL"),
    ])
    func badPluginFails(_ name: String, _ expected: String) throws {
        let dir = try CCompiler.temporaryDirectory("check-bad-\(name)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try CCompiler.compileBadPlugin(name, into: dir)
        let result = try Self.check(["--quiet", path])
        #expect(result.status == 1, "\(name): \(result.stdout)")
        #expect(result.stdout.contains("FAIL  \(expected)"), "\(name): \(result.stdout)")
    }

    @Test func usage() throws {
        let help = try Self.check(["--help"])
        #expect(help.status == 0 && help.stdout.hasPrefix("usage: ply-plugin-check"), "\(help.stdout)")
        #expect(try Self.check([]).status == 2)
        #expect(try Self.check(["--bogus", "x.so"]).status == 2)
        #expect(try Self.check(["--golden"]).status == 2)
        let dir = (Self.buildDirectory as NSString)
        let noType = try Self.check(["--type", "no_such_type", dir.appendingPathComponent("libply_activation.so")])
        #expect(noType.status == 2, "\(noType.stdout)\(noType.stderr)")
        #expect(noType.stderr.contains("no layer type named no_such_type"), "\(noType.stderr)")
    }
}
