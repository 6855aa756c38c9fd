import ArgumentParser
import Foundation
import Ply
import PlyONNX
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
        abstract: "Train a model on MNIST-format, CIFAR or image-folder data (default: the tutorial's ConvNet on Fashion-MNIST, SGD lr 0.05, batch 128, 10 epochs).")

    @Option(help: "Zoo model name (\(Zoo.names.joined(separator: ", "))) a model file (.yaml, .json) or an ONNX file (.onnx: its weights are the start).")
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
    @Option(help: "Data directory: MNIST-format IDX files, CIFAR-10/100 binary, or image folders (train/<class>/*.png|jpg, test/<class>/...).")
    var data = "/usr/share/datasets/fashion-mnist"
    @Option(help: "Directory for checkpoints and plots (default: runs/MODEL, the zoo name or the model file's name).")
    var output: String?
    @Flag(help: "Continue from the checkpoint in the output directory.") var resume = false
    @Flag(name: .customLong("resume-anyway"),
          help: "With --resume: continue even if the checkpoint was written with another batch size, data set or model.")
    var resumeAnyway = false
    @Option(help: "Use only the first N training images (quick runs; 1 or more).") var limit: Int?
    @Flag(name: .customLong("no-train-accuracy"), help: "Skip the training-set accuracy after each epoch.") var noTrainAccuracy = false
    @OptionGroup(title: "Data and transforms") var dataOptions: DataOptionGroup
    @OptionGroup(title: "Augmentation (training images)") var augmentationOptions: AugmentationOptionGroup
    @Flag(help: ArgumentHelp("Data-parallel training over the ranks mpirun started (mpirun -np N ply train --distributed); --batch-size stays the global batch.",
                             discussion: "Needs the MPI communicator libplycomm_mpi.so beside ply: scripts/build-comm-mpi (Debian's libopenmpi-dev)."))
    var distributed = false
    @Flag(name: .customLong("allreduce-after-backward"),
          help: "With --distributed: sum the gradients after backward instead of in buckets during it (for measuring the overlap).")
    var allreduceAfterBackward = false
    @Flag(name: .customLong("no-validation"),
          help: "Skip the test set's loss and accuracy after each epoch (the validation curve; the final test accuracy stays).")
    var noValidation = false
    @Flag(name: .customLong("sync-batchnorm"),
          help: ArgumentHelp("With --distributed: batch-norm layers use the statistics of the whole global batch, summed over the ranks (PyTorch's SyncBatchNorm), so N ranks train one process's weights.",
                             discussion: "Without it each rank normalises with its own share's statistics. Every rank needs at least one image of the last batch."))
    var syncBatchNorm = false
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
        if allreduceAfterBackward && !distributed { throw ValidationError("--allreduce-after-backward needs --distributed") }
        if syncBatchNorm && !distributed {
            throw ValidationError("--sync-batchnorm needs --distributed: batch-norm statistics are synchronised over the ranks of a data-parallel job (mpirun -np N ply train --distributed --sync-batchnorm)")
        }
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
        var communicator: Communicator?
        do {
            if distributed { communicator = try Communicator.load() }
            try train(communicator: communicator)
            communicator?.finalize()
        } catch let error as ValidationError {
            throw error
        } catch {
            guard let communicator, communicator.size > 1 else { throw fail(error) }
            // Errors every rank meets at the same step end the job normally (each rank has the same
            // state); any other may be this rank's alone, and the others would wait for it in the
            // next collective: end them all.
            switch error {
            case TrainingError.interrupted, TrainingError.nonFiniteLoss:
                communicator.finalize()
                throw communicator.rank == 0 ? fail(error) : ExitCode.failure
            default:
                _ = fail(error)
                FileHandle.standardError.write(Data("ply: rank \(communicator.rank) of \(communicator.size) failed; ending the job\n".utf8))
                communicator.abort(code: 1)
            }
        }
    }

    private func train(communicator: Communicator?) throws {
        // Ranks sharing a host share its cores (mpirun -np 2 on 2 cores: one thread each).
        let localRanks = communicator?.localSize ?? 1
        let threads = self.threads ?? (localRanks > 1 ? max(1, ProcessInfo.processInfo.activeProcessorCount / localRanks) : nil)
        let root = (communicator?.rank ?? 0) == 0
        func say(_ line: String) { if root { print(line) } }
        let runtime = try pluginOptions.makeRuntime(seed: seed, threads: threads)
        var config = TrainingConfiguration()
        config.epochs = epochs
        config.batchSize = batchSize
        config.learningRate = learningRate
        config.seed = seed
        config.outputDirectory = outputDirectory
        config.trainingAccuracy = !noTrainAccuracy
        config.validationEachEpoch = !noValidation
        config.resumeAnyway = resumeAnyway
        config.schedule = try parseSchedule()
        config.optimizer = optimizer.lowercased() == "adam" ? .adam(weightDecay: weightDecay)
            : .sgd(momentum: momentum, weightDecay: weightDecay, nesterov: nesterov)
        config.initialization = initialization.lowercased() == "normal" ? .normal(std: 0.01) : .pytorchDefault
        config.overlapCommunication = !allreduceAfterBackward
        config.syncBatchNorm = syncBatchNorm

        let fileTransforms = try modelFileTransforms(model)
        let loaded = try DataDirectory(path: data).load(options: dataOptions.options(seed: seed, threads: threads, file: fileTransforms))
        DataOptionGroup.reportSkipped(loaded)
        guard var train = loaded.train else { throw TrainingError.emptyDataset(role: "training set", count: 0) }
        let test = loaded.test
        if let limit { train = train.prefix(limit) }
        config.augmentation = augmentationOptions.augmentation(normalization: loaded.normalization, file: fileTransforms)
        let classes = loaded.classNames?.count ?? 10
        let net = try ModelSource.build(model, runtime: runtime, numClasses: classes, inChannels: train.channels, imageSize: train.height)
        let trainer = try Trainer(model: net, configuration: config, classes: classes, communicator: communicator)
        // The trainer initialised the weights; an ONNX model starts from its own (fine-tuning).
        if ModelSource.isONNX(model) { try ONNXImport(contentsOf: model).loadWeights(into: net) }
        if let communicator {
            say("Distributed: \(communicator.size) ranks (\(communicator.engine)), \(runtime.threads) thread(s) each, "
                + "global batch \(batchSize) (\(batchSize / communicator.size)\(batchSize % communicator.size == 0 ? "" : "-\(batchSize / communicator.size + 1)") per rank)")
        }
        if resume, root, let path = trainer.checkpointPath, !FileManager.default.fileExists(atPath: path) {
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
        let bar = ProgressBar(enabled: communicator == nil && isatty(STDOUT_FILENO) == 1)  // mpirun gives ranks a pty even when its own output is a file
        // The held-out set's numbers arrive just before the epoch's; printed after its training accuracy.
        // "test": the MNIST-format test files are the held-out set.
        let heldOut = "test"
        var validation: (loss: Double, accuracy: Double)?
        let summary = try trainer.run(train: train, test: test, resume: resume,
                                      shouldStop: { stopRequested.load(ordering: .relaxed) }) { event in
            switch event {
            case let .batch(epoch, batch, batches, cost, rate, log):
                if log && root {
                    bar.clear()
                    print(String(format: "Epoch: %03d/%03d | Batch %03d/%03d | Cost: %.4f", epoch, epochs, batch, batches, cost))
                }
                bar.show(epoch: epoch, epochs: epochs, batch: batch + 1, batches: batches, cost: cost, rate: rate)
            case let .validation(_, loss, accuracy):
                validation = (loss, accuracy)
            case let .epoch(epoch, accuracy, loss, elapsed):
                bar.clear()
                if let accuracy { say(String(format: "Epoch: %03d/%03d training accuracy: %.2f%%", epoch, epochs, accuracy)) }
                if let v = validation {
                    say(String(format: "Epoch: %03d/%03d %@ accuracy: %.2f%% | %@ cost: %.4f | training cost: %.4f",
                                 epoch, epochs, heldOut, v.accuracy, heldOut, v.loss, loss))
                    validation = nil
                }
                say(String(format: "Time elapsed: %.2f min", elapsed / 60))
            case .checkpoint: break
            case let .resumed(path, epoch, batch):
                say("Resuming from \(path) at epoch \(epoch + 1), batch \(batch)")
            }
            fflush(nil)
        }
        say(String(format: "Total Training Time: %.2f min", summary.seconds / 60))
        if let accuracy = summary.testAccuracy { say(String(format: "Test accuracy: %.2f%%", accuracy)) }
        say(String(format: "Throughput: %.0f images/s; checkpoint, training.svg and confusion matrix in %@", summary.imagesPerSecond, outputDirectory))
        if communicator != nil {
            say(String(format: "Communication: %.2f s in collectives, %.2f s waiting for gradient sums after backward",
                       summary.communicationSeconds, summary.exposedAllreduceSeconds))
        }
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
