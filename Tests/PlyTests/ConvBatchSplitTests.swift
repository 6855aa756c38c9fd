import Foundation
import Testing
@testable import Ply

/// conv2d's kernels split over threads inside one image (Fixtures/split, written by
/// make-batch-split.py, PyTorch's convolution in double precision), on 1, 2 and 3 threads, in
/// evaluation and training, the relu fused or not:
/// - the direct kernel (Plugins/Conv/conv_direct.c: stride 1, at most 16 input and 64 output
///   channels, AVX-512) with fewer images than threads splits each image's output channels over the
///   threads in ranges of whole blocks of 8 (conv.c, `conv_direct_job_make`);
/// - the spans kernel (conv_spans.c: 1x7 / 7x1 / 5x5 with 32+ channels, evaluation) pads its input by
///   ranges of planes on every thread, at batch 1 too; where its panels do not divide among the
///   threads (140 output channels, 5 panels) each thread takes an even share of the positions, cut
///   into its own spans (`step_parts`);
/// - Winograd (conv_winograd.c) in "ranges": each thread whole half-strip units of tiles, the units
///   left over (the tail) split by output channels, every thread transforming the tail's input
///   (3 images of 17 -> 20 on 44x44: a tail of 11 tiles on 2 threads, 27 on 3).
/// And an inception block with GoogLeNet's inception3a branch3.1 (16 -> 32 3x3 on 28x28) at 1, 2 and
/// 3 threads, each against the 1-thread answer. Below AVX-512 the same cases run other kernels.
@Suite struct ConvBatchSplitTests {
    static let cases = fixtureCases("split")
    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 8, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let f = try FixtureCase("split", name)
        let input = try f.input
        for runtime in Self.runtimes.all {
            for training in [false, true] {
                for relu in [false, true] {
                    let label = "\(name), training \(training), relu \(relu), \(runtime.threads) threads"
                    let layer = try f.layer(on: runtime, training: training, relu: relu, label: label)
                    try expectForwardsMatch(layer, input, try f.expected(relu: relu), label, passes: 1)
                }
            }
        }
    }

    /// An inception block on 28x28 whose branch3.1 is inception3a's 16 -> 32 3x3 (the layer the split
    /// serves; the other branches narrower than GoogLeNet's, to stay fast) in evaluation at batch 1:
    /// 2 and 3 threads give the 1-thread answer.
    @Test func googlenetInception3aAgreesAcrossThreads() throws {
        var g = SplitMix64(seed: 41)
        let x = try Tensor(shape: [1, 32, 28, 28], data: (0..<(32 * 28 * 28)).map { _ in g.nextUnitFloat() * 2 - 1 })
        let attrs: Attributes = [("in_channels", .int(32)), ("ch1x1", .int(8)), ("ch3x3red", .int(8)),
                                 ("ch3x3", .int(16)), ("ch5x5red", .int(16)), ("ch5x5", .int(32)),
                                 ("pool_proj", .int(8))]
        var values: [[Float]] = []
        for p in try Layer("inception_googlenet", attrs, runtime: sharedRuntime).parameters {
            values.append((0..<p.shape.count).map { _ in
                p.name.hasSuffix("running_var") || p.name.hasSuffix("bn.weight") ? 0.5 + g.nextUnitFloat()
                    : (g.nextUnitFloat() * 2 - 1) * 0.1
            })
        }
        var outputs: [(Int, [Float])] = []
        for runtime in Self.runtimes.all {
            let block = try Layer("inception_googlenet", attrs, runtime: runtime)
            for (p, v) in zip(try block.parameters, values) { try p.write(v) }
            block.setTraining(false)
            let y = try block.forward([x])
            #expect(y.shape == [1, 64, 28, 28], "\(y.shape)")
            outputs.append((runtime.threads, y.data))
        }
        for (threads, y) in outputs.dropFirst() {
            let c = closeness(y, outputs[0].1)
            #expect(c.ok, "\(threads) threads against 1: max error \(c.error) > \(c.bound)")
        }
    }
}
