import ArgumentParser
import Foundation
import Ply
import Synchronization

/// Set by SIGINT / SIGTERM; polled by the trainer between batches.
let stopRequested = Atomic<Bool>(false)

/// SIGINT / SIGTERM: the first asks the trainer to stop after the batch in flight (it then saves
/// a checkpoint and exits); a second, while that batch still runs (a big model's step can take
/// seconds), exits at once. The checkpoint on disk is whole either way (written atomically); what
/// the second interrupt loses is the progress since it, which the message says. Only
/// async-signal-safe calls: an atomic exchange, write(2) of a static string, _exit(2).
func stopSignal(_ signal: Int32) {
    guard stopRequested.exchange(true, ordering: .relaxed) else { return }
    let message: StaticString = """

        ply: second interrupt: exiting now, without finishing the batch in progress or saving; \
        the last checkpoint is intact (--resume continues from it)

        """
    message.withUTF8Buffer { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    _exit(128 + signal)
}

/// `ply train`: with no arguments, the tutorial's run (its ConvNet on Fashion-MNIST).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on MNIST-format data (default: the tutorial's ConvNet, SGD lr 0.05, batch 128, 10 epochs).")

    @Option(help: "Zoo model name (\(Zoo.names.joined(separator: ", "))) or a model file (.yaml, .json).")
    var model = "convnet"
    @Option(help: "Epochs.") var epochs = 10
    @Option(name: .customLong("batch-size"), help: "Batch size.") var batchSize = 128
    @Option(name: [.customLong("lr"), .customLong("learning-rate")], help: "Learning rate.") var learningRate = 0.05
    @Option(help: "Optimizer: sgd or adam.") var optimizer = "sgd"
    @Option(help: "SGD momentum.") var momentum = 0.0
    @Option(name: .customLong("weight-decay"), help: "L2 weight decay.") var weightDecay = 0.0
    @Flag(help: "Nesterov momentum (SGD).") var nesterov = false
    @Option(help: "Learning-rate schedule: constant, step:SIZE:GAMMA or cosine[:MIN].") var schedule = "constant"
    @Option(help: "Initialisation: normal (the tutorial's N(0, 0.01), zero bias) or default (PyTorch's).") var initialization = "normal"
    @Option(help: "Random seed (initialisation, shuffling, dropout).") var seed: UInt64 = 1
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "Directory with MNIST-format IDX files.") var data = "/usr/share/datasets/fashion-mnist"
    @Option(help: "Directory for checkpoints and plots (default: runs/MODEL, the zoo name or the model file's name).")
    var output: String?
    @Flag(help: "Continue from the checkpoint in the output directory.") var resume = false
    @Flag(name: .customLong("resume-anyway"),
          help: "With --resume: continue even if the checkpoint was written with another batch size, data set or model.")
    var resumeAnyway = false
    @Option(help: "Use only the first N training images (quick runs; 1 or more).") var limit: Int?
    @Flag(name: .customLong("no-train-accuracy"), help: "Skip the training-set accuracy after each epoch.") var noTrainAccuracy = false
    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        try checkOption("--epochs", epochs, in: OptionLimits.epochs)
        try checkOption("--batch-size", batchSize, in: OptionLimits.batch)
        try checkOption("--lr", learningRate, learningRate > 0 && learningRate.isFinite, "a finite number > 0")
        try checkOption("--momentum", momentum, momentum >= 0 && momentum < 1, "in [0, 1)")
        try checkOption("--weight-decay", weightDecay, weightDecay >= 0 && weightDecay.isFinite, "a finite number >= 0")
        try checkOption("--threads", threads, in: OptionLimits.threads)
        try checkOption("--limit", limit, in: 1...Int(Int32.max))
        try checkNotEmpty("--model", model)
        try checkNotEmpty("--data", data)
        try checkNotEmpty("--output", output)
        guard ["sgd", "adam"].contains(optimizer.lowercased()) else {
            throw ValidationError("--optimizer must be sgd or adam, got '\(optimizer)'")
        }
        if nesterov && (optimizer.lowercased() != "sgd" || momentum == 0) {
            throw ValidationError("--nesterov needs --optimizer sgd and --momentum > 0")
        }
        guard ["normal", "default", "pytorch"].contains(initialization.lowercased()) else {
            throw ValidationError("--initialization must be normal or default, got '\(initialization)'")
        }
        if resumeAnyway && !resume { throw ValidationError("--resume-anyway needs --resume") }
        _ = try parseSchedule()
    }

    func parseSchedule() throws -> LearningRateSchedule {
        let parts = schedule.split(separator: ":").map(String.init)
        switch parts.first {
        case "constant":
            guard parts.count == 1 else { throw ValidationError("--schedule constant takes no arguments, got '\(schedule)'") }
            return .constant
        case "step":
            guard parts.count == 3, let size = Int(parts[1]), let gamma = Double(parts[2]) else {
                throw ValidationError("--schedule step needs step:SIZE:GAMMA, e.g. step:3:0.1; got '\(schedule)'")
            }
            guard size >= 1 else { throw ValidationError("--schedule \(schedule): SIZE must be 1 or more (epochs per step), got \(size)") }
            guard gamma.isFinite, gamma >= 0 else {
                throw ValidationError("--schedule \(schedule): GAMMA must be a finite number >= 0, got \(parts[2])")
            }
            return try validated(.step(stepSize: size, gamma: gamma))
        case "cosine":
            guard parts.count <= 2 else { throw ValidationError("--schedule cosine takes cosine or cosine:MIN, got '\(schedule)'") }
            var minimum = 0.0
            if parts.count == 2 {
                guard let m = Double(parts[1]), m.isFinite, m >= 0 else {
                    throw ValidationError("--schedule \(schedule): MIN must be a finite number >= 0, got '\(parts[1])'")
                }
                minimum = m
            }
            return try validated(.cosine(epochs: epochs, minimum: minimum))
        default:
            throw ValidationError("unknown --schedule '\(schedule)': constant, step:SIZE:GAMMA or cosine[:MIN]")
        }
    }

    /// The schedule's own check (`LearningRateSchedule.validate`), as an option error.
    private func validated(_ s: LearningRateSchedule) throws -> LearningRateSchedule {
        do { try s.validate() } catch { throw ValidationError("--schedule \(schedule): \(error)") }
        return s
    }

    /// `--output`, or runs/<model>: the zoo name, or a model file's name without its extension,
    /// so that two models trained one after the other do not share a checkpoint.
    var outputDirectory: String {
        if let output { return output }
        let stem = ((model as NSString).lastPathComponent as NSString).deletingPathExtension
        return "runs/" + (stem.isEmpty ? "model" : stem)
    }

    func run() throws {
        do { try train() } catch let error as ValidationError { throw error } catch { throw fail(error) }
    }

    private func train() throws {
        let runtime = try pluginOptions.makeRuntime(seed: seed, threads: threads)
        var config = TrainingConfiguration()
        config.epochs = epochs
        config.batchSize = batchSize
        config.learningRate = learningRate
        config.seed = seed
        config.outputDirectory = outputDirectory
        config.trainingAccuracy = !noTrainAccuracy
        config.resumeAnyway = resumeAnyway
        config.schedule = try parseSchedule()
        config.optimizer = optimizer.lowercased() == "adam" ? .adam(weightDecay: weightDecay)
            : .sgd(momentum: momentum, weightDecay: weightDecay, nesterov: nesterov)
        config.initialization = initialization.lowercased() == "normal" ? .normal(std: 0.01) : .pytorchDefault

        var train = try ImageDataset.mnist(directory: data, split: .train)
        let test = try ImageDataset.mnist(directory: data, split: .test)
        if let limit { train = train.prefix(limit) }
        let net = try Zoo.model(named: model, runtime: runtime, numClasses: 10, inChannels: train.channels, imageSize: train.height)
        let trainer = try Trainer(model: net, configuration: config)
        if resume, let path = trainer.checkpointPath, !FileManager.default.fileExists(atPath: path) {
            FileHandle.standardError.write(Data("ply: no checkpoint at \(path); --resume starts a fresh run\n".utf8))
        }

        // Ctrl-C and SIGTERM save a checkpoint between batches and exit; a second one exits at
        // once (stopSignal). A parent may have started us with them blocked (signal masks are
        // inherited): unblock them.
        var mask = sigset_t()
        sigemptyset(&mask)
        for sig in [SIGINT, SIGTERM] {
            signal(sig, stopSignal)
            sigaddset(&mask, sig)
        }
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        let bar = ProgressBar(enabled: isatty(STDOUT_FILENO) == 1)
        let summary = try trainer.run(train: train, test: test, resume: resume,
                                      shouldStop: { stopRequested.load(ordering: .relaxed) }) { event in
            switch event {
            case let .batch(epoch, batch, batches, cost, rate, log):
                if log {
                    bar.clear()
                    print(String(format: "Epoch: %03d/%03d | Batch %03d/%03d | Cost: %.4f", epoch, epochs, batch, batches, cost))
                }
                bar.show(epoch: epoch, epochs: epochs, batch: batch + 1, batches: batches, cost: cost, rate: rate)
            case let .epoch(epoch, accuracy, _, elapsed):
                bar.clear()
                if let accuracy { print(String(format: "Epoch: %03d/%03d training accuracy: %.2f%%", epoch, epochs, accuracy)) }
                print(String(format: "Time elapsed: %.2f min", elapsed / 60))
            case .checkpoint: break
            case let .resumed(path, epoch, batch):
                print("Resuming from \(path) at epoch \(epoch + 1), batch \(batch)")
            }
            fflush(nil)
        }
        print(String(format: "Total Training Time: %.2f min", summary.seconds / 60))
        if let accuracy = summary.testAccuracy { print(String(format: "Test accuracy: %.2f%%", accuracy)) }
        print(String(format: "Throughput: %.0f images/s; checkpoint, training.svg and confusion matrix in %@", summary.imagesPerSecond, outputDirectory))
    }
}

/// A one-line progress bar redrawn in place when stdout is a terminal.
final class ProgressBar {
    let enabled: Bool
    private var visible = false
    init(enabled: Bool) { self.enabled = enabled }

    func show(epoch: Int, epochs: Int, batch: Int, batches: Int, cost: Float, rate: Double) {
        guard enabled else { return }
        let width = 30, filled = width * batch / max(batches, 1)
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        print(String(format: "\r[%@] epoch %d/%d  batch %d/%d  cost %.4f  %.0f img/s ", bar, epoch, epochs, batch, batches, cost, rate),
              terminator: "")
        visible = true
    }

    func clear() {
        guard enabled, visible else { return }
        print("\r\u{1B}[2K", terminator: "")
        visible = false
    }
}
