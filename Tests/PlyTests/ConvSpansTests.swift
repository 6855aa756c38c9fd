import Foundation
import Testing
@testable import Ply

/// conv2d's "spans" kernel (Plugins/Conv/conv_spans.c: vectorised over output channels, positions in
/// spans that cross rows) against PyTorch's convolution in double precision (Fixtures/spans,
/// written by make-conv-spans.py): forced, and through "auto" in evaluation, which takes the spans
/// at the AVX2 and AVX-512 levels for the 1x7 and 7x1 cases with 32 or more channels (im2col + GEMM
/// below them), on 1, 2 and 3 threads; its packed weights following weight changes; and the errors where it
/// cannot run.
@Suite struct ConvSpansTests {
    static let cases = fixtureCases("spans")
    /// Where the panels do not divide evenly among the threads (1 or 2 panels here on 3 threads, 1 on
    /// 2) the threads split the output positions instead.
    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 6, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let f = try FixtureCase("spans", name)
        let input = try f.input, expected = try f.expected()
        // below the AVX2 level forcing "spans" is refused (spansNeedsAVX2BelowIt)
        let algorithms = avx2Kernels ? ["auto", "spans"] : ["auto"]
        for runtime in Self.runtimes.all {
            for algorithm in algorithms {
                let label = "\(name), \(algorithm), \(runtime.threads) threads"
                let layer = try f.layer([("algorithm", .string(algorithm))], on: runtime, label: label)
                try expectForwardsMatch(layer, input, expected, label) // the second reuses the packed weights
            }
        }
    }

    func random(_ count: Int, _ g: inout SplitMix64) -> [Float] { (0..<count).map { _ in g.nextUnitFloat() * 2 - 1 } }

    /// The packed weights are made again when the weights change: an SGD step (forced "spans" runs the
    /// forward in training too; the backward is im2col's), a change of the last weight only, and the
    /// old weights written back each reach the next forward (compared with "im2col").
    @Test(.enabled(if: avx2Kernels, "forces algorithm \"spans\", whose kernels are AVX2 and AVX-512"),
          arguments: [[1, 7], [5, 5]])
    func packedWeightsFollowWeightChanges(_ kernel: [Int]) throws {
        let (n, c, oc, h, w) = (2, 20, 36, 9, 10)
        for runtime in [sharedRuntime, Self.runtimes.two] {
            func make(_ algorithm: String) throws -> Layer {
                try Layer("conv2d", [("in_channels", .int(c)), ("out_channels", .int(oc)), ("kernel_size", .ints(kernel)),
                                     ("padding", .ints(kernel.map { $0 / 2 })), ("algorithm", .string(algorithm))],
                          runtime: runtime)
            }
            let fast = try make("spans"), reference = try make("im2col")
            var g = SplitMix64(seed: 41)
            let x = try Tensor(shape: [n, c, h, w], data: random(n * c * h * w, &g))
            try expectPackedWeightsFollowChanges(fast, reference, input: x, &g,
                                                 label: "\(kernel), \(runtime.threads) threads")
        }
    }

    /// A batch on 1, 2 and 3 threads: bit for bit the 1-thread output, which is within tolerance of a
    /// plain double sum per image (a part left out everywhere does not pass). 64 output channels are
    /// 2 panels: split by panels on 2 threads, by positions on 3 (2 do not divide among 3), the cut
    /// then inside an image; the padded input (40 x 15 x 15 floats an image, past
    /// SPANS_PAD_SPLIT_FLOATS at 2 images) padded by ranges of planes on every thread (`step_pad`).
    /// 5x5 taps: blocks of 5 input channels, 8 of them. A mutant leaving the last thread's last plane
    /// unpadded fails here on 2 and 3 threads.
    @Test(.enabled(if: avx2Kernels, "forces algorithm \"spans\", whose kernels are AVX2 and AVX-512"),
          arguments: [2, 4])
    func batchIsTheSameOnAnyThreadCount(_ n: Int) throws {
        let (c, oc, side, k) = (40, 64, 11, 5)
        var g = SplitMix64(seed: UInt64(500 + n))
        let x = try Tensor(shape: [n, c, side, side], data: random(n * c * side * side, &g))
        let w = (0..<(oc * c * k * k)).map { _ in (g.nextUnitFloat() * 2 - 1) * 0.1 }
        let b = (0..<oc).map { _ in g.nextUnitFloat() - 0.5 }
        let label = "\(n) images, \(c)->\(oc) \(side)x\(side) 5x5"
        let outputs = try convOutputsOnThreads(
            [threadedRuntime(1), Self.runtimes.two, Self.runtimes.three],
            [("in_channels", .int(c)), ("out_channels", .int(oc)), ("kernel_size", .int(k)), ("padding", .int(2)),
             ("algorithm", .string("spans"))],
            w: w, b: b, relu: true, x: x, shape: [n, oc, side, side], label)
        let per = c * side * side
        let reference = (0..<n).flatMap { i in
            referenceConv(Array(x.data[(i * per)..<((i + 1) * per)]), w, b, c: c, oc: oc, side: side, k: k, stride: 1,
                          pad: 2, relu: true)
        }
        expectSameAsOneThread(outputs, reference: reference, label)
    }

    func spansError(_ attrs: Attributes) throws -> String {
        let error = try #require(throws: PlyError.self) {
            _ = try Layer("conv2d", [("in_channels", .int(4)), ("out_channels", .int(4)), ("algorithm", .string("spans"))] + attrs,
                          runtime: sharedRuntime)
        }
        guard case let .layer(_, _, _, message) = error else { return "not a layer error: \(error)" }
        return message
    }

    /// Forcing "spans" where it cannot run is refused at creation with a message saying why.
    @Test func spansIsRefusedWhereItDoesNotApply() throws {
        let dilated = try spansError([("kernel_size", .int(3)), ("dilation", .int(2))])
        #expect(dilated.contains("\"spans\"") && dilated.contains("dilation 1 only"), "\(dilated)")
        let grouped = try spansError([("kernel_size", .int(3)), ("groups", .int(2))])
        #expect(grouped.contains("\"spans\"") && grouped.contains("groups=1 only"), "\(grouped)")
        if avx2Kernels {
            let big = try spansError([("kernel_size", .int(9))])
            #expect(big.contains("\"spans\"") && big.contains("at most 64 taps") && big.contains("9x9"), "\(big)")
        }
    }

    /// Below the AVX2 level forcing "spans" (or "pointwise") is refused, naming the levels it needs and this one.
    @Test(.disabled(if: avx2Kernels, "the AVX2 or AVX-512 kernels run here"))
    func spansNeedsAVX2BelowIt() throws {
        let message = try spansError([("kernel_size", .ints([1, 7])), ("padding", .ints([0, 3]))])
        #expect(message.contains("\"spans\"") && message.contains("AVX2 or AVX-512") && message.contains(cpuLevel),
                "\(message)")
        let error = try #require(throws: PlyError.self) {
            _ = try Layer("conv2d", [("in_channels", .int(4)), ("out_channels", .int(4)), ("kernel_size", .int(1)),
                                     ("algorithm", .string("pointwise"))], runtime: sharedRuntime)
        }
        guard case let .layer(_, _, _, pointwise) = error else { Issue.record("not a layer error: \(error)"); return }
        #expect(pointwise.contains("\"pointwise\"") && pointwise.contains("AVX2 or AVX-512") && pointwise.contains(cpuLevel),
                "\(pointwise)")
    }
}
