import Foundation
import Testing
@testable import Ply

/// Runtime.Options.flushDenormals: layers (on the caller and on the workers) and optimizer
/// steps compute with denormals flushed to zero by default, keep them when asked, and leave
/// the calling thread's floating-point modes as they found them.
@Suite struct DenormalTests {
    static func runtime(flush: Bool) throws -> Runtime {
        var options = Runtime.Options()
        options.threads = 2
        options.flushDenormals = flush
        let runtime = try Runtime(options: options)
        // start the workers outside any layer call: a thread inherits its creator's modes, and
        // the workers must flush on their own account
        runtime.state.parallelRanges(1 << 20, minimum: 1) { _, _ in }
        return runtime
    }

    /// A multiplication the compiler cannot fold: done on this thread, in its current modes.
    @inline(never) static func product(_ a: Float, _ b: Float) -> Float { a * b }

    /// A 3x3 convolution whose every product is 1e-30 * 1e-10 = 1e-40, a denormal; 16x16 output
    /// positions, so both threads take a share.
    func convolve(_ runtime: Runtime) throws -> [Float] {
        let conv = try Layer("conv2d", [("in_channels", .int(4)), ("out_channels", .int(8)), ("kernel_size", .int(3)),
                                        ("padding", .int(1)), ("bias", .bool(false)), ("algorithm", .string("im2col"))],
                             runtime: runtime)
        try conv.parameters[0].write(Array(repeating: 1e-30, count: 8 * 4 * 9))
        let x = try Tensor(shape: [1, 4, 16, 16], data: Array(repeating: 1e-10, count: 4 * 16 * 16))
        return try conv.forward([x]).data
    }

    @Test func layersFlushByDefaultAndKeepWhenAsked() throws {
        #expect(Runtime.Options().flushDenormals)
        let flushed = try convolve(DenormalTests.runtime(flush: true))
        #expect(flushed.allSatisfy { $0 == 0 }, "flushed: \(flushed.filter { $0 != 0 }.count) outputs are not 0")
        let kept = try convolve(DenormalTests.runtime(flush: false))
        #expect(kept.allSatisfy { $0 > 0 && $0 < Float.leastNormalMagnitude }, "kept: denormal sums expected")
        // the caller's modes are back: gradual underflow here
        #expect(DenormalTests.product(1e-30, 1e-10) > 0)
    }

    @Test func optimizerStepsFlush() throws {
        for flush in [true, false] {
            let runtime = try DenormalTests.runtime(flush: flush)
            let linear = try Layer("linear", [("in_features", .int(2)), ("out_features", .int(1))], runtime: runtime)
            let params = try linear.parameters
            try params[0].write([1e-39, 1])           // a denormal weight and a normal one
            params[0].gradient!.update(repeating: 0)
            params[1].gradient!.update(repeating: 0)
            let sgd = try SGD(learningRate: 0.1, momentum: 0.9)
            try sgd.step([("weight", params[0]), ("bias", params[1])])
            let w = Array(params[0].floats!)
            // w - 0.1 * 0: DAZ reads the denormal as 0 and the result is 0; IEEE keeps it
            #expect(w == (flush ? [0, 1] : [1e-39, 1]), "flush \(flush): \(w)")
        }
        #expect(DenormalTests.product(1e-30, 1e-10) > 0)
    }
}
