import Foundation

/// How the learning rate changes from epoch to epoch (epochs count from 0), in the closed
/// forms of PyTorch's schedulers.
public enum LearningRateSchedule: Sendable, Equatable {
    /// The base rate throughout.
    case constant
    /// `StepLR`: `base * gamma^(epoch / stepSize)` (integer division).
    case step(stepSize: Int, gamma: Double)
    /// `CosineAnnealingLR` with `T_max = epochs`, `eta_min = minimum`:
    /// `minimum + (base - minimum) * (1 + cos(pi * epoch / epochs)) / 2`.
    case cosine(epochs: Int, minimum: Double)

    /// Throws when the schedule's own numbers cannot be used (`rate` requires a valid schedule).
    public func validate() throws {
        switch self {
        case .constant:
            return
        case let .step(stepSize, gamma):
            guard stepSize > 0 else { throw PlyError.invalid("step schedule: step size must be > 0, got \(stepSize)") }
            guard gamma.isFinite, gamma >= 0 else { throw PlyError.invalid("step schedule: gamma must be finite and >= 0, got \(gamma)") }
        case let .cosine(epochs, minimum):
            guard epochs > 0 else { throw PlyError.invalid("cosine schedule: epochs (T_max) must be > 0, got \(epochs)") }
            guard minimum.isFinite, minimum >= 0 else { throw PlyError.invalid("cosine schedule: minimum must be finite and >= 0, got \(minimum)") }
        }
    }

    /// The learning rate for `epoch` (0-based) starting from `base`.
    ///
    /// - Precondition: `epoch >= 0` and the schedule is valid (see `validate()`).
    public func rate(base: Double, epoch: Int) -> Double {
        precondition(epoch >= 0, "learning-rate schedule: epoch must be >= 0, got \(epoch)")
        switch self {
        case .constant:
            return base
        case let .step(stepSize, gamma):
            precondition(stepSize > 0, "step schedule: step size must be > 0, got \(stepSize)")
            return base * Foundation.pow(gamma, Double(epoch / stepSize))
        case let .cosine(epochs, minimum):
            precondition(epochs > 0, "cosine schedule: epochs must be > 0, got \(epochs)")
            return minimum + (base - minimum) * (1 + Foundation.cos(Double.pi * Double(epoch) / Double(epochs))) / 2
        }
    }
}
