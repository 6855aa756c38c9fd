import ArgumentParser
import Foundation
import Ply

/// `ply predict`: logits for images in a NumPy file, in eval mode.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Run a model in eval mode on a .npy batch (N, C, H, W) or on images, and write the logits (N, classes) as float32 .npy.",
        discussion: """
            The input may be float32, float64 (rounded to float32) or uint8 (divided by 255, as training data is), \
            little-endian and C order. --in-channels and --image-size default to the input's C and H, --num-classes \
            to the first dimension of the output layer's weight in --weights. --node NAME writes that node's output \
            instead (features, e.g. a ResNet's avgpool: shape (N, ...) as the node computes it; a relu fused into \
            the layer before it shares that layer's output). --input may also be a PNG or JPEG file, or a folder \
            of them (searched recursively, in sorted order): they are decoded, transformed with --resize, \
            --center-crop, --channels (default: --in-channels, else 1 when every image is gray), --mean/--std as in \
            training, and each file's predicted class index is printed.
            """)

    @Option(help: "Zoo model name, .yaml/.json model file, or .onnx file (which brings its weights).") var model = "convnet"
    @Option(help: "Weights: a safetensors state_dict or a ply checkpoint (optional with an .onnx model).") var weights: String?
    @Option(help: "Input .npy, shape (N, C, H, W); or a PNG/JPEG file or a folder of them.") var input: String
    @Option(help: "Output .npy for the logits (float32, shape (N, classes)), or --node's output.") var output: String
    @Option(name: .customLong("num-classes"), help: "Classes (default: from the weights).") var numClasses: Int?
    @Option(help: "Write this node's output instead of the model's (a name as `ply summary` lists it).") var node: String?
    @Option(name: .customLong("in-channels"), help: "Input channels (default: the input's).") var inChannels: Int?
    @Option(name: .customLong("image-size"), help: "Image size the model is built for (default: the input's height).")
    var imageSize: Int?
    @Option(name: .customLong("batch-size"), help: "Images per forward pass (bounds memory).") var batchSize = 64
    @Option(help: ArgumentHelp("Batch lanes: runs of images each carried through the whole model by one thread, on its own "
        + "copy of the weights (default: chosen per model and --batch-size; 1: every layer split over the threads).",
        valueName: "n")) var lanes: Int?
    @OptionGroup(title: "Images (when --input is an image or a folder)") var dataOptions: DataOptionGroup
    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        try checkOption("--num-classes", numClasses, in: OptionLimits.classes)
        try checkOption("--batch-size", batchSize, in: OptionLimits.batch)
        try checkOption("--lanes", lanes, in: OptionLimits.threads)
        try checkOption("--in-channels", inChannels, in: OptionLimits.channels)
        try checkOption("--image-size", imageSize, in: OptionLimits.imageSize)
        try checkNotEmpty("--model", model)
        try checkNotEmpty("--weights", weights)
        try checkNotEmpty("--input", input)
        try checkNotEmpty("--node", node)
        try checkOutputFile("--output", output)
        if weights == nil && !ModelSource.isONNX(model) {
            throw ValidationError("--weights is required (unless --model is an .onnx file, which has its own)")
        }
        if dataOptions.normalize {
            throw ValidationError("--normalize needs the training set; give predict the training run's values with --mean and --std")
        }
        if dataOptions.valSplit != nil { throw ValidationError("--val-split is for train and eval, not predict") }
    }

    /// Whether --input names images rather than a .npy file.
    private var imageInput: Bool {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory), isDirectory.boolValue { return true }
        return ImageFolder.extensions.contains((input as NSString).pathExtension.lowercased())
    }

    /// The images of --input, decoded and transformed, and their paths.
    private func readImages() throws -> (shape: [Int], values: [Float], paths: [String]) {
        var isDirectory: ObjCBool = false
        let folder = FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) && isDirectory.boolValue
        let files = folder ? ImageFolder.imageFiles(under: input) : [input]
        guard !files.isEmpty else { throw PlyError.invalid("\(input): no .png, .jpg or .jpeg file in this folder") }
        var transforms = ImageTransforms(resize: dataOptions.resize, centerCrop: dataOptions.centerCrop,
                                         channels: dataOptions.channels ?? inChannels)
        try transforms.validate()
        var report = ImageFolder.LoadReport()
        var data = try ImageFolder(files: files, root: input).load(transforms: transforms, skipBadImages: dataOptions.skipBadImages,
                                                                    report: &report)
        if !report.skipped.isEmpty {
            throw PlyError.invalid("predict does not skip images: every input needs its logits row; the first unreadable: \(report.skipped[0])")
        }
        transforms.channels = data.channels
        if case let .given(mean, std) = try dataOptions.normalization() {
            guard mean.count == 1 || mean.count == data.channels else {
                throw PlyError.invalid("--mean has \(mean.count) values for images of \(data.channels) channel(s)")
            }
            data = mean.count == 1 ? data.normalized(mean: mean[0], std: std[0]) : data.normalized(mean: mean, std: std)
        }
        return ([data.count, data.channels, data.height, data.width], data.images, files)
    }

    func run() throws {
        do {
            var paths: [String] = []
            let shape: [Int], values: [Float]
            if imageInput { (shape, values, paths) = try readImages() } else { (shape, values) = try NumPy.read(path: input) }
            guard shape.count == 4, shape.allSatisfy({ $0 > 0 }) else {
                throw PlyError.invalid("\(input): expected a non-empty (N, C, H, W) array, got shape \(shape)")
            }
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
            if let inChannels, inChannels != c {
                throw PlyError.invalid("\(input): the images have \(c) channel(s), --in-channels says \(inChannels)")
            }
            let runtime = try pluginOptions.makeRuntime()
            let classes = try numClasses ?? classesFromWeights(runtime: runtime, channels: c, size: imageSize ?? h)
            let net = try ModelSource.build(model, runtime: runtime, numClasses: classes, inChannels: c, imageSize: imageSize ?? h)
            do {
                if let weights { try net.loadWeights(from: weights, ignoringPrefix: Checkpoint.optimizerPrefix) }
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
            // Batches of several images per thread run split into lanes (Model.prepareLanes).
            try net.prepareLanes(forBatch: min(batchSize, n), lanes: lanes)
            // Inference only from here: the layers may free what it does not read (folded weights' originals).
            try net.freezeForInference()
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
            if node == nil, let classes = perImage.first, classes >= 1 {
                for (i, path) in paths.enumerated() {
                    let row = results[(i * classes)..<((i + 1) * classes)]
                    print("\(path)\t\(row.indices.max { row[$0] < row[$1] }.map { $0 - i * classes } ?? 0)")
                }
            }
        } catch { throw fail(error) }
    }

    private func classesFromWeights(runtime: Runtime, channels: Int, size: Int) throws -> Int {
        guard let weights else { return 10 }  // an .onnx model: its own classes
        return try classCount(model: model, weights: weights, runtime: runtime, channels: channels, size: size)
    }
}
