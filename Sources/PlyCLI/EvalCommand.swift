import ArgumentParser
import Foundation
import Ply

/// `ply eval`: accuracy and confusion matrix of a checkpoint or weights file.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Evaluate saved weights (a checkpoint or a safetensors state_dict) in eval mode.")

    @Option(help: "Zoo model name, model file (.yaml/.json) or ONNX file (.onnx).") var model = "convnet"
    @Option(help: "Weights or checkpoint (.safetensors).") var weights = "runs/convnet/checkpoint.safetensors"
    @Option(help: "Data directory: MNIST-format IDX files, CIFAR-10/100 binary, or image folders (train/<class>/..., test/<class>/...).")
    var data = "/usr/share/datasets/fashion-mnist"
    @Option(help: "Which split: test (or the --val-split validation set) or train.") var split = "test"
    @Option(help: "Seed of --val-split (the training run's --seed).") var seed: UInt64 = 1
    @OptionGroup(title: "Data and transforms (as in training)") var dataOptions: DataOptionGroup
    @Option(name: .customLong("batch-size"), help: "Images per forward pass (\(OptionLimits.batch)).") var batchSize = 256
    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        try checkOption("--batch-size", batchSize, in: OptionLimits.batch)
        try checkNotEmpty("--model", model)
        try checkNotEmpty("--weights", weights)
        try checkNotEmpty("--data", data)
        guard ["test", "train"].contains(split) else { throw ValidationError("--split must be test or train, got '\(split)'") }
    }

    func run() throws {
        do {
            let runtime = try pluginOptions.makeRuntime()
            let loaded = try DataDirectory(path: data).load(options: dataOptions.options(seed: seed, threads: nil,
                                                                                          file: modelFileTransforms(model)),
                                                            splits: split == "train" ? .train : .test)
            DataOptionGroup.reportSkipped(loaded)
            guard let dataset = split == "train" ? loaded.train : loaded.test else {
                throw PlyError.notFound("\(data) has no \(split) set (an image folder without test/: give --val-split as in training)")
            }
            guard dataset.count > 0 else { throw TrainingError.emptyDataset(role: "\(split) set", count: 0) }
            let classes = loaded.classNames?.count ?? 10
            let net = try ModelSource.build(model, runtime: runtime, numClasses: classes, inChannels: dataset.channels,
                                    imageSize: dataset.height)
            // Strict: every tensor of the model, right shape and type, nothing left over —
            // otherwise the accuracy would be that of weights never loaded.
            do {
                try net.loadWeights(from: weights, ignoringPrefix: Checkpoint.optimizerPrefix)
            } catch let error as WeightMismatchError {
                throw InputMismatch(error: error, input: "\(data) (\(split) set)", channels: dataset.channels,
                                    height: dataset.height, width: dataset.width)
            }
            var config = TrainingConfiguration()
            config.batchSize = batchSize
            config.initialization = .pytorchDefault
            let result = try Trainer(model: net, configuration: config, classes: classes).evaluate(dataset)
            print(Plots.confusionText(result.confusion, classNames: dataset.classNames), terminator: "")
            print(String(format: "%@ accuracy: %.2f%% (%d images)", split == "test" ? "Test" : "Training", result.accuracy, dataset.count))
        } catch let error as ValidationError { throw error } catch { throw fail(error) }
    }
}
