import CPly
import Foundation

/// Why training stopped early.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// The loss became NaN or infinite.
    case nonFiniteLoss(epoch: Int, batch: Int, value: Float, checkpoint: String?)
    /// A stop was requested (Ctrl-C): the checkpoint holds the state to resume from.
    case interrupted(epoch: Int, batch: Int, checkpoint: String?)
    /// A configuration field is out of range.
    case invalidConfiguration(field: String, value: String, accepted: String)
    /// The training or test set holds no images (`role`: "training set" or "test set").
    case emptyDataset(role: String, count: Int)
    /// The model's output for one image is `shape`, not (1, classes).
    case wrongOutputShape(shape: Shape, classes: Int)
    /// The checkpoint has finished more epochs than the run is asked for (or as many, and
    /// is part-way through the next: `midEpoch`).
    case checkpointAhead(path: String, checkpointEpochs: Int, midEpoch: Bool, epochs: Int)
    /// The test set's images are not the training set's size (C, H, W).
    case datasetShapeMismatch(train: [Int], test: [Int])
    /// The checkpoint was written by a different run (see `TrainingConfiguration.resumeAnyway`).
    case resumeMismatch(path: String, differences: [ResumeDifference])
    /// The output directory path exists and is not a directory.
    case outputNotADirectory(path: String)
    /// The output directory cannot be created or written to (`reason`: the system's words).
    case outputNotWritable(path: String, reason: String)
    /// Another process holds the output directory's lock (`holder`: its pid, when recorded).
    case outputLocked(directory: String, lockFile: String, holder: String?)

    /// The value in words, as `print` shows it.
    public var description: String {
        switch self {
        case let .nonFiniteLoss(epoch, batch, value, checkpoint):
            return "the loss became \(value) at epoch \(epoch), batch \(batch); training stopped. "
                + (checkpoint.map { "The last good checkpoint is \($0)." } ?? "No checkpoint was written.")
                + " Try a smaller learning rate."
        case let .interrupted(epoch, batch, checkpoint):
            return "interrupted at epoch \(epoch), batch \(batch)"
                + (checkpoint.map { "; state saved to \($0) (resume with --resume)" } ?? "")
        case let .invalidConfiguration(field, value, accepted):
            return "training configuration: \(field) is \(value); accepted: \(accepted)"
        case let .emptyDataset(role, count):
            return "the \(role) is empty (\(count) images); nothing to \(role == "test set" ? "evaluate" : "train on")"
        case let .wrongOutputShape(shape, classes):
            return "the model's output for a batch of 1 is \(shape), not [1, \(classes)] (batch, classes): "
                + "it cannot be trained with cross-entropy over \(classes) classes"
        case let .checkpointAhead(path, checkpointEpochs, midEpoch, epochs):
            return "\(path) has already finished \(checkpointEpochs) epochs\(midEpoch ? " and part of the next" : ""), "
                + "beyond the \(epochs) asked for; give --epochs \(checkpointEpochs + 1) or more to continue it"
        case let .datasetShapeMismatch(train, test):
            return "the test set's images are \(test.map(String.init).joined(separator: "x")) (CxHxW) but the training set's are "
                + "\(train.map(String.init).joined(separator: "x")); a model trained on one cannot evaluate the other"
        case let .resumeMismatch(path, differences):
            return "\(path) was written by a different run (" + differences.map(\.description).joined(separator: "; ")
                + "); refusing to resume (--resume-anyway to resume regardless)"
        case let .outputNotADirectory(path):
            return "output directory \(path) exists and is not a directory"
        case let .outputNotWritable(path, reason):
            return "output directory \(path) is not writable: \(reason)"
        case let .outputLocked(directory, lockFile, holder):
            return "output directory \(directory) is in use by another training run"
                + (holder.map { " (pid \($0), see \(lockFile))" } ?? " (see \(lockFile))")
                + "; wait for it to finish or use another --output"
        }
    }
}
