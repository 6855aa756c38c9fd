import Foundation
import Testing
@testable import Ply

@Suite struct ConvDirectBlockTests {
    /// conv2d takes the direct kernels' packed weights (`wflip`) only when it runs them: other
    /// layers never write it, and in the arena its pages would be backed all the same.
    @Test func convTakesItsDirectKernelBlockOnFirstUse() throws {
        let runtime = try Runtime()
        let before = runtime.layerBytes
        let wbytes = 64 * 64 * 9 * 4
        let conv = try Layer("conv2d", [("in_channels", .int(64)), ("out_channels", .int(64)), ("kernel_size", .int(3)),
                                        ("padding", .int(1)), ("algorithm", .string("im2col"))], runtime: runtime)
        let held = runtime.layerBytes - before // weights, their gradient, bias, gradient, the layer
        #expect(held < 2 * wbytes + wbytes / 2, "a conv holds \(held) bytes for \(wbytes) bytes of weights")
        // "direct" is refused below the AVX2 level (KernelTests checks the message)
        guard avx2Kernels else { return }
        let direct = try Layer("conv2d", [("in_channels", .int(4)), ("out_channels", .int(8)), ("kernel_size", .int(3)),
                                          ("padding", .int(1)), ("algorithm", .string("direct"))], runtime: runtime)
        let x = try Tensor(shape: [1, 4, 6, 6], data: (0..<144).map { Float($0 % 7) - 3 })
        let generic = try Layer("conv2d", [("in_channels", .int(4)), ("out_channels", .int(8)), ("kernel_size", .int(3)),
                                           ("padding", .int(1)), ("algorithm", .string("im2col"))], runtime: runtime)
        for (p, q) in zip(try direct.parameters, try generic.parameters) { try q.write(p.read()) }
        let y = try direct.forward([x]), ref = try generic.forward([x])
        #expect(closeness(y.data, ref.data).ok, "the direct kernel, its block taken on first use, agrees with im2col")
        _ = conv
    }
}
