import Foundation
import Ply
import SwiftProtobuf

/// A Ply model written as an ONNX model (opset 17) that ONNX Runtime runs to the same logits
/// (docs/onnx.md). Built-in layers map to their ONNX operators; the composite blocks
/// (`residual_basic`, `residual_bottleneck`, `basic_conv2d`, `inception_googlenet` and Inception
/// v3's `inception_v3_a` to `_e`) export as their sub-graphs, read through the layer
/// introspection (`describe`'s children, ABI 1.2).
/// Any other type is an ``ONNXError/unsupportedLayer(node:type:reason:)``.
public enum ONNXExport {
    /// The opset written.
    public static let opset: Int64 = 17

    /// Types `serialize` maps.
    public static let supportedTypes = [
        "adaptive_avgpool2d", "add", "avgpool2d", "basic_conv2d", "batchnorm2d", "concat", "conv2d", "dropout", "flatten",
        "hardsigmoid", "hardswish", "hardtanh", "inception_googlenet", "inception_v3_a", "inception_v3_b", "inception_v3_c",
        "inception_v3_d", "inception_v3_e", "leakyrelu", "linear", "log_softmax", "maxpool2d", "mul", "pad2d", "relu",
        "relu6", "residual_basic", "residual_bottleneck", "scale", "sigmoid", "softmax", "tanh",
    ]

    /// The ONNX bytes of `model` for inputs of `inputShape` (the batch dimension is written as a
    /// free dimension, `batch`). Writes in inference form: dropout is left out.
    public static func serialize(_ model: Model, inputShape: Shape, name: String = "ply_model") throws -> [UInt8] {
        var w = ONNXWriter(model: model)
        try w.run(inputShape: inputShape)
        var graph = Onnx_GraphProto()
        graph.name = name
        graph.node = w.nodes
        graph.initializer = w.initializers
        graph.input = [valueInfo("input", dims: Array(inputShape.dims.dropFirst()))]
        graph.output = [valueInfo(w.outputTensor, dims: w.outputDims)]
        var proto = Onnx_ModelProto()
        proto.irVersion = 8
        proto.producerName = "ply"
        proto.graph = graph
        var set = Onnx_OperatorSetIdProto()
        set.version = opset
        proto.opsetImport = [set]
        return try proto.serializedBytes()
    }

    /// Writes `serialize`'s bytes to `path`.
    public static func write(_ model: Model, inputShape: Shape, to path: String) throws {
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let bytes = try serialize(model, inputShape: inputShape, name: name)
        do { try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw PlyError.io(path: path, problem: .unwritable, reason: error.localizedDescription)
        }
    }

    static func valueInfo(_ name: String, dims: [Int]) -> Onnx_ValueInfoProto {
        var shape = Onnx_TensorShapeProto()
        var batch = Onnx_TensorShapeProto.Dimension()
        batch.dimParam = "batch"
        shape.dim = [batch] + dims.map { d in
            var x = Onnx_TensorShapeProto.Dimension()
            x.dimValue = Int64(d)
            return x
        }
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.shape = shape
        var type = Onnx_TypeProto()
        type.tensorType = tensor
        var v = Onnx_ValueInfoProto()
        v.name = name
        v.type = type
        return v
    }
}
