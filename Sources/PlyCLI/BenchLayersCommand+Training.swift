import Foundation
import Ply

/// `ply bench-layers --training`: where a training step's time goes.
extension BenchLayersCommand {
    /// Medians of one leaf's passes, in seconds (`input` is nil when the step does not compute
    /// the leaf's input gradient).
    struct TrainingTimes {
        var forward = 0.0, weights = 0.0
        var input: Double?
        var total: Double { forward + weights + (input ?? 0) }
    }

    /// Times a training step, the model's forward, backward and optimizer apart, then every leaf
    /// (conv, linear, pool, batch norm, relu) on its own in training mode.
    func measureTraining(_ net: Model, runtime: Runtime) throws {
        let shape = Shape([batch, channels, imageSize, imageSize])
        let activations = try net.activationBytes(for: shape)
        try MemoryBudget.require("--batch \(batch): \(model) on \(shape) (training)",
                                 bytes: activations.flatMap { $0.multipliedReportingOverflow(by: 2).overflow ? nil : $0 * 2 })
        var g = SplitMix64(seed: 7)
        let images = (0..<shape.count).map { _ in g.nextUnitFloat() }
        let labels = (0..<batch).map { Int32($0 % classes) }
        var config = TrainingConfiguration()
        config.batchSize = batch
        config.learningRate = 0.01
        config.optimizer = .sgd(momentum: 0.9)
        config.initialization = .pytorchDefault
        let trainer = try Trainer(model: net, configuration: config, classes: classes)
        net.isTraining = true

        // The whole step (as bench-model --training), then its parts apart.
        let stepSeconds = try median {
            _ = try images.withUnsafeBufferPointer { try trainer.step(images: $0, shape: shape, labels: labels) }
        }
        let outputCount = try net.shapes(for: shape).last?.count ?? 0
        let gradient = [Float](repeating: 1 / Float(max(batch, 1)), count: outputCount)
        var forwards: [Double] = [], backwards: [Double] = [], updates: [Double] = []
        for _ in 0..<runs {
            forwards.append(try seconds { _ = try images.withUnsafeBufferPointer { try net.forward($0, shape: shape) } })
            backwards.append(try seconds { _ = try gradient.withUnsafeBufferPointer { try net.backward($0) } })
            updates.append(try seconds {
                try net.zeroGradients()
                try trainer.optimizer.step(net.namedParameters())
            })
        }
        let forwardSeconds = Self.median(forwards), backwardSeconds = Self.median(backwards)
        let optimizerSeconds = Self.median(updates)

        let (leaves, totalMACs) = try Self.leaves(of: net, for: shape, training: true)
        var times: [TrainingTimes] = []
        for leaf in leaves { times.append(try timeTraining(leaf, runtime: runtime, generator: &g)) }

        let peakAll = peak * Double(runtime.threads)
        func ms(_ t: Double?) -> String { t.map { String(format: "%.2f", $0 * 1e3) } ?? "-" }
        // flop: 2 per multiply-accumulate of each pass timed (forward, parameter and input gradients)
        func row(_ name: String, _ n: String, _ t: TrainingTimes, flop: Double, total: Double? = nil) {
            let seconds = total ?? t.total
            let gflops = seconds > 0 ? flop / seconds / 1e9 : 0
            let fraction = peakAll > 0 && flop > 0 ? String(format: "%.2f", gflops / peakAll) : "-"
            print(String(format: "| %@ | %@ | %@ | %@ | %@ | %.2f | %.0f%% | %.2f | %@ | %@ |", name, n, ms(t.forward),
                         ms(t.weights), ms(t.input), seconds * 1e3, seconds / stepSeconds * 100, flop / 1e9,
                         flop > 0 ? String(format: "%.1f", gflops) : "-", fraction))
        }
        func flop(_ leaf: Leaf, _ t: TrainingTimes) -> Double { 2 * Double(leaf.macs) * (t.input == nil ? 2 : 3) }
        print("model: \(model), training step, input \(shape), threads \(runtime.threads), \(runs) runs per measurement, "
            + "\(cpuTime ? "CPU" : "wall") time; "
            + "peak \(peak > 0 ? String(format: "%.1f GFLOPS per thread", peak) : "not given")")
        if let blas = Runtime.blasSummary { print("blas: \(blas)") }
        print("")
        let header = "| forward ms | backward, parameter gradients ms | backward, input gradient ms | ms per step "
            + "| share of step | GFLOP | GFLOPS | fraction of peak |"
        print("| kind | layers " + header)
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        var kinds: [String: (count: Int, times: TrainingTimes, flop: Double)] = [:]
        var timedForward = 0.0, timedBackward = 0.0, stepFlop = 0.0
        for (leaf, t) in zip(leaves, times) {
            var k = kinds[leaf.kind] ?? (0, TrainingTimes(input: 0), 0)
            k.count += 1
            k.times.forward += t.forward
            k.times.weights += t.weights
            k.times.input = (k.times.input ?? 0) + (t.input ?? 0)
            k.flop += flop(leaf, t)
            kinds[leaf.kind] = k
            timedForward += t.forward
            timedBackward += t.weights + (t.input ?? 0)
        }
        for kind in Self.kinds + ["batch norm", "relu"] {
            guard let k = kinds[kind] else { continue }
            row(kind, String(k.count), k.times, flop: k.flop)
        }
        row("rest of forward", "-", TrainingTimes(forward: max(forwardSeconds - timedForward, 0)), flop: 0)
        row("rest of backward", "-", TrainingTimes(weights: max(backwardSeconds - timedBackward, 0)), flop: 0)
        row("optimizer", "-", TrainingTimes(weights: optimizerSeconds), flop: 0)
        // the step: every layer's MACs three times, but the first layer's input gradient
        for (leaf, t) in zip(leaves, times) where t.input == nil { stepFlop -= 2 * Double(leaf.macs) }
        stepFlop += 6 * Double(totalMACs)
        row("**step**", String(leaves.count), TrainingTimes(forward: forwardSeconds, weights: backwardSeconds),
            flop: stepFlop, total: stepSeconds)
        if layers {
            print("")
            print("| layer | input " + header)
            print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            for (leaf, t) in zip(leaves, times) { row(leaf.name, "\(leaf.input)", t, flop: flop(leaf, t)) }
        }
    }

    /// One leaf in a one-node model in training mode: medians of its forward, its backward without
    /// the input gradient and (when the step computes it) the extra time of the input gradient.
    func timeTraining(_ leaf: Leaf, runtime: Runtime, generator g: inout SplitMix64) throws -> TrainingTimes {
        let one = Model(runtime: runtime)
        try one.add("layer", leaf.typeName, leaf.attributes)
        one.isTraining = true
        let x = (0..<leaf.input.count).map { _ in g.nextUnitFloat() }
        let outputCount = try one.shapes(for: leaf.input).last?.count ?? 0
        let dy = (0..<outputCount).map { _ in g.nextUnitFloat() - 0.5 }
        var forwards: [Double] = [], weights: [Double] = [], full: [Double] = []
        for run in 0...runs { // run 0 warms up
            let f = try seconds { _ = try x.withUnsafeBufferPointer { try one.forward($0, shape: leaf.input) } }
            let w = try seconds { _ = try dy.withUnsafeBufferPointer { try one.backward($0) } }
            var d = 0.0
            if leaf.inputGradient {
                _ = try x.withUnsafeBufferPointer { try one.forward($0, shape: leaf.input) }
                d = try seconds { _ = try dy.withUnsafeBufferPointer { try one.backward($0, inputGradient: true) } }
            }
            if run == 0 { continue }
            forwards.append(f)
            weights.append(w)
            full.append(d)
        }
        var t = TrainingTimes(forward: Self.median(forwards), weights: Self.median(weights))
        if leaf.inputGradient { t.input = max(Self.median(full) - t.weights, 0) }
        return t
    }
}
