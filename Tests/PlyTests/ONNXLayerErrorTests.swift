import Foundation
import Testing
@testable import Ply

/// The layers added for ONNX's MobileNet operators (hardtanh, leakyrelu, hardsigmoid, pad2d,
/// scale, mul) refuse bad attributes and shapes with errors naming the value and what was
/// expected; their numerics are the golden cases' (GoldenLayerTests).
@Suite struct ONNXLayerErrorTests {
    static func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "(no error)"
    }

    @Test func badAttributesAreNamed() throws {
        let r = sharedRuntime
        var m = Self.message { _ = try Layer("hardtanh", [("min_val", .float(2)), ("max_val", .float(1))], runtime: r) }
        #expect(m.contains("min_val 2 is greater than max_val 1"), "\(m)")
        m = Self.message { _ = try Layer("leakyrelu", [("negative_slope", .float(.infinity))], runtime: r) }
        #expect(m.contains("negative_slope inf is not finite"), "\(m)")
        m = Self.message { _ = try Layer("hardsigmoid", [("alpha", .float(.nan))], runtime: r) }
        #expect(m.contains("alpha is NaN"), "\(m)")
        m = Self.message { _ = try Layer("pad2d", [("padding", .ints([1, 2, 3]))], runtime: r) }
        #expect(m.contains("4 integers [left, right, top, bottom] (got 3 values)"), "\(m)")
        m = Self.message { _ = try Layer("pad2d", [("padding", .ints([0, -1, 0, 0]))], runtime: r) }
        #expect(m.contains("[0, -1, 0, 0] must be between 0 and"), "\(m)")
        m = Self.message { _ = try Layer("pad2d", [("padding", .int(1)), ("mode", .string("edge"))], runtime: r) }
        #expect(m.contains("mode 'edge' is not one of constant, reflect"), "\(m)")
        m = Self.message { _ = try Layer("pad2d", [("padding", .int(1)), ("mode", .string("reflect")), ("value", .float(1))], runtime: r) }
        #expect(m.contains("value 1 is given with mode reflect"), "\(m)")
        m = Self.message { _ = try Layer("scale", [("num_features", .int(0))], runtime: r) }
        #expect(m.contains("num_features must be in 1..16777216 (got 0)"), "\(m)")
    }

    @Test func badShapesAreNamed() throws {
        let r = sharedRuntime
        let reflect = try Layer("pad2d", [("padding", .ints([0, 0, 3, 0])), ("mode", .string("reflect"))], runtime: r)
        var m = Self.message { _ = try reflect.outputShape(for: [[1, 1, 3, 5]]) }
        #expect(m.contains("each pad must be less than its axis' size") && m.contains("3 x 5"), "\(m)")
        #expect(try reflect.outputShape(for: [[1, 1, 4, 5]]) == [1, 1, 7, 5])
        m = Self.message { _ = try reflect.outputShape(for: [[2, 5]]) }
        #expect(m.contains("input 0 has 2 dimensions (expected 4"), "\(m)")
        let scale = try Layer("scale", [("num_features", .int(3))], runtime: r)
        m = Self.message { _ = try scale.outputShape(for: [[2, 4, 5, 5]]) }
        #expect(m.contains("input 0 has 4 channels (dimension 1); expected 3"), "\(m)")
        #expect(try Layer("scale", [("num_features", .int(1))], runtime: r).outputShape(for: [[2, 4, 5, 5]]) == [2, 4, 5, 5])
        let mul = try Layer("mul", runtime: r)
        m = Self.message { _ = try mul.outputShape(for: [[2, 4, 5, 5], [2, 3, 1, 1]]) }
        #expect(m.contains("dimension 1 is 4 in input 0 and 3 in input 1"), "\(m)")
        m = Self.message { _ = try mul.outputShape(for: [[2, 4, 5, 5], [2, 4]]) }
        #expect(m.contains("input 1 has 2 dimensions (expected 4"), "\(m)")
        #expect(try mul.outputShape(for: [[2, 1, 5, 5], [1, 3, 5, 1]]) == [2, 3, 5, 5])
    }

    /// NaN passes through the activations, as in PyTorch.
    @Test func nanPassesThrough() throws {
        for (type, attrs) in [("hardtanh", Attributes()), ("relu6", []), ("leakyrelu", []), ("hardswish", []), ("hardsigmoid", []),
                              ("hardsigmoid", [("alpha", .float(0.2)), ("beta", .float(0.5))])] {
            let y = try Layer(type, attrs, runtime: sharedRuntime).forward([Tensor(shape: [1], data: [.nan])])
            #expect(y.data[0].isNaN, "\(type): \(y.data[0])")
        }
    }
}
