import CPly
import Foundation

/// What the trainer reports while it runs.
public enum TrainingEvent: Sendable {
    /// A batch finished (every batch; `log` is true on the tutorial's logging batches).
    case batch(epoch: Int, batch: Int, batches: Int, cost: Float, imagesPerSecond: Double, log: Bool)
    /// An epoch finished: training accuracy (percent, nil when not measured) and elapsed seconds.
    case epoch(epoch: Int, trainingAccuracy: Double?, loss: Double, elapsed: Double)
    /// The held-out set (`Trainer.run`'s `test:`) was evaluated after an epoch: its mean
    /// cross-entropy and accuracy (percent). Reported just before that epoch's `epoch` event.
    case validation(epoch: Int, loss: Double, accuracy: Double)
    /// A checkpoint was written.
    case checkpoint(path: String)
    /// Training resumed from a checkpoint at (epoch, batch).
    case resumed(path: String, epoch: Int, batch: Int)
}
