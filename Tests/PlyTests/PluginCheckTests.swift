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

    /// Fixtures/checkplugins/bad_self_description.c: one layer type per rule of the attribute
    /// schema (check 6) and of `describe` (check 7), each breaking only that rule. Each is
    /// checked alone (`--type`): exactly one FAIL, naming the rule.
    static let selfDescriptionLibrary: String? = {
        guard let dir = try? CCompiler.temporaryDirectory("check-self-description") else { return nil }
        return try? CCompiler.compile(fixtures.appendingPathComponent("checkplugins/bad_self_description.c"),
                                      to: dir.appendingPathComponent("libbad_self_description.so"))
    }()

    @Test(arguments: [
        ("sd_dup_name", "attr_specs[1] (\"alpha\"): the name is also attr_specs[0]'s"),
        ("sd_bad_name", "attr_specs[0] (\"kernel-size\"): the name must be identifier-like"),
        ("sd_structural_name", "'inputs' is a layer's structural key in model files"),
        ("sd_bad_kind", "kind 9 is not a ply_attr_kind"),
        ("sd_bad_flags", "flags 0x40 has bits that are not ply_attr_flags"),
        ("sd_pair_not_ints", "PLY_ATTR_PAIR with kind INT (a pair's kind is PLY_ATTR_INTS)"),
        ("sd_bad_default", "default \"three\" does not read as kind INT"),
        ("sd_required_default", "PLY_ATTR_REQUIRED with default \"1\""),
        ("sd_no_doc", "doc is NULL: it must be one line"),
        ("sd_endless_specs", "attr_specs has no entry with a NULL name within 256 entries"),
        ("sd_negative_macs", "describe reported -5 MACs (must be >= 0)"),
        ("sd_zero_stride", "spatial window of kernel [3, 3] and stride [1, 0]"),
        ("sd_unknown_window", "describe reported window kind 7"),
        ("sd_describe_fails", "describe returned PLY_ERR_INTERNAL for input 0 [2, 3, 4, 5], which infer_shape accepts"),
        ("sd_impure", "a second describe for the same shapes reported something else"),
        ("sd_host_fields", "describe changed the host-owned fields of ply_layer_info"),
        ("sd_wrong_child_name", "parameter 0 is 'inner.weight', but the children it reports imply 'other.weight'"),
        ("sd_wrong_child_shape", "add_child #0 'inner' (sd_leaf): reported output shape [2, 4, 4, 5], but the child's infer_shape gives [2, 3, 4, 5]"),
    ])
    func faultySelfDescriptionFails(_ type: String, _ expected: String) throws {
        let library = try #require(Self.selfDescriptionLibrary, "bad_self_description.c did not compile")
        let result = try Self.check(["--type", type, library])
        #expect(result.status == 1, "\(type): \(result.stdout)")
        let failures = result.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        #expect(failures.count == 1, "\(type): \(failures)")
        #expect(failures.first?.contains(expected) == true, "\(type): expected '\(expected)' in \(failures)")
    }

    /// The same fixture's correct types pass checks 6 and 7: a leaf with a schema of every kind
    /// and flag, and a composite whose child accounts for its parameter.
    @Test(arguments: ["sd_leaf", "sd_block"])
    func correctSelfDescriptionPasses(_ type: String) throws {
        let library = try #require(Self.selfDescriptionLibrary, "bad_self_description.c did not compile")
        let result = try Self.check(["--type", type, library])
        #expect(result.status == 0, "\(type): \(result.stdout)")
        #expect(result.stdout.contains("PASS  type \(type): attribute schema: 6 attribute(s)"), "\(result.stdout)")
        #expect(result.stdout.contains("PASS  \(type): describe for input 0 [2, 3, 4, 5]"), "\(result.stdout)")
        if type == "sd_block" {
            #expect(result.stdout.contains("1 child(ren) accounting for its parameters"), "\(result.stdout)")
        }
    }

    /// Check 8 (ABI 1.7 layouts) on Fixtures/blocked/blocked_layers.c: as is, every type's
    /// eval_layouts and forward_layout pass; with -DBLK_BAD_PAD blk_mid writes a padding lane of
    /// NCHW16C as 1, which the layout check names for both combinations that write NCHW16C; with
    /// -DBLK_HALF a type with eval_layouts and no forward_layout fails both-or-neither.
    @Test func blockedLayoutCheck() throws {
        let dir = try CCompiler.temporaryDirectory("check-blocked")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = fixtures.appendingPathComponent("blocked/blocked_layers.c")
        let good = try CCompiler.compile(source, to: dir.appendingPathComponent("libblk.so"))
        let result = try Self.check([good])
        #expect(result.status == 0, "\(result.stdout)")
        for expected in ["PASS  blk_mid: eval_layouts (evaluation mode) for input 0 [2, 3, 4, 5]: accepts[0] {NCHW, NCHW16C}, produces {NCHW, NCHW16C}",
                         "PASS  blk_add: forward_layout inputs [NCHW16C, NCHW16C] -> output NCHW16C equals forward",
                         "PASS  blk_start: forward_layout inputs [NCHW] -> output NCHW16C equals forward",
                         "PASS  blk_end: forward_layout inputs [NCHW16C] -> output NCHW equals forward"] {
            #expect(result.stdout.contains(expected), "missing '\(expected)' in:\n\(result.stdout)")
        }

        let badPad = try CCompiler.compile(source, to: dir.appendingPathComponent("libblk_bad_pad.so"),
                                           extraFlags: ["-DBLK_BAD_PAD"])
        let bad = try Self.check([badPad])
        #expect(bad.status == 1, "\(bad.stdout)")
        let failures = bad.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        #expect(failures.count == 2, "\(failures)")
        for (failure, inputs) in zip(failures, ["[NCHW]", "[NCHW16C]"]) {
            #expect(failure.contains("blk_mid: forward_layout inputs \(inputs) -> output NCHW16C wrote 2 padding lane(s) not as 0"),
                    "\(failure)")
            #expect(failure.contains("the first at [0, 3, 0, 0] (channel 3 of 3): got 1"), "\(failure)")
        }

        let half = try CCompiler.compile(source, to: dir.appendingPathComponent("libblk_half.so"),
                                         extraFlags: ["-DBLK_HALF"])
        let halfResult = try Self.check(["--quiet", half])
        #expect(halfResult.status == 1, "\(halfResult.stdout)")
        #expect(halfResult.stdout.contains(
            "FAIL  type blk_half: layouts: eval_layouts is set but forward_layout is NULL (ABI 1.7: both or neither)"),
            "\(halfResult.stdout)")
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
