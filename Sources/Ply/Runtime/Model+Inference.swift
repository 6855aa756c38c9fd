import CPly
import Foundation

// Inference without activations kept: `infer`, its buffer plan, and the conv2d -> batchnorm2d
// folds it runs in evaluation mode. The state it keeps is declared in Model.swift.
extension Model {

    /// Runs the model on `input` (NCHW, shape `shape`) as `forward` does, in the layers' current
    /// mode, but keeps no activation for `backward`: a value's buffer serves a later value once
    /// every node reading it has run, so memory is a few activations' worth rather than all of
    /// them (ResNet-18 at batch 128, 224×224: 3.6 GB of activations with `forward`). Returns a
    /// view of the output, valid until the next `infer`. Its buffers are its own: `forward`'s
    /// stay as they were, but `backward` refuses to run until `forward` runs again.
    ///
    /// In evaluation mode, with lanes prepared (`prepareLanes(forBatch:lanes:)`) and at least
    /// one image per lane, the batch runs split over the lanes, each on its own thread.
    public func infer(_ input: UnsafeBufferPointer<Float>, shape: Shape) throws -> UnsafeBufferPointer<Float> {
        try checkInput(input, shape)
        if !training, let lanes, let out = try lanes.infer(self, input, shape: shape) {
            inferredSinceForward = true
            return out
        }
        return try inferWhole(input, shape: shape)
    }

    /// `infer` on this model's own layers, on the runtime's threads (or, on a lane's thread,
    /// on that thread alone). `input` is checked against `shape` by the caller.
    func inferWhole(_ input: UnsafeBufferPointer<Float>, shape: Shape) throws -> UnsafeBufferPointer<Float> {
        try planInference(shape)
        inferredSinceForward = true
        if training { for f in folds.values { f.invalidate() } }
        guard let base = input.baseAddress else { return UnsafeBufferPointer(start: nil, count: 0) }
        inferPool[inferSlot[Model.input]].update(from: base, count: input.count)
        let checking = runtime.checkPlugins
        var views: [ply_tensor] = []
        for id in 1..<nodes.count where fusedFrom[id] < 0 && !(inferFolding && foldedAway.contains(id)) {
            let n = nodes[id]
            guard let layer = n.layer else { continue }
            let fold = inferFolding ? folds[id] : nil
            views.removeAll(keepingCapacity: true)
            let inputs = inferInputs(id)
            for i in inputs { views.append(ply_tensor.view(inferPool[inferSlot[owner(i)]], inferCShapes[i])) }
            var out = ply_tensor.view(inferPool[inferSlot[id]], inferCShapes[id])
            try runNode(id, layer, fold: fold, views, &out, shape: inferShapes[id], checking: checking, trace: RegionTrace.isOn,
                        layouts: (inputs.map { inferLayouts[owner($0)] }, inferLayouts[id]), count: inferCounts[id])
        }
        return UnsafeBufferPointer(start: inferPool[inferSlot[owner(output)]], count: inferShapes[output].count)
    }

    /// Runs node `id`'s `layer` — or, with `fold`, the folded conv in its place — from `views`
    /// into `out` (of `shape`): in checked mode with its guard zone stamped and verified, with
    /// `trace` the region trace's marks around it; errors name the node.
    ///
    /// `layouts`: the inputs' and the output's layouts (`infer`'s plan), nil for all NCHW; `count`:
    /// the floats the output holds in its layout (nil: `shape.count`).
    func runNode(_ id: NodeID, _ layer: Layer, fold: ConvBatchNormFold?, _ views: [ply_tensor], _ out: inout ply_tensor,
                 shape: Shape, checking: Bool, trace: Bool,
                 layouts: (inputs: [ValueLayout], output: ValueLayout)? = nil, count: Int? = nil) throws {
        let name = nodes[id].name
        let floats = count ?? shape.count
        if checking { stampGuard(out.data, floats) }
        do {
            var layer = layer
            if let fold {
                try fold.sync()
                layer = fold.layer
            }
            if trace { RegionTrace.mark(name, begin: true) }
            if let layouts {
                try views.withUnsafeBufferPointer { try layer.forward($0, layouts: layouts.inputs, &out, layout: layouts.output) }
            } else {
                try views.withUnsafeBufferPointer { try layer.forward($0, &out) }
            }
            if trace { RegionTrace.mark(name, begin: false) }
            if checking { try verifyGuard(out.data, floats, node: id, call: "forward", "its output \(shape)") }
        } catch let error as PluginOverrunError {
            throw error.at(node: name)
        } catch let error as MemoryLimitError {
            throw error
        } catch let error as PlyError {
            throw error.within(node: name, "forward of node '\(name)'")
        } catch {
            throw PlyError.invalid("forward of node '\(name)': \(error)")
        }
    }

    /// Checks `input` against `shape`, and that a frozen model is asked to run in evaluation and
    /// for a node with a value of its own (`forward` and `infer`).
    func checkInput(_ input: UnsafeBufferPointer<Float>, _ shape: Shape) throws {
        guard let count = shape.checkedCount else {
            throw PlyError.shape("input shape \(shape) has a negative dimension or too many elements")
        }
        guard input.count == count else {
            throw PlyError.shape("input has \(input.count) values; shape \(shape) needs \(count)")
        }
        try checkOutputNode()
        if isFrozen && training { throw frozenTraining() }
        try checkFrozenOutput()
    }

    /// `output` names a node of the graph (it is a plain property: checked where it is used).
    func checkOutputNode() throws {
        guard nodes.indices.contains(output) else {
            throw PlyError.invalid("the model's output is node \(output), which does not exist: its nodes are 0 (the input) to "
                + "\(nodes.count - 1)")
        }
    }

    /// The error for running a frozen model with `isTraining` set.
    func frozenTraining() -> PlyError {
        .frozen("the model is frozen for inference: it cannot run in training mode (set isTraining to false)")
    }

    /// A frozen model runs its folds for good: a conv node they fold away has no value of its own.
    func checkFrozenOutput() throws {
        if isFrozen && foldedAway.contains(output) {
            throw PlyError.frozen("the model is frozen for inference: node '\(nodes[output].name)' is folded into the "
                + "batch norm after it and has no value of its own to output")
        }
    }

    /// Floats `infer`'s buffers hold for the planned input (0 before the first call).
    public var inferenceFloats: Int { inferCapacities.reduce(0, +) + (lanes?.floats ?? 0) }

    /// The node whose buffer holds `id`'s value: a fused activation's is its source's.
    func owner(_ id: NodeID) -> NodeID { fusedFrom[id] >= 0 ? fusedFrom[id] : id }

    /// What node `id` reads in the inference plan: a folded batch norm reads its conv's inputs.
    func inferInputs(_ id: NodeID) -> [NodeID] {
        if inferFolding, let f = folds[id] { return nodes[f.conv].inputs }
        return nodes[id].inputs
    }

    /// Finds the conv2d -> batchnorm2d pairs `infer` folds in evaluation mode: the conv feeds
    /// nothing but the batch norm and is not the model's output (its own value is then never
    /// made). Once per graph.
    /// A frozen model's folds are final (`checkFrozenOutput` refuses a folded-away output).
    func planFolds() {
        guard !isFrozen, foldsPlannedFor != (nodes.count, output) else { return }
        folds = [:]
        foldedAway = []
        var uses = Array(repeating: 0, count: nodes.count)
        for n in nodes { for i in n.inputs { uses[i] += 1 } }
        var reluAfter = Set<NodeID>() // layers that took the relu after them
        for source in fusedFrom where source >= 0 { reluAfter.insert(source) }
        for (b, node) in nodes.enumerated() {
            guard let bn = node.layer, bn.type.name == "batchnorm2d", node.inputs.count == 1 else { continue }
            let a = node.inputs[0]
            guard a != Model.input, a != output, uses[a] == 1, fusedFrom[a] < 0, !reluAfter.contains(a),
                  let conv = nodes[a].layer, conv.type.name == "conv2d",
                  let fold = ConvBatchNormFold(conv: a, conv, batchNorm: b, bn, relu: reluAfter.contains(b)) else { continue }
            folds[b] = fold
            foldedAway.insert(a)
        }
        foldsPlannedFor = (nodes.count, output)
    }

    /// Assigns every value a buffer of the pool, reusing a buffer once the last node reading its
    /// value has run (nodes run in the order they were added), then allocates the pool.
    func planInference(_ inputShape: Shape) throws {
        if inferInput == inputShape && inferFolding == !training && inferGraph == (nodes.count, output) { return }
        let newShapes = try shapes(for: inputShape)
        releaseInference()
        if !training { planFolds() }
        inferFolding = !training
        let skipped = inferFolding ? foldedAway : []
        let layouts = try planLayouts(newShapes, skipped: skipped)
        var counts: [Int] = []
        for (id, shape) in newShapes.enumerated() {
            guard let c = layouts[id].floats(shape) else {
                throw PlyError.shape("node '\(nodes[id].name)': a blocked value of shape \(shape) has too many elements")
            }
            counts.append(c)
        }
        // the last node reading each buffer's value; the output's is read after the run
        var lastUse = Array(repeating: 0, count: nodes.count)
        for id in nodes.indices where !skipped.contains(id) {
            for i in inferInputs(id) { lastUse[owner(i)] = max(lastUse[owner(i)], id) }
        }
        lastUse[owner(output)] = Int.max
        var slot = Array(repeating: -1, count: nodes.count)
        var capacity: [Int] = [], idle: [Int] = [], live: [NodeID] = []
        func take(_ id: NodeID) {
            let need = max(counts[id], 1)
            // the smallest free buffer that fits, else the largest free one, grown
            let fits = idle.filter { capacity[$0] >= need }.min { capacity[$0] < capacity[$1] }
            let pick = fits ?? idle.max { capacity[$0] < capacity[$1] }
            if let s = pick {
                idle.removeAll { $0 == s }
                capacity[s] = max(capacity[s], need)
                slot[id] = s
            } else {
                capacity.append(need)
                slot[id] = capacity.count - 1
            }
            live.append(id)
        }
        take(Model.input)
        for id in 1..<nodes.count where fusedFrom[id] < 0 && nodes[id].layer != nil && !skipped.contains(id) {
            take(id) // before releasing: a node's output never shares a buffer with its inputs
            for v in live where v != id && lastUse[v] <= id { idle.append(slot[v]) }
            live.removeAll { $0 != id && lastUse[$0] <= id }
        }
        var pool: [UnsafeMutablePointer<Float>] = []
        do {
            for (k, c) in capacity.enumerated() {
                pool.append(try allocateZeroed(c, for: "inference buffer \(k) (\(c) values) for input \(inputShape)"))
            }
        } catch {
            for p in pool { free(p) }
            throw error
        }
        inferPool = pool
        inferCapacities = capacity
        inferSlot = slot
        inferShapes = newShapes
        inferCShapes = try newShapes.map { try $0.cShape() }
        inferLayouts = layouts
        inferCounts = counts
        inferGraph = (nodes.count, output)
        inferInput = inputShape
    }

    func releaseInference() {
        for p in inferPool { free(p) }
        inferPool = []; inferCapacities = []; inferSlot = []; inferInput = nil; inferLayouts = []; inferCounts = []
    }
}
