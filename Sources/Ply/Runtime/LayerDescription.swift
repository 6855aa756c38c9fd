import CPly
import Foundation

/// What a layer instance says about itself for given input shapes, through its type's
/// `describe` callback (ABI 1.2): its own multiply-accumulates, how an output position depends
/// on the input plane, and — for composites — the children it made with `create_layer`, each
/// described in turn. A type without `describe` is described as 0 MACs, an identity window and
/// no children.
public struct LayerDescription: Sendable {
    /// How one output position depends on the input plane (`ply_window_kind`).
    public enum Window: Sendable, Equatable {
        /// Position to position: the receptive field passes through unchanged.
        case identity
        /// A window of `kernel` input pixels (height, width), `stride` pixels apart.
        case spatial(kernel: [Double], stride: [Double])
        /// Every output depends on the whole input plane.
        case global
    }

    /// A named parameter or buffer of a child (read through the child's `get_param`).
    public struct ParameterInfo: Sendable, Equatable {
        /// The name relative to the child (`weight`).
        public let name: String
        /// Its shape.
        public let shape: Shape
        /// Trainable (`true`) or buffer.
        public let trainable: Bool
    }

    /// A child a composite reported through `add_child`.
    public struct Child: Sendable {
        /// Its attribute name relative to the parent (`conv1`, `downsample.0`); nil when the
        /// plugin reports it without one (a functional step PyTorch registers no module for).
        public let name: String?
        /// Its type's name.
        public let typeName: String
        /// Its type, when it is one of the runtime's registered types.
        public let type: LayerType?
        /// The attributes it was created with, when the host created it (`create_layer`).
        public let attributes: Attributes?
        /// The input shapes it sees for this call.
        public let inputShapes: [Shape]
        /// Its output shape for this call.
        public let outputShape: Shape
        /// Its parameters and buffers.
        public let parameters: [ParameterInfo]
        /// Its own description (MACs, window, children).
        public let details: LayerDescription
    }

    /// Multiply-accumulates of the layer alone for the whole batch (children excluded).
    public var macs: Int
    /// How an output position depends on the input plane.
    public var window: Window
    /// The children, in PyTorch's module order.
    public var children: [Child]
    /// The class name PyTorch prints for the module (`BasicBlock`), when the layer says
    /// (`ply_layer_info.class_name`); nil: summaries print the type name.
    public var className: String? = nil

    /// MACs of the layer and all its descendants.
    /// Saturates at `Int.max` (a count that does not fit; ModelSummary reports it as an error).
    public var totalMACs: Int {
        children.reduce(macs) { total, child in
            let (sum, overflow) = total.addingReportingOverflow(child.details.totalMACs)
            return overflow ? Int.max : sum
        }
    }

    /// An identity description without children (what a type without `describe` gets).
    public static let plain = LayerDescription(macs: 0, window: .identity, children: [])
}

extension Layer {
    /// Describes the instance for inputs of `inputShapes` (see ``LayerDescription``).
    public func describe(inputShapes: [Shape]) throws -> LayerDescription {
        guard !isFrozen else { throw frozenError("describing it") }
        try checkArity(inputShapes.count)
        return try Describer.describe(type: type.pointer, vtable: type.vtable, typeName: type.name, instance: instance,
                                      inputs: inputShapes, state: runtime.state, depth: 0)
    }
}

/// The host side of `describe` and `add_child`.
enum Describer {
    /// Children nested deeper than this are refused (a plugin reporting itself as its child).
    static let maxDepth = 64

    /// What `add_child` collects for one describe call (the `host_context`).
    final class Collector {
        let state: HostState
        let depth: Int
        let parent: String
        var children: [LayerDescription.Child] = []
        var error: (any Error)?
        init(state: HostState, depth: Int, parent: String) { self.state = state; self.depth = depth; self.parent = parent }
    }

    static func describe(type: UnsafePointer<ply_layer_type>, vtable: LayerVTable, typeName: String, instance: OpaquePointer,
                         inputs: [Shape], state: HostState, depth: Int) throws -> LayerDescription {
        guard let describe = vtable.describe else { return .plain }
        let cShapes = try inputs.map { try $0.cShape() }
        let collector = Collector(state: state, depth: depth, parent: typeName)
        var info = ply_layer_info()
        info.struct_size = UInt32(MemoryLayout<ply_layer_info>.size)
        info.abi_version = cply_abi_version()
        info.host_context = Unmanaged.passUnretained(collector).toOpaque()
        info.add_child = addChild
        _ = ErrorSlot.current.take()
        let status = withExtendedLifetime(collector) {
            cShapes.withUnsafeBufferPointer { describe(instance, Int32($0.count), $0.baseAddress, &info) }
        }
        if let error = collector.error {
            _ = ErrorSlot.current.take()
            throw error
        }
        try Layer.check(status, type: typeName, call: "describe")
        func bad(_ what: String) -> PlyError {
            PlyError.layer(type: typeName, call: "describe", status: Int32(PLY_ERR_INTERNAL.rawValue), message: what)
        }
        guard info.macs >= 0 else { throw bad("reported \(info.macs) MACs") }
        let window: LayerDescription.Window
        switch UInt32(bitPattern: info.window) {
        case PLY_WINDOW_IDENTITY.rawValue: window = .identity
        case PLY_WINDOW_GLOBAL.rawValue: window = .global
        case PLY_WINDOW_SPATIAL.rawValue:
            let k = [info.kernel.0, info.kernel.1], s = [info.stride.0, info.stride.1]
            guard k.allSatisfy({ $0.isFinite && $0 >= 1 }), s.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw bad("reported a spatial window of kernel \(k) and stride \(s) (kernels must be >= 1, strides > 0)")
            }
            window = .spatial(kernel: k, stride: s)
        default: throw bad("reported unknown window kind \(info.window)")
        }
        var description = LayerDescription(macs: Int(info.macs), window: window, children: collector.children)
        if let name = info.class_name {
            let text = String(cString: name)
            guard !text.isEmpty, text.count <= 128, text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }) else {
                throw bad("reported class name '\(text.prefix(40))' (letters, digits, '_' and '.', at most 128)")
            }
            description.className = text
        }
        return description
    }

    /// `ply_layer_info.add_child`: describes the child and files it with the collector. Never
    /// throws across C: a failure is kept in the collector and returned as a status.
    static let addChild: @convention(c) (UnsafeMutablePointer<ply_layer_info>?, UnsafePointer<CChar>?, UnsafePointer<ply_layer_type>?,
                                         OpaquePointer?, Int32, UnsafePointer<ply_shape>?, UnsafePointer<ply_shape>?) -> ply_status = {
        info, name, type, child, count, inputs, output in
        guard let info, let context = info.pointee.host_context else {
            return HostTable.fail(PLY_ERR_INVALID_ARGUMENT, "add_child: the info's host_context was changed")
        }
        let collector = Unmanaged<Collector>.fromOpaque(context).takeUnretainedValue()
        do {
            collector.children.append(try makeChild(collector, name, type, child, count, inputs, output))
            return PLY_OK
        } catch {
            collector.error = collector.error ?? error
            return HostTable.fail(PLY_ERR_INVALID_ARGUMENT, "\(error)")
        }
    }

    static func makeChild(_ c: Collector, _ name: UnsafePointer<CChar>?, _ type: UnsafePointer<ply_layer_type>?, _ child: OpaquePointer?,
                          _ count: Int32, _ inputs: UnsafePointer<ply_shape>?, _ output: UnsafePointer<ply_shape>?) throws -> LayerDescription.Child {
        let label = name.map { String(cString: $0) } ?? ""
        func bad(_ what: String) -> PlyError {
            PlyError.layer(type: c.parent, call: "describe", status: Int32(PLY_ERR_INVALID_ARGUMENT.rawValue),
                           message: "add_child\(label.isEmpty ? "" : " '\(label)'"): \(what)")
        }
        guard let type, let child else { throw bad("needs the child's type and instance") }
        guard count >= 0, count <= 4096, count == 0 || inputs != nil, let output else {
            throw bad("needs its input and output shapes (got \(count) inputs)")
        }
        guard c.depth < maxDepth else { throw bad("children nest more than \(maxDepth) levels deep") }
        guard let cTypeName = type.pointee.name else { throw bad("the child's type has no name") }
        let typeName = String(cString: cTypeName)
        let registered = c.state.lookup?(typeName).flatMap { $0.pointer == type ? $0 : nil }
        let vtable = try registered?.vtable ?? LayerVTable(type, library: "(unregistered)", name: typeName)
        let inShapes = try (0..<Int(count)).map { try Shape(inputs![$0]) }
        let outShape = try Shape(output.pointee)
        var parameters: [LayerDescription.ParameterInfo] = []
        if let n = vtable.paramCount?(child), let get = vtable.getParam {
            for i in 0..<Int(n) {
                var p = ply_param()
                _ = ErrorSlot.current.take()
                try Layer.check(get(child, Int32(i), &p), type: typeName, call: "get_param")
                guard let pName = p.name else { throw bad("parameter \(i) of the child has no name") }
                parameters.append(.init(name: String(cString: pName), shape: try Shape(p.value.shape),
                                        trainable: p.kind == Int32(PLY_PARAM_WEIGHT.rawValue)))
            }
        }
        let details = try describe(type: type, vtable: vtable, typeName: typeName, instance: child, inputs: inShapes,
                                   state: c.state, depth: c.depth + 1)
        return LayerDescription.Child(name: label.isEmpty ? nil : label, typeName: typeName, type: registered,
                                      attributes: c.state.createdLayer(child, type: type)?.attributes,
                                      inputShapes: inShapes, outputShape: outShape, parameters: parameters, details: details)
    }
}
