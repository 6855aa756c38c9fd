import Foundation

/// Training steps in micro-batches: a batch's images go through forward, loss and backward a
/// slice at a time, the parameter gradients accumulating over the slices, then one optimizer
/// update. For models whose layers all treat the images of a batch independently (no batch
/// statistics, no random masks), the update is the full batch's: each image's loss gradient is
/// scaled by slice / batch, exactly so when both are powers of two, and only the order in which
/// the per-image weight gradients are summed differs (float rounding).
///
/// Why: layer after layer over a whole batch, a small model's activations do not stay in the
/// core's cache (the tutorial ConvNet at batch 128: 3.2 MB out of its first conv alone, 2 MB of
/// L2 here), and every layer reads and writes them through memory. A slice whose activations fit
/// keeps them in L2 from one layer to the next.
extension Trainer {
    /// Layer types whose forward and backward treat each image of a batch on its own: a step in
    /// slices computes what one over the whole batch does. Batch norm (batch statistics), dropout
    /// (one random mask per call) and layers of unknown type are not among them.
    static let perImageLayerTypes: Set<String> = [
        "conv2d", "relu", "tanh", "sigmoid", "maxpool2d", "avgpool2d", "flatten", "linear",
    ]

    /// Bytes of activations per thread a slice may hold. Measured on the ConvNet (`ply bench-model
    /// convnet --training --threads 1`, CPU time per 128 images, loaded machine, two alternating
    /// rounds): batch 8 3.84-4.30 ms, 16 3.90-4.06, 32 4.10-4.62, 128 5.26-5.46. Its activations
    /// are 88 KB per image (every node's output counted, fused relus too), so 1.5 MB makes
    /// slices of 16 at one thread.
    static let sliceBytesPerThread = 1_536 * 1024

    /// The slice size for a local step on `shape`, or nil to run the batch whole: the model is all
    /// per-image layers, and a divisor of the batch (so every slice has one shape, and the model
    /// plans its buffers once) smaller than the batch fits the budget.
    func microBatchSize(for shape: Shape) throws -> Int? {
        // (keyed by the node count too: a node added since may be a batch norm)
        if let plan = microBatchPlan, plan.shape == shape, plan.nodes == model.nodes.count { return plan.size }
        let size = try chooseMicroBatch(for: shape)
        microBatchPlan = (shape, model.nodes.count, size)
        return size
    }

    private func chooseMicroBatch(for shape: Shape) throws -> Int? {
        guard communicator == nil, shape.rank >= 1, let n = shape.dims.first, n >= 2 else { return nil }
        for node in model.nodes.dropFirst() {
            guard let layer = node.layer, Trainer.perImageLayerTypes.contains(layer.type.name) else { return nil }
        }
        var one = shape
        one.dims[0] = 1
        let perImage = try model.shapes(for: one).dropFirst().reduce(0) { $0 + $1.count } * MemoryLayout<Float>.size
        guard perImage > 0 else { return nil }
        let fit = Trainer.sliceBytesPerThread * max(model.runtime.threads, 1) / perImage
        guard fit >= 1, fit < n else { return nil }
        let size = stride(from: fit, through: 1, by: -1).first { n % $0 == 0 } ?? 1
        // slices much smaller than the budget allows cost a call per layer each for nothing
        return size * 2 > fit ? size : nil
    }

    /// `step` in slices of `size` images (see `microBatchSize`).
    func microBatchStep(images: UnsafeBufferPointer<Float>, shape: Shape, labels: [Int32], size: Int,
                        targets: inout [Float], dLogits: inout [Float]) throws -> Float {
        let n = shape.dims[0], perImage = shape.count / n
        var slice = shape
        slice.dims[0] = size
        if targets.count < size { targets = [Float](repeating: 0, count: size) }
        try model.zeroGradients()
        var total = 0.0
        for first in stride(from: 0, to: n, by: size) {
            let logits = try model.forward(UnsafeBufferPointer(rebasing: images[first * perImage ..< (first + size) * perImage]),
                                           shape: slice)
            for i in 0..<size { targets[i] = Float(labels[first + i]) }
            if dLogits.count != logits.count { dLogits = [Float](repeating: 0, count: logits.count) }
            // the mean over the slice, its gradient scaled by size / n: the whole batch's mean
            let cost = try lossForwardBackward(logits: logits, targets: targets, n: size, dLogits: &dLogits,
                                               gradScale: Float(size) / Float(n))
            // the weights stay as they were (the next step zeroes the gradients)
            guard cost.isFinite else { return cost }
            total += Double(cost) * Double(size)
            try dLogits.withUnsafeBufferPointer { _ = try model.backward($0) }
        }
        try optimizer.step(model.namedParameters())
        return Float(total / Double(n))
    }
}
