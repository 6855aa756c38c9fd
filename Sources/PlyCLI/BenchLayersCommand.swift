import ArgumentParser
import Foundation
import Ply

/// `ply bench-layers`: where a zoo model's inference time (or, `--training`, its training step's)
/// goes, per layer kind — achieved GFLOPS (direct-convolution FLOPs, 2 per multiply-accumulate,
/// over time) and the fraction of this machine's fp32 peak. The program behind the per-kind
/// tables of BENCHMARKS.md.
struct BenchLayersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-layers",
        abstract: "Time a zoo model's inference or training step per layer kind: GFLOPS and fraction of the fp32 peak.",
        discussion: """
            Times the whole model's inference (evaluation mode, as bench-model), then every conv, \
            linear and pooling layer on its own — the leaves of each node's description \
            (`ply summary`), residual and inception blocks' children included — at the shapes the \
            model gives it (each on its own buffers; one copy of its input is included). A conv followed by a batch norm in the same block is timed as the folded \
            conv inference runs (bias on; the fused relu is not timed), and that batch norm counts as folded. Kinds: \
            conv 3x3, conv 1x1, conv other (7x7, 5x5, 1x7, 11x11, ...), linear, pool; "rest" is the \
            model's time minus the timed layers' (batch norms not folded, relus, adds, concats, \
            block glue, and the difference between layers run alone and in the model). GFLOPS = \
            2 x MACs / seconds; the fraction of peak divides by --peak x threads (measure --peak \
            with Benchmarks/fma_peak.c).

            --training times a training step instead (forward, mean cross-entropy, backward, SGD \
            with momentum 0.9, as `bench-model --training`), and every conv, linear, pooling, batch \
            norm and relu leaf in training mode, nothing folded: its forward, its backward for the \
            parameter gradients alone (the input gradient not asked for), and the extra time the \
            input gradient adds (a full backward minus that; "-" for a layer reading the model's \
            input, whose input gradient a step does not compute). Rows "rest of forward" and \
            "rest of backward" are the model's forward and backward minus the timed leaves' (adds, \
            block glue, the relus and batch norms timed once per block but run more often); \
            "optimizer" is zeroing the gradients plus the SGD update; the step row gives the model's \
            forward and its whole backward. A training GFLOP is 2 x MACs per pass: forward, \
            parameter gradient, input gradient. --layers adds one row per leaf.
            """)

    @Argument(help: "A zoo model name (see `ply summary --help`) or a model file.") var model: String
    @Option(help: "Images per batch.") var batch = 1
    @Option(help: "Image side in pixels.") var imageSize = 224
    @Option(help: "Image channels.") var channels = 3
    @Option(help: "Classes (the last layer's outputs).") var classes = 1000
    @Option(help: "Timed runs per measurement (the median is reported).") var runs = 5
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "The machine's fp32 peak of one thread in GFLOPS (Benchmarks/fma_peak.c); 0: no fraction column.")
    var peak: Double = 0
    @Flag(help: "Time a training step and each leaf's forward, parameter-gradient and input-gradient passes.")
    var training = false
    @Flag(help: "Also print one row per timed layer (its path in the model and its input shape).")
    var layers = false
    @Flag(help: "Time with the process's CPU time over the thread count instead of wall time (with 1 thread: time spent descheduled on a shared machine does not count).")
    var cpuTime = false
    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        try checkNotEmpty("<model>", model)
        try checkOption("--batch", batch, in: OptionLimits.batch)
        try checkOption("--image-size", imageSize, in: OptionLimits.imageSize)
        try checkOption("--channels", channels, in: OptionLimits.channels)
        try checkOption("--classes", classes, in: OptionLimits.classes)
        try checkOption("--runs", runs, in: OptionLimits.repeats)
        try checkOption("--threads", threads, in: OptionLimits.threads)
        try checkOption("--peak", peak, peak >= 0 && peak.isFinite, "a finite number >= 0")
        try checkBatchMemory("--batch", [batch, channels, imageSize, imageSize])
    }

    func run() throws {
        do { try measure() } catch { throw fail(error) }
    }

    /// One layer to time: its type, attributes and input shape, the kind it counts as.
    struct Leaf {
        let name: String
        let kind: String
        let typeName: String
        let attributes: Attributes
        let input: Shape
        let macs: Int
        /// Whether a training step computes this layer's input gradient (not for the model's input).
        var inputGradient = true
    }

    static let kinds = ["conv 3x3", "conv 1x1", "conv other", "linear", "pool"]

    static func kernel(_ attributes: Attributes) -> [Int] {
        switch attributes.first(where: { $0.0 == "kernel_size" })?.1 {
        case let .int(k)?: return [k, k]
        case let .ints(k)?: return k.count == 1 ? [k[0], k[0]] : k
        default: return []
        }
    }

    static func kind(_ typeName: String, _ attributes: Attributes, training: Bool = false) -> String? {
        switch typeName {
        case "batchnorm2d" where training: return "batch norm"
        case "relu" where training: return "relu"
        case "conv2d":
            let k = kernel(attributes)
            return k == [3, 3] ? "conv 3x3" : k == [1, 1] ? "conv 1x1" : "conv other"
        case "linear": return "linear"
        case "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "adaptive_maxpool2d": return "pool"
        default: return nil
        }
    }

    /// The timed leaves of a description's children, named under `prefix`; in inference a conv
    /// followed by its batch norm is folded (training runs them as they are).
    static func leaves(_ children: [LayerDescription.Child], prefix: String, training: Bool, into out: inout [Leaf]) {
        for (i, c) in children.enumerated() {
            let name = prefix + "." + (c.name ?? c.typeName)
            if !c.details.children.isEmpty {
                leaves(c.details.children, prefix: name, training: training, into: &out)
                continue
            }
            guard let attributes = c.attributes, let kind = kind(c.typeName, attributes, training: training),
                  let input = c.inputShapes.first else { continue }
            var attrs = attributes
            if !training, c.typeName == "conv2d", i + 1 < children.count, children[i + 1].typeName == "batchnorm2d" {
                attrs = attrs.filter { $0.0 != "bias" } + [("bias", .bool(true))]
            }
            out.append(Leaf(name: name, kind: kind, typeName: c.typeName, attributes: attrs, input: input, macs: c.details.macs))
        }
    }

    /// The model's timed leaves for an input of `shape`, and the MACs of all its layers.
    static func leaves(of net: Model, for shape: Shape, training: Bool) throws -> (leaves: [Leaf], macs: Int) {
        let shapes = try net.shapes(for: shape)
        var leaves: [Leaf] = []
        var totalMACs = 0
        for (id, node) in net.nodes.enumerated() {
            guard let layer = node.layer else { continue }
            let ins = node.inputs.map { shapes[$0] }
            let d = try layer.describe(inputShapes: ins)
            totalMACs += d.totalMACs
            if d.children.isEmpty {
                guard let kind = kind(layer.type.name, layer.attributes, training: training), let input = ins.first else { continue }
                var attrs = layer.attributes
                let next = net.nodes.indices.contains(id + 1) ? net.nodes[id + 1] : nil
                if !training, layer.type.name == "conv2d", let next, next.layer?.type.name == "batchnorm2d", next.inputs == [id] {
                    attrs = attrs.filter { $0.0 != "bias" } + [("bias", .bool(true))]
                }
                var leaf = Leaf(name: node.name, kind: kind, typeName: layer.type.name, attributes: attrs, input: input, macs: d.macs)
                leaf.inputGradient = node.inputs != [Model.input]
                leaves.append(leaf)
            } else {
                Self.leaves(d.children, prefix: node.name, training: training, into: &leaves)
            }
        }
        return (leaves, totalMACs)
    }

    /// Median seconds of `runs` timed calls of `body` (after one untimed call).
    func median(_ body: () throws -> Void) throws -> Double {
        try body()
        var times: [Double] = []
        for _ in 0..<runs { times.append(try seconds(body)) }
        return Self.median(times)
    }

    /// Seconds of one call of `body`: wall time, or with --cpu-time the process's CPU time over the threads.
    func seconds(_ body: () throws -> Void) throws -> Double {
        if cpuTime {
            let c0 = BenchModelCommand.cpuSeconds()
            try body()
            return (BenchModelCommand.cpuSeconds() - c0) / Double(threadCount)
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    static func median(_ times: [Double]) -> Double { times.sorted()[times.count / 2] }

    /// The threads the runtime runs with (--threads; all cores unless given, as makeRuntime).
    var threadCount: Int { threads ?? ProcessInfo.processInfo.activeProcessorCount }

    func measure() throws {
        let runtime = try pluginOptions.makeRuntime(threads: threads)
        let net = try Zoo.model(named: model, runtime: runtime, numClasses: classes, inChannels: channels, imageSize: imageSize)
        if training { return try measureTraining(net, runtime: runtime) }
        net.isTraining = false
        let shape = Shape([batch, channels, imageSize, imageSize])
        try MemoryBudget.require("--batch \(batch): \(model) on \(shape)", bytes: try net.activationBytes(for: shape))
        var g = SplitMix64(seed: 7)
        let images = (0..<shape.count).map { _ in g.nextUnitFloat() }
        let modelSeconds = try median { _ = try images.withUnsafeBufferPointer { try net.infer($0, shape: shape) } }

        // The leaves: each node's description, or the node itself when it has no children.
        let (leaves, totalMACs) = try Self.leaves(of: net, for: shape, training: false)

        var seconds: [String: Double] = [:], macs: [String: Int] = [:], counts: [String: Int] = [:]
        var perLeaf: [Double] = []
        for leaf in leaves {
            // a one-node model: infer runs the layer on its own buffers (plus one copy of the input)
            let one = Model(runtime: runtime)
            try one.add("layer", leaf.typeName, leaf.attributes)
            one.isTraining = false
            let x = (0..<leaf.input.count).map { _ in g.nextUnitFloat() }
            let t = try median { _ = try x.withUnsafeBufferPointer { try one.infer($0, shape: leaf.input) } }
            perLeaf.append(t)
            seconds[leaf.kind, default: 0] += t
            macs[leaf.kind, default: 0] += leaf.macs
            counts[leaf.kind, default: 0] += 1
        }
        let peakAll = peak * Double(runtime.threads)
        func row(_ name: String, _ n: String, _ t: Double, _ m: Int) {
            let gflops = t > 0 ? 2 * Double(m) / t / 1e9 : 0
            let fraction = peakAll > 0 && m > 0 ? String(format: "%.2f", gflops / peakAll) : "-"
            print(String(format: "| %@ | %@ | %.2f | %.0f%% | %.2f | %@ | %@ |", name, n, t * 1e3, t / modelSeconds * 100,
                         Double(m) * 2 / 1e9, m > 0 ? String(format: "%.1f", gflops) : "-", fraction))
        }
        print("model: \(model), inference, input \(shape), threads \(runtime.threads), \(runs) runs per measurement, "
            + "\(cpuTime ? "CPU" : "wall") time; "
            + "peak \(peak > 0 ? String(format: "%.1f GFLOPS per thread", peak) : "not given")")
        if let blas = Runtime.blasSummary { print("blas: \(blas)") }
        print("")
        print("| kind | layers | ms per batch | share of model | GFLOP | GFLOPS | fraction of peak |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        var timed = 0.0
        for k in Self.kinds where counts[k] != nil {
            row(k, String(counts[k]!), seconds[k]!, macs[k]!)
            timed += seconds[k]!
        }
        row("rest", "-", max(modelSeconds - timed, 0), 0)
        row("**model**", String(leaves.count), modelSeconds, totalMACs)
        if layers {
            print("")
            print("| layer | input | ms per batch | share of model | GFLOP | GFLOPS | fraction of peak |")
            print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
            for (leaf, t) in zip(leaves, perLeaf) { row(leaf.name, "\(leaf.input)", t, leaf.macs) }
        }
    }
}
