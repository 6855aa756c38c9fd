import ArgumentParser
import Foundation
import Ply
import PlyONNX

/// `ply export`: a Ply model with its weights as an ONNX file.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a model and its weights as an ONNX file (opset 17) that ONNX Runtime runs.",
        discussion: """
            Built-in layers map to their ONNX operators; residual blocks, basic_conv2d, GoogLeNet's and Inception v3's \
            inception blocks export as their sub-graphs. Dropout is left out (the file is for inference). A layer type \
            without a mapping is an error naming the node and the type. The batch dimension is free ('batch').
            """)

    @Option(help: "Zoo model name, .yaml/.json model file, or .onnx file.") var model: String
    @Option(help: "Weights: a safetensors state_dict or a ply checkpoint (optional with an .onnx model).") var weights: String?
    @Option(help: "The ONNX file to write.") var output: String
    @Option(name: .customLong("num-classes"), help: "Classes (default: from the weights' output layer).") var numClasses: Int?
    @Option(name: .customLong("in-channels"), help: "Input channels.") var inChannels = 3
    @Option(name: .customLong("image-size"), help: "Input height and width the shapes are written for.") var imageSize = 224
    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        try checkNotEmpty("--model", model)
        try checkNotEmpty("--weights", weights)
        try checkOption("--num-classes", numClasses, in: OptionLimits.classes)
        try checkOption("--in-channels", inChannels, in: OptionLimits.channels)
        try checkOption("--image-size", imageSize, in: OptionLimits.imageSize)
        try checkOutputFile("--output", output)
        if weights == nil && !ModelSource.isONNX(model) {
            throw ValidationError("--weights is required (unless --model is an .onnx file, which has its own)")
        }
    }

    func run() throws {
        do {
            let runtime = try pluginOptions.makeRuntime()
            var classes = numClasses ?? 10
            if numClasses == nil, let weights, !ModelSource.isONNX(model) {
                classes = try classCount(model: model, weights: weights, runtime: runtime, channels: inChannels, size: imageSize)
            }
            let net = try ModelSource.build(model, runtime: runtime, numClasses: classes, inChannels: inChannels, imageSize: imageSize)
            if let weights { try net.loadWeights(from: weights, ignoringPrefix: Checkpoint.optimizerPrefix) }
            net.isTraining = false
            try ONNXExport.write(net, inputShape: [1, inChannels, imageSize, imageSize], to: output)
            print("wrote \(output) (ONNX opset \(ONNXExport.opset), \(net.nodes.count - 1) layers)")
        } catch let error as ValidationError { throw error } catch { throw fail(error) }
    }
}
