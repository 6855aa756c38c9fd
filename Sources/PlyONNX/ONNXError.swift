import Ply

/// Every error the ONNX importer and exporter report. Each case names the file and, for a
/// graph problem, the node, its operator type and the model's opset.
public enum ONNXError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file is not a readable ONNX model: protobuf that does not parse, a tensor whose data
    /// does not match its declared shape and type, a reference to a tensor that does not exist.
    case malformed(path: String, reason: String)
    /// An operator Ply has no mapping for. `supported` lists those it has.
    case unsupportedOperator(path: String, node: String, opType: String, opset: Int, supported: [String])
    /// A mapped operator used in a way Ply's layers cannot compute (an attribute value, an
    /// input that must be constant, an asymmetric padding, ...).
    case unsupportedUse(path: String, node: String, opType: String, opset: Int, reason: String)
    /// A tensor stored outside the model file could not be loaded.
    case externalData(path: String, tensor: String, reason: String)
    /// A layer of the Ply model has no ONNX mapping (export).
    case unsupportedLayer(node: String, type: String, reason: String)

    /// The message in words.
    public var description: String {
        switch self {
        case let .malformed(path, reason):
            return "\(path): not a usable ONNX model: \(reason)"
        case let .unsupportedOperator(path, node, opType, opset, supported):
            return "\(path): node '\(node)': operator \(opType) (opset \(opset)) is not supported; "
                + "Ply imports \(supported.joined(separator: ", "))"
        case let .unsupportedUse(path, node, opType, opset, reason):
            return "\(path): node '\(node)' (\(opType), opset \(opset)): \(reason)"
        case let .externalData(path, tensor, reason):
            return "\(path): tensor '\(tensor)': external data: \(reason)"
        case let .unsupportedLayer(node, type, reason):
            return "node '\(node)' (layer type \(type)) cannot be exported to ONNX: \(reason)"
        }
    }
}
