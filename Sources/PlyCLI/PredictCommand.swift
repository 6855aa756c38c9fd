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
            little-endian and C order. --in-channels and --image-size default to the input's C and H, --num-classes \
            to the first dimension of the output layer's weight in --weights. --node NAME writes that node's output \
            instead (features, e.g. a ResNet's avgpool: shape (N, ...) as the node computes it; a relu fused into \
            the layer before it shares that layer's output).
            """)

    @Option(help: "Zoo model name or .yaml/.json model file.") var model = "convnet"
    @Option(help: "Weights: a safetensors state_dict or a ply checkpoint.") var weights: String
    @Option(help: "Input .npy, shape (N, C, H, W).") var input: String
    @Option(help: "Output .npy for the logits (float32, shape (N, classes)), or --node's output.") var output: String
    @Option(name: .customLong("num-classes"), help: "Classes (default: from the weights).") var numClasses: Int?
    @Option(help: "Write this node's output instead of the model's (a name as `ply summary` lists it).") var node: String?
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
        try checkNotEmpty("--model", model)
        try checkNotEmpty("--weights", weights)
        try checkNotEmpty("--input", input)
        try checkNotEmpty("--node", node)
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
            let classes = try numClasses ?? classesFromWeights(runtime: runtime, channels: c, size: imageSize ?? h)
            let net = try Zoo.model(named: model, runtime: runtime, numClasses: classes, inChannels: c, imageSize: imageSize ?? h)
            do {
                try net.loadWeights(from: weights, ignoringPrefix: Checkpoint.optimizerPrefix)
            } catch let error as WeightMismatchError where inChannels == nil || imageSize == nil {
                throw InputMismatch(error: error, input: input, channels: c, height: h, width: w)
            }
            net.isTraining = false
            if let node {
                guard let id = net.node(named: node), id != Model.input else {
                    let names = net.nodes.dropFirst().map(\.name)
                    throw PlyError.notFound("--node \(node): model '\(model)' has no such node; its nodes: "
                        + names.prefix(40).joined(separator: ", ") + (names.count > 40 ? ", ..." : ""))
                }
                net.output = id
            }
            let image = c * h * w
            var results: [Float] = []
            var perImage: [Int] = []
            try values.withUnsafeBufferPointer { all in
                for start in stride(from: 0, to: n, by: batchSize) {
                    let m = min(batchSize, n - start)
                    let chunk = UnsafeBufferPointer(rebasing: all[(start * image)..<((start + m) * image)])
                    let out = try net.infer(chunk, shape: [m, c, h, w])
                    let outShape = try net.shapes(for: [m, c, h, w])[net.output]
                    guard outShape.rank >= 1, outShape.dims[0] == m else {
                        throw PlyError.invalid("node '\(net.nodes[net.output].name)' gives output \(outShape), not one row per image")
                    }
                    if node == nil, outShape.rank != 2 {
                        throw PlyError.invalid("model '\(model)' gives output \(outShape), not (N, classes)")
                    }
                    perImage = Array(outShape.dims.dropFirst())
                    results += out
                }
            }
            try NumPy.write(path: output, shape: [n] + perImage, values: results)
        } catch { throw fail(error) }
    }

    /// The number of classes the weights were trained for: the first dimension of the weight of
    /// the model's last layer with parameters (its output layer; the model is built once with 10
    /// classes to find it).
    private func classesFromWeights(runtime: Runtime, channels: Int, size: Int) throws -> Int {
        let probe = try Zoo.model(named: model, runtime: runtime, numClasses: 10, inChannels: channels, imageSize: size)
        let entries = try SafeTensors.read(path: weights).entries
        var id = probe.output
        while id != Model.input {
            let n = probe.nodes[id]
            if let layer = n.layer, let weight = try layer.parameters.first(where: { $0.trainable }) {
                let name = "\(n.name).\(weight.name)"
                guard let entry = entries[name], let first = entry.shape.first, first >= 1 else {
                    throw PlyError.invalid("\(weights): no tensor '\(name)' (the output layer's \(weight.name)) to take the "
                        + "number of classes from; give --num-classes")
                }
                return first
            }
            guard let next = n.inputs.first else { break }
            id = next
        }
        throw PlyError.invalid("cannot tell the number of classes of model '\(model)' from \(weights); give --num-classes")
    }
}
