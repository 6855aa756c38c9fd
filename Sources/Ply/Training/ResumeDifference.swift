import CPly
import Foundation

/// One way a checkpoint's run differs from the run asked to resume it.
public struct ResumeDifference: Sendable, Equatable, CustomStringConvertible {
    /// What differs: "batch size", "training set size", "training set contents" or "model".
    public var what: String
    /// The checkpoint's value.
    public var checkpoint: String
    /// This run's value.
    public var current: String
    /// The value in words, as `print` shows it.
    public var description: String { "\(what): checkpoint \(checkpoint), this run \(current)" }
}
