import CPly
import Foundation

/// Trains a model on an image data set with mean cross-entropy, as the tutorial does.
public final class Trainer {
    /// The model being trained.
    public let model: Model
    /// The run's settings.
    public let configuration: TrainingConfiguration
    /// The optimizer made from the configuration (its state goes into checkpoints).
    public let optimizer: Optimizer
    let loss: Layer
    let classes: Int
    /// Data-parallel training: the job this process is one rank of (nil: one process).
    public let communicator: Communicator?
    /// Sums gradients over the ranks (with a communicator).
    let reducer: GradientReducer?
    /// Cross-entropy summed over this rank's share of a batch (with a communicator).
    let sumLoss: Layer?
    /// Set by a data-parallel step when any rank asked to stop (Ctrl-C): every rank stops
    /// before the same batch.
    var agreedStop = false
    /// The slice size chosen for the last local step's input shape (Trainer+MicroBatch.swift).
    var microBatchPlan: (shape: Shape, nodes: Int, size: Int?)?
    /// The training set's size and fingerprint and the model's, recorded in checkpoints.
    private var runIdentity: (count: Int, data: String, model: String)?

    /// Prepares a run. Initialises the model's weights as the configuration says.
    ///
    /// With a `communicator`, this process is one rank of a data-parallel job
    /// (`Trainer+Distributed.swift`): every rank must make the same trainer, and
    /// `configuration.batchSize` stays the global batch, shared out between the ranks.
    public init(model: Model, configuration: TrainingConfiguration, classes: Int = 10,
                communicator: Communicator? = nil) throws {
        self.model = model
        self.configuration = configuration
        self.classes = classes
        self.communicator = communicator
        try configuration.validate()
        guard classes >= 1 else {
            throw TrainingError.invalidConfiguration(field: "classes", value: String(classes), accepted: "1 or more")
        }
        if configuration.syncBatchNorm && communicator == nil {
            throw TrainingError.invalidConfiguration(
                field: "syncBatchNorm", value: "true",
                accepted: "false without a communicator: batch-norm statistics are synchronised over the ranks of a data-parallel job")
        }
        if let communicator {
            guard configuration.batchSize >= communicator.size else {
                throw TrainingError.invalidConfiguration(
                    field: "batchSize", value: String(configuration.batchSize),
                    accepted: "at least the number of ranks (\(communicator.size)): the batch is shared out between them")
            }
            reducer = try GradientReducer(model: model, communicator: communicator,
                                          overlap: configuration.overlapCommunication)
            sumLoss = try Layer("cross_entropy", [("reduction", .string("sum"))], runtime: model.runtime)
        } else {
            reducer = nil
            sumLoss = nil
        }
        self.optimizer = try configuration.optimizer.make(learningRate: configuration.learningRate)
        self.loss = try Layer("cross_entropy", [("reduction", .string("mean"))], runtime: model.runtime)
        try configuration.initialization.apply(to: model, seed: configuration.seed)
    }

    /// Path of the checkpoint in the output directory.
    public var checkpointPath: String? {
        configuration.outputDirectory.map { ($0 as NSString).appendingPathComponent("checkpoint.safetensors") }
    }

    /// Trains on `train`, evaluates on `test`, reports through `progress`. `shouldStop` is
    /// polled between batches (Ctrl-C): the state is checkpointed and `interrupted` thrown.
    public func run(train: ImageDataset, test: ImageDataset?, resume: Bool = false,
                    shouldStop: () -> Bool = { false },
                    progress: (TrainingEvent) -> Void = { _ in }) throws -> TrainingSummary {
        let cfg = configuration
        var summary = TrainingSummary()
        agreedStop = false
        var startEpoch = 0, startBatch = 0
        var resumedLoss = 0.0, resumedSamples = 0
        // Everything that can be checked is checked before the first step.
        guard train.count > 0 else { throw TrainingError.emptyDataset(role: "training set", count: train.count) }
        if let test, test.count == 0 { throw TrainingError.emptyDataset(role: "test set", count: 0) }
        if let test, [test.channels, test.height, test.width] != [train.channels, train.height, train.width] {
            throw TrainingError.datasetShapeMismatch(train: [train.channels, train.height, train.width],
                                                     test: [test.channels, test.height, test.width])
        }
        let sample = Shape([1, train.channels, train.height, train.width])
        let outShape = try model.shapes(for: sample)[model.output]
        guard outShape.dims == [1, classes] else { throw TrainingError.wrongOutputShape(shape: outShape, classes: classes) }
        let largest = min(cfg.batchSize, train.count)
        let activations = try model.activationBytes(for: Shape([largest, train.channels, train.height, train.width]))
        try MemoryBudget.require("a training step on a batch of \(largest) images (values and gradients)",
                                 bytes: activations.flatMap { $0.multipliedReportingOverflow(by: 2).overflow ? nil : $0 * 2 })
        runIdentity = (train.count, train.fingerprint, model.fingerprint)
        var lock: OutputLock?
        defer { lock?.release() }
        if let dir = cfg.outputDirectory, isRoot {
            lock = try OutputLock.acquire(directory: dir)
            // A checkpoint or plot path that cannot be replaced by a file would fail only at the
            // first save or at the very end.
            for name in ["checkpoint.safetensors"] + Plots.fileNames {
                let path = (dir as NSString).appendingPathComponent(name)
                if let kind = nonRegularFileKind(path) {
                    throw TrainingError.outputNotWritable(path: dir, reason: "\(path) is \(kind); \(name) is written there")
                }
            }
            Trainer.removeStaleTemporaries(in: dir)
        }
        if resume, let path = checkpointPath, FileManager.default.fileExists(atPath: path) {
            let state = try Checkpoint.load(from: path, model: model, optimizer: optimizer)
            guard state.epoch < cfg.epochs || (state.epoch == cfg.epochs && state.batch == 0) else {
                throw TrainingError.checkpointAhead(path: path, checkpointEpochs: state.epoch, midEpoch: state.batch > 0,
                                                    epochs: cfg.epochs)
            }
            var differences: [ResumeDifference] = []
            if let b = state.batchSize, b != cfg.batchSize {
                differences.append(.init(what: "batch size", checkpoint: String(b), current: String(cfg.batchSize)))
            }
            if let n = state.datasetCount, n != train.count {
                differences.append(.init(what: "training set size", checkpoint: "\(n) images", current: "\(train.count) images"))
            } else if let f = state.datasetFingerprint, f != train.fingerprint {
                differences.append(.init(what: "training set contents", checkpoint: "fingerprint \(f)",
                                         current: "fingerprint \(train.fingerprint)"))
            }
            if let f = state.modelFingerprint, f != model.fingerprint {
                differences.append(.init(what: "model", checkpoint: "fingerprint \(f)", current: "fingerprint \(model.fingerprint)"))
            }
            if !differences.isEmpty && !cfg.resumeAnyway {
                throw TrainingError.resumeMismatch(path: path, differences: differences)
            }
            let batches = (train.count + cfg.batchSize - 1) / cfg.batchSize
            guard state.batch < batches else {
                throw CheckpointError.invalidMetadata(path: path, key: "batch", value: String(state.batch),
                                                      accepted: "0..<\(batches) (batches per epoch)")
            }
            guard state.partialSamples <= state.batch * cfg.batchSize else {
                throw CheckpointError.invalidMetadata(path: path, key: "partial_samples", value: String(state.partialSamples),
                                                      accepted: "0...\(state.batch * cfg.batchSize) (batch \(state.batch) of \(cfg.batchSize) images)")
            }
            startEpoch = state.epoch
            startBatch = state.batch
            summary.epochLosses = state.epochLosses
            summary.trainingAccuracies = state.trainingAccuracies
            if test != nil && cfg.validationEachEpoch {
                // Older checkpoints (or runs without a held-out set) have no curve: NaN marks those epochs.
                let missing = max(0, state.epoch - state.validationLosses.count)
                summary.validationLosses = Array(repeating: .nan, count: missing) + state.validationLosses.suffix(state.epoch)
                summary.validationAccuracies = Array(repeating: .nan, count: max(0, state.epoch - state.validationAccuracies.count))
                    + state.validationAccuracies.suffix(state.epoch)
            }
            resumedLoss = state.partialLoss
            resumedSamples = state.partialSamples
            model.runtime.generatorState = state.generator
            progress(.resumed(path: path, epoch: startEpoch, batch: startBatch))
        }
        if communicator != nil {
            try agreeOnStart(epoch: startEpoch, batch: startBatch, path: checkpointPath)
            try broadcastState()
        }
        if cfg.syncBatchNorm, let communicator {
            // A rank with no images would skip the forward, and the others would wait in its collectives.
            let last = train.count % cfg.batchSize
            if last > 0 && last < communicator.size {
                throw TrainingError.invalidConfiguration(
                    field: "syncBatchNorm", value: "true",
                    accepted: "a last batch of at least \(communicator.size) images (one per rank): \(train.count) images in "
                        + "batches of \(cfg.batchSize) leave \(last); choose another batch size")
            }
            model.runtime.state.batchNormCommunicator = communicator
        }
        defer { model.runtime.state.batchNormCommunicator = nil }
        let shape = Shape([cfg.batchSize, train.channels, train.height, train.width])
        let start = Date()
        var trained = 0, trainingSeconds = 0.0
        var targets = [Float](repeating: 0, count: largest)
        var dLogits: [Float] = []
        var cost: Float = 0
        // The held-out set's result after the last epoch, reused as the final test evaluation.
        var lastEvaluation: (accuracy: Double, confusion: [[Int]])?

        for epoch in startEpoch..<cfg.epochs {
            optimizer.learningRate = cfg.schedule.rate(base: cfg.learningRate, epoch: epoch)
            model.isTraining = true
            // Data-parallel: each rank assembles only its share of each batch, on this thread.
            let loader = BatchLoader(dataset: train, batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, epoch: epoch,
                                     prefetch: communicator == nil ? 2 : 0, augmentation: cfg.augmentation)
            var epochLoss = 0.0, epochSamples = 0
            if epoch == startEpoch { (epochLoss, epochSamples) = (resumedLoss, resumedSamples) }
            var iterator = loader.makeIterator()
            for batchIndex in 0..<loader.batchCount {
                let resuming = epoch == startEpoch && batchIndex < startBatch
                let batch: BatchLoader.Batch
                if let communicator {
                    if resuming { continue }
                    batch = try loader.batch(at: batchIndex, part: communicator.rank, of: communicator.size)
                } else {
                    guard let next = try iterator.nextBatch() else { break }
                    if resuming { continue }
                    batch = next
                }
                if communicator == nil ? shouldStop() : agreedStop {
                    let path = try saveCheckpoint(epoch: epoch, batch: batchIndex, summary: summary,
                                                  partial: (epochLoss, epochSamples))
                    throw TrainingError.interrupted(epoch: epoch + 1, batch: batchIndex, checkpoint: path)
                }
                let batchStart = Date()
                var n = batch.count
                let inShape = n == cfg.batchSize ? shape : Shape([n, train.channels, train.height, train.width])
                if communicator != nil {
                    n = min(cfg.batchSize, train.count - batchIndex * cfg.batchSize)
                    cost = try batch.images.withUnsafeBufferPointer {
                        try distributedStep(images: $0, shape: inShape, labels: batch.labels, globalCount: n,
                                            stop: shouldStop(), targets: &targets, dLogits: &dLogits)
                    }
                } else {
                    cost = try batch.images.withUnsafeBufferPointer {
                        try step(images: $0, shape: inShape, labels: batch.labels, targets: &targets, dLogits: &dLogits)
                    }
                }
                guard cost.isFinite else {
                    throw TrainingError.nonFiniteLoss(epoch: epoch + 1, batch: batchIndex, value: cost,
                                                      checkpoint: lastCheckpoint())
                }
                epochLoss += Double(cost) * Double(n)
                epochSamples += n
                trained += n
                let batchSeconds = Date().timeIntervalSince(batchStart)
                trainingSeconds += batchSeconds
                let rate = Double(n) / max(batchSeconds, 1e-9)
                progress(.batch(epoch: epoch + 1, batch: batchIndex, batches: loader.batchCount, cost: cost,
                                imagesPerSecond: rate, log: batchIndex % max(cfg.logEvery, 1) == 0))
            }
            summary.epochLosses.append(epochSamples > 0 ? epochLoss / Double(epochSamples) : .nan)
            var accuracy: Double?
            // Batch-norm statistics are per rank while training; evaluation and the checkpoint use rank 0's.
            if communicator != nil { try broadcastState(parameters: false) }
            if cfg.trainingAccuracy {
                accuracy = try evaluate(train).accuracy
                summary.trainingAccuracies.append(accuracy ?? 0)
            }
            if let test, cfg.validationEachEpoch {
                let result = try evaluateWithLoss(test)
                summary.validationLosses.append(result.loss)
                summary.validationAccuracies.append(result.accuracy)
                if epoch + 1 == cfg.epochs { lastEvaluation = (result.accuracy, result.confusion) }
                progress(.validation(epoch: epoch + 1, loss: result.loss, accuracy: result.accuracy))
            }
            progress(.epoch(epoch: epoch + 1, trainingAccuracy: accuracy, loss: summary.epochLosses.last ?? .nan,
                            elapsed: Date().timeIntervalSince(start)))
            if let path = try saveCheckpoint(epoch: epoch + 1, batch: 0, summary: summary) {
                progress(.checkpoint(path: path))
            }
        }
        summary.seconds = Date().timeIntervalSince(start)
        summary.imagesPerSecond = Double(trained) / max(trainingSeconds, 1e-9)
        if let reducer, let communicator {
            summary.exposedAllreduceSeconds = reducer.exposedSeconds
            summary.communicationSeconds = communicator.blockedSeconds
        }
        if let test {
            let result = try lastEvaluation ?? evaluate(test)
            summary.testAccuracy = result.accuracy
            summary.confusion = result.confusion
        }
        if let dir = cfg.outputDirectory, isRoot {
            try Plots.write(summary: summary, classes: classes, to: dir, classNames: test?.classNames ?? train.classNames)
        }
        return summary
    }

    /// One training step on one batch: forward, mean cross-entropy, backward, optimizer
    /// update. Returns the loss; when it is NaN or infinite the weights are left untouched.
    /// A model made only of layers that treat each image on its own (conv, relu, pooling,
    /// flatten, linear) runs the batch in slices whose activations stay in cache, with one
    /// update for the whole batch (Trainer+MicroBatch.swift).
    /// `images` holds `shape` ([N, C, H, W]) floats and `labels` N class indices.
    public func step(images: UnsafeBufferPointer<Float>, shape: Shape, labels: [Int32]) throws -> Float {
        var targets: [Float] = [], dLogits: [Float] = []
        return try step(images: images, shape: shape, labels: labels, targets: &targets, dLogits: &dLogits)
    }

    /// `step` with the caller's scratch arrays, reused across batches.
    func step(images: UnsafeBufferPointer<Float>, shape: Shape, labels: [Int32],
              targets: inout [Float], dLogits: inout [Float]) throws -> Float {
        let n = shape.dims.first ?? 0
        guard labels.count >= n else {
            throw PlyError.invalid("training step: \(labels.count) labels for a batch of \(n) images")
        }
        if let size = try microBatchSize(for: shape) {
            return try microBatchStep(images: images, shape: shape, labels: labels, size: size, targets: &targets, dLogits: &dLogits)
        }
        let logits = try model.forward(images, shape: shape)
        if targets.count < n { targets = [Float](repeating: 0, count: n) }
        for i in 0..<n { targets[i] = Float(labels[i]) }
        if dLogits.count != logits.count { dLogits = [Float](repeating: 0, count: logits.count) }
        let cost = try lossForwardBackward(logits: logits, targets: targets, n: n, dLogits: &dLogits)
        guard cost.isFinite else { return cost }
        try model.zeroGradients()
        try dLogits.withUnsafeBufferPointer { _ = try model.backward($0) }
        try optimizer.step(model.namedParameters())
        return cost
    }

    /// Mean cross-entropy of `logits` [n, classes] against `targets`; writes d loss / d logits.
    /// `layer` (default: the mean loss) with output gradient `gradScale`.
    func lossForwardBackward(logits: UnsafeBufferPointer<Float>, targets: [Float], n: Int, dLogits: inout [Float],
                             layer: Layer? = nil, gradScale: Float = 1) throws -> Float {
        let loss = layer ?? self.loss
        let c = logits.count / max(n, 1)
        let logitShape = try Shape([n, c]).cShape(), targetShape = try Shape([n]).cShape(), scalar = try Shape([]).cShape()
        var value: Float = 0, one: Float = gradScale
        var targetCopy = targets
        try targetCopy.withUnsafeMutableBytes { t in
            try withUnsafeMutablePointer(to: &value) { v in
                try withUnsafeMutablePointer(to: &one) { g in
                    try dLogits.withUnsafeMutableBytes { d in
                        let ins = [ply_tensor.view(UnsafeMutableRawPointer(mutating: logits.baseAddress), logitShape),
                                   ply_tensor.view(t.baseAddress, targetShape)]
                        var out = ply_tensor.view(v, scalar)
                        try ins.withUnsafeBufferPointer { try loss.forward($0, &out) }
                        var gOut = ply_tensor.view(g, scalar)
                        var grads = [ply_tensor.view(d.baseAddress, logitShape), ply_tensor.view(nil, targetShape)]
                        try ins.withUnsafeBufferPointer { i in
                            try grads.withUnsafeMutableBufferPointer { try loss.backward(i, &out, &gOut, $0) }
                        }
                    }
                }
            }
        }
        return value
    }

    /// Accuracy (percent) and confusion matrix (rows: true class, columns: predicted) in eval mode.
    ///
    /// With a communicator, every rank evaluates its share of `data` and all receive the totals
    /// (every rank must call it).
    public func evaluate(_ data: ImageDataset, batchSize: Int? = nil) throws -> (accuracy: Double, confusion: [[Int]]) {
        let result = try evaluateWithLoss(data, batchSize: batchSize)
        return (result.accuracy, result.confusion)
    }

    /// `evaluate`, plus the mean cross-entropy over the set (log-sum-exp of the logits minus
    /// the true class's logit, in Double, averaged over the images): the validation curve.
    public func evaluateWithLoss(_ data: ImageDataset, batchSize: Int? = nil) throws
        -> (accuracy: Double, loss: Double, confusion: [[Int]]) {
        guard data.count > 0 else { throw TrainingError.emptyDataset(role: "evaluation set", count: 0) }
        if let communicator, communicator.size > 1 {
            let lo = data.count * communicator.rank / communicator.size
            let hi = data.count * (communicator.rank + 1) / communicator.size
            let local = hi > lo ? try evaluateLocally(data.slice(lo..<hi), batchSize: batchSize)
                : (accuracy: 0, loss: 0, confusion: Array(repeating: Array(repeating: 0, count: classes), count: classes))
            var confusion = local.confusion
            try sumOverRanks(&confusion)
            // The ranks' loss sums (each share's mean times its count), summed in Float by the communicator.
            var lossSum = [Float(local.loss * Double(hi - lo))]
            try communicator.allreduceSum(&lossSum)
            let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }  // a label >= classes is never correct
            return (100 * Double(correct) / Double(data.count), Double(lossSum[0]) / Double(data.count), confusion)
        }
        return try evaluateLocally(data, batchSize: batchSize)
    }

    /// `evaluateWithLoss` on this process alone.
    private func evaluateLocally(_ data: ImageDataset, batchSize: Int?) throws -> (accuracy: Double, loss: Double, confusion: [[Int]]) {
        let size = batchSize ?? configuration.batchSize
        guard (1...TrainingConfiguration.maxBatchSize).contains(size) else {
            throw TrainingError.invalidConfiguration(field: "batchSize", value: String(size),
                                                     accepted: "1...\(TrainingConfiguration.maxBatchSize)")
        }
        let outShape = try model.shapes(for: Shape([1, data.channels, data.height, data.width]))[model.output]
        guard outShape.dims == [1, classes] else { throw TrainingError.wrongOutputShape(shape: outShape, classes: classes) }
        let wasTraining = model.isTraining
        model.isTraining = false
        defer { model.isTraining = wasTraining }
        var confusion = Array(repeating: Array(repeating: 0, count: classes), count: classes)
        var correct = 0
        var lossSum = 0.0
        var batches = BatchLoader(dataset: data, batchSize: min(size, data.count), shuffle: false).makeIterator()
        while let batch = try batches.nextBatch() {
            let shape = Shape([batch.count, data.channels, data.height, data.width])
            let logits = try batch.images.withUnsafeBufferPointer { try model.forward($0, shape: shape) }
            let c = logits.count / batch.count
            for i in 0..<batch.count {
                var best = 0
                for k in 1..<c where logits[i * c + k] > logits[i * c + best] { best = k }
                let truth = Int(batch.labels[i])
                if best == truth { correct += 1 }
                if truth < classes && best < classes { confusion[truth][best] += 1 }
                lossSum += Self.crossEntropy(logits[(i * c)..<((i + 1) * c)], truth: truth)
            }
        }
        return (100 * Double(correct) / Double(data.count), lossSum / Double(data.count), confusion)
    }

    /// −log softmax(logits)[truth], computed stably in Double (PyTorch's `cross_entropy` of one
    /// row); infinite when `truth` is not a class of the row.
    static func crossEntropy(_ logits: UnsafeBufferPointer<Float>.SubSequence, truth: Int) -> Double {
        guard truth >= 0, truth < logits.count else { return .infinity }
        let top = Double(logits.max() ?? 0)
        var sum = 0.0
        for v in logits { sum += Foundation.exp(Double(v) - top) }
        return top + Foundation.log(sum) - Double(logits[logits.startIndex + truth])
    }

    /// Removes `.checkpoint.safetensors.tmp-<pid>` files left by a process that was killed
    /// during a save (the checkpoint itself is intact: saves rename atomically).
    static func removeStaleTemporaries(in directory: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix(".checkpoint.safetensors.tmp-") {
            guard let pid = Int32(name.split(separator: "-").last ?? ""), pid != getpid(), kill(pid, 0) != 0 else { continue }
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(name))
        }
    }

    private func lastCheckpoint() -> String? {
        guard let path = checkpointPath, FileManager.default.fileExists(atPath: path) else { return nil }
        return path
    }

    private func saveCheckpoint(epoch: Int, batch: Int, summary: TrainingSummary,
                                partial: (Double, Int) = (0, 0)) throws -> String? {
        guard let path = checkpointPath else { return nil }
        guard isRoot else { return path }  // rank 0 writes it for the job
        var state = Checkpoint.State(
            epoch: epoch, batch: batch, generator: model.runtime.generatorState,
            epochLosses: summary.epochLosses, trainingAccuracies: summary.trainingAccuracies,
            partialLoss: partial.0, partialSamples: partial.1)
        state.validationLosses = summary.validationLosses
        state.validationAccuracies = summary.validationAccuracies
        state.optimizerSteps = optimizer.stepCount
        if let identity = runIdentity {
            state.batchSize = configuration.batchSize
            state.datasetCount = identity.count
            state.datasetFingerprint = identity.data
            state.modelFingerprint = identity.model
        }
        try Checkpoint.save(to: path, model: model, optimizer: optimizer, state: state)
        return path
    }
}
