import Foundation

/// A training checkpoint: one safetensors file holding the model's state_dict (PyTorch
/// names, so it also loads as plain weights), the optimizer state under `optimizer.`, and
/// the position and generator state in its metadata. Written atomically: a crash or a full
/// disk during the save leaves the previous checkpoint intact.
public enum Checkpoint {
    /// Where a run stands.
    public struct State: Sendable, Equatable {
        /// The epoch (0-based) to continue in, and the next batch in it.
        public var epoch: Int
        /// The batch in `epoch` to continue from (0 at an epoch's start).
        public var batch: Int
        /// The host generator's state (dropout masks).
        public var generator: UInt64
        /// Mean training loss of every finished epoch.
        public var epochLosses: [Double]
        /// Training accuracy (percent) of every finished epoch that measured it.
        public var trainingAccuracies: [Double]
        /// Loss sum and sample count of the unfinished epoch.
        public var partialLoss: Double = 0
        /// Samples behind `partialLoss`.
        public var partialSamples: Int = 0
        /// Mean cross-entropy on the held-out set after each finished epoch (NaN where not
        /// measured; empty in files that do not record it, and when there is no held-out set).
        public var validationLosses: [Double] = []
        /// Accuracy (percent) on the held-out set after each finished epoch (NaN where not measured).
        public var validationAccuracies: [Double] = []
        /// Optimizer steps taken (nil in files that do not record it).
        public var optimizerSteps: Int?
        /// The run's batch size (nil in files that do not record it).
        public var batchSize: Int?
        /// Images in the training set (nil in files that do not record it).
        public var datasetCount: Int?
        /// `ImageDataset.fingerprint` of the training set (nil in files that do not record it).
        public var datasetFingerprint: String?
        /// `Model.fingerprint` of the model trained (nil in files that do not record it).
        public var modelFingerprint: String?

        /// A position; the run's identity fields are filled by the trainer.
        public init(epoch: Int, batch: Int, generator: UInt64, epochLosses: [Double], trainingAccuracies: [Double],
                    partialLoss: Double = 0, partialSamples: Int = 0) {
            self.epoch = epoch
            self.batch = batch
            self.generator = generator
            self.epochLosses = epochLosses
            self.trainingAccuracies = trainingAccuracies
            self.partialLoss = partialLoss
            self.partialSamples = partialSamples
        }
    }

    /// Names of optimizer state entries start with this.
    public static let optimizerPrefix = "optimizer."

    /// Writes model, optimizer and `state` to `path` atomically.
    public static func save(to path: String, model: Model, optimizer: Optimizer, state: State) throws {
        var tensors: [(name: String, entry: SafeTensors.Entry)] = try model.stateEntries()
        for (name, values) in optimizer.stateTensors() {
            tensors.append((optimizerPrefix + name, SafeTensors.Entry(floats: values, shape: [values.count])))
        }
        var metadata: [String: String] = [
            "format": "ply-checkpoint-1",
            "epoch": String(state.epoch),
            "batch": String(state.batch),
            "generator": String(state.generator),
            "optimizer_steps": String(optimizer.stepCount),
            "epoch_losses": state.epochLosses.map { String($0) }.joined(separator: ","),
            "training_accuracies": state.trainingAccuracies.map { String($0) }.joined(separator: ","),
            "partial_loss": String(state.partialLoss),
            "partial_samples": String(state.partialSamples),
            "validation_losses": state.validationLosses.map { String($0) }.joined(separator: ","),
            "validation_accuracies": state.validationAccuracies.map { String($0) }.joined(separator: ","),
        ]
        if let v = state.batchSize { metadata["batch_size"] = String(v) }
        if let v = state.datasetCount { metadata["dataset_count"] = String(v) }
        if let v = state.datasetFingerprint { metadata["dataset_fingerprint"] = v }
        if let v = state.modelFingerprint { metadata["model_fingerprint"] = v }
        try SafeTensors.write(path: path, tensors: tensors, metadata: metadata)
    }

    /// Loads `path` into `model` and `optimizer` and returns where the run stands. Every
    /// metadata value is checked before anything is loaded: a `CheckpointError` names the
    /// key, the value found and what is accepted.
    public static func load(from path: String, model: Model, optimizer: Optimizer) throws -> State {
        let file = try SafeTensors.read(path: path)
        let state = try state(from: file.metadata, path: path)
        var optimizerState: [String: [Float]] = [:]
        var weights: [String: SafeTensors.Entry] = [:]
        for (name, entry) in file.entries {
            if name.hasPrefix(optimizerPrefix) {
                optimizerState[String(name.dropFirst(optimizerPrefix.count))] = try entry.floats()
            } else {
                weights[name] = entry
            }
        }
        try model.loadState(weights, order: file.order.filter { weights[$0] != nil }, source: path)
        try optimizer.loadState(optimizerState)
        if let steps = state.optimizerSteps, steps != optimizer.stepCount {
            throw CheckpointError.invalidMetadata(path: path, key: "optimizer_steps", value: String(steps),
                                                  accepted: "the optimizer state's step count, \(optimizer.stepCount)")
        }
        return state
    }

    /// The run position in a checkpoint's metadata, validated (see `load`).
    public static func state(from metadata: [String: String], path: String) throws(CheckpointError) -> State {
        func meta(_ key: String) throws(CheckpointError) -> String {
            guard let v = metadata[key] else { throw .missingMetadata(path: path, key: key) }
            return v
        }
        func int(_ key: String, _ range: ClosedRange<Int>) throws(CheckpointError) -> Int {
            let text = try meta(key)
            guard let v = Int(text), range.contains(v) else {
                throw .invalidMetadata(path: path, key: key, value: text, accepted: "an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        func doubles(_ key: String, _ range: ClosedRange<Double>?, allowInfinity: Bool = false) throws(CheckpointError) -> [Double] {
            let text = try meta(key)
            if text.isEmpty { return [] }
            var result: [Double] = []
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                // Epoch losses may be NaN (an empty epoch in older files); accuracies are percentages.
                guard let d = Double(part), range.map({ $0.contains(d) }) ?? (d.isNaN || ((d.isFinite || allowInfinity) && d >= 0)) else {
                    throw .invalidMetadata(path: path, key: key, value: String(part.prefix(40)),
                                           accepted: range.map { "comma-separated numbers in \($0.lowerBound)...\($0.upperBound)" }
                                               ?? "comma-separated finite numbers >= 0")
                }
                result.append(d)
            }
            return result
        }
        guard metadata["format"] == "ply-checkpoint-1" else {
            throw .notACheckpoint(path: path, format: metadata["format"])
        }
        let generatorText = try meta("generator")
        guard let generator = UInt64(generatorText) else {
            throw .invalidMetadata(path: path, key: "generator", value: generatorText, accepted: "an unsigned 64-bit integer")
        }
        let losses = try doubles("epoch_losses", nil)
        let accuracies = try doubles("training_accuracies", 0...100)
        let epoch = try int("epoch", 0...maxEpochs)
        guard losses.count == epoch else {
            throw .invalidMetadata(path: path, key: "epoch", value: String(epoch),
                                   accepted: "the number of finished epochs in 'epoch_losses', \(losses.count)")
        }
        guard accuracies.count <= epoch else {
            throw .invalidMetadata(path: path, key: "training_accuracies", value: "\(accuracies.count) values",
                                   accepted: "at most one per finished epoch (\(epoch))")
        }
        let batch = try int("batch", 0...Int(Int32.max))
        let partialSamples = try int("partial_samples", 0...Int(Int32.max))
        let partialText = try meta("partial_loss")
        guard let partialLoss = Double(partialText), partialLoss.isFinite, partialLoss >= 0 else {
            throw .invalidMetadata(path: path, key: "partial_loss", value: partialText, accepted: "a finite number >= 0")
        }
        guard batch > 0 || (partialSamples == 0 && partialLoss == 0) else {
            throw .invalidMetadata(path: path, key: "partial_samples", value: String(partialSamples),
                                   accepted: "0 at the start of an epoch (batch 0)")
        }
        var state = State(epoch: epoch, batch: batch, generator: generator, epochLosses: losses,
                          trainingAccuracies: accuracies, partialLoss: partialLoss, partialSamples: partialSamples)
        // The validation curve (absent in older files); NaN marks an epoch without a measurement.
        for key in ["validation_losses", "validation_accuracies"] where metadata[key] != nil {
            // A held-out loss may be infinite (a logit overflowed); it is recorded as measured.
            let values = try doubles(key, nil, allowInfinity: key == "validation_losses")
            guard values.count <= epoch else {
                throw .invalidMetadata(path: path, key: key, value: "\(values.count) values",
                                       accepted: "at most one per finished epoch (\(epoch))")
            }
            if key == "validation_losses" {
                state.validationLosses = values
            } else {
                if let bad = values.first(where: { !$0.isNaN && $0 > 100 }) {
                    throw .invalidMetadata(path: path, key: key, value: String(bad), accepted: "percentages in 0...100, or nan")
                }
                state.validationAccuracies = values
            }
        }
        if metadata["optimizer_steps"] != nil { state.optimizerSteps = try int("optimizer_steps", 0...Int(Int32.max)) }
        if metadata["batch_size"] != nil { state.batchSize = try int("batch_size", 1...Int(Int32.max)) }
        if metadata["dataset_count"] != nil { state.datasetCount = try int("dataset_count", 1...Int(Int32.max)) }
        state.datasetFingerprint = metadata["dataset_fingerprint"]
        state.modelFingerprint = metadata["model_fingerprint"]
        return state
    }

    /// The most epochs a checkpoint may record (a bound for corrupt metadata, far above any real run).
    public static let maxEpochs = 1_000_000
}

/// A checkpoint file that is not one Ply can resume from.
public enum CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The metadata has no `format: ply-checkpoint-1`.
    case notACheckpoint(path: String, format: String?)
    /// A required metadata key is absent.
    case missingMetadata(path: String, key: String)
    /// A metadata value is out of range or inconsistent with the rest.
    case invalidMetadata(path: String, key: String, value: String, accepted: String)

    /// The value in words, as `print` shows it.
    public var description: String {
        switch self {
        case let .notACheckpoint(path, format):
            return "checkpoint \(path): not a Ply checkpoint (metadata 'format' is \(format.map { "'\($0)'" } ?? "absent"), expected 'ply-checkpoint-1')"
        case let .missingMetadata(path, key):
            return "checkpoint \(path): metadata has no '\(key)'"
        case let .invalidMetadata(path, key, value, accepted):
            return "checkpoint \(path): metadata '\(key)' is \(value); accepted: \(accepted)"
        }
    }
}
