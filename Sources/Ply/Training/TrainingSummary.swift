import CPly
import Foundation

/// The outcome of a finished run.
public struct TrainingSummary: Sendable {
    /// Mean training loss of every epoch.
    public var epochLosses: [Double] = []
    /// Training accuracy (percent) after every epoch, when measured.
    public var trainingAccuracies: [Double] = []
    /// Mean cross-entropy on the held-out set after every epoch (NaN for epochs a resumed
    /// checkpoint did not record), when one was given and `validationEachEpoch` is on.
    public var validationLosses: [Double] = []
    /// Accuracy (percent) on the held-out set after every epoch (NaN where not recorded).
    public var validationAccuracies: [Double] = []
    /// Accuracy (percent) on the test set, when one was given.
    public var testAccuracy: Double?
    /// Confusion matrix on the test set (rows: true class, columns: predicted), when one was given.
    public var confusion: [[Int]]?
    /// Wall-clock seconds of the epochs (their training-accuracy passes included, the final test evaluation not).
    public var seconds: Double = 0
    /// Training steps only (forward, loss, backward, optimizer), without evaluation passes.
    public var imagesPerSecond: Double = 0
    /// Data-parallel runs: seconds the training steps spent waiting for gradient sums after
    /// backward (communication that backward did not hide), and in all collectives.
    public var exposedAllreduceSeconds: Double = 0
    /// Data-parallel runs: seconds blocked in any collective call during training steps.
    public var communicationSeconds: Double = 0
}
