import Foundation

/// How a freshly built model's weights are set before training.
public enum Initialization: Sendable, Equatable {
    /// Keep what the plugins set when they were created (PyTorch's default
    /// Kaiming-uniform initialisation, drawn from the runtime's seeded generator).
    case pytorchDefault
    /// The tutorial's scheme: every trainable weight with two or more dimensions (conv and
    /// linear weights) drawn from N(0, std²); every trainable `bias` set to zero. Other
    /// entries (batch-norm weights, running statistics) are left as they are.
    case normal(std: Double)

    /// Applies the scheme to `model`. Values come from `SplitMix64(seed:)` walking the
    /// parameters in state_dict order, so the same seed always gives the same weights.
    public func apply(to model: Model, seed: UInt64) throws {
        switch self {
        case .pytorchDefault:
            return
        case let .normal(std):
            guard std.isFinite, std >= 0 else {
                throw PlyError.invalid("normal initialisation: std must be finite and >= 0, got \(std)")
            }
            var generator = SplitMix64(seed: seed)
            for (name, p) in try model.namedParameters() where p.trainable {
                guard let values = p.floats else { continue }
                if p.shape.rank >= 2 {
                    for i in 0..<values.count { values[i] = Float(generator.nextNormal() * std) }
                } else if name.hasSuffix("bias") {
                    values.update(repeating: 0)
                }
            }
        }
    }
}
