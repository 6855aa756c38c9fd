import ArgumentParser
import Foundation
import Ply

/// `ply inspect`: pictures of a trained model — its first convolution's filters, a layer's
/// feature maps for one image, and the receptive field of one output position on that image.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Write PNG pictures of a trained model: first-layer filters, a layer's feature maps, a receptive field.",
        discussion: """
            Always writes filters.png (the first convolution's filters, one tile per filter). With --layer NAME \
            (a name as `ply summary` lists it) also features-NAME.png: that layer's output for the image, one tile \
            per channel. With --position Y,X as well, receptive-field-NAME-Y-X.png: the input image with the input \
            pixels that output position depends on framed in red (from the summary's receptive field, jump and \
            start; clipped to the image), and the rectangle printed. Every tile is normalised on its own (min to 0, \
            max to 255); see ModelInspector in the library documentation. The image is --index of an IDX data set \
            (--data, --split) or a PNG or JPEG file (--image), scaled to [0, 1] as training data is.
            """)

    @Option(help: "Zoo model name or .yaml/.json model file.") var model = "convnet"
    @Option(help: "Weights: a safetensors state_dict or a ply checkpoint.") var weights: String
    @Option(help: "Directory with MNIST-format IDX files (the image is --index of --split).")
    var data = "/usr/share/datasets/fashion-mnist"
    @Option(help: "Which split of --data: test (default) or train.") var split: String?
    @Option(help: "Index of the image in --split (default 0).") var index: Int?
    @Option(help: "A PNG or JPEG file as the image instead of --data (its own channels unless --in-channels).") var image: String?
    @Option(name: .customLong("in-channels"), help: "With --image: decode it to 1 (grey) or 3 (RGB) channels.")
    var inChannels: Int?
    @Option(name: .customLong("num-classes"), help: "Classes (default: from the weights).") var numClasses: Int?
    @Option(help: "Draw this layer's feature maps (a node name as `ply summary` lists it).") var layer: String?
    @Option(help: "With --layer: draw the receptive field of output position Y,X (row, column) of that layer.")
    var position: String?
    @Option(help: "Pixels per value, \(ModelInspector.scales.lowerBound)...\(ModelInspector.scales.upperBound) (default: tiles at least 64 pixels).")
    var scale: Int?
    @Option(help: "Directory for the pictures (created if missing).") var output = "inspect"
    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        try checkNotEmpty("--model", model)
        try checkNotEmpty("--weights", weights)
        try checkNotEmpty("--data", data)
        try checkNotEmpty("--image", image)
        try checkNotEmpty("--output", output)
        try checkOption("--scale", scale, in: ModelInspector.scales)
        try checkOption("--index", index, in: 0...Int(Int32.max))
        try checkOption("--num-classes", numClasses, in: OptionLimits.classes)
        if let split, !["test", "train"].contains(split) { throw ValidationError("--split must be test or train, got '\(split)'") }
        if image != nil, index != nil || split != nil {
            throw ValidationError("--image and --index/--split exclude each other: the image is either a PNG or JPEG file or one of --data's")
        }
        if let inChannels, inChannels != 1 && inChannels != 3 {
            throw ValidationError("--in-channels must be 1 or 3 (the file decodes to grey or RGB), got \(inChannels)")
        }
        if inChannels != nil, image == nil { throw ValidationError("--in-channels applies to --image only") }
        if let layer, layer.isEmpty { throw ValidationError("--layer is empty; give a layer name as `ply summary` lists it") }
        if position != nil, layer == nil { throw ValidationError("--position needs --layer: a position of which layer's output?") }
        _ = try parsedPosition()
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ValidationError("--output \(output) exists and is not a directory")
        }
    }

    /// `--position Y,X` as (y, x), both 0 or more.
    func parsedPosition() throws -> (y: Int, x: Int)? {
        guard let position else { return nil }
        let parts = position.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let y = Int(parts[0]), let x = Int(parts[1]) else {
            throw ValidationError("--position must be Y,X (row and column of the layer's output, e.g. 3,5), got '\(position)'")
        }
        guard y >= 0, x >= 0 else { throw ValidationError("--position \(position): Y and X must be 0 or more") }
        return (y, x)
    }

    func run() throws {
        do {
            // The image first (its size builds the model), then the model, the layer and the
            // position are checked before the weights are read.
            let (pixels, c, h, w, source) = try loadImage()
            let runtime = try pluginOptions.makeRuntime()
            let classes = try numClasses ?? classCount(model: model, weights: weights, runtime: runtime, channels: c, size: h)
            let net = try ModelSource.build(model, runtime: runtime, numClasses: classes, inChannels: c, imageSize: h)
            let inspector = try ModelInspector(model: net, channels: c, height: h, width: w)
            // Nothing is written unless every picture asked for can be drawn.
            if let layer, try inspector.row(layer).outputShape.rank != 4 {
                throw InspectError.notAFeatureMap(layer: layer, shape: try inspector.row(layer).outputShape)
            }
            if let layer, let (y, x) = try parsedPosition() { _ = try inspector.receptiveField(layer: layer, y: y, x: x) }
            do {
                try net.loadWeights(from: weights, ignoringPrefix: Checkpoint.optimizerPrefix)
            } catch let error as WeightMismatchError {
                throw InputMismatch(error: error, input: source, channels: c, height: h, width: w)
            }
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            func path(_ name: String) -> String { (output as NSString).appendingPathComponent(name) }
            let filters = try inspector.filters(scale: scale)
            try filters.picture.write(to: path("filters.png"))
            print("\(path("filters.png")): \(filters.layer).\(filters.parameter), one tile per filter")
            guard let layer else { return }
            let safe = layer.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "_" }
            let features = try inspector.featureMaps(layer: layer, image: pixels, scale: scale)
            try features.write(to: path("features-\(String(safe)).png"))
            let shape = try inspector.row(layer).outputShape
            print("\(path("features-\(String(safe)).png")): \(layer) \(shape) for \(source), one tile per channel")
            guard let (y, x) = try parsedPosition() else { return }
            let (box, picture) = try inspector.receptiveFieldPicture(layer: layer, y: y, x: x, image: pixels, scale: scale)
            let name = "receptive-field-\(String(safe))-\(y)-\(x).png"
            try picture.write(to: path(name))
            let row = try inspector.row(layer)
            print("\(path(name)): \(layer) position \(y),\(x) sees input \(box) "
                + "(receptive field \(row.receptiveField), jump \(row.jump), start \(row.start))")
        } catch let error as ValidationError { throw error } catch { throw fail(error) }
    }

    /// The image as CHW floats in [0, 1], its channels, height, width and a description.
    private func loadImage() throws -> ([Float], Int, Int, Int, String) {
        if let image {
            let picture = try PNGImage(contentsOf: image, channels: inChannels)
            return (picture.planes, picture.channels, picture.height, picture.width, image)
        }
        let which: ImageDataset.Split = split == "train" ? .train : .test
        let dataset = try ImageDataset.mnist(directory: data, split: which)
        let i = index ?? 0
        guard i < dataset.count else {
            throw PlyError.invalid("--index \(i): the \(which.rawValue) set of \(data) has \(dataset.count) images (0...\(dataset.count - 1))")
        }
        let size = dataset.sampleSize
        let label = dataset.classNames.flatMap { names in names.indices.contains(Int(dataset.labels[i])) ? "\(dataset.labels[i]) \(names[Int(dataset.labels[i])])" : nil } ?? String(dataset.labels[i])
        return (Array(dataset.images[(i * size)..<((i + 1) * size)]), dataset.channels, dataset.height, dataset.width,
                "\(which.rawValue) image \(i) of \(data) (label \(label))")
    }
}
