import ArgumentParser
import Foundation
import Ply

/// `ply summary`: the module tree as PyTorch prints it, then per layer the output shape,
/// parameters, MACs and receptive field (see `ModelSummary` for the conventions).
struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Print a model's module tree (as PyTorch prints it), per-layer shapes, parameters, MACs and receptive fields.")

    @Argument(help: "Zoo model name (\(Zoo.names.joined(separator: ", "))) a .yaml/.json model file, or an .onnx file.") var model: String
    @Option(name: .customLong("num-classes"), help: "Classes.") var numClasses = 10
    @Option(name: .customLong("in-channels"), help: "Input channels.") var inChannels = 1
    @Option(name: .customLong("image-size"), help: "Input height and width (smaller than a model's minimum adds a resize node).")
    var imageSize = 28
    @Option(help: "Batch size (scales shapes and MACs).") var batch = 1
    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        try checkOption("--num-classes", numClasses, in: OptionLimits.classes)
        try checkOption("--in-channels", inChannels, in: OptionLimits.channels)
        try checkOption("--image-size", imageSize, in: OptionLimits.imageSize)
        try checkOption("--batch", batch, in: OptionLimits.batch)
        try checkNotEmpty("<model>", model)
    }

    func run() throws {
        do {
            let runtime = try pluginOptions.makeRuntime()
            let net = try ModelSource.build(model, runtime: runtime, numClasses: numClasses, inChannels: inChannels, imageSize: imageSize)
            let summary = try ModelSummary(model: net, inputShape: [batch, inChannels, imageSize, imageSize],
                                           className: ModelSummary.className(forModelNamed: try Self.fileName(of: model)))
            print(summary)
        } catch { throw fail(error) }
    }

    /// The `model:` name of a zoo model or model file.
    static func fileName(of model: String) throws -> String {
        let lower = model.lowercased()
        if ModelSource.isONNX(model) { return URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent }
        if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") || lower.hasSuffix(".json") {
            return try ModelFile(contentsOf: URL(fileURLWithPath: model)).name
        }
        return try Zoo.modelFile(named: model).file.name
    }
}
