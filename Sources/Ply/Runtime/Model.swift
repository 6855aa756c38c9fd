import CPly
import Foundation

/// A model: a directed acyclic graph of plugin layers with one input and one output.
/// Sequences are chains; `add` and `concat` layers with several inputs make the joins of
/// residual and inception topologies. The model owns every activation and gradient buffer
/// and reuses them from batch to batch (they are re-planned only when the input shape
/// changes); `infer` runs without keeping activations, on buffers shared by lifetime. In
/// evaluation mode a `conv2d` node that feeds only a `batchnorm2d` node runs folded into it
/// (`ConvBatchNormFold`), in `forward` and `infer` alike.
/// Not thread-safe: one model is used from one thread at a time.
public final class Model: @unchecked Sendable {
    /// Identifies a node of the graph. `Model.input` is the graph input.
    public typealias NodeID = Int

    /// A node: the graph input (no layer) or a named layer applied to earlier nodes.
    public struct Node {
        /// The node name: PyTorch's module path (`layer1.0.conv1`), or `input` for the graph input.
        public let name: String
        /// The layer applied; nil for the graph input.
        public let layer: Layer?
        /// The nodes whose values feed the layer, in order.
        public let inputs: [NodeID]
    }

    /// The id of the graph input.
    public static let input: NodeID = 0

    /// The runtime whose plugins the layers come from (kept alive by the model).
    public let runtime: Runtime
    /// Every node in the order added; `nodes[0]` is the graph input.
    public private(set) var nodes: [Node] = [Node(name: "input", layer: nil, inputs: [])]
    /// The node whose value `forward` returns (default: the last node added). Any node of the
    /// graph, the input (0) included; an id past the last node makes `forward`, `infer`,
    /// `backward` and `shapes(for:)` throw ``PlyError/invalid(_:)``.
    public var output: NodeID

    // Planned buffers, one per node (node 0's is a copy of the input).
    private var plannedInput: Shape?
    private var shapes: [Shape] = []
    private var cShapes: [ply_shape] = []
    private var values: [UnsafeMutablePointer<Float>?] = []
    private var grads: [UnsafeMutablePointer<Float>?] = []
    private var consumers: [Int] = []
    var training = true
    /// fusedFrom[b] = a when node b's activation is done by node a's layer (fuseActivations), else -1.
    var fusedFrom: [Int] = [-1]
    private(set) var fusionDone = false
    // The inference plan (`infer`): values share buffers once nothing reads them any more.
    var inferInput: Shape?
    var inferShapes: [Shape] = []
    var inferCShapes: [ply_shape] = []
    var inferPool: [UnsafeMutablePointer<Float>] = []
    var inferSlot: [Int] = []
    /// Each value's layout in the inference plan (NCHW16c only in evaluation: `planLayouts`) and
    /// the floats it holds in it.
    var inferLayouts: [ValueLayout] = []
    var inferCounts: [Int] = []
    /// The graph the inference plan was made for: its node count and output. Nodes added, or
    /// another output chosen, since then (the plan lets a value's buffer go once its last reader
    /// ran, so an earlier node made the output must be planned again).
    var inferGraph = (nodes: -1, output: -1)
    /// Set by `infer`, cleared by `forward`: the layers' saved state (argmax, masks) is not the
    /// forward's any more, so `backward` refuses to run.
    var inferredSinceForward = false
    /// `infer` in evaluation mode: conv2d -> batchnorm2d pairs as one folded conv, keyed by the
    /// batch-norm node (see `ConvBatchNormFold`); made for the graph `foldsPlannedFor` says (its
    /// node count and output: a conv made the output is not folded away).
    var folds: [NodeID: ConvBatchNormFold] = [:]
    /// The conv nodes whose work a fold does (not run, no buffer, in a folded plan).
    var foldedAway: Set<NodeID> = []
    var foldsPlannedFor = (nodes: -1, output: -1)
    /// The inference plan runs the folds (it was made in evaluation mode).
    var inferFolding = false
    /// The last `forward` ran the folds (evaluation mode): the folded convs' own values are unmade.
    private var foldedForward = false
    /// `infer`'s batch lanes (`prepareLanes(forBatch:lanes:)`); nil: none.
    var lanes: BatchLanes?
    /// Buffer sizes of the inference plan (`inferenceFloats`).
    var inferCapacities: [Int] = []
    /// Set by `freezeForInference()`.
    public private(set) var isFrozen = false

    /// An empty model (only the graph input) whose layers come from `runtime`.
    public init(runtime: Runtime) {
        self.runtime = runtime
        self.output = Model.input
    }

    deinit {
        releaseBuffers()
        releaseInference()
    }

    /// Adds `layer` under `name`, fed by `inputs` (default: the last node), and returns its id.
    @discardableResult
    public func add(_ name: String, _ layer: Layer, inputs: [NodeID]? = nil) throws -> NodeID {
        let from = inputs ?? [nodes.count - 1]
        guard !isFrozen else { throw PlyError.frozen("cannot add node '\(name)': the model is frozen for inference") }
        guard !fusionDone else {
            throw PlyError.invalid("cannot add node '\(name)': the model's activations were fused (fuseActivations), "
                + "which needs the graph complete")
        }
        guard nodeIndex[name] == nil else {
            throw PlyError.invalid("model already has a node named '\(name)'")
        }
        for i in from where i < 0 || i >= nodes.count {
            throw PlyError.invalid("node '\(name)' takes input \(i), which does not exist yet (nodes are added in order)")
        }
        try layer.checkArity(from.count)
        nodes.append(Node(name: name, layer: layer, inputs: from))
        lanes = nil // their replicas have the old graph
        nodeIndex[name] = nodes.count - 1
        fusedFrom.append(-1)
        output = nodes.count - 1
        plannedInput = nil
        parameterCache = nil
        layer.setTraining(training)
        return nodes.count - 1
    }

    /// Creates a layer of `type` and adds it (see `add(_:_:inputs:)`).
    @discardableResult
    public func add(_ name: String, _ type: String, _ attributes: Attributes = [], inputs: [NodeID]? = nil) throws -> NodeID {
        try add(name, Layer(type, attributes, runtime: runtime, node: name), inputs: inputs)
    }

    /// Lets layers take over the relu after them (`fuse_activation` in plugin.h): a relu node
    /// whose input feeds nothing else, and whose input's layer agrees, is then skipped, its
    /// value being that layer's output (so the output is written once, not twice, and read
    /// once less in backward). Call it once the graph is complete: afterwards no node can be
    /// added, and the fused layer's own value is the activated one (do not make it the
    /// model's `output`). Returns how many activations were fused.
    @discardableResult
    public func fuseActivations() -> Int {
        if !fusionDone && !isFrozen { // frozen: the folds are final and the layers take no more fusing
            fusionDone = true
            lanes = nil // their replicas were not fused
            var uses = Array(repeating: 0, count: nodes.count)
            for n in nodes { for i in n.inputs { uses[i] += 1 } }
            for (b, node) in nodes.enumerated() {
                guard let layer = node.layer, layer.type.name == "relu", node.inputs.count == 1 else { continue }
                let a = node.inputs[0]
                guard a != Model.input, a != output, uses[a] == 1, fusedFrom[a] < 0,
                      let source = nodes[a].layer, source.fuseActivation("relu") else { continue }
                fusedFrom[b] = a
            }
            plannedInput = nil
            inferInput = nil
            foldsPlannedFor = (-1, -1)
        }
        return fusedFrom.filter { $0 >= 0 }.count
    }

    /// The id of the node called `name`.
    public func node(named name: String) -> NodeID? { nodeIndex[name] }
    /// Node ids by name, so that adding a node is O(1) rather than a scan of every node
    /// (a model file's `repeat` of 30,000 layers took 4 s, quadratic in the node count).
    private var nodeIndex: [String: NodeID] = ["input": Model.input]

    /// Training (batch statistics, dropout on) or evaluation mode, for every layer. A frozen
    /// model's layers stay in evaluation: with `isTraining` set, its `forward` and `infer` throw
    /// ``PlyError/frozen(_:)``.
    public var isTraining: Bool {
        get { training }
        set {
            training = newValue
            for n in nodes { n.layer?.setTraining(newValue) }
        }
    }

    /// Freezes the model for inference: a promise that from now on it only runs `infer` and
    /// `forward` in evaluation mode, which lets its layers free what evaluation does not read
    /// (`Layer.freeze()`, plugin.h's `freeze`): above all the unfolded weights of every batch
    /// norm folded into a conv, one copy of the convs' weights (ResNet-50: 94 MB). Outputs stay
    /// the same, bit for bit. Irreversible, and the whole model at once: afterwards
    /// `namedParameters()` (so saving, loading and exporting weights), training (a `Trainer`,
    /// `forward` or `infer` with `isTraining` set), `backward` and `add` throw
    /// ``PlyError/frozen(_:)``, and ``Parameter`` views taken earlier refuse access. Call it once
    /// the weights are loaded and the activations fused. Folds of the model's own conv2d ->
    /// batchnorm2d nodes are derived here, so an error deriving them is thrown before anything
    /// is frozen; their conv nodes then hold the folded conv (same geometry) and the original
    /// conv layers are let go. Returns how many layers released memory.
    @discardableResult
    public func freezeForInference() throws -> Int {
        guard !isFrozen else { return 0 }
        isTraining = false
        planFolds()
        for f in folds.values { try f.sync() } // all-or-nothing: the last moment the sources are readable
        if let lanes { // the replicas first, so that a failure leaves the model as it was (it drops its lanes)
            do { try lanes.freeze() } catch { self.lanes = nil }
        }
        isFrozen = true
        parameterCache = nil // its views would outlive the memory behind them
        var released = 0
        for f in folds.values where try f.freeze() != nil {
            // The folded-away conv node only gives shapes now, which the folded conv (its geometry) gives as
            // well: the original layer, and with it the unfolded weights, goes (ONNX imports fold every conv here).
            let n = nodes[f.conv]
            nodes[f.conv] = Node(name: n.name, layer: f.layer, inputs: n.inputs)
            released += 1
        }
        for n in nodes { if n.layer?.freeze() == true { released += 1 } }
        return released
    }

    /// Prepares `infer` to split batches of about `batch` images into lanes: runs of images each
    /// carried through the whole model by one thread, its layers running as on one thread
    /// (faster than splitting every layer over the threads at a few images per thread:
    /// ResNet-50 at batch 16 on 2 threads ran 1.27x as many images per second). Lane 0 runs
    /// this model; every other lane a replica of it built from the same layer types and
    /// attributes, with the parameter values copied (again whenever they change), so the
    /// weights are held once per lane.
    ///
    /// `lanes`: nil chooses (the runtime's threads when every lane gets at least two images
    /// and no weight tensor has 4M elements or more, whose layers are bound by reading their
    /// weights; else 1); 1 removes the lanes; at most the runtime's threads. The lanes claim
    /// groups of up to 4 images; each group's output is, bit for bit, what `infer` without lanes
    /// gives that group alone (with the built-in plugins, within the last bits of one call on
    /// the whole batch). Call it before
    /// `freezeForInference()`, which freezes the replicas too; adding a node or fusing
    /// activations afterwards removes the lanes. Lanes run only in evaluation mode, and only
    /// while `output` is the node it was. Returns the number of lanes (1: none).
    @discardableResult
    public func prepareLanes(forBatch batch: Int, lanes requested: Int? = nil) throws -> Int {
        guard !isFrozen else {
            throw PlyError.frozen("cannot prepare batch lanes: the model is frozen for inference (prepare them before freezing)")
        }
        guard batch >= 1 else { throw PlyError.invalid("batch lanes: batch must be at least 1, got \(batch)") }
        if let requested, !(1...runtime.threads).contains(requested) {
            throw PlyError.invalid("batch lanes: lanes must be 1...\(runtime.threads) (the runtime's threads), got \(requested)")
        }
        let count = try requested ?? BatchLanes.automaticCount(self, batch: batch)
        if count == lanes?.count { return count }
        lanes = nil
        if count > 1 { lanes = try BatchLanes(self, count: count) }
        return count
    }

    /// The lanes `infer` splits a batch into (1: none); see `prepareLanes(forBatch:lanes:)`.
    public var laneCount: Int { lanes?.count ?? 1 }

    /// Every parameter and buffer, named `node.param` (PyTorch's state_dict names), in order.
    /// Built once and cached: the views stay valid for the layers' lifetime (the ABI's rule),
    /// so the training loop asks for them every step without rebuilding names and views.
    public func namedParameters() throws -> [(name: String, parameter: Parameter)] {
        guard !isFrozen else { throw PlyError.frozen("the model is frozen for inference: its parameters may be freed") }
        if let parameterCache { return parameterCache }
        var result: [(String, Parameter)] = []
        for n in nodes {
            guard let layer = n.layer else { continue }
            for p in try layer.parameters { result.append(("\(n.name).\(p.name)", p)) }
        }
        parameterCache = result
        return result
    }
    private var parameterCache: [(name: String, parameter: Parameter)]?

    /// Called by `backward` after node `id`'s layer has run its backward: that node's
    /// parameter gradients are final for this step (a parameter belongs to one node). The
    /// data-parallel trainer starts its gradient allreduces here, while backward goes on.
    var backwardHook: ((_ id: NodeID) throws -> Void)?

    /// The node ids that own trainable parameters, with those parameters, in node order.
    func trainableParametersByNode() throws -> [(node: NodeID, parameters: [Parameter])] {
        var result: [(NodeID, [Parameter])] = []
        for (id, n) in nodes.enumerated() {
            guard let layer = n.layer else { continue }
            let trainable = try layer.parameters.filter { $0.trainable && $0.grad != nil }
            if !trainable.isEmpty { result.append((id, trainable)) }
        }
        return result
    }

    /// Sets every trainable parameter's gradient to zero.
    public func zeroGradients() throws {
        let grads = try namedParameters().compactMap { item in item.parameter.grad.map { ($0, item.parameter.shape.count) } }
        let total = grads.reduce(0) { $0 + $1.1 }
        runtime.state.parallelRanges(total) { begin, end in // laid end to end, split over the threads
            var offset = 0
            for (g, n) in grads {
                let lo = max(begin - offset, 0), hi = min(end - offset, n)
                if lo < hi { (g + lo).update(repeating: 0, count: hi - lo) }
                offset += n
                if offset >= end { break }
            }
        }
    }

    /// The shape of every node for an input of `inputShape`; errors name the node.
    public func shapes(for inputShape: Shape) throws -> [Shape] {
        try checkOutputNode()
        var result = [inputShape]
        for n in nodes.dropFirst() {
            guard let layer = n.layer else { continue }
            do {
                result.append(try layer.outputShape(for: n.inputs.map { result[$0] }))
            } catch let error as PlyError {
                throw error.within(node: n.name, "node '\(n.name)' (\(layer.type.name))")
            }
        }
        return result
    }

    private func releaseBuffers() {
        // A fused activation's value is its source's buffer, and the source's gradient is the
        // activation's: each is freed once, through its owner.
        for (id, p) in values.enumerated() where fusedFrom[id] < 0 { free(p) }
        let aliasedGrads = Set(fusedFrom.filter { $0 >= 0 })
        for (id, p) in grads.enumerated() where !aliasedGrads.contains(id) { free(p) }
        for (_, s) in scratchSlots { free(s) }
        values = []; grads = []; scratchSlots = [:]; scratchCapacity = 0
    }

    /// `count` zeroed floats, or an error naming `what` when the system refuses the memory.
    /// (`UnsafeMutablePointer.allocate` would trap instead; calloc also checks the byte count
    /// for overflow and leaves large fresh pages untouched until they are used.) Freed with free().
    /// Every buffer has room for a guard zone after its `count` values (`GuardZone`, written
    /// and checked around plugin calls in checked mode, `Runtime.checkPlugins`).
    func allocateZeroed(_ count: Int, for what: @autoclosure () -> String) throws -> UnsafeMutablePointer<Float> {
        let room = count.addingReportingOverflow(GuardZone.floats)
        guard !room.overflow, let raw = calloc(max(room.partialValue, 1), MemoryLayout<Float>.stride) else {
            let bytes = count.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
            throw PlyError.outOfMemory("cannot allocate \(what()): \(bytes.overflow ? "more than \(Int.max)" : String(bytes.partialValue)) "
                + "bytes (\(count) float32 values); out of memory")
        }
        return raw.bindMemory(to: Float.self, capacity: max(room.partialValue, 1))
    }

    /// Writes the guard zone after `count` values of `buffer` (checked mode).
    func stampGuard(_ buffer: UnsafeMutableRawPointer?, _ count: Int) {
        if let buffer { GuardZone.stamp(buffer + count * MemoryLayout<Float>.stride) }
    }

    /// Throws when the guard zone after `count` values of `buffer` is not as stamped.
    func verifyGuard(_ buffer: UnsafeMutableRawPointer?, _ count: Int, node id: NodeID, call: String,
                             _ what: @autoclosure () -> String) throws {
        guard let buffer, !GuardZone.intact(buffer + count * MemoryLayout<Float>.stride) else { return }
        GuardZone.stamp(buffer + count * MemoryLayout<Float>.stride)
        throw PluginOverrunError(node: nodes[id].name, layerType: nodes[id].layer?.type.name ?? "input", call: call, buffer: what())
    }

    /// Allocates buffers for `inputShape` unless they already fit. On failure nothing stays
    /// planned or allocated, and the next call plans again.
    private func plan(_ inputShape: Shape) throws {
        if plannedInput == inputShape { return }
        let newShapes = try shapes(for: inputShape)
        releaseBuffers()
        plannedInput = nil
        shapes = newShapes
        cShapes = try shapes.map { try $0.cShape() }
        values.reserveCapacity(shapes.count)
        for (id, s) in shapes.enumerated() {
            if fusedFrom[id] >= 0 {
                values.append(values[fusedFrom[id]])
                continue
            }
            do {
                values.append(try allocateZeroed(s.count, for: "the \(id == Model.input ? "input" : "output of node '\(nodes[id].name)'") \(s)"))
            } catch {
                releaseBuffers()
                throw error
            }
        }
        grads = Array(repeating: nil, count: shapes.count)
        consumers = Array(repeating: 0, count: nodes.count)
        for n in nodes { for i in n.inputs { consumers[i] += 1 } }
        plannedInput = inputShape
    }

    /// Runs the model on `input` (NCHW, shape `shape`) and returns a view of the output,
    /// valid until the next call on this model.
    public func forward(_ input: UnsafeBufferPointer<Float>, shape: Shape) throws -> UnsafeBufferPointer<Float> {
        try checkInput(input, shape)
        try plan(shape)
        inferredSinceForward = false
        if training { for f in folds.values { f.invalidate() } } // running statistics move
        else { planFolds() }
        foldedForward = !training
        let folding = foldedForward
        guard let first = values[0], let base = input.baseAddress else { return UnsafeBufferPointer(start: nil, count: 0) }
        first.update(from: base, count: input.count)
        let checking = runtime.checkPlugins
        var views: [ply_tensor] = []
        for id in 1..<nodes.count where fusedFrom[id] < 0 && !(folding && foldedAway.contains(id)) {
            let n = nodes[id]
            guard let layer = n.layer else { continue }
            let fold = folding ? folds[id] : nil
            views.removeAll(keepingCapacity: true)
            for i in fold.map({ nodes[$0.conv].inputs }) ?? n.inputs { views.append(ply_tensor.view(values[i], cShapes[i])) }
            var out = ply_tensor.view(values[id], cShapes[id])
            try runNode(id, layer, fold: fold, views, &out, shape: shapes[id], checking: checking, trace: false)
        }
        return UnsafeBufferPointer(start: values[output], count: shapes[output].count)
    }

    /// Runs the model on an owned tensor and returns the output.
    public func forward(_ input: Tensor) throws -> Tensor {
        let out = try input.data.withUnsafeBufferPointer { try forward($0, shape: input.shape) }
        return try Tensor(shape: shapes[output], data: Array(out))
    }

    /// The shape of the output planned by the last `forward`.
    public var outputShape: Shape? { plannedInput == nil || !shapes.indices.contains(output) ? nil : shapes[output] }

    /// Back-propagates `gradOutput` (d loss / d output of the last forward): parameter
    /// gradients accumulate; returns d loss / d input when `inputGradient` is set. The
    /// parameters must be as that forward saw them (layers may keep values derived from them).
    @discardableResult
    public func backward(_ gradOutput: UnsafeBufferPointer<Float>, inputGradient: Bool = false) throws -> UnsafeBufferPointer<Float>? {
        guard !isFrozen else { throw PlyError.frozen("the model is frozen for inference: backward is not possible") }
        guard plannedInput != nil else { throw PlyError.invalid("backward called before forward") }
        try checkOutputNode()
        guard !inferredSinceForward else {
            throw PlyError.invalid("backward must follow forward: infer ran since, and the layers' saved state is its own")
        }
        guard gradOutput.count == shapes[output].count, let g = gradOutput.baseAddress else {
            throw PlyError.shape("output gradient has \(gradOutput.count) values; the output \(shapes[output]) has \(shapes[output].count)")
        }
        if foldedForward { try restoreFoldedValues() }
        var written = Array(repeating: false, count: nodes.count)
        try gradBuffer(output).update(from: g, count: gradOutput.count)
        written[output] = true
        let checking = runtime.checkPlugins
        var inputViews: [ply_tensor] = [], gradViews: [ply_tensor] = []
        var pending: [(from: Int, to: Int)] = []
        for id in stride(from: output, to: 0, by: -1) where written[id] {
            let source = fusedFrom[id]
            if source >= 0 {
                // the source layer applies the activation's derivative to this gradient itself
                grads[source] = try gradBuffer(id)
                written[source] = true
                continue
            }
            let n = nodes[id]
            guard let layer = n.layer else { continue }
            inputViews.removeAll(keepingCapacity: true)
            gradViews.removeAll(keepingCapacity: true)
            pending.removeAll(keepingCapacity: true)
            for (k, i) in n.inputs.enumerated() {
                inputViews.append(ply_tensor.view(values[i], cShapes[i]))
                if i == Model.input && !inputGradient {
                    gradViews.append(ply_tensor.view(nil, cShapes[i]))
                } else if !written[i] {
                    gradViews.append(ply_tensor.view(try gradBuffer(i), cShapes[i]))
                } else {
                    // Another consumer already wrote this gradient: add ours to it afterwards.
                    gradViews.append(ply_tensor.view(try scratchBuffer(k, i), cShapes[i]))
                    pending.append((k, i))
                }
                written[i] = true
            }
            var out = ply_tensor.view(values[id], cShapes[id])
            var gOut = ply_tensor.view(grads[id], cShapes[id])
            if checking {
                stampGuard(out.data, shapes[id].count)
                stampGuard(gOut.data, shapes[id].count)
                for (k, i) in n.inputs.enumerated() { stampGuard(gradViews[k].data, shapes[i].count) }
            }
            do {
                try inputViews.withUnsafeBufferPointer { ins in
                    try gradViews.withUnsafeMutableBufferPointer { try layer.backward(ins, &out, &gOut, $0) }
                }
                if checking {
                    for (k, i) in n.inputs.enumerated() {
                        try verifyGuard(gradViews[k].data, shapes[i].count, node: id, call: "backward",
                                        "the gradient of its input \(k) ('\(nodes[i].name)') \(shapes[i])")
                    }
                    try verifyGuard(gOut.data, shapes[id].count, node: id, call: "backward", "its output gradient \(shapes[id])")
                    try verifyGuard(out.data, shapes[id].count, node: id, call: "backward", "its output \(shapes[id])")
                }
            } catch let error as PluginOverrunError {
                throw error.at(node: n.name)
            } catch let error as MemoryLimitError {
                throw error
            } catch let error as PlyError {
                throw error.within(node: n.name, "backward of node '\(n.name)'")
            } catch {
                throw PlyError.invalid("backward of node '\(n.name)': \(error)")
            }
            for (k, i) in pending {
                guard let src = gradViews[k].data?.assumingMemoryBound(to: Float.self), let dst = grads[i] else { continue }
                for j in 0..<shapes[i].count { dst[j] += src[j] }
            }
            try backwardHook?(id)
        }
        return inputGradient ? UnsafeBufferPointer(start: grads[Model.input], count: shapes[0].count) : nil
    }

    /// An evaluation-mode `forward` ran the folds: their convs' values are unmade and their batch
    /// norms saved nothing for backward. Runs both as an unfolded forward would, once (the batch
    /// norm's output goes to scratch: the values later nodes read stay as they saw them).
    private func restoreFoldedValues() throws {
        var views: [ply_tensor] = []
        for f in folds.values.sorted(by: { $0.conv < $1.conv }) {
            guard let conv = nodes[f.conv].layer, let bn = nodes[f.batchNorm].layer else { continue }
            let scratch = try allocateZeroed(shapes[f.batchNorm].count, for: "the output of node '\(nodes[f.batchNorm].name)' (for backward)")
            defer { free(scratch) }
            do {
                views.removeAll(keepingCapacity: true)
                for i in nodes[f.conv].inputs { views.append(ply_tensor.view(values[i], cShapes[i])) }
                var out = ply_tensor.view(values[f.conv], cShapes[f.conv])
                try views.withUnsafeBufferPointer { try conv.forward($0, &out) }
                var bnOut = ply_tensor.view(scratch, cShapes[f.batchNorm])
                let bnIn = [out]
                try bnIn.withUnsafeBufferPointer { try bn.forward($0, &bnOut) }
            } catch let error as PlyError {
                throw error.within(node: nodes[f.conv].name, "forward of node '\(nodes[f.conv].name)' (for backward)")
            }
        }
        foldedForward = false
    }

    private func gradBuffer(_ i: Int) throws -> UnsafeMutablePointer<Float> {
        if let g = grads[i] { return g }
        let g = try allocateZeroed(shapes[i].count, for: "the gradient of node '\(nodes[i].name)' \(shapes[i])")
        grads[i] = g
        return g
    }

    /// Scratch for accumulating a second gradient into node `i` (one region per input slot).
    private var scratchSlots: [Int: UnsafeMutablePointer<Float>] = [:]
    private func scratchBuffer(_ slot: Int, _ i: Int) throws -> UnsafeMutablePointer<Float> {
        let need = max(shapes[i].count, 1)
        if scratchCapacity < need {
            for (_, s) in scratchSlots { free(s) }
            scratchSlots = [:]
            scratchCapacity = max(shapes.map(\.count).max() ?? 1, need)
        }
        if let s = scratchSlots[slot] { return s }
        let s = try allocateZeroed(scratchCapacity, for: "gradient scratch for node '\(nodes[i].name)'")
        scratchSlots[slot] = s
        return s
    }
    private var scratchCapacity = 0
}
