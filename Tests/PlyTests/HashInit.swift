import Foundation
@testable import Ply

// The golden files' deterministic "hash init" (Fixtures/golden/README.md), exact in
// 64-bit integer arithmetic and float32, so models can be rebuilt without stored weights.

/// splitmix64(x) of the README: one SplitMix64 step from state `x`.
func hashSplitMix64(_ x: UInt64) -> UInt64 { SplitMix64.mix(x &+ 0x9E37_79B9_7F4A_7C15) }

/// u(k, j) in [-1, 1), exact in Float32.
func hashUniform(_ k: UInt64, _ j: UInt64) -> Float {
    Float(hashSplitMix64((k << 32) | j) >> 40) / 8_388_608 - 1
}

/// hash_input(shape)[j] = u(0xFFFFFFFF, j) over the flat NCHW index.
func hashInput(_ shape: Shape) -> Tensor {
    var t = Tensor(shape: shape)
    for j in 0..<t.data.count { t.data[j] = hashUniform(0xFFFF_FFFF, UInt64(j)) }
    return t
}

/// Writes the hash-init value into every floating-point parameter and buffer of `model`,
/// walking its state_dict in order (`k` counts float entries; integer buffers are skipped).
func hashInitialize(_ model: Model) throws {
    var k: UInt64 = 0
    for (name, p) in try model.namedParameters() {
        guard let values = p.floats else { continue }
        let rank = p.shape.rank
        let fanIn = p.shape.dims.dropFirst().reduce(1, *)
        let scale = Float((6.0 / Double(fanIn)).squareRoot())
        for j in 0..<values.count {
            let u = hashUniform(k, UInt64(j))
            if name.hasSuffix("running_mean") {
                values[j] = 0.1 * u
            } else if name.hasSuffix("running_var") {
                values[j] = 1.25 + 0.25 * u
            } else if name.hasSuffix("bias") {
                values[j] = 0.1 * u
            } else if rank >= 2 {
                values[j] = u * scale
            } else {
                values[j] = 1 + 0.1 * u
            }
        }
        k += 1
    }
}
