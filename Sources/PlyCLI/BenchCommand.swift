import ArgumentParser
import Foundation
import Ply

/// `ply bench`: the figures in BENCHMARKS.md, measured on this machine.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure conv2d GFLOPS, vtable dispatch cost and training throughput.")

    @Option(help: "Repetitions per measurement (the best is reported).") var repeats = 20
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Also time one epoch of the tutorial's training on synthetic data.") var training = false
    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        try checkOption("--repeats", repeats, in: OptionLimits.repeats)
        try checkOption("--threads", threads, in: OptionLimits.threads)
    }

    func run() throws {
        do { try measure() } catch { throw fail(error) }
    }

    /// Best wall time of `body` over `repeats` runs, after one warm-up run.
    func best(_ body: () throws -> Void) rethrows -> Double {
        try body()
        var bestTime = Double.infinity
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            bestTime = min(bestTime, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return bestTime
    }

    func measure() throws {
        let runtime = try pluginOptions.makeRuntime(threads: threads)
        print("threads: \(runtime.threads)")
        print("conv2d (im2col + OpenBLAS sgemm):")
        let cases: [(String, Shape, Int, Int)] = [
            ("ResNet-18 layer 1x64x56x56 -> 64, 3x3 pad 1", [1, 64, 56, 56], 64, 3),
            ("ConvNet conv_2 128x8x14x14 -> 16, 3x3 pad 1", [128, 8, 14, 14], 16, 3),
            ("ConvNet conv_1 128x1x28x28 -> 8, 3x3 pad 1", [128, 1, 28, 28], 8, 3),
        ]
        var g = SplitMix64(seed: 1)
        for (label, shape, outC, k) in cases {
            let conv = try Layer("conv2d", [("in_channels", .int(shape.dims[1])), ("out_channels", .int(outC)),
                                            ("kernel_size", .int(k)), ("padding", .int(k / 2))], runtime: runtime)
            let x = try Tensor(shape: shape, data: (0..<shape.count).map { _ in g.nextUnitFloat() - 0.5 })
            let m = Model(runtime: runtime)
            try m.add("conv", conv)
            let out = try m.forward(x)
            let flops = 2.0 * Double(out.shape.count) * Double(shape.dims[1] * k * k)
            let fwd = try best { _ = try x.data.withUnsafeBufferPointer { try m.forward($0, shape: shape) } }
            let ones = [Float](repeating: 1, count: out.shape.count)
            let both = try best {
                _ = try x.data.withUnsafeBufferPointer { try m.forward($0, shape: shape) }
                _ = try ones.withUnsafeBufferPointer { try m.backward($0, inputGradient: true) }
            }
            print(String(format: "  %@: forward %.3f ms = %.1f GFLOPS; forward+backward %.3f ms = %.1f GFLOPS",
                         label, fwd * 1e3, flops / fwd / 1e9, both * 1e3, 3 * flops / both / 1e9))
        }

        // Dispatch: a 1-element relu forward through the vtable is nearly all call overhead.
        let relu = Model(runtime: runtime)
        try relu.add("relu", "relu")
        let one: [Float] = [0.5]
        let calls = 1_000_000
        let dispatch = try best {
            try one.withUnsafeBufferPointer { p in for _ in 0..<calls / 10 { _ = try relu.forward(p, shape: [1]) } }
        } / Double(calls / 10)
        print(String(format: "dispatch: one model step through the vtable (1-element relu) %.0f ns", dispatch * 1e9))

        if training {
            let net = try Zoo.convNet(runtime: runtime)
            var config = TrainingConfiguration()
            config.epochs = 1
            config.trainingAccuracy = false
            config.logEvery = 1_000_000
            let n = 60_000
            let data = ImageDataset(count: n, channels: 1, height: 28, width: 28,
                                    images: (0..<(n * 784)).map { _ in g.nextUnitFloat() },
                                    labels: (0..<n).map { Int32($0 % 10) })
            let trainer = try Trainer(model: net, configuration: config)
            let summary = try trainer.run(train: data, test: nil)
            print(String(format: "training: tutorial ConvNet, batch 128, one epoch of 60,000 images: %.2f s = %.0f images/s",
                         summary.seconds, summary.imagesPerSecond))
        }
    }
}
