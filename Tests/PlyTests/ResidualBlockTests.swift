import CPly
import Foundation
import Testing
@testable import Ply

/// The residual plugin (residual_basic, residual_bottleneck): torchvision's BasicBlock and
/// Bottleneck against PyTorch's golden cases, their state_dict names, and bad attributes.
@Suite struct ResidualBlockTests {
    static let cases = fixtureCases("golden/layers") { $0.hasPrefix("residual_") }

    @Test func casesArePresent() {
        #expect(Self.cases.count == 8, "\(Self.cases)")
    }

    /// Eval cases through the shared golden runner.
    @Test(arguments: cases.filter { $0.hasSuffix("_eval") })
    func golden(_ name: String) throws {
        try GoldenLayerTests.run(name, runtime: sharedRuntime)
    }

    /// Train cases, run twice on one module without zeroing the gradients: after the first
    /// step the parameter gradients equal PyTorch's, after the second twice that, which
    /// checks that backward ADDS into them. (Copies of the golden set made before 2026-12-05
    /// had each train case's `grad_params` summed with its eval case's, and this test replayed
    /// the eval step first to match; the refreshed cases hold each step's own gradient.)
    @Test(arguments: cases.filter { $0.hasSuffix("_train") })
    func goldenTrainAccumulates(_ name: String) throws {
        let dir = fixtures.appendingPathComponent("golden/layers")
        let train = try JSON.load(dir.appendingPathComponent("\(name).json"))
        let (op, attrs) = try Self.attributes(of: name)
        let layer = try Layer(op, attrs, runtime: sharedRuntime)
        let params = try layer.parameters
        for p in params { p.gradient?.update(repeating: 0) }

        for step in 1...2 {
            try goldenBlockStep(layer, params, train, training: true, accumulated: Float(step), "\(name) (train step \(step))")
        }
    }

    /// The keys of the object `section` (e.g. "params") in a golden file, in file order
    /// (JSONDecoder's dictionaries forget the order).
    static func orderedKeys(_ section: String, in text: String) throws -> [String] {
        let marker = try #require(text.range(of: "\"\(section)\":"))
        var keys: [String] = []
        var depth = 0, inString = false, current = "", lastString = ""
        var i = marker.upperBound
        while i < text.endIndex {
            let ch = text[i]
            if inString {
                if ch == "\"" { inString = false; lastString = current } else { current.append(ch) }
            } else if ch == "\"" {
                inString = true; current = ""
            } else if ch == "{" || ch == "[" {
                depth += 1
            } else if ch == "}" || ch == "]" {
                depth -= 1
                if depth == 0 { break }
            } else if ch == ":" && depth == 1 {
                keys.append(lastString)
            }
            i = text.index(after: i)
        }
        return keys
    }

    static func attributes(of name: String) throws -> (op: String, attrs: Attributes) {
        let json = try JSON.load(fixtures.appendingPathComponent("golden/layers/\(name).json"))
        let op = try #require(json["op"]?.string)
        let attrs: Attributes = try json["attrs"]!.object.sorted { $0.key < $1.key }.map { ($0.key, try #require($0.value.attribute)) }
        return (op, attrs)
    }

    @Test(arguments: cases)
    func parameterOrderMatchesStateDict(_ name: String) throws {
        let text = try String(contentsOf: fixtures.appendingPathComponent("golden/layers/\(name).json"), encoding: .utf8)
        let (op, attrs) = try Self.attributes(of: name)
        let params = try Layer(op, attrs, runtime: sharedRuntime).parameters
        #expect(params.filter(\.trainable).map(\.name) == (try Self.orderedKeys("params", in: text)))
        #expect(params.filter { !$0.trainable && !$0.isInteger }.map(\.name) == (try Self.orderedKeys("buffers", in: text)))
        #expect(params.filter(\.isInteger).allSatisfy { $0.name.hasSuffix(".num_batches_tracked") })
    }

    @Test func fullStateDictOrderOfABottleneckWithDownsample() throws {
        let layer = try Layer("residual_bottleneck", [("inplanes", .int(4)), ("planes", .int(2)), ("stride", .int(2))],
                              runtime: sharedRuntime)
        let bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
        var expected: [String] = []
        for (conv, norm) in [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("downsample.0", "downsample.1")] {
            expected.append("\(conv).weight")
            expected += bn.map { "\(norm).\($0)" }
        }
        let params = try layer.parameters
        #expect(params.map(\.name) == expected)
        #expect(params.first { $0.name == "conv2.weight" }?.shape == Shape([2, 2, 3, 3]))
        #expect(params.first { $0.name == "downsample.0.weight" }?.shape == Shape([8, 4, 1, 1]))
        #expect(try layer.outputShape(for: [Shape([2, 4, 7, 7])]) == Shape([2, 8, 4, 4]))
    }

    @Test func downsampleDefaultsAndExplicitValues() throws {
        func names(_ op: String, _ attrs: Attributes) throws -> [String] {
            try Layer(op, attrs, runtime: sharedRuntime).parameters.map(\.name)
        }
        // Needed (channels change): on by default.
        #expect(try names("residual_basic", [("inplanes", .int(4)), ("planes", .int(8))]).contains("downsample.0.weight"))
        // Not needed: off by default, but an explicit true is honoured.
        #expect(try !names("residual_basic", [("inplanes", .int(4)), ("planes", .int(4))]).contains { $0.hasPrefix("downsample") })
        #expect(try names("residual_basic", [("inplanes", .int(4)), ("planes", .int(4)), ("downsample", .bool(true))])
            .contains("downsample.1.running_var"))
        #expect(try !names("residual_bottleneck", [("inplanes", .int(8)), ("planes", .int(2))]).contains { $0.hasPrefix("downsample") })
    }

    /// With the input gradient not wanted, the block still accumulates every parameter gradient,
    /// exactly as when it is wanted.
    @Test func parameterGradientsWithoutInputGradient() throws {
        let (op, attrs) = try Self.attributes(of: "residual_bottleneck_s2_downsample_train")
        let layer = try Layer(op, attrs, runtime: sharedRuntime)
        let x = hashInput(Shape([2, 4, 6, 6]))
        func grads(wanted: Bool) throws -> [[Float]] {
            let params = try layer.parameters.filter(\.trainable)
            for p in params { p.gradient?.update(repeating: 0) }
            let y = try layer.forward([x])
            var g = Tensor(shape: y.shape)
            for i in 0..<g.data.count { g.data[i] = Float(i % 7) - 3 }
            let gin = try layer.backward(inputs: [x], output: y, gradOutput: g, wanted: [wanted])
            #expect((gin[0] != nil) == wanted)
            return params.map { Array($0.gradient!) }
        }
        let with = try grads(wanted: true), without = try grads(wanted: false)
        #expect(with.count == 12)
        for (a, b) in zip(with, without) {
            #expect(closeness(b, a).ok)
            #expect(a.contains { $0 != 0 })
        }
    }

    @Test func badAttributesAndShapes() throws {
        func failure(_ op: String, _ attrs: Attributes) throws -> (Int32, String) {
            let error = try #require(throws: (any Error).self) { try Layer(op, attrs, runtime: sharedRuntime) }
            // The host's attribute-schema check (names, kinds, required) comes before create, with
            // the C API's status for its kind; the plugin checks values.
            if case let .attribute(e)? = error as? PlyError {
                let status = e.kind == .missing ? PLY_ERR_NOT_FOUND : PLY_ERR_INVALID_ARGUMENT
                return (Int32(status.rawValue), "\(e)")
            }
            guard case let .layer(_, _, status, message)? = error as? PlyError else {
                Issue.record("expected PlyError.layer, got \(error)")
                return (0, "")
            }
            return (status, message)
        }
        // Identity shortcut impossible: stride 2, or channels change.
        var (status, message) = try failure("residual_basic", [("inplanes", .int(4)), ("planes", .int(4)), ("stride", .int(2)),
                                                               ("downsample", .bool(false))])
        #expect(status == Int32(PLY_ERR_INVALID_ARGUMENT.rawValue))
        #expect(message.contains("residual_basic") && message.contains("downsample"), "\(message)")
        (status, message) = try failure("residual_bottleneck", [("inplanes", .int(4)), ("planes", .int(4)), ("downsample", .bool(false))])
        #expect(status == Int32(PLY_ERR_INVALID_ARGUMENT.rawValue))
        #expect(message.contains("residual_bottleneck") && message.contains("16"), "\(message)")
        // Only torchvision's default groups / base_width / dilation.
        for extra in [("groups", AttributeValue.int(2)), ("base_width", .int(32)), ("dilation", .int(2))] {
            (status, message) = try failure("residual_bottleneck", [("inplanes", .int(8)), ("planes", .int(2)), extra])
            #expect(status == Int32(PLY_ERR_UNSUPPORTED.rawValue))
            #expect(message.contains("residual_bottleneck") && message.contains(extra.0), "\(message)")
        }
        // Missing or invalid values.
        (status, message) = try failure("residual_basic", [("inplanes", .int(4))])
        #expect(status == Int32(PLY_ERR_NOT_FOUND.rawValue) && message.contains("'planes'"), "\(message)")
        (status, message) = try failure("residual_basic", [("inplanes", .int(4)), ("planes", .int(4)), ("stride", .int(0))])
        #expect(status == Int32(PLY_ERR_INVALID_ARGUMENT.rawValue) && message.contains("stride"), "\(message)")
        (status, message) = try failure("residual_basic", [("inplanes", .int(4)), ("planes", .string("four"))])
        #expect(status == Int32(PLY_ERR_INVALID_ARGUMENT.rawValue) && message.contains("'planes'"), "\(message)")

        // Wrong input channels.
        let layer = try Layer("residual_basic", [("inplanes", .int(4)), ("planes", .int(4))], runtime: sharedRuntime)
        let error = try #require(throws: PlyError.self) { try layer.outputShape(for: [Shape([1, 3, 5, 5])]) }
        #expect(error.description.contains("residual_basic") && error.description.contains("inplanes"), "\(error)")
    }
}

