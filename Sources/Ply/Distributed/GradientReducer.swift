import Foundation

/// Sums a model's parameter gradients over the ranks of a job, in buckets started while
/// backward is still running (as PyTorch's DistributedDataParallel does).
///
/// Buckets hold whole nodes' gradients, in backward order (last node first), each up to
/// `bucketFloats` values: a bucket's allreduce starts (non-blocking) as soon as backward has
/// passed every node in it, and each later node's hook tests the outstanding requests so
/// the engine makes progress between layers. `finish()` waits for the rest and copies the
/// sums back into the gradients. Every rank builds the same buckets from the same model.
///
/// Gradients are copied into a bucket before the allreduce and back after it: the layers own
/// their gradient buffers (plugin.h), which are not contiguous.
final class GradientReducer {
    private struct Part {
        let grad: UnsafeMutablePointer<Float>
        let count: Int
        let offset: Int
    }

    private struct Bucket {
        let buffer: UnsafeMutableBufferPointer<Float>
        let parts: [Part]
        let nodes: Int
        var waitingFor = 0
        var request: Communicator.Request?
        var started = false
    }

    /// DistributedDataParallel's default bucket is 25 MB (6.5 M floats). Ply's models are
    /// smaller: 1 M floats (4 MB) splits ResNet-18's 11.2 M gradients into 12 buckets, so the
    /// first allreduce starts after the last stage's backward, and keeps the tutorial
    /// ConvNet's 9,098 in one. Not tuned further: on this 2-core machine both cores compute,
    /// so there is no idle core for the engine to progress on (BENCHMARKS.md).
    static let defaultBucketFloats = 1 << 20

    let communicator: Communicator
    /// Start allreduces during backward (otherwise all after it, blocking).
    let overlap: Bool
    private var buckets: [Bucket] = []
    private var bucketOfNode: [Model.NodeID: Int] = [:]
    /// Seconds blocked in `finish()` waiting for the sums (communication not hidden by backward).
    private(set) var exposedSeconds = 0.0

    init(model: Model, communicator: Communicator, overlap: Bool = true,
         bucketFloats: Int = GradientReducer.defaultBucketFloats) throws {
        self.communicator = communicator
        self.overlap = overlap
        var parts: [Part] = [], nodes = 0, size = 0
        func close() {
            guard !parts.isEmpty else { return }
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: size)
            buffer.initialize(repeating: 0)
            buckets.append(Bucket(buffer: buffer, parts: parts, nodes: nodes))
            parts = []; nodes = 0; size = 0
        }
        for (node, parameters) in try model.trainableParametersByNode().reversed() {
            for p in parameters {
                guard let grad = p.grad else { continue }
                parts.append(Part(grad: grad, count: p.shape.count, offset: size))
                size += p.shape.count
            }
            nodes += 1
            bucketOfNode[node] = buckets.count
            if size >= bucketFloats { close() }
        }
        close()
    }

    deinit { for b in buckets { b.buffer.deallocate() } }

    /// Total gradient values summed per step.
    var floats: Int { buckets.reduce(0) { $0 + $1.buffer.count } }
    /// Number of buckets.
    var bucketCount: Int { buckets.count }

    /// Call before backward.
    func beginStep() {
        for i in buckets.indices {
            buckets[i].waitingFor = buckets[i].nodes
            buckets[i].started = false
            buckets[i].request = nil
        }
        nextToStart = 0
    }

    /// The model's backward hook: node `id`'s gradients are final.
    func nodeFinished(_ id: Model.NodeID) throws {
        guard overlap else { return }
        // Progress for what is in flight (the engine advances non-blocking collectives only
        // inside its calls); a completed request is freed by test.
        for i in buckets.indices {
            if let r = buckets[i].request, try communicator.test(r) { buckets[i].request = nil }
        }
        guard let b = bucketOfNode[id] else { return }
        buckets[b].waitingFor -= 1
        // Collectives must start in the same order on every rank: strictly by bucket index,
        // whatever order the nodes finished in (a rank with no images runs no backward).
        while nextToStart < buckets.count && buckets[nextToStart].waitingFor == 0 {
            try start(nextToStart)
            nextToStart += 1
        }
    }
    private var nextToStart = 0

    private func start(_ b: Int) throws {
        let bucket = buckets[b]
        for part in bucket.parts { (bucket.buffer.baseAddress! + part.offset).update(from: part.grad, count: part.count) }
        buckets[b].request = try communicator.startAllreduceSum(bucket.buffer)
        buckets[b].started = true
    }

    /// Starts what backward did not (all of it without overlap, or on a rank whose share of
    /// the batch was empty), waits for every sum and writes it into the gradients.
    func finish() throws {
        let began = DispatchTime.now().uptimeNanoseconds
        defer { exposedSeconds += Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9 }
        // Every rank starts the buckets in the same order: the order backward would have.
        for b in buckets.indices where !buckets[b].started { try start(b) }
        for b in buckets.indices {
            if let r = buckets[b].request { try communicator.wait(r) }
            buckets[b].request = nil
            let bucket = buckets[b]
            for part in bucket.parts { part.grad.update(from: bucket.buffer.baseAddress! + part.offset, count: part.count) }
        }
    }
}
