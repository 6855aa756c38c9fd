import CPly
import Foundation
import Synchronization

/// A loaded plugin library. Unloaded (dlclose) when nothing refers to it any more.
public final class PluginLibrary: @unchecked Sendable, CustomStringConvertible {
    /// The path the library was loaded from.
    public let path: String
    /// The plugin's own name and version, from its descriptor.
    public internal(set) var name: String
    /// The plugin's version string, from its descriptor.
    public internal(set) var version: String
    let handle: UnsafeMutableRawPointer?

    init(path: String, name: String, version: String, handle: UnsafeMutableRawPointer?) {
        self.path = path
        self.name = name
        self.version = version
        self.handle = handle
    }

    deinit { if let handle { dlclose(handle) } }

    /// The value in words, as `print` shows it.
    public var description: String { "\(name) \(version) (\(path))" }
}

/// The callbacks of a layer type, checked against the size the plugin declared.
struct LayerVTable {
    typealias Create = @convention(c) (UnsafePointer<ply_host>?, UnsafePointer<ply_attrs>?, UnsafeMutablePointer<OpaquePointer?>?) -> ply_status
    let create: Create
    let destroy: @convention(c) (OpaquePointer?) -> Void
    let inferShape: @convention(c) (OpaquePointer?, Int32, UnsafePointer<ply_shape>?, UnsafeMutablePointer<ply_shape>?) -> ply_status
    let forward: @convention(c) (OpaquePointer?, Int32, UnsafePointer<ply_tensor>?, UnsafeMutablePointer<ply_tensor>?) -> ply_status
    let backward: (@convention(c) (OpaquePointer?, Int32, UnsafePointer<ply_tensor>?, UnsafePointer<ply_tensor>?,
                                  UnsafePointer<ply_tensor>?, UnsafeMutablePointer<ply_tensor>?) -> ply_status)?
    let paramCount: (@convention(c) (OpaquePointer?) -> Int32)?
    let getParam: (@convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<ply_param>?) -> ply_status)?
    let setTraining: (@convention(c) (OpaquePointer?, Int32) -> Void)?
    let fuseActivation: (@convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> ply_status)?
    typealias Describe = @convention(c) (OpaquePointer?, Int32, UnsafePointer<ply_shape>?, UnsafeMutablePointer<ply_layer_info>?) -> ply_status
    /// ABI 1.2: absent (nil) from 1.0/1.1 plugins, whose struct ends before it.
    let describe: Describe?
    /// ABI 1.2: the NULL-terminated schema, nil when absent or NULL.
    let attrSpecs: UnsafePointer<ply_attr_spec>?
    /// ABI 1.2: the inputs' one-line description, nil when absent or NULL.
    let inputsDoc: UnsafePointer<CChar>?
    /// ABI 1.6: frozen for inference (plugin.h's `freeze`); nil when absent or NULL.
    let freeze: (@convention(c) (OpaquePointer?) -> ply_status)?
    typealias EvalLayouts = @convention(c) (OpaquePointer?, Int32, UnsafePointer<ply_shape>?, UnsafeMutablePointer<UInt32>?,
                                            UnsafeMutablePointer<UInt32>?) -> ply_status
    typealias ForwardLayout = @convention(c) (OpaquePointer?, Int32, UnsafePointer<ply_tensor>?, UnsafePointer<Int32>?,
                                              UnsafeMutablePointer<ply_tensor>?, Int32) -> ply_status
    /// ABI 1.7: the blocked layouts (plugin.h's `eval_layouts` and `forward_layout`, both or
    /// neither); nil when absent or NULL.
    let evalLayouts: EvalLayouts?
    let forwardLayout: ForwardLayout?

    /// Reads the vtable of `t`, treating fields past `t.struct_size` as absent.
    init(_ t: UnsafePointer<ply_layer_type>, library: String, name: String) throws {
        let size = Int(t.pointee.struct_size)
        func present(_ field: PartialKeyPath<ply_layer_type>) -> Bool {
            guard let offset = MemoryLayout<ply_layer_type>.offset(of: field) else { return false }
            return offset + MemoryLayout<UnsafeRawPointer>.size <= size
        }
        func required<F>(_ field: KeyPath<ply_layer_type, F?>, _ label: String) throws -> F {
            guard present(field) else {
                throw PlyError.abi(path: library, reason: "layer type '\(name)' declares struct_size \(size), "
                    + "too small to hold the required callback '\(label)'")
            }
            guard let f = t.pointee[keyPath: field] else {
                throw PlyError.plugin(path: library, reason: "layer type '\(name)': required callback '\(label)' is NULL")
            }
            return f
        }
        func optional<F>(_ field: KeyPath<ply_layer_type, F?>) -> F? {
            present(field) ? t.pointee[keyPath: field] : nil
        }
        create = try required(\.create, "create")
        destroy = try required(\.destroy, "destroy")
        inferShape = try required(\.infer_shape, "infer_shape")
        forward = try required(\.forward, "forward")
        backward = optional(\.backward)
        paramCount = optional(\.param_count)
        getParam = paramCount == nil ? nil : optional(\.get_param)
        setTraining = optional(\.set_training)
        fuseActivation = optional(\.fuse_activation)
        describe = optional(\.describe)
        attrSpecs = present(\.attr_specs) ? t.pointee.attr_specs : nil
        inputsDoc = present(\.inputs_doc) ? t.pointee.inputs_doc : nil
        freeze = optional(\.freeze)
        evalLayouts = optional(\.eval_layouts)
        forwardLayout = optional(\.forward_layout)
        guard (evalLayouts == nil) == (forwardLayout == nil) else {
            throw PlyError.plugin(path: library, reason: "layer type '\(name)' sets "
                + (evalLayouts == nil ? "forward_layout but not eval_layouts" : "eval_layouts but not forward_layout")
                + ": both or neither")
        }
    }
}

/// A layer type provided by a plugin: what `ply plugins` lists.
public final class LayerType: @unchecked Sendable {
    /// The name used in model files (`conv2d`).
    public let name: String
    /// The plugin's one-line description.
    public let doc: String
    /// The library it came from.
    public let library: PluginLibrary
    /// Inputs accepted: `minInputs...maxInputs` (`maxInputs == nil`: unbounded).
    public let minInputs: Int
    /// The most inputs accepted; nil when unbounded.
    public let maxInputs: Int?
    /// Whether the type can be trained through (it has a backward callback).
    public var differentiable: Bool { vtable.backward != nil }
    /// The attributes the type takes, from its plugin's `attr_specs` (ABI 1.2), in the
    /// plugin's order; nil when the type declares no schema (a 1.0/1.1 plugin, or NULL), in
    /// which case attributes are passed to it unchecked. The host checks every attribute list
    /// against the schema before it creates a layer: unknown names, values of another kind
    /// and missing required attributes are ``PlyError/attribute(_:)`` errors.
    public let attributes: [AttributeSpec]?
    /// One line naming the inputs and their shapes (`x: (N, C, H, W)`), if the plugin gives it.
    public let inputsDoc: String?
    /// Whether instances can describe themselves (MACs, window, children: `Layer.describe`).
    public var selfDescribing: Bool { vtable.describe != nil }
    /// Set once the "no schema" warning has been logged for this type.
    let warnedUnchecked = Atomic<Bool>(false)

    let pointer: UnsafePointer<ply_layer_type>
    let vtable: LayerVTable

    init(_ t: UnsafePointer<ply_layer_type>, library: PluginLibrary) throws {
        let path = library.path
        let major = t.pointee.abi_version >> 16
        guard major == UInt32(PLY_ABI_VERSION_MAJOR) else {
            throw PlyError.abi(path: path, reason: "a layer type was built for Ply ABI \(major).\(t.pointee.abi_version & 0xFFFF); "
                + "this host speaks ABI \(PLY_ABI_VERSION_MAJOR).\(PLY_ABI_VERSION_MINOR)")
        }
        let minimum = MemoryLayout<ply_layer_type>.offset(of: \.create) ?? 0
        guard Int(t.pointee.struct_size) >= minimum else {
            throw PlyError.abi(path: path, reason: "a layer type declares struct_size \(t.pointee.struct_size); "
                + "the host needs at least \(minimum) bytes")
        }
        guard let cName = t.pointee.name else {
            throw PlyError.plugin(path: path, reason: "a layer type has a NULL name")
        }
        let name = String(cString: cName)
        guard !name.isEmpty, name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }) else {
            throw PlyError.plugin(path: path, reason: "layer type name '\(name)' is not lowercase [a-z0-9_]")
        }
        let lo = Int(t.pointee.min_inputs), hi = Int(t.pointee.max_inputs)
        guard lo >= 0, hi == -1 || hi >= lo else {
            throw PlyError.plugin(path: path, reason: "layer type '\(name)' declares inputs \(lo)...\(hi)")
        }
        self.name = name
        self.doc = t.pointee.doc.map { String(cString: $0) } ?? ""
        self.library = library
        self.minInputs = lo
        self.maxInputs = hi == -1 ? nil : hi
        self.pointer = t
        let vtable = try LayerVTable(t, library: path, name: name)
        self.vtable = vtable
        self.attributes = try AttributeSpec.read(vtable.attrSpecs, library: path, type: name)
        self.inputsDoc = vtable.inputsDoc.map { String(cString: $0) }
    }
}
