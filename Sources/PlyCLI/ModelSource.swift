import Foundation
import Ply
import PlyONNX

/// What a `--model` option names: a zoo model, a model file (.yaml/.yml/.json) or an ONNX file
/// (imported on the fly, its weights loaded: docs/onnx.md).
enum ModelSource {
    static func isONNX(_ model: String) -> Bool { model.lowercased().hasSuffix(".onnx") }

    /// Builds `model` for `inChannels`-channel images of `imageSize`² pixels. An ONNX model keeps
    /// its own class count and comes with its weights.
    static func build(_ model: String, runtime: Runtime, numClasses: Int, inChannels: Int, imageSize: Int) throws -> Model {
        if isONNX(model) {
            return try ONNXImport(contentsOf: model).build(runtime: runtime, inputShape: [1, inChannels, imageSize, imageSize])
        }
        return try Zoo.model(named: model, runtime: runtime, numClasses: numClasses, inChannels: inChannels, imageSize: imageSize)
    }
}
