import Foundation
import Testing
@testable import Ply

/// ABI 1.2 self-description, host side (#14): attribute schemas checked before every create,
/// and `describe` / `add_child` behind summaries. Uses only the fixture plugin
/// (Fixtures/selfdescribing/se_block.c) for schemas and describe: the built-in types are used
/// as children but nothing here depends on them having a schema or a describe.
@Suite struct SchemaTests {
    static let source = fixtures.appendingPathComponent("selfdescribing/se_block.c")

    /// The fixture, compiled once per process.
    static let library: String = {
        do {
            let dir = try CCompiler.temporaryDirectory("selfdescribing")
            return try CCompiler.compile(source, to: dir.appendingPathComponent("libselfdescribing.so"), extraFlags: ["-lm"])
        } catch { fatalError("cannot build the self-describing fixture: \(error)") }
    }()

    /// A runtime with the built-ins and the fixture.
    static func runtime(strict: Bool = false, log: LogRecorder? = nil) throws -> Runtime {
        var options = Runtime.Options()
        options.useEnvironment = false
        options.threads = 2
        options.strictAttributes = strict
        if let log { options.log = { level, message in log.record(level, message) } } else { options.log = { _, _ in } }
        let r = try Runtime(options: options)
        try r.loadPlugin(at: library)
        return r
    }

    static func attributeError(_ body: () throws -> Void) -> PlyError.AttributeProblem? {
        do { try body() } catch let PlyError.attribute(e) { return e } catch { Issue.record("not a PlyError.attribute: \(error)") }
        return nil
    }

    // MARK: - schemas

    @Test func schemaIsReadWithinStructSize() throws {
        let r = try Self.runtime()
        let se = try r.layerType(named: "se_block")
        #expect(se.attributes?.map(\.name) == ["channels", "reduction", "child_attr"])
        #expect(se.attributes?[0] == AttributeSpec(name: "channels", kind: .int, isRequired: true, doc: "input (and output) channels"))
        #expect(se.attributes?[1].defaultText == "4" && se.attributes?[1].defaultValue == .int(4))
        #expect(se.inputsDoc == "x: (N, channels, H, W)" && se.selfDescribing)
        // A 1.1-sized type: its static struct has a schema, inputs_doc and describe past
        // struct_size, which the host must not read.
        let legacy = try r.layerType(named: "legacy_scale")
        #expect(legacy.attributes == nil && legacy.inputsDoc == nil && !legacy.selfDescribing)
        let layer = try Layer("legacy_scale", [("factor", .float(2))], runtime: r)
        #expect(try layer.forward([try Tensor(shape: [1, 2], data: [1, -3])]).data == [2, -6])
        let d = try layer.describe(inputShapes: [[1, 2]])
        #expect(d.macs == 0 && d.window == .identity && d.children.isEmpty)
    }

    @Test func typoNamesTheKeyTheLayerAndTheClosestName() throws {
        let r = try Self.runtime()
        let e = Self.attributeError { _ = try Layer("se_block", [("channels", .int(8)), ("reductoin", .int(2))], runtime: r) }
        #expect(e?.kind == .unknown(suggestion: "reduction") && e?.name == "reductoin" && e?.type == "se_block")
        #expect(e?.description.contains("unknown attribute 'reductoin'; did you mean 'reduction'?") == true, "\(String(describing: e))")
        // The node name when the model knows it.
        let m = try Model(runtime: r)
        let n = Self.attributeError { try m.add("gate", "se_block", [("channels", .int(8)), ("Channels", .int(8))]) }
        #expect(n?.layer == "gate" && n?.description.hasPrefix("layer 'gate' (se_block): unknown attribute 'Channels'; did you mean 'channels'?") == true,
                "\(String(describing: n))")
        // Nothing close: no suggestion, but the valid names.
        let far = Self.attributeError { _ = try Layer("pointwise_conv", [("zzzzzzzz", .int(1))], runtime: r) }
        #expect(far?.kind == .unknown(suggestion: nil) && far?.reason.contains("takes in_channels, out_channels, bias") == true)
    }

    @Test func wrongKindsAndMissingRequired() throws {
        let r = try Self.runtime()
        let s = Self.attributeError { _ = try Layer("se_block", [("channels", .string("eight"))], runtime: r) }
        #expect(s?.kind == .wrongKind(expected: "an integer", given: "a string"), "\(String(describing: s))")
        #expect(s?.description == "se_block: attribute 'channels' must be an integer, got a string")
        let f = Self.attributeError { _ = try Layer("se_block", [("channels", .int(8)), ("reduction", .float(2.5))], runtime: r) }
        #expect(f?.kind == .wrongKind(expected: "an integer", given: "a float"))
        let b = Self.attributeError { _ = try Layer("pointwise_conv", [("bias", .int(2))], runtime: r) }
        #expect(b?.kind == .wrongKind(expected: "a boolean", given: "an integer"))
        // What the host's readers accept passes: a bool for an int, 0/1 for a bool.
        _ = try Layer("pointwise_conv", [("bias", .int(0)), ("in_channels", .int(2))], runtime: r)
        let m = Self.attributeError { _ = try Layer("se_block", [("reduction", .int(2))], runtime: r) }
        #expect(m?.kind == .missing && m?.name == "channels" && m?.reason.hasPrefix("missing required attribute 'channels'") == true)
        let d = Self.attributeError { _ = try Layer("se_block", [("channels", .int(8)), ("channels", .int(4))], runtime: r) }
        #expect(d?.kind == .duplicate)
    }

    @Test func kindsAcceptWhatTheReadersAccept() {
        let int = AttributeSpec(name: "a", kind: .int), float = AttributeSpec(name: "a", kind: .float)
        let bool = AttributeSpec(name: "a", kind: .bool), pair = AttributeSpec(name: "a", kind: .ints, isPair: true)
        let ints = AttributeSpec(name: "a", kind: .ints), floats = AttributeSpec(name: "a", kind: .floats)
        #expect(int.accepts(.int(3)) && int.accepts(.bool(true)) && !int.accepts(.float(1)) && !int.accepts(.ints([1])))
        #expect(float.accepts(.float(0.5)) && float.accepts(.int(1)) && !float.accepts(.string("1")))
        #expect(bool.accepts(.bool(false)) && bool.accepts(.int(1)) && !bool.accepts(.int(2)))
        #expect(pair.accepts(.int(3)) && pair.accepts(.ints([1, 7])) && pair.accepts(.ints([])) && !pair.accepts(.float(3)))
        #expect(!ints.accepts(.int(3)) && ints.accepts(.ints([1, 2, 3])))
        #expect(floats.accepts(.ints([1])) && floats.accepts(.floats([0.5])) && !floats.accepts(.float(0.5)))
        #expect(AttributeSpec(name: "k", kind: .ints, isPair: true, defaultText: "[0, 0]").defaultValue == .ints([0, 0]))
        #expect(AttributeSpec(name: "b", kind: .bool, defaultText: "true").defaultValue == .bool(true))
        #expect(closest(to: "paddin", among: ["in_channels", "padding", "stride"]) == "padding")
        #expect(closest(to: "afine", among: ["num_features", "eps", "affine"]) == "affine")
        #expect(closest(to: "xyz", among: ["padding", "stride"]) == nil)
    }

    /// A composite's create_layer is checked against the child's schema; the error reaches the
    /// caller typed, naming the composite's node and the child's type.
    @Test func childAttributesAreCheckedThroughCreateLayer() throws {
        let r = try Self.runtime()
        let e = Self.attributeError {
            _ = try Layer(type: r.layerType(named: "se_block"), attributes: [("channels", .int(8)), ("child_attr", .string("bais"))],
                          runtime: r, node: "stage1.se")
        }
        #expect(e?.kind == .unknown(suggestion: "bias") && e?.layer == "stage1.se" && e?.type == "se_block" && e?.childType == "pointwise_conv")
        #expect(e?.description.contains("a pointwise_conv layer it creates through create_layer: unknown attribute 'bais'; did you mean 'bias'?") == true,
                "\(String(describing: e))")
        try expectHostSurvives(r)
        // From a model file: the child's attribute is not one the file gives, so the error points at the type.
        do {
            _ = try Zoo.model(text: "model: m\nlayers:\n  - {name: se, type: se_block, channels: 8, child_attr: in_channel}\n", runtime: r)
            Issue.record("a misspelt child attribute was accepted")
        } catch let e as ModelFileError {
            #expect(e.kind == .badAttribute && e.layer == "se" && e.field == "type", "\(e)")
            #expect(e.message.contains("unknown attribute 'in_channel'; did you mean 'in_channels'?"), "\(e)")
        }
    }

    @Test func modelFileTypoPointsAtTheKey() throws {
        let r = try Self.runtime()
        let text = """
            model: gate
            layers:
              - {name: se, type: se_block, channels: 8, reductio: 2}
            """
        do {
            _ = try Zoo.model(text: text, runtime: r)
            Issue.record("a misspelt attribute was accepted")
        } catch let e as ModelFileError {
            #expect(e.kind == .badAttribute && e.layer == "se" && e.field == "reductio", "\(e)")
            #expect(e.line == 3 && e.column == 45, "\(e)")  // the key
            #expect(e.message.contains("did you mean 'reduction'?"), "\(e)")
        }
        let kind = "model: gate\nlayers:\n  - {name: se, type: se_block, channels: eight}\n"
        do {
            _ = try Zoo.model(text: kind, runtime: r)
            Issue.record("a string channel count was accepted")
        } catch let e as ModelFileError {
            #expect(e.kind == .badAttribute && e.field == "channels" && e.message.contains("must be an integer, got a string"), "\(e)")
            #expect(e.column == 42, "\(e)")  // the value
        }
    }

    @Test func schemalessTypesWarnOnceOrFailWhenStrict() throws {
        let log = LogRecorder()
        let r = try Self.runtime(log: log)
        _ = try Layer("legacy_scale", runtime: r)  // no attributes: nothing goes unchecked
        #expect(!log.messages.contains { $0.contains("legacy_scale") })
        _ = try Layer("legacy_scale", [("factor", .float(2))], runtime: r)
        _ = try Layer("legacy_scale", [("factr", .float(2))], runtime: r)
        let warnings = log.messages.filter { $0.contains("'legacy_scale'") && $0.contains("no attribute schema") }
        #expect(warnings.count == 1, "\(log.messages)")

        let strict = try Self.runtime(strict: true)
        let e = Self.attributeError { _ = try Layer("legacy_scale", [("factor", .float(2))], runtime: strict) }
        #expect(e?.kind == .unchecked && e?.name == nil && e?.description.contains("strict attribute checking") == true)
        _ = try Layer("legacy_scale", runtime: strict)
        _ = try Layer("pointwise_conv", [("in_channels", .int(2))], runtime: strict)
    }

    // MARK: - describe

    @Test func describeReportsChildrenWithTheirAttributesAndParameters() throws {
        let r = try Self.runtime()
        let se = try Layer("se_block", [("channels", .int(8)), ("reduction", .int(4))], runtime: r)
        let d = try se.describe(inputShapes: [[2, 8, 5, 5]])
        #expect(d.window == .global && d.macs == 0)
        #expect(d.children.map(\.name) == ["avgpool", "fc1", "activation", "fc2", "scale_activation"])
        #expect(d.children.map(\.typeName) == ["adaptive_avgpool2d", "pointwise_conv", "relu", "pointwise_conv", "sigmoid"])
        let fc1 = d.children[1]
        #expect(fc1.type === (try r.layerType(named: "pointwise_conv")))
        #expect(fc1.attributes.map { $0.map(\.0) } == ["in_channels", "out_channels"])
        #expect(fc1.attributes?.int("out_channels") == 2)
        #expect(fc1.inputShapes == [[2, 8, 1, 1]] && fc1.outputShape == [2, 2, 1, 1])
        #expect(fc1.parameters.map(\.name) == ["weight", "bias"] && fc1.parameters[0].shape == [2, 8, 1, 1])
        #expect(fc1.details.macs == 2 * 2 * 8 && fc1.details.window == .spatial(kernel: [1, 1], stride: [1, 1]))
        #expect(d.children[0].attributes?.int("output_size") == 1)
        #expect(d.totalMACs == 2 * 2 * 8 + 2 * 8 * 2)
        // It runs, and its output is x scaled by a gate in (0, 1).
        let x = try Tensor(shape: [2, 8, 5, 5], data: (0..<400).map { Float($0 % 7) + 1 })
        let y = try se.forward([x])
        #expect(y.shape == x.shape && zip(y.data, x.data).allSatisfy { $0 > 0 && $0 < $1 })
    }

    /// The receptive-field arithmetic on reported windows: blocks report their effective
    /// window along the longest path (a BasicBlock: 3 + (3 - 1)·s, stride s), which gives
    /// resnet18's well-known 435 at layer4; a global window spans the last feature map.
    @Test func receptiveFieldsFromReportedWindows() {
        typealias F = ModelSummary.Field
        var f = F.start([1, 3, 224, 224])
        func step(_ k: Double, _ s: Double, _ out: Int) { f = f.through(.spatial(kernel: [k, k], stride: [s, s]), output: [1, 64, out, out]) }
        step(7, 2, 112)
        step(3, 2, 56)
        #expect(f.rf == ModelSummary.Extent(11, 11) && f.jump == ModelSummary.Extent(4, 4))
        var size = 56
        for stage in 0..<4 {
            if stage > 0 { size /= 2 }
            step(stage == 0 ? 5 : 7, stage == 0 ? 1 : 2, size)
            step(5, 1, size)
        }
        #expect(f.rf == ModelSummary.Extent(435, 435) && f.jump == ModelSummary.Extent(32, 32))
        // adaptive pooling to 1x1 as a global window, then a linear (global again, on a flat input).
        let pooled = f.through(.global, output: [1, 512, 1, 1])
        #expect(pooled.rf == ModelSummary.Extent(435 + 6 * 32, 435 + 6 * 32) && pooled.jump == ModelSummary.Extent(224, 224))
        let flat = pooled.through(.identity, output: [1, 512]).through(.global, output: [1, 1000])
        #expect(flat.rf == pooled.rf && flat.jump == pooled.jump)
        // A same-size global gate (squeeze-and-excitation) keeps the jump.
        let gated = f.through(.global, output: [1, 512, 7, 7])
        #expect(gated.rf == pooled.rf && gated.jump == f.jump)
    }

    /// What a plugin's describe reports is checked; its failures reach the caller.
    @Test(arguments: [("window", "unknown window kind 7"), ("macs", "reported -5 MACs"),
                      ("self", "children nest more than 64 levels deep"), ("fail", "bad_describe: asked to fail")])
    func misbehavingDescribeIsAnError(_ mode: String, _ message: String) throws {
        let r = try Self.runtime()
        let layer = try Layer("bad_describe", [("mode", .string(mode))], runtime: r)
        do {
            _ = try layer.describe(inputShapes: [[1, 2]])
            Issue.record("\(mode): no error")
        } catch let PlyError.layer(type, call, _, text) {
            #expect(type == "bad_describe" && call == "describe" && text.contains(message), "\(mode): \(text)")
        }
        try expectHostSurvives(r)
        _ = try Layer("bad_describe", [("mode", .string("none"))], runtime: r).describe(inputShapes: [[1, 2]])
    }

    static let seNet = """
        model: se_net
        params: {in_channels: 1}
        layers:
          - {name: conv, type: conv2d, in_channels: $in_channels, out_channels: 8, kernel_size: 3, padding: 1}
          - {name: se, type: se_block, channels: 8, reduction: 4}
        """

    @Test func summaryShowsTheChildrenMACsAndAGlobalField() throws {
        let r = try Self.runtime()
        let m = try Zoo.model(text: Self.seNet, runtime: r, imageSize: 8)
        let s = try ModelSummary(model: m, inputShape: [1, 1, 8, 8], className: "SeNet")
        #expect(s.tree.hasSuffix("""
              (se): se_block(
                (avgpool): AdaptiveAvgPool2d(output_size=1)
                (fc1): pointwise_conv(in_channels=8, out_channels=2)
                (activation): ReLU()
                (fc2): pointwise_conv(in_channels=2, out_channels=8)
                (scale_activation): Sigmoid()
              )
            )
            """), "\(s.tree)")
        let row = try #require(s.rows.first { $0.name == "se" })
        #expect(row.macs == 8 * 2 + 2 * 8)
        #expect(row.parameters == 8 * 2 + 2 + 2 * 8 + 8)
        // Global: the whole 8x8 image, whatever the conv before it adds; same-size output, so the jump stays 1.
        #expect(row.receptiveField.height >= 8 && row.receptiveField.width >= 8 && row.jump == ModelSummary.Extent(1, 1))
        #expect(s.unexpandedBlocks.isEmpty)
    }

    @Test func cliSummaryAndDescribe() throws {
        let dir = try CCompiler.temporaryDirectory("se-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("se_net.yaml")
        try Self.seNet.write(to: file, atomically: true, encoding: .utf8)
        let out = try CLITests.run(["summary", file.path, "--plugin", Self.library, "--image-size", "8"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("  (se): se_block(\n    (avgpool): AdaptiveAvgPool2d(output_size=1)\n    (fc1): pointwise_conv("), "\(out.stdout)")
        #expect(out.stdout.contains("se (se_block)"))

        let se = try CLITests.run(["plugins", "--plugin", Self.library, "--describe", "se_block"])
        #expect(se.status == 0, "\(se.stderr)")
        #expect(se.stdout.hasPrefix("se_block — squeeze-and-excitation"), "\(se.stdout)")
        #expect(se.stdout.contains("inputs (1): x: (N, channels, H, W)"))
        #expect(se.stdout.contains("  channels    int     required  input (and output) channels\n"), "\(se.stdout)")
        #expect(se.stdout.contains("  reduction   int     = 4       squeeze factor"), "\(se.stdout)")
        #expect(se.stdout.contains("Parameters: depend on channels"))
        let pw = try CLITests.run(["plugins", "--plugin", Self.library, "--describe", "pointwise_conv"])
        #expect(pw.status == 0, "\(pw.stderr)")
        #expect(pw.stdout.contains("Parameters (an instance with the defaults):\n  weight  [1, 1, 1, 1]  trainable\n  bias    [1]           trainable"),
                "\(pw.stdout)")
        let legacy = try CLITests.run(["plugins", "--plugin", Self.library, "--describe", "legacy_scale"])
        #expect(legacy.stdout.contains("Attributes: not declared") && legacy.stdout.contains("Parameters: none"), "\(legacy.stdout)")
        let typo = try CLITests.run(["plugins", "--plugin", Self.library, "--describe", "se_blok"])
        #expect(typo.status != 0 && typo.stderr.contains("unknown layer type 'se_blok'; close names: se_block"), "\(typo.stderr)")

        // --strict-attributes refuses a schema-less type given attributes.
        let legacyFile = dir.appendingPathComponent("legacy.yaml")
        try "model: legacy\nlayers:\n  - {name: s, type: legacy_scale, factor: 2}\n".write(to: legacyFile, atomically: true, encoding: .utf8)
        let loose = try CLITests.run(["summary", legacyFile.path, "--plugin", Self.library, "--no-builtins"])
        #expect(loose.status == 0 && loose.stderr.contains("'legacy_scale'") && loose.stderr.contains("no attribute schema"),
                "\(loose.stderr)")
        let strict = try CLITests.run(["summary", legacyFile.path, "--plugin", Self.library, "--no-builtins", "--strict-attributes"])
        #expect(strict.status != 0 && strict.stderr.contains("strict attribute checking"), "\(strict.stderr)")
    }
}
