import CPly
import Foundation
import Synchronization

/// Batch lanes (`Model.prepareLanes(forBatch:lanes:)`): `infer` splits its batch into one
/// contiguous run of images per lane, and each lane carries its run through the whole model on
/// one thread, its layers computing as on a one-thread runtime (`cply_lane_set`: parallel_for
/// runs every range on the lane's thread and thread_count answers 1).
///
/// Why: at a few images per thread, splitting each layer over the threads leaves small planes
/// per thread (ResNet-50's 7x7 and 14x14 stages, Inception v3's 17x17 and 8x8 ones), a join
/// after every layer, and every layer reading the activations the other core wrote. A lane
/// keeps its images' activations in its own core's cache from the first layer to the last.
/// Measured on a 2-core Intel Xeon (family 6 model 207), one process per case, 2 threads at
/// batch 16 against two 1-thread processes at batch 8 each (images/s, summed):
/// ResNet-50 25.3 against 32.1, Inception v3 (299) 14.4 against 20.8, GoogLeNet 85.0 against
/// 96.3, ResNet-18 79 against 97; ResNet-50 at batch 4: 22.8 against 26.4.
///
/// The price: lane `i > 0` runs a replica of the model (its own layer instances, built from the
/// same types and attributes, its parameter values copied), so the weights are held once per
/// lane. A model with a weight tensor of at least `largestParameter` elements gets no lanes
/// (`automaticCount`): such a layer is bound by reading its weights, which each lane would read
/// again (AlexNet at batch 16: 200 images/s with 2 threads against 152 in lanes; VGG-16 17.1
/// against 14.2).
///
/// Lane 0 is the model itself. The lanes claim groups of images (`groupSize`) as they go; a
/// group's output is what `infer` gives that group alone, bit for bit, whichever lane runs it
/// (the replicas are exact copies, and the built-in plugins give the same bits on any thread
/// count). It differs from one call on the whole batch only where a layer's result depends on
/// how many images a call carries: with the built-in plugins in the last bits (ResNet-50 at
/// 32x32, 4 images: at most 3e-8 on outputs of about 0.4; `LaneTests`).
final class BatchLanes {
    /// The models lanes 1... run (lane 0 runs the model itself).
    let replicas: [Model]
    /// The model's output node when the replicas were made: lanes run only while it is the same.
    let output: Model.NodeID
    /// The runtime's parameter generation when the replicas' values were last copied.
    private var syncedGeneration: UInt64
    /// The whole batch's output, which each lane's is copied into.
    private var merged: UnsafeMutablePointer<Float>?
    private var mergedCapacity = 0
    /// Input shape -> output values per image, cached from `Model.shapes(for:)`.
    private var perImageOutput: (input: Shape, floats: Int)?

    /// A weight tensor this large (elements) makes `automaticCount` answer 1 (AlexNet's and
    /// VGG's first fully connected layers have 38M and 103M; ResNet-50's largest tensor has 2M,
    /// Inception v3's and GoogLeNet's 2M and 1M).
    static let largestParameter = 1 << 22

    /// Lanes `Model.prepareLanes` makes unless told: the runtime's threads when there are at
    /// least two and the batch gives every lane two images or more, and the model has no
    /// parameter of `largestParameter` elements or more; else 1 (no lanes).
    static func automaticCount(_ model: Model, batch: Int) throws -> Int {
        let threads = model.runtime.threads
        guard threads >= 2, batch >= 2 * threads else { return 1 }
        for (_, p) in try model.namedParameters() where p.shape.count >= largestParameter { return 1 }
        return threads
    }

    /// Makes `count - 1` replicas of `model` and copies its parameter values into them.
    init(_ model: Model, count: Int) throws {
        var replicas: [Model] = []
        for _ in 1..<count {
            let r = Model(runtime: model.runtime)
            for node in model.nodes.dropFirst() {
                guard let layer = node.layer else { continue }
                try r.add(node.name, Layer(type: layer.type, attributes: layer.attributes, runtime: model.runtime, node: node.name),
                          inputs: node.inputs)
            }
            r.output = model.output
            if model.fusionDone { r.fuseActivations() }
            r.isTraining = false
            replicas.append(r)
        }
        self.replicas = replicas
        output = model.output
        syncedGeneration = 0
        try copyParameters(from: model)
    }

    deinit { free(merged) }

    /// Lanes, the model's own included.
    var count: Int { replicas.count + 1 }

    /// Floats the replicas' inference buffers and the merged output hold.
    var floats: Int { replicas.reduce(mergedCapacity) { $0 + $1.inferenceFloats } }

    /// Copies every parameter and buffer value of `model` into the replicas (same names, same
    /// shapes: they were built alike), then notes the change so that what layers derive from
    /// their values (folds, packed weights) is derived again.
    private func copyParameters(from model: Model) throws {
        let source = try model.namedParameters()
        for r in replicas {
            let target = try r.namedParameters()
            guard target.count == source.count else {
                throw PlyError.invalid("batch lanes: a replica of the model has \(target.count) parameters, the model \(source.count)")
            }
            for (s, t) in zip(source, target) {
                guard s.name == t.name, s.parameter.shape == t.parameter.shape, s.parameter.isInteger == t.parameter.isInteger else {
                    throw PlyError.invalid("batch lanes: replica parameter '\(t.name)' \(t.parameter.shape) does not match "
                        + "the model's '\(s.name)' \(s.parameter.shape)")
                }
                t.parameter.value.copyMemory(from: s.parameter.value,
                                             byteCount: s.parameter.shape.count * (s.parameter.isInteger ? 8 : 4))
            }
        }
        model.runtime.state.parametersMayChange()
        syncedGeneration = model.runtime.state.paramGeneration.load(ordering: .relaxed)
    }

    /// Freezes the replicas (`Model.freezeForInference`).
    func freeze() throws {
        for r in replicas { try r.freezeForInference() }
    }

    /// Images per call a lane makes (`infer`): the largest of 4, 3 and 2 that divides the batch
    /// (every call the same shape, so no lane plans its buffers twice) and leaves two groups per
    /// lane, else 1. The lanes claim groups as they go, so a lane whose core is slower for a
    /// while takes fewer. Paired against one run of images per lane (`Benchmarks/ab-wall`, 2
    /// threads, batch 16, Intel VM, 8-16 rounds; ratios of wall time): ResNet-50 0.997, GoogLeNet
    /// 0.884 against 0.962 (both ÷ no lanes), Inception v3 0.832 against 0.900 and 0.943 against
    /// 0.801 in two runs, ResNet-18 0.967 against 0.904: within this host's noise but for GoogLeNet.
    static func groupSize(images n: Int, lanes: Int) -> Int {
        for d in [4, 3, 2] where n % d == 0 && n / d >= 2 * lanes { return d }
        return 1
    }

    /// Runs `model.inferWhole` on each lane's run of `input`'s images at once and returns the
    /// whole batch's output, or nil when this call cannot be split (fewer images than lanes, or
    /// an output that is not one row per image): the caller then runs it whole.
    func infer(_ model: Model, _ input: UnsafeBufferPointer<Float>, shape: Shape) throws -> UnsafeBufferPointer<Float>? {
        guard shape.rank >= 1, shape.dims[0] >= count, model.output == output, let base = input.baseAddress else { return nil }
        let n = shape.dims[0]
        if perImageOutput?.input != shape {
            let out = try model.shapes(for: shape)[model.output]
            guard out.rank >= 1, out.dims[0] == n else { return nil }
            perImageOutput = (shape, out.count / n)
        }
        guard let perOut = perImageOutput?.floats else { return nil }
        if !model.isFrozen && model.runtime.state.paramGeneration.load(ordering: .relaxed) != syncedGeneration {
            try copyParameters(from: model)
        }
        let total = n * perOut
        if mergedCapacity < total {
            free(merged)
            merged = nil
            mergedCapacity = 0
            guard let p = calloc(max(total, 1), MemoryLayout<Float>.stride) else {
                throw PlyError.outOfMemory("cannot allocate the batch lanes' output: \(total) float32 values; out of memory")
            }
            merged = p.bindMemory(to: Float.self, capacity: max(total, 1))
            mergedCapacity = total
        }
        guard let merged else { return nil }
        let perImage = input.count / n
        let lanes = count, group = BatchLanes.groupSize(images: n, lanes: lanes), groups = (n + group - 1) / group
        var errors = [Error?](repeating: nil, count: lanes)
        let models = [model] + replicas
        let next = Atomic<Int>(0) // the next group a lane claims
        errors.withUnsafeMutableBufferPointer { errors in
            model.runtime.state.parallelRanges(lanes, minimum: 1) { begin, end in
                cply_lane_set(1)
                defer { cply_lane_set(0) }
                for lane in begin..<end {
                    while true {
                        let g = next.add(1, ordering: .relaxed).oldValue
                        guard g < groups else { break }
                        let first = g * group, last = min(n, first + group)
                        var dims = shape.dims
                        dims[0] = last - first
                        do {
                            let run = UnsafeBufferPointer(start: base + first * perImage, count: (last - first) * perImage)
                            let out = try models[lane].inferWhole(run, shape: Shape(dims))
                            guard out.count == (last - first) * perOut, let o = out.baseAddress else {
                                throw PlyError.shape("batch lanes: images \(first)..<\(last) gave \(out.count) output values, "
                                    + "expected \(perOut) per image")
                            }
                            (merged + first * perOut).update(from: o, count: out.count)
                        } catch {
                            errors[lane] = error
                            next.store(groups, ordering: .relaxed) // the other lanes stop at their next claim
                            break
                        }
                    }
                }
            }
        }
        if let error = errors.compactMap({ $0 }).first { throw error }
        return UnsafeBufferPointer(start: merged, count: total)
    }
}
