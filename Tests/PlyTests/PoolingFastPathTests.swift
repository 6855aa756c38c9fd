import Foundation
import Testing
@testable import Ply

/// The vectorised 2×2 / stride 2 max pool must agree exactly with PyTorch's rule (first
/// maximum in row-major order wins; NaN wins) — ties and NaNs on purpose, odd sizes included.
@Suite struct PoolingFastPathTests {
    /// Reference: scalar max pool with argmax, as PyTorch defines it.
    func reference(_ x: [Float], _ n: Int, _ h: Int, _ w: Int) -> (out: [Float], argmax: [Int]) {
        let oh = h / 2, ow = w / 2
        var out: [Float] = [], arg: [Int] = []
        for p in 0..<n { for i in 0..<oh { for j in 0..<ow {
            var m = -Float.infinity, idx = p * h * w + 2 * i * w + 2 * j
            for di in 0..<2 { for dj in 0..<2 {
                let k = p * h * w + (2 * i + di) * w + 2 * j + dj
                if x[k] > m || x[k].isNaN { m = x[k]; idx = k }
            } }
            out.append(m); arg.append(idx)
        } } }
        return (out, arg)
    }

    @Test(arguments: [(28, 28), (14, 14), (17, 35), (2, 16), (3, 9), (32, 33)])
    func agreesWithScalarRule(_ size: (Int, Int)) throws {
        let (h, w) = size, planes = 6
        var g = SplitMix64(seed: UInt64(h * 100 + w))
        // Few distinct values: many ties. A sprinkle of NaNs and infinities.
        var x = (0..<(planes * h * w)).map { _ in Float(Int(g.nextUnitFloat() * 4)) - 1.5 }
        for _ in 0..<(x.count / 50) { x[Int(g.next() % UInt64(x.count))] = .nan }
        for _ in 0..<(x.count / 80) { x[Int(g.next() % UInt64(x.count))] = -.infinity }
        let layer = try Layer("maxpool2d", [("kernel_size", .int(2)), ("stride", .int(2))], runtime: sharedRuntime)
        let input = try Tensor(shape: [2, 3, h, w], data: x)
        let out = try layer.forward([input])
        let ref = reference(x, planes, h, w)
        #expect(out.data.count == ref.out.count)
        for (a, b) in zip(out.data, ref.out) { #expect(a == b || (a.isNaN && b.isNaN)) }
        let dy = try Tensor(shape: out.shape, data: (0..<out.data.count).map { Float($0 + 1) })
        let dx = try #require(try layer.backward(inputs: [input], output: out, gradOutput: dy)[0])
        var expected = [Float](repeating: 0, count: x.count)
        for (k, idx) in ref.argmax.enumerated() { expected[idx] += dy.data[k] }
        #expect(dx.data == expected)
    }
}
