import CPlyAPI
import Foundation
import Ply

/// A `ply_runtime`: the Swift runtime plus the C strings handed out for its layer types.
final class RuntimeHandle: Handle {
    override class var cName: String { "ply_runtime" }
    let runtime: Runtime
    private let lock = NSLock()
    /// name, doc, library path of each type already described; freed with the handle.
    private var strings: [String: (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<CChar>)] = [:]

    init(runtime: Runtime) { self.runtime = runtime }

    deinit {
        for (a, b, c) in strings.values { free(a); free(b); free(c) }
    }

    func cStrings(for t: LayerType) -> (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<CChar>)? {
        lock.withLock {
            if let s = strings[t.name] { return s }
            guard let a = strdup(t.name), let b = strdup(t.doc), let c = strdup(t.library.path) else { return nil }
            strings[t.name] = (a, b, c)
            return (a, b, c)
        }
    }
}

/// Carries a C log callback into the runtime's `@Sendable` log handler.
struct LogTarget: @unchecked Sendable {
    let fn: ply_log_fn
    let userData: UnsafeMutableRawPointer?
    let minimum: Int32
}

@_cdecl("ply_runtime_create")
public func capi_runtime_create(_ options: UnsafePointer<ply_runtime_options>?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let out = try checkOut(out, "out")
        var o = Runtime.Options()
        var minimum = Int32(PLY_LOG_WARNING.rawValue)
        var log: ply_log_fn?
        var userData: UnsafeMutableRawPointer?
        if let p = try checkStruct(options, "options") {
            o.seed = field(p, \.seed, 1)
            let threads = field(p, \.threads, 0)
            guard threads >= 0 else { throw CAPIError(Status.invalidArgument, "options->threads is \(threads); use 0 for one per processor or a positive count") }
            if threads > 0 { o.threads = Int(threads) }
            o.loadBuiltins = field(p, \.load_builtins, 1) != 0
            o.useEnvironment = field(p, \.use_environment, 1) != 0
            minimum = field(p, \.log_level, minimum)
            log = field(p, \.log, nil)
            userData = field(p, \.log_user_data, nil)
            o.flushDenormals = field(p, \.flush_denormals, 1) != 0
            o.allowUserLibraries = field(p, \.no_user_libraries, 0) == 0
        }
        let floor = minimum
        if let log {
            let target = LogTarget(fn: log, userData: userData, minimum: floor)
            o.log = { level, message in
                guard level.rawValue >= target.minimum else { return }
                message.withCString { target.fn(target.userData, level.rawValue, $0) }
            }
        } else {
            o.log = { level, message in
                guard level.rawValue >= floor else { return }
                FileHandle.standardError.write(Data("ply: \(message)\n".utf8))
            }
        }
        let runtime = try Runtime(options: o)
        out.pointee = retain(RuntimeHandle(runtime: runtime))
    }
}

@_cdecl("ply_runtime_destroy")
public func capi_runtime_destroy(_ runtime: OpaquePointer?) { release(runtime) }

@_cdecl("ply_runtime_load_plugin")
public func capi_runtime_load_plugin(_ runtime: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let r = try object(runtime, RuntimeHandle.self, "runtime")
        try r.runtime.loadPlugin(at: string(path, "path"))
    }
}

@_cdecl("ply_runtime_load_plugin_dir")
public func capi_runtime_load_plugin_dir(_ runtime: OpaquePointer?, _ directory: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let r = try object(runtime, RuntimeHandle.self, "runtime")
        try r.runtime.loadPlugins(inDirectory: string(directory, "directory"))
    }
}

@_cdecl("ply_runtime_layer_type_count")
public func capi_runtime_layer_type_count(_ runtime: OpaquePointer?, _ count: UnsafeMutablePointer<Int32>?) -> Int32 {
    boundary {
        let r = try object(runtime, RuntimeHandle.self, "runtime")
        let out = try checkOut(count, "count_out")
        out.pointee = Int32(r.runtime.layerTypes.count)
    }
}

@_cdecl("ply_runtime_layer_type")
public func capi_runtime_layer_type(_ runtime: OpaquePointer?, _ index: Int32,
                                    _ info: UnsafeMutablePointer<ply_layer_type_info>?) -> Int32 {
    boundary {
        let r = try object(runtime, RuntimeHandle.self, "runtime")
        let info = try checkOut(info, "info")
        guard UnsafeRawPointer(info).load(as: UInt32.self) >= 8 else {
            throw CAPIError(Status.abi, "info->struct_size must be sizeof(ply_layer_type_info)")
        }
        let types = r.runtime.layerTypes
        guard index >= 0, Int(index) < types.count else {
            throw CAPIError(Status.invalidArgument, "layer type index \(index) is out of range 0..<\(types.count)")
        }
        let t = types[Int(index)]
        guard let (name, doc, path) = r.cStrings(for: t) else { throw CAPIError(Status.outOfMemory, "out of memory") }
        setField(info, \.name, UnsafePointer(name))
        setField(info, \.doc, UnsafePointer(doc))
        setField(info, \.library_path, UnsafePointer(path))
        setField(info, \.min_inputs, Int32(t.minInputs))
        setField(info, \.max_inputs, Int32(t.maxInputs ?? -1))
        setField(info, \.differentiable, t.differentiable ? 1 : 0)
    }
}
