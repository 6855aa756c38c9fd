import Foundation
import Testing
@testable import Ply

/// conv2d's panels kernel (Plugins/Conv/conv_panels.c) on stride-2 batches too large for one call:
/// "auto" in evaluation runs them a few images per call (conv_panels_images_per_call; ResNet's
/// stride-2 3x3 layers at batch 16). Each case is compared with "im2col" (itself checked against
/// PyTorch by the goldens) on 1, 2 and 3 threads, with the relu fused: one image per call (672
/// outputs an image), two (400: calls of 2 and 1), and a batch whose last call is short.
@Suite struct ConvPanelsBatchTests {
    static let twoThreads = threadedRuntime(2)
    static let threeThreads = threadedRuntime(3)

    struct Case: Sendable, CustomStringConvertible {
        let n, c, oc, h, w: Int
        var description: String { "\(n)x\(c)x\(h)x\(w) -> \(oc)" }
    }

    func random(_ count: Int, _ g: inout SplitMix64) -> [Float] { (0..<count).map { _ in g.nextUnitFloat() * 2 - 1 } }

    @Test(arguments: [Case(n: 3, c: 16, oc: 40, h: 48, w: 56), Case(n: 3, c: 20, oc: 33, h: 40, w: 40),
                      Case(n: 5, c: 16, oc: 64, h: 40, w: 39)])
    func batchesInCallsMatchIm2col(_ k: Case) throws {
        for runtime in [sharedRuntime, Self.twoThreads, Self.threeThreads] {
            func make(_ algorithm: String) throws -> Layer {
                let layer = try Layer("conv2d", [("in_channels", .int(k.c)), ("out_channels", .int(k.oc)),
                                                 ("kernel_size", .int(3)), ("stride", .int(2)), ("padding", .int(1)),
                                                 ("algorithm", .string(algorithm))], runtime: runtime)
                layer.setTraining(false)
                #expect(layer.fuseActivation("relu"), "conv2d fuses the relu")
                return layer
            }
            let fast = try make("auto"), reference = try make("im2col")
            var g = SplitMix64(seed: UInt64(k.n * 131 + k.c * 17 + k.oc))
            for p in try fast.parameters { try p.write(random(p.shape.count, &g)) }
            for (p, q) in zip(try fast.parameters, try reference.parameters) { try q.write(p.read()) }
            let x = try Tensor(shape: [k.n, k.c, k.h, k.w], data: random(k.n * k.c * k.h * k.w, &g))
            for pass in 1...2 { // the second forward reuses the packed weights
                let y = try fast.forward([x]), ref = try reference.forward([x])
                #expect(y.shape == ref.shape, "\(k): \(y.shape) vs \(ref.shape)")
                let close = closeness(y.data, ref.data)
                #expect(close.ok, "\(k), \(runtime.threads) threads, pass \(pass): max error \(close.error) > \(close.bound)")
            }
        }
    }
}
