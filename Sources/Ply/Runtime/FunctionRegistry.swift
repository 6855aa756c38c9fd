import CPly
import Foundation

/// The runtime's registry of named native functions, which plugins that call user code
/// (`user_activation`) obtain through the host's `resolve_function` slot. Model text names a
/// function (`{type: user_activation, function: swish}`); the pointer itself only ever comes
/// from the program that registered it, never from text.
///
/// Entries are never removed or replaced: a layer keeps the pointers it resolved for its
/// whole life, and layers keep their runtime (and so this registry) alive. What an entry
/// owns (a Swift closure's libffi trampolines, a C caller's `user_data`) is released when the
/// runtime goes away. Libraries opened for `library:` attributes stay open as long.
final class FunctionRegistry: @unchecked Sendable {
    /// One registered function.
    struct Entry {
        let signature: UnsafeMutablePointer<CChar>
        let function: UnsafeRawPointer
        let derivative: UnsafeRawPointer?
        /// Keeps the function's owner alive (a `UserActivation`), or nil.
        let owner: AnyObject?
        /// Called once when the registry goes away (a C caller's release(user_data)).
        let release: (() -> Void)?
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var libraries: [String: UnsafeMutableRawPointer] = [:]
    /// Runtime.Options.allowUserLibraries: whether `library:` attributes may be opened.
    var allowLibraries = true

    deinit {
        for e in entries.values {
            free(e.signature)
            e.release?()
        }
        for handle in libraries.values { dlclose(handle) }
    }

    var names: [String] { lock.withLock { entries.keys.sorted() } }

    /// Registers `function` under `name`. Names are [A-Za-z0-9_.-]+; a name is registered once.
    func register(_ name: String, signature: String, function: UnsafeRawPointer, derivative: UnsafeRawPointer?,
                  owner: AnyObject? = nil, release: (() -> Void)? = nil) throws {
        guard !name.isEmpty, name.utf8.allSatisfy({ c in
            (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 95 || c == 46 || c == 45
        }) else {
            throw PlyError.invalid("function name '\(name)' must be letters, digits, '_', '.' or '-'")
        }
        guard !signature.isEmpty else { throw PlyError.invalid("function '\(name)': empty signature") }
        guard let copy = strdup(signature) else { throw PlyError.outOfMemory("copying the signature of function '\(name)'") }
        do {
            try lock.withLock {
                guard entries[name] == nil else {
                    throw PlyError.invalid("a function named '\(name)' is already registered with this runtime "
                        + "(registrations are never replaced: layers may be using it)")
                }
                entries[name] = Entry(signature: copy, function: function, derivative: derivative, owner: owner,
                                      release: release)
            }
        } catch {
            free(copy)
            throw error
        }
    }

    func entry(_ name: String) -> Entry? { lock.withLock { entries[name] } }

    /// Why a library could not be opened.
    struct OpenFailure: Error { let message: String }

    /// Opens `library` once (RTLD_NOW | RTLD_LOCAL) and returns its handle, or the error text.
    func open(_ library: String) -> Result<UnsafeMutableRawPointer, OpenFailure> {
        lock.withLock {
            if let h = libraries[library] { return .success(h) }
            if library.contains("/"), !FileManager.default.fileExists(atPath: library) {
                let cwd = library.hasPrefix("/") ? "" : "; relative to the current directory "
                    + FileManager.default.currentDirectoryPath
                return .failure(OpenFailure(message: "'\(library)' not found (no such file)\(cwd)"))
            }
            dlerror()
            guard let h = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
                return .failure(OpenFailure(message: "cannot load '\(library)': "
                    + (dlerror().map { String(cString: $0) } ?? "unknown dlopen error")))
            }
            libraries[library] = h
            return .success(h)
        }
    }
}

extension HostTable {
    /// The `resolve_function` slot of `ply_host` (ABI 1.2): see Include/ply/plugin.h.
    static let resolveFunction: @convention(c) (UnsafePointer<ply_host>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?,
                                                UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                                                UnsafeMutablePointer<(@convention(c) () -> Void)?>?,
                                                UnsafeMutablePointer<(@convention(c) () -> Void)?>?) -> ply_status = {
        host, library, name, signatureOut, fnOut, derivativeOut in
        guard let host, let name else { return fail(PLY_ERR_INVALID_ARGUMENT, "resolve_function: host or name is NULL") }
        let registry = HostTable.state(host).functions
        let wanted = String(cString: name)
        func fn(_ p: UnsafeRawPointer?) -> (@convention(c) () -> Void)? {
            p.map { unsafeBitCast($0, to: (@convention(c) () -> Void).self) }
        }
        guard let library else {
            guard let e = registry.entry(wanted) else {
                let known = registry.names
                return fail(PLY_ERR_NOT_FOUND, "no function named '\(wanted)' is registered with this runtime ("
                    + (known.isEmpty ? "none is" : "registered: \(known.joined(separator: ", "))")
                    + "); register it first: UserActivation.register(as:in:) in Swift, "
                    + "ply_runtime_register_function or ply_runtime_register_activation in C")
            }
            signatureOut?.pointee = UnsafePointer(e.signature)
            fnOut?.pointee = fn(e.function)
            derivativeOut?.pointee = fn(e.derivative)
            return PLY_OK
        }
        let path = String(cString: library)
        guard registry.allowLibraries else {
            return fail(PLY_ERR_UNSUPPORTED, "loading the library '\(path)' named by a model is switched off "
                + "(--no-user-libraries / Runtime.Options.allowUserLibraries = false); register the function "
                + "with the runtime and name it with `function:` instead")
        }
        switch registry.open(path) {
        case let .failure(why):
            return fail(PLY_ERR_NOT_FOUND, why.message)
        case let .success(handle):
            dlerror()
            guard let symbol = dlsym(handle, name) else {
                let why = dlerror().map { ": " + String(cString: $0) } ?? ""
                return fail(PLY_ERR_NOT_FOUND, "symbol '\(wanted)' not found in '\(path)'\(why)")
            }
            signatureOut?.pointee = nil
            fnOut?.pointee = fn(UnsafeRawPointer(symbol))
            derivativeOut?.pointee = nil
            return PLY_OK
        }
    }
}

extension Runtime {
    /// Registers a native function under `name`, for `user_activation` layers that name it
    /// (`{type: user_activation, function: NAME}` in a model file, `("function", .string(NAME))`
    /// in Swift). `signature` is its C signature as user_activation takes it ("float(float)",
    /// "void(const float *, float *, int64_t)", ...); `derivative` has the same signature.
    ///
    /// Both MUST stay callable until this runtime is gone (they may be called from the
    /// runtime's thread pool, several at once, unless a layer says `parallel: false`).
    /// `owner` is kept alive until then. A name is registered once per runtime.
    public func registerFunction(_ name: String, signature: String, function: UnsafeRawPointer,
                                 derivative: UnsafeRawPointer? = nil, owner: AnyObject? = nil) throws {
        try state.functions.register(name, signature: signature, function: function, derivative: derivative, owner: owner)
    }

    /// Like ``registerFunction(_:signature:function:derivative:owner:)``, with `release` called once
    /// when the runtime is gone (the C API's `release(user_data)`).
    package func registerFunction(_ name: String, signature: String, function: UnsafeRawPointer,
                                  derivative: UnsafeRawPointer?, release: (() -> Void)?) throws {
        try state.functions.register(name, signature: signature, function: function, derivative: derivative,
                                     release: release)
    }

    /// The names of the functions registered with ``registerFunction(_:signature:function:derivative:owner:)``.
    public var registeredFunctions: [String] { state.functions.names }
}
