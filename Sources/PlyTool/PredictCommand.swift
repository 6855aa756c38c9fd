import ArgumentParser
import Foundation
import Ply

/// `ply predict`: logits for images in a NumPy file, in eval mode.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Run a model in eval mode on a .npy batch (N, C, H, W) and write the logits (N, classes) as float32 .npy.",
        discussion: """
            The input may be float32, float64 (rounded to float32) or uint8 (divided by 255, as training data is), \
            little-endian and C order. --in-channels and --image-size default to the input's C and H.
            """)

    @Option(help: "Zoo model name or .yaml/.json model file.") var model = "convnet"
    @Option(help: "Weights: a safetensors state_dict or a ply checkpoint.") var weights: String
    @Option(help: "Input .npy, shape (N, C, H, W).") var input: String
    @Option(help: "Output .npy for the logits (float32, shape (N, classes)).") var output: String
    @Option(name: .customLong("num-classes"), help: "Classes.") var numClasses = 10
    @Option(name: .customLong("in-channels"), help: "Input channels (default: the input's).") var inChannels: Int?
    @Option(name: .customLong("image-size"), help: "Image size the model is built for (default: the input's height).")
    var imageSize: Int?
    @Option(name: .customLong("batch-size"), help: "Images per forward pass (bounds memory).") var batchSize = 64
    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        try checkOption("--num-classes", numClasses, in: OptionLimits.classes)
        try checkOption("--batch-size", batchSize, in: OptionLimits.batch)
        try checkOption("--in-channels", inChannels, in: OptionLimits.channels)
        try checkOption("--image-size", imageSize, in: OptionLimits.imageSize)
        try checkOutputFile("--output", output)
    }

    func run() throws {
        do {
            let (shape, values) = try NumPy.read(path: input)
            guard shape.count == 4, shape.allSatisfy({ $0 > 0 }) else {
                throw PlyError.invalid("\(input): expected a non-empty (N, C, H, W) array, got shape \(shape)")
            }
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
            if let inChannels, inChannels != c {
                throw PlyError.invalid("\(input): the images have \(c) channel(s), --in-channels says \(inChannels)")
            }
            let runtime = try pluginOptions.makeRuntime()
            let net = try Zoo.model(named: model, runtime: runtime, numClasses: numClasses, inChannels: c, imageSize: imageSize ?? h)
            do {
                try net.loadWeights(from: weights, ignoringPrefix: Checkpoint.optimizerPrefix)
            } catch let error as WeightMismatchError where inChannels == nil || imageSize == nil {
                throw InputMismatch(error: error, input: input, channels: c, height: h, width: w)
            }
            net.isTraining = false
            let image = c * h * w
            var logits: [Float] = []
            var classes = 0
            try values.withUnsafeBufferPointer { all in
                for start in stride(from: 0, to: n, by: batchSize) {
                    let m = min(batchSize, n - start)
                    let chunk = UnsafeBufferPointer(rebasing: all[(start * image)..<((start + m) * image)])
                    let out = try net.infer(chunk, shape: [m, c, h, w])
                    let outShape = try net.shapes(for: [m, c, h, w])[net.output]
                    guard outShape.rank == 2, outShape.dims[0] == m else {
                        throw PlyError.invalid("model '\(model)' gives output \(outShape), not (N, classes)")
                    }
                    classes = outShape.dims[1]
                    logits += out
                }
            }
            try NumPy.write(path: output, shape: [n, classes], values: logits)
        } catch { throw fail(error) }
    }
}
