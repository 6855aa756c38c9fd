import CPly
import Foundation

/// Which optimizer a training run uses.
public enum OptimizerChoice: Sendable, Equatable {
    /// `torch.optim.SGD` with momentum, L2 weight decay and optional Nesterov momentum.
    case sgd(momentum: Double = 0, weightDecay: Double = 0, nesterov: Bool = false)
    /// `torch.optim.Adam` with L2 weight decay.
    case adam(weightDecay: Double = 0)

    func make(learningRate: Double) throws -> Optimizer {
        switch self {
        case let .sgd(momentum, weightDecay, nesterov):
            return try SGD(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay, nesterov: nesterov)
        case let .adam(weightDecay):
            return try Adam(learningRate: learningRate, weightDecay: weightDecay)
        }
    }
}
