import CPly
import Foundation
import Synchronization

/// One layer instance created by a plugin. Calls go straight through the plugin's vtable.
/// Not thread-safe: use one instance from one thread at a time (the ABI's rule).
public final class Layer: @unchecked Sendable {
    /// The layer's type.
    public let type: LayerType
    /// The runtime whose services the instance uses (kept alive by the layer).
    public let runtime: Runtime
    /// The attributes the layer was created with.
    public let attributes: Attributes
    let instance: OpaquePointer
    /// Instances the plugin made through `create_layer` while creating this one (composites'
    /// children): the host's records of them go when this layer does.
    let createdChildren: [OpaquePointer]
    /// Set once by `freeze()`: the host's promise of inference only (plugin.h's `freeze`).
    private let frozenFlag = Atomic<Bool>(false)

    /// Whether the layer is frozen for inference (see `freeze()`): it then runs `forward` in
    /// evaluation mode only, and its parameters, training and backward are refused.
    public var isFrozen: Bool { frozenFlag.load(ordering: .relaxed) }

    /// Creates a layer of type `typeName` from attributes with PyTorch's argument names.
    public convenience init(_ typeName: String, _ attributes: Attributes = [], runtime: Runtime) throws {
        try self.init(type: runtime.layerType(named: typeName), attributes: attributes, runtime: runtime)
    }

    /// Creates a layer of type `typeName` for node `node` (named in error messages).
    convenience init(_ typeName: String, _ attributes: Attributes, runtime: Runtime, node: String?) throws {
        try self.init(type: runtime.layerType(named: typeName), attributes: attributes, runtime: runtime, node: node)
    }

    /// Creates a layer of `type` from attributes. The attributes are checked against the type's
    /// schema first (``LayerType/attributes``): a misfit throws ``PlyError/attribute(_:)`` naming
    /// `node`, when given, and the attribute.
    public init(type: LayerType, attributes: Attributes, runtime: Runtime, node: String? = nil) throws {
        self.type = type
        self.runtime = runtime
        self.attributes = attributes
        try type.checkAttributes(attributes, node: node, state: runtime.state)
        var out: OpaquePointer?
        let slot = ErrorSlot.current
        slot.creating.append(CreationFrame(node: node, type: type.name))
        let status = withCAttributes(attributes) { attrs in
            _ = slot.take()
            return type.vtable.create(runtime.host.pointer, attrs, &out)
        }
        let children = slot.creating.popLast()?.children ?? []
        if status == PLY_OK, runtime.checkPlugins, let buffer = runtime.state.brokenHostBlock(), let out {
            type.vtable.destroy(out)
            runtime.state.forget(children)
            throw PluginOverrunError(node: node, layerType: type.name, call: "create", buffer: buffer)
        }
        guard status == PLY_OK, let out else {
            runtime.state.forget(children)
            try Layer.check(status, type: type.name, call: "create")
            throw PlyError.layer(type: type.name, call: "create", status: Int32(PLY_ERR_INTERNAL.rawValue),
                                 message: "reported success but returned no instance")
        }
        instance = out
        createdChildren = children
    }

    deinit {
        type.vtable.destroy(instance)
        runtime.state.forget(createdChildren)
    }

    /// Turns a status and this thread's error slot into a thrown error: the host's own typed
    /// error (a ``PlyError/attribute(_:)`` from `create_layer`) when the plugin passed its message on
    /// unchanged, else `PlyError.layer` with the plugin's message.
    static func check(_ status: ply_status, type: String, call: String) throws {
        guard status != PLY_OK else { return }
        let slot = ErrorSlot.current
        let typed = slot.typed
        let refused = slot.refused
        let message = slot.take() ?? "no message given"
        if let refused {  // the host's alloc refused a block for the memory limit
            throw MemoryLimitError(layerType: type, call: call, requestedBytes: refused.requested, heldBytes: refused.held,
                                   limitBytes: refused.limit, pluginMessage: message)
        }
        if let typed, typed.description == message { throw typed }
        throw PlyError.layer(type: type, call: call, status: Int32(bitPattern: status.rawValue), message: message)
    }

    /// Switches between training and evaluation behaviour (batch-norm, dropout). A frozen layer
    /// stays in evaluation (plugin.h: the host no longer calls set_training).
    public func setTraining(_ training: Bool) {
        guard !isFrozen else { return }
        type.vtable.setTraining?(instance, training ? 1 : 0)
    }

    /// Freezes the layer for inference (plugin.h's `freeze`, ABI 1.6): puts it in evaluation
    /// mode, then promises the plugin that from now on only `outputShape` and `forward` are
    /// called, so it may free what evaluation does not read (the unfolded weights of a batch
    /// norm folded into a conv, its children it no longer runs). From then on `parameters`,
    /// `backward` and `describe` throw ``PlyError/frozen(_:)``, `setTraining` does nothing, and
    /// ``Parameter`` views taken earlier are invalid (their accessors refuse). Irreversible.
    /// Returns whether the plugin released memory: a plugin without `freeze`, or one that
    /// refused, keeps its memory and stays fully usable for inference, and the promise holds all
    /// the same.
    @discardableResult
    public func freeze() -> Bool {
        guard !isFrozen else { return false }
        setTraining(false)
        frozenFlag.store(true, ordering: .relaxed)
        guard let freeze = type.vtable.freeze else { return false }
        _ = ErrorSlot.current.take()
        let status = runtime.state.computing { freeze(instance) }
        if status != PLY_OK { _ = ErrorSlot.current.take() } // a refusal is not an error: nothing was freed
        return status == PLY_OK
    }

    /// The error for `what` asked of a frozen layer.
    func frozenError(_ what: String) -> PlyError {
        .frozen("layer '\(type.name)' is frozen for inference (its weights may be freed): \(what) is not possible")
    }

    /// Asks the layer to apply `activation` (e.g. "relu") to its own output, so that the
    /// activation layer after it can be skipped (see `fuse_activation` in plugin.h). Returns
    /// whether it agreed; a layer that agreed keeps doing so for its lifetime.
    func fuseActivation(_ activation: String) -> Bool {
        guard !isFrozen, let fuse = type.vtable.fuseActivation else { return false }
        let status = activation.withCString { fuse(instance, $0) }
        if status != PLY_OK { _ = ErrorSlot.current.take() } // a refusal is not an error
        return status == PLY_OK
    }

    /// Checks the number of inputs against what the type accepts.
    func checkArity(_ n: Int) throws {
        if n < type.minInputs || (type.maxInputs.map { n > $0 } ?? false) {
            let range = type.maxInputs == type.minInputs ? "\(type.minInputs)"
                : "\(type.minInputs)...\(type.maxInputs.map(String.init) ?? "")"
            throw PlyError.invalid("layer '\(type.name)' takes \(range) input\(range == "1" ? "" : "s"), got \(n)")
        }
    }

    /// The output shape for inputs of `shapes`, or an error naming what does not fit.
    public func outputShape(for shapes: [Shape]) throws -> Shape {
        try checkArity(shapes.count)
        let cShapes = try shapes.map { try $0.cShape() }
        var out = ply_shape()
        _ = ErrorSlot.current.take()
        let status = cShapes.withUnsafeBufferPointer { type.vtable.inferShape(instance, Int32($0.count), $0.baseAddress, &out) }
        try Layer.check(status, type: type.name, call: "infer_shape")
        let shape = try Shape(out)
        if shape.dims.contains(where: { $0 <= 0 }) {
            throw PlyError.layer(type: type.name, call: "infer_shape", status: Int32(PLY_ERR_SHAPE.rawValue),
                                 message: "input \(shapes.map(\.description).joined(separator: ", ")) gives an empty output \(shape)")
        }
        // A shape whose float32 byte count does not fit in Int would trap wherever it is sized.
        guard let count = shape.checkedCount, count <= Int.max / MemoryLayout<Float>.stride else {
            throw PlyError.layer(type: type.name, call: "infer_shape", status: Int32(PLY_ERR_SHAPE.rawValue),
                                 message: "input \(shapes.map(\.description).joined(separator: ", ")) gives an output \(shape) "
                                    + "whose size overflows 64 bits")
        }
        return shape
    }

    /// Forward on C views (used by the model graph; no allocation).
    func forward(_ inputs: UnsafeBufferPointer<ply_tensor>, _ output: UnsafeMutablePointer<ply_tensor>) throws {
        _ = ErrorSlot.current.take()
        let status = runtime.state.computing { type.vtable.forward(instance, Int32(inputs.count), inputs.baseAddress, output) }
        try Layer.check(status, type: type.name, call: "forward")
        try checkHostBlocks("forward")
    }

    /// In checked mode, a broken guard zone of a host `alloc` block after `call`.
    func checkHostBlocks(_ call: String) throws {
        guard runtime.checkPlugins, let buffer = runtime.state.brokenHostBlock() else { return }
        throw PluginOverrunError(node: nil, layerType: type.name, call: call, buffer: buffer)
    }

    /// Backward on C views (used by the model graph).
    func backward(_ inputs: UnsafeBufferPointer<ply_tensor>, _ output: UnsafePointer<ply_tensor>,
                  _ gradOutput: UnsafePointer<ply_tensor>, _ gradInputs: UnsafeMutableBufferPointer<ply_tensor>) throws {
        guard !isFrozen else { throw frozenError("backward") }
        guard let backward = type.vtable.backward else {
            throw PlyError.invalid("layer '\(type.name)' (\(type.library.path)) has no backward: it cannot be trained through")
        }
        _ = ErrorSlot.current.take()
        let status = runtime.state.computing {
            backward(instance, Int32(inputs.count), inputs.baseAddress, output, gradOutput, gradInputs.baseAddress)
        }
        try Layer.check(status, type: type.name, call: "backward")
        try checkHostBlocks("backward")
    }

    /// Runs forward on owned tensors and returns the output.
    public func forward(_ inputs: [Tensor]) throws -> Tensor {
        let shape = try outputShape(for: inputs.map(\.shape))
        // A Swift array traps when it cannot be allocated: refuse what cannot fit first.
        guard let count = shape.checkedCount, count <= Int(ProcessInfo.processInfo.physicalMemory / 4) else {
            throw PlyError.outOfMemory("layer '\(type.name)': an output of shape \(shape) does not fit in this machine's memory")
        }
        var output = Tensor(shape: shape)
        var storage = inputs
        let outShape = try output.shape.cShape()
        let inShapes = try inputs.map { try $0.shape.cShape() }
        let checking = runtime.checkPlugins
        try withTensorViews(&storage, inShapes) { views in
            // The output goes to a buffer with guard room after it (checked mode), then to the tensor.
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count + GuardZone.floats)
            defer { buffer.deallocate() }
            let guardZone = UnsafeMutableRawPointer(buffer.baseAddress! + count)
            if checking { GuardZone.stamp(guardZone) }
            var out = ply_tensor.view(UnsafeMutableRawPointer(buffer.baseAddress), outShape)
            try forward(UnsafeBufferPointer(views), &out)
            if checking, !GuardZone.intact(guardZone) {
                throw PluginOverrunError(node: nil, layerType: type.name, call: "forward", buffer: "its output \(shape)")
            }
            output.data.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: buffer.baseAddress!, count: count) }
        }
        return output
    }

    /// Runs backward on owned tensors: the gradient for each input whose `wanted` flag is set
    /// (nil for the others). Parameter gradients accumulate inside the layer. The parameters
    /// must be as the forward that made `output` saw them.
    public func backward(inputs: [Tensor], output: Tensor, gradOutput: Tensor, wanted: [Bool]? = nil) throws -> [Tensor?] {
        guard !isFrozen else { throw frozenError("backward") }
        guard gradOutput.shape == output.shape else {
            throw PlyError.shape("gradient of shape \(gradOutput.shape) does not match output \(output.shape)")
        }
        let want = wanted ?? Array(repeating: true, count: inputs.count)
        var grads: [Tensor] = inputs.map { Tensor(shape: $0.shape) }
        var storage = inputs
        var out = output, gOut = gradOutput
        let inShapes = try inputs.map { try $0.shape.cShape() }
        let outShape = try output.shape.cShape()
        let checking = runtime.checkPlugins
        try withTensorViews(&storage, inShapes) { views in
            try withTensorViews(&grads, inShapes) { gviews in
                for i in 0..<gviews.count where !want[i] { gviews[i].data = nil }
                // withTensorViews leaves guard room after each buffer (checked mode).
                let zones = zip(gviews, inputs).map { v, t in v.data.map { $0 + t.data.count * MemoryLayout<Float>.stride } }
                if checking { for z in zones { if let z { GuardZone.stamp(z) } } }
                try out.data.withUnsafeMutableBytes { o in
                    try gOut.data.withUnsafeMutableBytes { g in
                        var ov = ply_tensor.view(o.baseAddress, outShape)
                        var gv = ply_tensor.view(g.baseAddress, outShape)
                        try backward(UnsafeBufferPointer(views), &ov, &gv, gviews)
                    }
                }
                if checking, let k = zones.firstIndex(where: { $0.map { !GuardZone.intact($0) } ?? false }) {
                    throw PluginOverrunError(node: nil, layerType: type.name, call: "backward",
                                             buffer: "the gradient of its input \(k) \(inputs[k].shape)")
                }
            }
        }
        return zip(grads, want).map { $1 ? $0 : nil }
    }

    /// The layer's named parameters and buffers, PyTorch state_dict order. Throws
    /// ``PlyError/frozen(_:)`` once the layer is frozen (`freeze()`).
    public var parameters: [Parameter] {
        get throws {
            guard !isFrozen else { throw frozenError("reading or writing its parameters") }
            guard let count = type.vtable.paramCount?(instance), let get = type.vtable.getParam else { return [] }
            var result: [Parameter] = []
            for i in 0..<Int(count) {
                var p = ply_param()
                _ = ErrorSlot.current.take()
                try Layer.check(get(instance, Int32(i), &p), type: type.name, call: "get_param")
                result.append(try Parameter(p, layer: self))
            }
            return result
        }
    }
}

/// Calls `body` with C views of copies of `tensors`, then copies the values back
/// (for the convenience API; the model graph uses its own buffers and copies nothing).
func withTensorViews<R>(_ tensors: inout [Tensor], _ shapes: [ply_shape],
                        _ body: (UnsafeMutableBufferPointer<ply_tensor>) throws -> R) throws -> R {
    let buffers = tensors.map { t -> UnsafeMutableBufferPointer<Float> in
        // with room for a guard zone after the values (checked mode, `GuardZone`)
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.data.count + GuardZone.floats)
        _ = b.initialize(from: t.data)
        return b
    }
    defer { buffers.forEach { $0.deallocate() } }
    var views = zip(buffers, shapes).map { ply_tensor.view(UnsafeMutableRawPointer($0.baseAddress), $1) }
    let result = try views.withUnsafeMutableBufferPointer { try body($0) }
    for i in tensors.indices { tensors[i].data = Array(buffers[i].prefix(tensors[i].data.count)) }
    return result
}

/// A named parameter or buffer of a layer: a view into the layer's own memory, valid for the
/// layer's lifetime until the layer is frozen for inference (`Layer.freeze()`), after which the
/// accessors refuse (nil, an empty array, ``PlyError/frozen(_:)``).
public struct Parameter: @unchecked Sendable {
    /// PyTorch name relative to the layer (`weight`, `running_var`, `conv1.weight`).
    public let name: String
    /// Trainable (`true`) or buffer.
    public let trainable: Bool
    /// The parameter's shape (PyTorch's).
    public let shape: Shape
    /// Element type: float32 for all but integer buffers such as `num_batches_tracked`.
    public let isInteger: Bool
    let value: UnsafeMutableRawPointer
    let grad: UnsafeMutablePointer<Float>?
    let layer: Layer

    init(_ p: ply_param, layer: Layer) throws {
        let where_ = "layer '\(layer.type.name)'"
        guard let cName = p.name else { throw PlyError.invalid("\(where_) reports a parameter without a name") }
        name = String(cString: cName)
        shape = try Shape(p.value.shape)
        guard let v = p.value.data else { throw PlyError.invalid("\(where_) parameter '\(name)' has no data") }
        value = v
        trainable = p.kind == Int32(PLY_PARAM_WEIGHT.rawValue)
        isInteger = p.value.dtype == Int32(PLY_DTYPE_I64.rawValue)
        guard isInteger || p.value.dtype == Int32(PLY_DTYPE_F32.rawValue) else {
            throw PlyError.invalid("\(where_) parameter '\(name)' has unsupported dtype \(p.value.dtype)")
        }
        if trainable && (p.grad.data == nil || isInteger) {
            throw PlyError.invalid("\(where_) trainable parameter '\(name)' must be float32 with a gradient")
        }
        grad = trainable ? p.grad.data?.assumingMemoryBound(to: Float.self) : nil
        self.layer = layer
    }

    /// Float view of the values (nil for integer buffers). The view is writable, so taking it
    /// tells the layers that values may change (layers that keep data derived from them, such
    /// as batch norm folded into a conv for inference, derive it again before their next
    /// forward): write through a view taken after the model's last forward, or call
    /// `Runtime.parametersChanged()` after writing through one kept from before it.
    public var floats: UnsafeMutableBufferPointer<Float>? {
        guard !isInteger, !layer.isFrozen else { return nil }
        layer.runtime.state.parametersMayChange()
        return UnsafeMutableBufferPointer(start: value.assumingMemoryBound(to: Float.self), count: shape.count)
    }
    /// Integer view of the values (nil for float tensors); writable, as `floats`.
    public var integers: UnsafeMutableBufferPointer<Int64>? {
        guard isInteger, !layer.isFrozen else { return nil }
        layer.runtime.state.parametersMayChange()
        return UnsafeMutableBufferPointer(start: value.assumingMemoryBound(to: Int64.self), count: shape.count)
    }
    /// The gradient (trainable parameters only).
    public var gradient: UnsafeMutableBufferPointer<Float>? {
        guard !layer.isFrozen else { return nil }
        return grad.map { UnsafeMutableBufferPointer(start: $0, count: shape.count) }
    }

    /// Current values as floats (integers converted); empty once the layer is frozen (its
    /// memory may be freed: `Layer.freeze()`).
    public func read() -> [Float] {
        guard !layer.isFrozen else { return [] }
        let n = shape.count
        if isInteger { return UnsafeBufferPointer(start: value.assumingMemoryBound(to: Int64.self), count: n).map { Float($0) } }
        return Array(UnsafeBufferPointer(start: value.assumingMemoryBound(to: Float.self), count: n))
    }

    /// Overwrites the values; the count must match the shape.
    public func write(_ values: [Float]) throws {
        guard !layer.isFrozen else { throw layer.frozenError("writing parameter '\(name)'") }
        guard values.count == shape.count else {
            throw PlyError.invalid("parameter '\(name)' of shape \(shape) needs \(shape.count) values, got \(values.count)")
        }
        if let f = floats { _ = f.update(fromContentsOf: values) } else if let i = integers {
            for k in 0..<values.count { i[k] = Int64(values[k]) }
        }
    }
}
