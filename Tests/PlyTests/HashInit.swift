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
        // value = offset + factor * u (weights: u * scale).
        let (offset, factor): (Float, Float)
        let isWeight: Bool
        if name.hasSuffix("running_mean") { (offset, factor, isWeight) = (0, 0.1, false) }
        else if name.hasSuffix("running_var") { (offset, factor, isWeight) = (1.25, 0.25, false) }
        else if name.hasSuffix("bias") { (offset, factor, isWeight) = (0, 0.1, false) }
        else if rank >= 2 { (offset, factor, isWeight) = (0, scale, true) }
        else { (offset, factor, isWeight) = (1, 0.1, false) }
        // Large tensors (VGG's 100M-weight classifier) are filled on every core: debug builds are slow.
        let address = UInt(bitPattern: values.baseAddress), count = values.count, key = k
        let chunks = count >= 1 << 16 ? ProcessInfo.processInfo.activeProcessorCount * 4 : 1
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            guard let base = UnsafeMutablePointer<Float>(bitPattern: address) else { return }
            for j in (count * c / chunks)..<(count * (c + 1) / chunks) {
                let u = hashUniform(key, UInt64(j))
                base[j] = isWeight ? u * factor : offset + factor * u
            }
        }
        k += 1
    }
}
