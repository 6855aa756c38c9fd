import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014; constants from Vigna's reference
/// implementation): a tiny, fast, fully specified 64-bit generator.
///
/// Used for data shuffling so that an order depends only on the seed and
/// epoch — never on the Swift version, platform or system random source.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// Current internal state; advanced by the golden-ratio gamma each step.
    public var state: UInt64

    /// Creates a generator whose sequence is fully determined by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The SplitMix64 output finaliser (a strong 64-bit mixing function).
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Returns the next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// Returns a uniformly distributed integer in `0..<bound` (Lemire's
    /// multiply-shift method with rejection, so without modulo bias).
    ///
    /// - Precondition: `bound > 0`.
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0, "SplitMix64.next(below:) needs a positive bound")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold {
                product = next().multipliedFullWidth(by: range)
            }
        }
        return Int(product.high)
    }

    /// A uniform float in [0, 1) carrying 24 random bits (exact in Float32).
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// A standard normal draw (Box–Muller on two 24-bit uniforms, computed in Double).
    public mutating func nextNormal() -> Double {
        let u1 = (Double(next() >> 11) + 1) / 9_007_199_254_740_993.0  // (0, 1]
        let u2 = Double(next() >> 11) / 9_007_199_254_740_992.0
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}
