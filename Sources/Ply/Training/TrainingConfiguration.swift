import CPly
import Foundation

/// Everything that defines a training run. The defaults are the tutorial's.
public struct TrainingConfiguration: Sendable {
    /// Passes over the training set (the tutorial: 10).
    public var epochs = 10
    /// Images per training step (the tutorial: 128).
    public var batchSize = 128
    /// The base learning rate (the tutorial: 0.05).
    public var learningRate = 0.05
    /// The optimizer (default: SGD without momentum).
    public var optimizer = OptimizerChoice.sgd()
    /// How the learning rate changes per epoch (default: constant).
    public var schedule = LearningRateSchedule.constant
    /// How weights are set before training (default: N(0, 0.01²) weights and zero biases).
    public var initialization = Initialization.normal(std: 0.01)
    /// Seeds initialisation, shuffling and dropout.
    public var seed: UInt64 = 1
    /// Print the cost every this many batches (the tutorial: 50).
    public var logEvery = 50
    /// Where checkpoints, plots and the confusion matrix go (nil: nowhere).
    public var outputDirectory: String?
    /// Evaluate the training set after every epoch (the tutorial does).
    public var trainingAccuracy = true
    /// Evaluate the held-out set given to `Trainer.run` (`test:`) after every epoch: its mean
    /// cross-entropy and accuracy, the validation curve beside the training one (default on;
    /// it costs one evaluation pass over that set per epoch).
    public var validationEachEpoch = true
    /// Resume even when the checkpoint was written with another batch size, data set or model
    /// (otherwise `TrainingError.resumeMismatch`).
    public var resumeAnyway = false
    /// Random crop and flip of the training images, seeded per (seed, epoch, image index) so
    /// that a resumed run is bit-identical (default: none). Evaluation passes see the images as stored.
    public var augmentation = Augmentation.none
    /// Data-parallel runs: start each bucket's gradient allreduce during backward, as soon as
    /// its layers are done (otherwise all after backward). The result is the same either way.
    public var overlapCommunication = true
    /// Data-parallel runs: batch-norm layers normalise with the statistics of the whole global
    /// batch, summed over the ranks in every training forward and backward (PyTorch's
    /// `SyncBatchNorm`), so that N ranks train the weights one process would; otherwise each
    /// rank uses its own share's statistics. Needs a communicator, and every rank needs at
    /// least one image of every batch (the last, short one included).
    public var syncBatchNorm = false

    /// Throws `TrainingError.invalidConfiguration` naming the first field out of range.
    public func validate() throws(TrainingError) {
        func check(_ ok: Bool, _ field: String, _ value: Any, _ accepted: String) throws(TrainingError) {
            if !ok { throw .invalidConfiguration(field: field, value: "\(value)", accepted: accepted) }
        }
        try check((0...Checkpoint.maxEpochs).contains(epochs), "epochs", epochs, "0...\(Checkpoint.maxEpochs)")
        try check((1...TrainingConfiguration.maxBatchSize).contains(batchSize), "batchSize", batchSize,
                  "1...\(TrainingConfiguration.maxBatchSize)")
        try check(learningRate.isFinite && learningRate > 0, "learningRate", learningRate, "a finite number > 0")
        try check(logEvery >= 1, "logEvery", logEvery, "1 or more")
        do { try augmentation.validate() } catch {
            throw .invalidConfiguration(field: "augmentation", value: "\(augmentation)", accepted: "\(error)")
        }
        do { try schedule.validate() } catch {
            throw .invalidConfiguration(field: "schedule", value: "\(schedule)", accepted: "\(error)")
        }
    }

    /// The largest batch size accepted (2^24 images; memory is checked separately, per data set).
    public static let maxBatchSize = 1 << 24
    /// The tutorial's configuration; change fields as needed.
    public init() {}
}
