import Testing
@testable import Ply

/// Work the plugins split over the host's threads must give the same numbers at any thread count:
/// concat's copy split by ranges of the output, and the Winograd cache's weight hash split by
/// segments (a hash that missed a change would keep the old transformed weights).
@Suite struct ThreadSplitTests {
    func runtime(_ threads: Int) throws -> Runtime {
        var options = Runtime.Options()
        options.threads = threads
        return try Runtime(options: options)
    }

    /// Five inputs (one empty) of shape (8, 13, 29, 37) with C_i along `dim`: 75,400 floats or more
    /// in the output, past the 64K-float threshold where the copy goes to the threads, whose
    /// ranges then start and end inside rows of the inputs.
    @Test(arguments: [0, 1, 3])
    func concatIsTheSameCopyOnAnyThreadCount(_ dim: Int) throws {
        let parts = [5, 0, 11, 8, 1]
        func shape(_ c: Int) -> [Int] {
            var s = [8, 13, 29, 37]
            s[dim] = c
            return s
        }
        let inputs = try parts.enumerated().map { i, c in
            let s = shape(c)
            return try Tensor(shape: Shape(s), data: (0..<s.reduce(1, *)).map { Float(i * 1_000_000 + $0) })
        }
        // the expected output, row by row: outer = product of the dims before dim, a row per input
        let outer = shape(1)[..<dim].reduce(1, *), inner = shape(1)[(dim + 1)...].reduce(1, *)
        var expected: [Float] = []
        for o in 0..<outer {
            for (t, c) in zip(inputs, parts) { expected += t.data[(o * c * inner)..<((o + 1) * c * inner)] }
        }
        #expect(expected.count >= 1 << 16)
        for threads in [1, 2, 3] {
            let layer = try Layer("concat", [("dim", .int(dim))], runtime: try runtime(threads))
            let y = try layer.forward(inputs)
            #expect(y.shape == Shape(shape(parts.reduce(0, +))))
            #expect(y.data == expected, "\(threads) threads, dim \(dim)")
        }
    }

    /// A 3x3 conv with 64 * 64 * 9 weights (3 hash segments) on Winograd's path (16x16, 64 tiles):
    /// after its weights are rewritten it must give what a fresh conv with those weights gives.
    @Test func winogradNoticesNewWeightsOnAnyThreadCount() throws {
        let attrs: Attributes = [("in_channels", .int(64)), ("out_channels", .int(64)), ("kernel_size", .int(3)),
                                 ("padding", .int(1))]
        var g = SplitMix64(seed: 16)
        let x = try Tensor(shape: [1, 64, 16, 16], data: (0..<(64 * 256)).map { _ in g.nextUnitFloat() - 0.5 })
        let w2 = (0..<(64 * 64 * 9)).map { _ in g.nextUnitFloat() * 0.1 - 0.05 }
        for threads in [1, 2, 3] {
            let rt = try runtime(threads)
            let conv = try Layer("conv2d", attrs, runtime: rt)
            let before = try conv.forward([x])
            var w = w2
            w[64 * 64 * 9 - 1] += 0.25 // a change in the last segment only
            try conv.parameters[0].write(w)
            let fresh = try Layer("conv2d", attrs, runtime: rt)
            try fresh.parameters[0].write(w)
            try fresh.parameters[1].write(Array(conv.parameters[1].floats!))
            let after = try conv.forward([x])
            #expect(after.data == (try fresh.forward([x])).data, "\(threads) threads")
            #expect(after.data != before.data)
        }
    }
}
