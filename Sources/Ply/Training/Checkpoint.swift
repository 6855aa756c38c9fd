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
    }

    /// Names of optimizer state entries start with this.
    public static let optimizerPrefix = "optimizer."

    /// Writes model, optimizer and `state` to `path` atomically.
    public static func save(to path: String, model: Model, optimizer: Optimizer, state: State) throws {
        var tensors: [(name: String, entry: SafeTensors.Entry)] = try model.stateEntries()
        for (name, values) in optimizer.stateTensors() {
            tensors.append((optimizerPrefix + name, SafeTensors.Entry(floats: values, shape: [values.count])))
        }
        let metadata: [String: String] = [
            "format": "ply-checkpoint-1",
            "epoch": String(state.epoch),
            "batch": String(state.batch),
            "generator": String(state.generator),
            "optimizer_steps": String(optimizer.stepCount),
            "epoch_losses": state.epochLosses.map { String($0) }.joined(separator: ","),
            "training_accuracies": state.trainingAccuracies.map { String($0) }.joined(separator: ","),
            "partial_loss": String(state.partialLoss),
            "partial_samples": String(state.partialSamples),
        ]
        try SafeTensors.write(path: path, tensors: tensors, metadata: metadata)
    }

    /// Loads `path` into `model` and `optimizer` and returns where the run stands.
    public static func load(from path: String, model: Model, optimizer: Optimizer) throws -> State {
        let file = try SafeTensors.read(path: path)
        func meta(_ key: String) throws -> String {
            guard let v = file.metadata[key] else { throw PlyError.invalid("checkpoint \(path): metadata has no '\(key)'") }
            return v
        }
        func int(_ key: String) throws -> Int {
            guard let v = Int(try meta(key)) else { throw PlyError.invalid("checkpoint \(path): metadata '\(key)' is not an integer") }
            return v
        }
        func doubles(_ key: String) throws -> [Double] {
            let text = try meta(key)
            if text.isEmpty { return [] }
            return try text.split(separator: ",").map {
                guard let d = Double($0) else { throw PlyError.invalid("checkpoint \(path): metadata '\(key)' has '\($0)'") }
                return d
            }
        }
        guard file.metadata["format"] == "ply-checkpoint-1" else {
            throw PlyError.invalid("checkpoint \(path): not a Ply checkpoint (metadata 'format' is \(file.metadata["format"] ?? "absent"))")
        }
        guard let generator = UInt64(try meta("generator")) else {
            throw PlyError.invalid("checkpoint \(path): metadata 'generator' is not an unsigned integer")
        }
        let state = State(epoch: try int("epoch"), batch: try int("batch"), generator: generator,
                          epochLosses: try doubles("epoch_losses"), trainingAccuracies: try doubles("training_accuracies"),
                          partialLoss: Double(try meta("partial_loss")) ?? 0, partialSamples: try int("partial_samples"))
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
        return state
    }
}
