import Foundation
import Testing
@testable import Ply

/// The model-file format (docs/model-format.md): every feature, and every error naming
/// file, line, column and field.
@Suite struct ModelFileTests {
    func build(_ text: String, _ parameters: [String: AttributeValue] = [:], input: Shape? = nil) throws -> Model {
        try ModelFile(text: text).build(runtime: sharedRuntime, parameters: parameters, inputShape: input)
    }

    /// The error `text` gives (failing the test when it builds).
    func failure(_ text: String, _ parameters: [String: AttributeValue] = [:], input: Shape? = nil,
                 sourceLocation: SourceLocation = #_sourceLocation) -> ModelFileError? {
        do {
            _ = try build(text, parameters, input: input)
            Issue.record("expected an error", sourceLocation: sourceLocation)
        } catch let e as ModelFileError {
            return e
        } catch {
            Issue.record("expected a ModelFileError, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    static let residual = """
        model: tiny-residual
        params:
          num_classes: 10
          in_channels: 1
          width: 4
        vars:
          wide: $(width * 2)
        layers:
          - {name: stem, type: conv2d, in_channels: $in_channels, out_channels: $width, kernel_size: 3, padding: 1}
          - group: stage
            layers:
              - repeat: 2
                as: i
                layers:
                  - group: block$i
                    layers:
                      - {name: conv, type: conv2d, in_channels: $width, out_channels: $width, kernel_size: 3, padding: 1}
                      - {name: relu, type: relu}
                      - {name: add, type: add, inputs: [relu, conv]}   # conv means stage.block$i.conv
          - {name: wide, type: conv2d, in_channels: $width, out_channels: $wide, kernel_size: 1, inputs: stem}
          - {name: cat, type: concat, inputs: [stage.block1.add, wide]}
          - {name: pool, type: adaptive_avgpool2d, output_size: 1}
          - {name: flatten, type: flatten}
          - {name: fc, type: linear, in_features: $(width + wide), out_features: $num_classes}
        output: fc
        """

    @Test func groupsRepeatsJoinsAndParameters() throws {
        let m = try build(ModelFileTests.residual, ["width": .int(3)])
        let names = m.nodes.map(\.name)
        #expect(names == ["input", "stem", "stage.block0.conv", "stage.block0.relu", "stage.block0.add",
                          "stage.block1.conv", "stage.block1.relu", "stage.block1.add", "wide", "cat", "pool", "flatten", "fc"])
        // Relative names resolve inside the group first; `wide` takes `stem` explicitly.
        #expect(m.nodes[4].inputs == [3, 2])
        #expect(m.nodes[8].inputs == [1])
        #expect(m.nodes[9].inputs == [7, 8])
        // Parameters and arithmetic: width 3 -> wide 6, fc in_features 9.
        #expect(try m.namedParameters().first { $0.name == "fc.weight" }?.parameter.shape == [10, 9])
        #expect(try m.namedParameters().first { $0.name == "wide.weight" }?.parameter.shape == [6, 3, 1, 1])
        let out = try m.forward(hashInput([2, 1, 6, 6]))
        #expect(out.shape == [2, 10])
        #expect(m.output == m.nodes.count - 1)
    }

    @Test func sequentialNumberingIfAndOutput() throws {
        let text = """
            params: {bn: false, p: 0.25}
            layers:
              - group: features
                layers:
                  - {type: conv2d, in_channels: 1, out_channels: 2, kernel_size: 3}
                  - {type: batchnorm2d, num_features: 2, if: $bn}
                  - {type: relu}
                  - repeat: $(1 + 1)
                    layers:
                      - {type: conv2d, in_channels: 2, out_channels: 2, kernel_size: 1}
                      - {type: batchnorm2d, num_features: 2, if: $bn}
              - {name: flatten, type: flatten}
              - {name: drop, type: dropout, p: $p}
            output: features.2
            """
        let plain = try build(text)
        #expect(plain.nodes.map(\.name) == ["input", "features.0", "features.1", "features.2", "features.3", "flatten", "drop"])
        #expect(plain.output == 3)  // features.2 is the first 1x1 conv; with bn it is the relu
        #expect(plain.nodes[6].layer?.attributes.first?.1 == .float(0.25))
        let bn = try build(text, ["bn": .bool(true)])
        #expect(bn.nodes.map(\.name) == ["input", "features.0", "features.1", "features.2", "features.3", "features.4",
                                         "features.5", "features.6", "flatten", "drop"])
        #expect(bn.output == 3)
    }

    @Test func expressions() throws {
        let env: [String: AttributeValue] = ["a": .int(7), "b": .int(2), "f": .float(0.5), "on": .bool(true), "s": .string("x")]
        func e(_ t: String) throws -> AttributeValue? { try Expression.substitute(t, env) }
        #expect(try e("$(a * b + 1)") == .int(15))
        #expect(try e("${a / b}") == .int(3))
        #expect(try e("$(-a / b)") == .int(-4))          // floor division, as Python's //
        #expect(try e("$(-a % b)") == .int(1))
        #expect(try e("$(a * f)") == .float(3.5))
        #expect(try e("$(max(a, b, 9))") == .int(9))
        #expect(try e("$(min(a, b))") == .int(2))
        #expect(try e("$(a > b and not on)") == .bool(false))
        #expect(try e("$(1 if on else 2)") == .int(1))
        #expect(try e("$((a + b) * 2)") == .int(18))
        #expect(try e("$s") == .string("x"))
        #expect(try e("layer$(b + 1).$a") == .string("layer3.7"))
        #expect(try e("no substitution") == nil)
        #expect(throws: Expression.Failure.self) { try e("$(a +)") }
        #expect(throws: Expression.Failure.self) { try e("$(a / 0)") }
        #expect(throws: Expression.Failure.self) { try e("$(nope)") }
    }

    /// JSON is YAML: a C program can hand over either.
    @Test func jsonText() throws {
        let json = """
            {"model": "j", "params": {"n": 3},
             "layers": [{"name": "flatten", "type": "flatten"},
                        {"name": "fc", "type": "linear", "in_features": 4, "out_features": "$n"}]}
            """
        let file = try ModelFile(text: json)
        #expect(file.name == "j")
        #expect(file.parameters.map(\.name) == ["n"])
        let m = try file.build(runtime: sharedRuntime, parameters: ["n": .int(5)])
        #expect(try m.forward(hashInput([1, 1, 2, 2])).shape == [1, 5])
    }

    @Test func anchorsAndGroupVariables() throws {
        let text = """
            layers:
              - group: a
                vars: {k: 2}
                layers: &body
                  - {name: fc, type: linear, in_features: 4, out_features: $k}
              - group: b
                inputs: input
                vars: {k: 3}
                layers: *body
            """
        let m = try build(text)
        #expect(try m.namedParameters().map(\.parameter.shape.dims) == [[2, 4], [2], [3, 4], [3]])
        #expect(m.nodes[2].inputs == [0])
    }

    // MARK: errors

    @Test func yamlSyntaxError() throws {
        let e = try #require(failure("layers:\n  - {name: a, type: relu\n  - {name: b}\n"))
        #expect(e.kind == .syntax)
        #expect(e.file == "<text>")
        #expect(e.line == 3)
        #expect(e.column != nil)
        #expect(e.description.hasPrefix("<text>:3:"))
        #expect(e.description.contains("YAML syntax"))
    }

    @Test func unknownLayerType() throws {
        let e = try #require(failure("layers:\n  - {name: a, type: relu}\n  - {name: b, type: conv3d, in_channels: 1}\n"))
        #expect(e.kind == .unknownLayerType)
        #expect((e.line, e.column) == (3, 21))
        #expect(e.field == "type")
        #expect(e.layer == "b")
        #expect(e.description.hasPrefix("<text>:3:21: layer 'b', field 'type': unknown layer type 'conv3d'"))
        #expect(e.description.contains("conv2d"))
    }

    @Test func badAndMissingAttributes() throws {
        let bad = try #require(failure("""
            layers:
              - name: c
                type: conv2d
                in_channels: 1
                out_channels: 2
                kernel_size: three
            """))
        #expect(bad.kind == .badAttribute)
        #expect(bad.field == "kernel_size")
        #expect((bad.line, bad.column) == (6, 18))
        #expect(bad.description.contains("layer 'c', field 'kernel_size'"))

        let missing = try #require(failure("layers:\n  - {name: c, type: conv2d, out_channels: 2, kernel_size: 3}\n"))
        #expect(missing.kind == .badAttribute)
        #expect(missing.field == "in_channels")
        #expect(missing.line == 2)
        #expect(missing.message.contains("missing required attribute 'in_channels'"), "\(missing.message)")

        let wrongType = try #require(failure("layers:\n  - {name: c, type: conv2d, in_channels: 1, out_channels: 2, kernel_size: 3,\n     bias: 0.5}\n"))
        #expect(wrongType.kind == .badAttribute)
        #expect(wrongType.field == "bias")
        #expect((wrongType.line, wrongType.column) == (3, 12))

        let nested = try #require(failure("layers:\n  - {name: c, type: relu, extra: {a: 1}}\n"))
        #expect(nested.kind == .structure)
        #expect(nested.field == "extra")
        #expect(nested.line == 2)

        let mixed = try #require(failure("layers:\n  - {name: c, type: linear, in_features: [1, x], out_features: 2}\n"))
        #expect(mixed.field == "in_features")
    }

    @Test func unknownInput() throws {
        let e = try #require(failure("""
            layers:
              - {name: a, type: relu}
              - {name: b, type: add, inputs: [a, c]}
            """))
        #expect(e.kind == .unknownInput)
        #expect(e.field == "inputs")
        #expect((e.line, e.column) == (3, 38))
        #expect(e.description.hasPrefix("<text>:3:38: layer 'b', field 'inputs': no node named 'c'"))

        let output = try #require(failure("layers:\n  - {name: a, type: relu}\noutput: z\n"))
        #expect(output.kind == .unknownInput)
        #expect(output.field == "output")
        #expect(output.line == 3)
    }

    @Test func unknownParameters() throws {
        let inFile = try #require(failure("params: {n: 2}\nlayers:\n  - {name: fc, type: linear, in_features: 4, out_features: $(m * 2)}\n"))
        #expect(inFile.kind == .unknownParameter)
        #expect(inFile.field == "out_features")
        #expect(inFile.line == 3)
        #expect(inFile.message.contains("unknown name 'm'"))

        let fromCaller = try #require(failure("params: {n: 2}\nlayers:\n  - {name: a, type: relu}\n", ["nn": .int(3)]))
        #expect(fromCaller.kind == .unknownParameter)
        #expect(fromCaller.field == "params.nn")
        #expect(fromCaller.line == 1)
        #expect(fromCaller.message.contains("it has: n"))

        let wrongType = try #require(failure("params: {n: 2}\nlayers:\n  - {name: a, type: relu}\n", ["n": .string("two")]))
        #expect(wrongType.kind == .badParameter)
        #expect(wrongType.field == "params.n")
    }

    /// A join of different shapes is found when the model is built for an input shape,
    /// and reported at the join's line.
    @Test func shapeMismatchAtJoin() throws {
        let text = """
            layers:
              - {name: a, type: conv2d, in_channels: 1, out_channels: 2, kernel_size: 3, padding: 1}
              - {name: b, type: conv2d, in_channels: 1, out_channels: 2, kernel_size: 3, inputs: input}
              - {name: sum, type: add, inputs: [a, b]}
            """
        _ = try build(text)  // no input shape: nothing to check yet
        let e = try #require(failure(text, input: [1, 1, 8, 8]))
        #expect(e.kind == .shape)
        #expect(e.layer == "sum")
        #expect(e.field == "inputs")
        #expect(e.line == 4)
        #expect(e.message.contains("a [1, 2, 8, 8]") && e.message.contains("b [1, 2, 6, 6]"))

        let channels = try #require(failure("layers:\n  - {name: c, type: conv2d, in_channels: 3, out_channels: 2, kernel_size: 3}\n",
                                            input: [1, 1, 8, 8]))
        #expect(channels.kind == .shape)
        #expect(channels.field == "in_channels")
        #expect(channels.line == 2)
    }

    @Test func structureErrors() throws {
        let dup = try #require(failure("layers:\n  - {name: a, type: relu}\n  - {name: a, type: relu}\n"))
        #expect(dup.kind == .duplicateName)
        #expect(dup.line == 3)

        let key = try #require(failure("layer:\n  - {name: a, type: relu}\n"))
        #expect(key.kind == .structure)
        #expect(key.field == "layer")
        #expect(key.line == 1)

        let noType = try #require(failure("layers:\n  - {name: a, kind: relu}\n"))
        #expect(noType.field == "type")
        #expect(noType.line == 2)

        let badRepeat = try #require(failure("layers:\n  - repeat: -1\n    layers: [{type: relu}]\n"))
        #expect(badRepeat.field == "repeat")
        #expect(badRepeat.line == 2)

        let badIf = try #require(failure("layers:\n  - {type: relu, if: 3}\n"))
        #expect(badIf.field == "if")

        let dupKey = try #require(failure("layers:\n  - {name: a, type: relu, name: b}\n"))
        #expect(dupKey.field == "name")

        let empty = try #require(failure("layers: []\n"))
        #expect(empty.field == "layers")
    }

    /// A file on disk is named by its path in errors.
    @Test func fileErrorsNameThePath() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ply-modelfile-\(UUID().uuidString).yaml")
        try "layers:\n  - {name: a, type: nope}\n".write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            _ = try ModelFile(contentsOf: url).build(runtime: sharedRuntime)
            Issue.record("expected an error")
        } catch let e as ModelFileError {
            #expect(e.file == url.path)
            #expect(e.description.hasPrefix("\(url.path):2:21: layer 'a', field 'type'"))
        }
        // A missing file is an I/O error (PLY_ERR_IO in C), naming the path.
        let missing = url.appendingPathExtension("missing")
        let error = try #require(throws: PlyError.self) { try ModelFile(contentsOf: missing) }
        #expect(error == .io(path: missing.path, problem: .missing, reason: "model file"), "\(error)")
        // A directory is unreadable as a model file; text that is not UTF-8 is a syntax error.
        let directory = try #require(throws: PlyError.self) {
            try ModelFile(contentsOf: FileManager.default.temporaryDirectory)
        }
        guard case .io(_, .unreadable, _) = directory else { Issue.record("\(directory)"); return }
        let binary = url.appendingPathExtension("bin.yaml")
        try Data([0xff, 0xfe, 0x00, 0xc3]).write(to: binary)
        defer { try? FileManager.default.removeItem(at: binary) }
        let syntax = try #require(throws: ModelFileError.self) { try ModelFile(contentsOf: binary) }
        #expect(syntax.kind == .syntax && syntax.message.contains("UTF-8"), "\(syntax)")
    }

    // MARK: the interpolate plugin (Plugins/Resize)

    func interpolate(_ x: Tensor, _ attrs: Attributes) throws -> Tensor {
        try Layer("interpolate", attrs, runtime: sharedRuntime).forward([x])
    }

    /// Values PyTorch's F.interpolate gives for [[1, 2], [3, 4]].
    @Test func interpolateMatchesPyTorch() throws {
        let x = try Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4])
        let bilinear = try interpolate(x, [("size", .ints([4, 4])), ("mode", .string("bilinear"))])
        #expect(bilinear.data == [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4])
        let corners = try interpolate(x, [("size", .int(3)), ("mode", .string("bilinear")), ("align_corners", .bool(true))])
        #expect(corners.data == [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4])
        let nearest = try interpolate(x, [("scale_factor", .float(2))])
        #expect(nearest.shape == [1, 1, 4, 4])
        #expect(nearest.data == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        // Down-sampling by 2 (bilinear, half-pixel centres) averages 2x2 blocks.
        let y = try Tensor(shape: [1, 1, 4, 4], data: (0..<16).map(Float.init))
        let down = try interpolate(y, [("scale_factor", .float(0.5)), ("mode", .string("bilinear"))])
        #expect(down.data == [2.5, 4.5, 10.5, 12.5])
        // Nearest with a non-integer ratio: 3 -> 2 picks floor(d * 1.5) = 0, 1.
        let z = try Tensor(shape: [1, 1, 1, 3], data: [5, 6, 7])
        #expect(try interpolate(z, [("size", .ints([1, 2]))]).data == [5, 6])
        // 28 -> 63 keeps batch and channels, and a constant image stays constant.
        let c = try Tensor(shape: [2, 3, 28, 28], data: Array(repeating: 0.75, count: 2 * 3 * 28 * 28))
        let up = try interpolate(c, [("size", .ints([63, 63])), ("mode", .string("bilinear"))])
        #expect(up.shape == [2, 3, 63, 63])
        #expect(up.data.allSatisfy { abs($0 - 0.75) < 1e-6 })
    }

    /// Backward is the exact adjoint of forward (<g, f(x)> = <f*(g), x>) and matches finite differences.
    @Test(arguments: [
        [("size", AttributeValue.ints([7, 5])), ("mode", .string("bilinear"))],
        [("size", .ints([7, 5])), ("mode", .string("bilinear")), ("align_corners", .bool(true))],
        [("scale_factor", .floats([1.5, 0.5])), ("mode", .string("nearest"))],
    ] as [Attributes])
    func interpolateBackward(_ attrs: Attributes) throws {
        let layer = try Layer("interpolate", attrs, runtime: sharedRuntime)
        var gen = SplitMix64(seed: 3)
        let x = try Tensor(shape: [2, 2, 4, 6], data: (0..<96).map { _ in gen.nextUnitFloat() * 2 - 1 })
        let y = try layer.forward([x])
        let g = try Tensor(shape: y.shape, data: y.data.map { _ in gen.nextUnitFloat() * 2 - 1 })
        let gx = try #require(try layer.backward(inputs: [x], output: y, gradOutput: g)[0])
        let lhs = zip(g.data, y.data).reduce(Double(0)) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(gx.data, x.data).reduce(Double(0)) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(lhs - rhs) <= 1e-4 * max(1, abs(lhs)))
        for i in [0, 13, 50, 95] {
            var xp = x, xm = x
            xp.data[i] += 1e-2
            xm.data[i] -= 1e-2
            let up = try layer.forward([xp]).data, down = try layer.forward([xm]).data
            let fd = zip(zip(up, down), g.data).reduce(Float(0)) { $0 + ($1.0.0 - $1.0.1) * $1.1 } / 2e-2
            #expect(abs(fd - gx.data[i]) <= 1e-3 * max(1, abs(fd)), "d/dx[\(i)]")
        }
    }

    @Test func interpolateRefusesBadAttributes() throws {
        #expect(throws: PlyError.self) { try Layer("interpolate", [], runtime: sharedRuntime) }
        #expect(throws: PlyError.self) { try Layer("interpolate", [("size", .int(4)), ("scale_factor", .float(2))], runtime: sharedRuntime) }
        #expect(throws: PlyError.self) { try Layer("interpolate", [("size", .int(4)), ("mode", .string("bicubic"))], runtime: sharedRuntime) }
        #expect(throws: PlyError.self) { try Layer("interpolate", [("size", .int(4)), ("align_corners", .bool(true))], runtime: sharedRuntime) }
        #expect(throws: PlyError.self) { try Layer("interpolate", [("scale_factor", .float(-1))], runtime: sharedRuntime) }
    }
}

// MARK: - Fuzzing regressions (Fuzz/FuzzModelFile, RELIABILITY.md)

/// Expressions a model file can hold that used to trap or overflow the stack: each is now a
/// ModelFileError naming the field. Found by fuzzing the model-file reader.
@Suite struct ModelFileFuzzRegressionTests {
    /// `vars:` is evaluated by `minInputSize` without plugins; the error must be a thrown one.
    func varsFailure(_ expression: String, sourceLocation: SourceLocation = #_sourceLocation) -> ModelFileError? {
        let text = "vars:\n  a: \(expression)\nmin_input_size: 1\nlayers:\n  - type: relu\n"
        do {
            _ = try ModelFile(text: text).minInputSize()
            Issue.record("expected an error for \(expression)", sourceLocation: sourceLocation)
        } catch let e as ModelFileError {
            return e
        } catch {
            Issue.record("expected a ModelFileError, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test func integerOverflowIsAnError() {
        for expression in ["$(9223372036854775807 + 1)", "$(-9223372036854775807 - 2)", "$(4294967296 * 4294967296)",
                           "$((-9223372036854775807 - 1) / -1)", "$(-(-9223372036854775807 - 1))"] {
            let e = varsFailure(expression)
            #expect(e?.field == "vars.a", "\(expression)")
            #expect(e?.message.contains("overflow") == true, "\(expression): \(e?.message ?? "")")
        }
    }

    @Test func floorDivisionAndModuloAtTheEdges() throws {
        func e(_ t: String) throws -> AttributeValue? { try Expression.substitute(t, [:]) }
        #expect(try e("$(9223372036854775807 % -2)") == .int(-1))   // was x - q * y: overflowed
        #expect(try e("$(9223372036854775807 / -2)") == .int(-4611686018427387904))
        #expect(try e("$((-9223372036854775807 - 1) % -1)") == .int(0))
        #expect(try e("$(7 % -2)") == .int(-1))
        #expect(try e("$(-7 % 2)") == .int(1))
        #expect(try e("$(-7 / 2)") == .int(-4))
        #expect(try e("$(7 / -1)") == .int(-7))
    }

    @Test func deepNestingIsAnErrorNotAStackOverflow() throws {
        let n = 20_000  // 20,000 levels overflowed the stack (also outside sanitizers)
        for expression in ["$(" + String(repeating: "(", count: n) + "1" + String(repeating: ")", count: n) + ")",
                           "$(" + String(repeating: "min(", count: n) + "1" + String(repeating: ")", count: n) + ")",
                           "$(" + String(repeating: "not ", count: n) + "true)",
                           "$(" + String(repeating: "-", count: n) + "1)",
                           "$(" + String(repeating: "1 if true else ", count: n) + "1)"] {
            let e = varsFailure(expression)
            #expect(e?.message.contains("nested more than") == true, "\(e?.message.prefix(120) ?? "")")
        }
        // Nesting a person writes still works.
        let fifty = "$(" + String(repeating: "(", count: 50) + "2" + String(repeating: ")", count: 50) + ")"
        #expect(try Expression.substitute(fifty, [:]) == .int(2))
    }
}

/// YAML nested deeper than `ModelFile.maxNesting` (256) is refused with an error at the
/// line and column where the limit is crossed, before Yams' recursive composer sees it:
/// 10,000 levels of `[` overflowed the stack of a release build (`ply summary`), and
/// `- - - ...` likewise.
@Suite struct ModelFileNestingTests {
    let limit = ModelFile.maxNesting

    func parseFailure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ModelFileError? {
        do {
            _ = try ModelFile(text: text, source: "deep.yaml")
            Issue.record("expected an error", sourceLocation: sourceLocation)
        } catch let e as ModelFileError {
            return e
        } catch {
            Issue.record("expected a ModelFileError, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    func expectNestingError(_ text: String, line: Int, column: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        let e = parseFailure(text, sourceLocation: sourceLocation)
        #expect(e?.kind == .syntax, sourceLocation: sourceLocation)
        #expect(e?.field == "yaml", sourceLocation: sourceLocation)
        #expect(e?.message.contains("nested more than 256 levels deep") == true, "\(e?.message ?? "")", sourceLocation: sourceLocation)
        #expect(e?.line == line && e?.column == column, "\(e?.description.prefix(200) ?? "")", sourceLocation: sourceLocation)
        #expect(e?.description.hasPrefix("deep.yaml:\(line):\(column): field 'yaml': ") == true, sourceLocation: sourceLocation)
    }

    @Test(arguments: [10_000, 100_000])
    func flowNesting(levels n: Int) {
        // The top-level mapping is level 1, the `[` at column 9 level 2, so level 257 is
        // the 256th `[`, at column 264.
        expectNestingError("layers: " + String(repeating: "[", count: n) + String(repeating: "]", count: n),
                           line: 1, column: 8 + limit)
        expectNestingError("layers: " + String(repeating: "{a: ", count: n) + "1" + String(repeating: "}", count: n),
                           line: 1, column: 9 + 4 * (limit - 1))
        // JSON, and no closing brackets at all (libyaml has not seen the syntax error yet).
        expectNestingError(String(repeating: "[", count: n), line: 1, column: limit + 1)
        expectNestingError(String(repeating: "{\"a\": ", count: n), line: 1, column: 1 + 6 * limit)
    }

    @Test(arguments: [10_000, 100_000])
    func blockNesting(levels n: Int) {
        // Compact block sequences: `- - - x` nests one level per `- `.
        expectNestingError("layers:\n  " + String(repeating: "- ", count: n) + "x\n", line: 2, column: 3 + 2 * (limit - 1))
        // A block sequence of block mappings, one more level of indentation per line pair.
        var text = "layers:\n"
        for i in 0..<min(n, 1_000) { text += String(repeating: "  ", count: i) + "- a:\n" }
        // The top-level mapping is level 1; line L >= 2 holds a sequence at level 2(L - 1),
        // column 2L - 3, and its entry's mapping at level 2L - 1, column 2L - 1 (the key): level 257 is line 129's mapping.
        expectNestingError(text + String(repeating: "  ", count: 1_000) + "- x\n", line: (limit + 2) / 2, column: limit + 1)
    }

    @Test func indentedMappings() {
        // `a:` indented one more space per line: 2,000 levels (2 MB); 10,000 would be 50 MB of spaces.
        var text = ""
        for i in 0..<2_000 { text += String(repeating: " ", count: i) + "a:\n" }
        expectNestingError(text + String(repeating: " ", count: 2_000) + "1\n", line: limit + 1, column: limit + 1)
    }

    @Test func aliasesCountAsCopies() {
        // Each anchor is 200 levels deep and holds the previous one: 3 x 200 levels.
        let deep = { (inner: String) in String(repeating: "[", count: 200) + inner + String(repeating: "]", count: 200) }
        let text = "a: &a \(deep("1"))\nb: &b \(deep("*a"))\nc: \(deep("*b"))\nlayers: []\n"
        let e = parseFailure(text)
        #expect(e?.kind == .syntax)
        #expect(e?.line == 2, "\(e?.description.prefix(200) ?? "")")
        #expect(e?.message.contains("alias '*a' nests sequences and mappings 401 levels deep") == true, "\(e?.message ?? "")")
        // Shallow aliases (the usual shared `layers:` body) are fine.
        let shallow = "a: &a \(String(repeating: "[", count: 100))1\(String(repeating: "]", count: 100))\nb: [[*a, *a]]\n"
        #expect(throws: Never.self) { try ModelFile.checkNesting(shallow, source: "<text>") }
    }

    /// Groups nested as deep as the limit allows (126, with a list-valued attribute at level
    /// 256) build and run — the builder's recursion is safe there — and one more group is refused.
    @Test func groupsNestedToTheLimitBuildAndRun() throws {
        func text(groups: Int) -> String {
            var s = "layers:\n"
            var indent = "  "
            for i in 0..<groups {
                s += indent + "- group: g\(i)\n" + indent + "  layers:\n"
                indent += "    "
            }
            return s + indent + "- {name: pool, type: maxpool2d, kernel_size: [2, 2]}\n"
        }
        let groups = (limit - 4) / 2  // root, layers, each group's entry + layers, the layer's mapping, its list
        #expect(groups == 126)
        let m = try ModelFile(text: text(groups: groups)).build(runtime: sharedRuntime, inputShape: [1, 1, 4, 4])
        #expect(m.nodes.last?.name == (0..<groups).map { "g\($0)" }.joined(separator: ".") + ".pool")
        #expect(try m.forward(hashInput([1, 1, 4, 4])).shape == [1, 1, 2, 2])
        let e = parseFailure(text(groups: groups + 1))
        #expect(e?.message.contains("nested more than 256 levels deep") == true, "\(e?.message ?? "")")
    }

    @Test func flowNestingAtTheLimitParses() {
        // 255 levels under the top-level mapping: YAML composes, and the model error is about structure.
        let text = "layers: " + String(repeating: "[", count: limit - 1) + String(repeating: "]", count: limit - 1)
        do {
            _ = try ModelFile(text: text).build(runtime: sharedRuntime)
            Issue.record("expected an error")
        } catch let e as ModelFileError {
            #expect(e.kind == .structure, "\(e)")
            #expect(!e.message.contains("nested more than"))
        } catch {
            Issue.record("expected a ModelFileError, got \(error)")
        }
        // Brackets in quoted scalars, comments and block scalars are text, not nesting.
        let brackets = String(repeating: "[", count: 1_000)
        let quoted = "model: '\(brackets)'\ndescription: |\n  \(brackets)\n# \(brackets)\nlayers:\n  - {type: relu, name: \"\(brackets)\"}\n"
        do {
            _ = try ModelFile(text: quoted)
        } catch {
            Issue.record("brackets in text counted as nesting: \(error)")
        }
    }
}
