import CPly
import Foundation

/// Data-parallel training: the parts of `Trainer` that run only with a `Communicator`.
///
/// Every rank holds the whole model and the whole data set. Each global batch of
/// `batchSize` images (the same shuffled order on every rank: same seed, same epoch) is
/// split into contiguous shares, rank r taking images `n*r/N ..< n*(r+1)/N`. A rank runs
/// forward and backward on its share with cross-entropy *summed* and its gradient scaled
/// by 1/n (n the global batch), so that the ranks' gradients add up to the gradient of the
/// global batch's mean loss; `GradientReducer` sums them (during backward when
/// `overlapCommunication`), and every rank applies the same optimizer update to the same
/// weights. The result depends on N only through float summation order.
///
/// Batch-norm running statistics are kept per rank while training (PyTorch DDP's default
/// without SyncBatchNorm); before each epoch's evaluation and checkpoint every rank takes
/// rank 0's. Rank 0 alone writes checkpoints and plots; every rank reads the checkpoint to
/// resume, so the output directory must be on a file system all ranks see.
extension Trainer {
    /// Whether this process writes the run's files (rank 0, or no communicator).
    var isRoot: Bool { (communicator?.rank ?? 0) == 0 }

    /// Every rank checks that it starts where rank 0 does (a rank that cannot see rank 0's
    /// checkpoint would otherwise train a different model without a word).
    func agreeOnStart(epoch: Int, batch: Int, path: String?) throws {
        guard let communicator, communicator.size > 1 else { return }
        var root: [Int64] = [Int64(epoch), Int64(batch)]
        try root.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0) }
        var mismatch: [Float] = [root == [Int64(epoch), Int64(batch)] ? 0 : 1]
        try communicator.allreduceSum(&mismatch)
        guard mismatch[0] == 0 else {
            let mine = root == [Int64(epoch), Int64(batch)] ? "\(Int(mismatch[0])) other rank(s) do not"
                : "rank \(communicator.rank) starts at epoch \(epoch + 1), batch \(batch)"
            throw DistributedError.ranksDisagree(
                what: "rank 0 starts at epoch \(root[0] + 1), batch \(root[1]); \(mine); every rank must read the same "
                    + "checkpoint \(path ?? "(none)"), on a file system all ranks share")
        }
    }

    /// Copies rank 0's parameters (when `parameters`) and buffers (batch-norm statistics) to
    /// every rank. Ranks that initialised from the same seed already agree; this makes it so.
    func broadcastState(parameters: Bool = true) throws {
        guard let communicator, communicator.size > 1 else { return }
        for (_, p) in try model.namedParameters() where parameters || !p.trainable {
            let bytes = p.shape.count * (p.isInteger ? 8 : 4)
            try communicator.broadcast(UnsafeMutableRawBufferPointer(start: p.value, count: bytes), root: 0)
        }
    }

    /// Sums a confusion matrix over the ranks (counts below 2^24, exact in float32).
    func sumOverRanks(_ confusion: inout [[Int]]) throws {
        guard let communicator else { return }
        var flat = confusion.flatMap { $0.map(Float.init) }
        try communicator.allreduceSum(&flat)
        let c = confusion.count
        for i in 0..<c { for j in 0..<c { confusion[i][j] = Int(flat[i * c + j]) } }
    }

    /// One data-parallel step on this rank's share (`shape`[0] images, possibly none) of a
    /// global batch of `globalCount`: forward, summed cross-entropy, backward with the
    /// gradient scaled by 1/globalCount, gradients summed over ranks, optimizer update.
    /// Returns the global batch's mean loss (the same on every rank); when it is NaN or
    /// infinite no rank updates its weights. `stop`: this rank was asked to stop; if any
    /// was, `agreedStop` is set on all after the step.
    func distributedStep(images: UnsafeBufferPointer<Float>, shape: Shape, labels: [Int32], globalCount: Int, stop: Bool,
                         targets: inout [Float], dLogits: inout [Float]) throws -> Float {
        guard let communicator, let reducer, let sumLoss else { throw PlyError.invalid("distributed step without a communicator") }
        let n = shape.dims.first ?? 0
        guard labels.count >= n else {
            throw PlyError.invalid("training step: \(labels.count) labels for a share of \(n) images")
        }
        try model.zeroGradients()
        reducer.beginStep()
        var localSum: Float = 0
        if n > 0 {
            let logits = try model.forward(images, shape: shape)
            if targets.count < n { targets = [Float](repeating: 0, count: n) }
            for i in 0..<n { targets[i] = Float(labels[i]) }
            if dLogits.count != logits.count { dLogits = [Float](repeating: 0, count: logits.count) }
            localSum = try lossForwardBackward(logits: logits, targets: targets, n: n, dLogits: &dLogits,
                                               layer: sumLoss, gradScale: 1 / Float(globalCount))
            model.backwardHook = { [unowned reducer] id in try reducer.nodeFinished(id) }
            defer { model.backwardHook = nil }
            try dLogits.withUnsafeBufferPointer { _ = try model.backward($0) }
        }
        try reducer.finish()
        var shared: [Float] = [localSum, stop ? 1 : 0]
        try communicator.allreduceSum(&shared)
        agreedStop = shared[1] > 0
        let cost = shared[0] / Float(globalCount)
        guard cost.isFinite else { return cost }
        try optimizer.step(model.namedParameters())
        return cost
    }
}
