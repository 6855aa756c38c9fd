import ArgumentParser
import Foundation
import Ply

/// `ply bench-model`: images per second of one zoo model, inference or a training step, on
/// synthetic data — the Ply half of `Benchmarks/compare-models`, which runs PyTorch on the
/// same case in the same session.
struct BenchModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-model",
        abstract: "Time a zoo model's inference or training step on synthetic data.",
        discussion: """
            Prints one line per timed run and a final `result:` line with the median images/s, \
            e.g. `ply bench-model resnet18 --batch 16 --image-size 224 --channels 3 --classes 1000`.
            Inference runs in evaluation mode; --training times forward, mean cross-entropy, \
            backward and an SGD (momentum 0.9) update, as one step of `ply train`.
            """)

    @Argument(help: "A zoo model name (see `ply summary --help`) or a model file.") var model: String
    @Option(help: "Images per batch.") var batch = 1
    @Option(help: "Image side in pixels.") var imageSize = 224
    @Option(help: "Image channels.") var channels = 3
    @Option(help: "Classes (the last layer's outputs).") var classes = 1000
    @Flag(help: "Time training steps instead of inference.") var training = false
    @Option(help: "Timed runs (the median is reported).") var runs = 5
    @Option(help: "Batches per timed run.") var iterations = 0
    @Option(help: "Untimed warm-up batches.") var warmup = 2
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: ArgumentHelp("Inference batch lanes: runs of images each carried through the whole model by one thread "
        + "(default: chosen per model and batch; 1: every layer split over the threads).", valueName: "n")) var lanes: Int?
    @OptionGroup var pluginOptions: PluginOptions

    func run() throws {
        do { try measure() } catch { throw fail(error) }
    }

    func validate() throws {
        try checkOption("--batch", batch, in: OptionLimits.batch)
        try checkOption("--image-size", imageSize, in: OptionLimits.imageSize)
        try checkOption("--channels", channels, in: OptionLimits.channels)
        try checkOption("--classes", classes, in: OptionLimits.classes)
        try checkOption("--runs", runs, in: OptionLimits.repeats)
        try checkOption("--iterations", iterations, in: OptionLimits.count)
        try checkOption("--warmup", warmup, in: OptionLimits.count)
        try checkOption("--threads", threads, in: OptionLimits.threads)
        try checkOption("--lanes", lanes, in: OptionLimits.threads)
        if training, lanes != nil { throw ValidationError("--lanes: batch lanes are for inference; drop --lanes or --training") }
        if let lanes, let threads, lanes > threads {
            throw ValidationError("--lanes \(lanes): at most --threads (\(threads)) lanes")
        }
        try checkNotEmpty("<model>", model)
        try checkBatchMemory("--batch", [batch, channels, imageSize, imageSize])
    }

    func measure() throws {
        let runtime = try pluginOptions.makeRuntime(threads: threads)
        let net = try ModelSource.build(model, runtime: runtime, numClasses: classes, inChannels: channels, imageSize: imageSize)
        let shape = Shape([batch, channels, imageSize, imageSize])
        // Every node's output (and, training, its gradient) must fit: refuse before allocating.
        let activations = try net.activationBytes(for: shape)
        try MemoryBudget.require("--batch \(batch): \(model) on \(shape)\(training ? " (training)" : "")",
                                 bytes: training ? activations.flatMap { $0.multipliedReportingOverflow(by: 2).overflow ? nil : $0 * 2 } : activations)
        var g = SplitMix64(seed: 7)
        let images = (0..<shape.count).map { _ in g.nextUnitFloat() }
        let labels = (0..<batch).map { Int32($0 % classes) }
        var config = TrainingConfiguration()
        config.batchSize = batch
        config.learningRate = 0.01
        config.optimizer = .sgd(momentum: 0.9)
        config.initialization = .pytorchDefault
        let trainer = try Trainer(model: net, configuration: config, classes: classes)
        net.isTraining = training
        // Inference only: the layers may free what evaluation does not read, as `predict` does.
        var laneCount = 1
        if !training {
            laneCount = try net.prepareLanes(forBatch: batch, lanes: lanes)
            try net.freezeForInference()
        }

        let step: () throws -> Void = {
            try images.withUnsafeBufferPointer { p in
                if training {
                    _ = try trainer.step(images: p, shape: shape, labels: labels)
                } else {
                    _ = try net.infer(p, shape: shape) // no activation kept: inference's memory
                }
            }
        }
        for _ in 0..<warmup { try step() }
        // Enough batches per run for about half a second, unless --iterations says.
        var perRun = iterations
        if perRun == 0 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try step()
            let one = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            perRun = max(1, min(1000, Int((0.5 / max(one, 1e-6)).rounded(.up))))
        }
        print("model: \(model), \(training ? "training step" : "inference"), input \(shape), threads \(runtime.threads)\(training ? "" : ", lanes \(laneCount)"), "
            + "\(runs) runs of \(perRun) batches")
        if let blas = Runtime.blasSummary { print("blas: \(blas)") }
        var rates: [Double] = []
        for r in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds, c0 = Self.cpuSeconds()
            for _ in 0..<perRun { try step() }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            let cpu = Self.cpuSeconds() - c0
            let rate = Double(batch * perRun) / seconds
            rates.append(rate)
            // CPU time of the whole process: on a shared machine, wall time / CPU time below the
            // thread count means other work took the cores.
            print(String(format: "run %d: %.2f images/s (%.3f ms per batch; CPU %.3f ms per batch, %.0f%%)", r + 1, rate,
                         seconds / Double(perRun) * 1e3, cpu / Double(perRun) * 1e3, cpu / seconds * 100))
        }
        // Where the memory goes: what the layers hold through the host's alloc (weights, derived
        // weights, scratch; gradients mapped but never written included) and the model's buffers.
        print(String(format: "memory: layers hold %.1f MB through the host's alloc%@", Double(runtime.layerBytes) / 1_048_576,
                     training ? "" : String(format: ", inference buffers %.1f MB", Double(net.inferenceFloats * 4) / 1_048_576)))
        if !training {
            let blocked = net.nodes.indices.dropFirst().filter { net.inferenceLayout(of: $0) == .nchw16c }.count
            print("layouts: \(blocked) of \(net.nodes.count - 1) values in blocks of 16 channels (NCHW16c; PLY_BLOCKED_LAYOUTS=0 keeps all NCHW)")
        }
        let sorted = rates.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        print(String(format: "result: %.2f images/s (median of %d runs; min %.2f, max %.2f)", median, runs,
                     sorted.first ?? 0, sorted.last ?? 0))
    }

    /// CPU seconds used by the process so far (all threads).
    static func cpuSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}
