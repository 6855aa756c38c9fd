import CPly
import Foundation
import Synchronization

/// The Ply runtime: the plugin registry, the services lent to plugins, the thread pool and
/// the seeded generator behind initialisation and dropout. Layers and models keep their
/// runtime (and so their plugin libraries) alive.
public final class Runtime: @unchecked Sendable {
    /// How a runtime is set up.
    public struct Options: Sendable {
        /// Register the built-in layer types (conv2d, batchnorm2d, ...). They come from
        /// `builtinDirectory` when that is set (or the `PLY_BUILTIN_PLUGIN_DIR` environment
        /// variable names one); else from the families linked into this program, which a
        /// package depending on Ply's `Ply` library product has; else from the shared
        /// libraries `libply_*.so` beside the executable or the library (what `ply` and the C
        /// library, `libply`, ship with).
        public var loadBuiltins = true
        /// Load the built-in layer types from the shared libraries (`libply_*`) in this
        /// directory, even when they are linked into the program too.
        public var builtinDirectory: String? = nil
        /// Also load what `PLY_PLUGIN_PATH` names (colon-separated files or directories).
        public var useEnvironment = true
        /// Seed of the generator used by `fill_uniform` (initialisation, dropout).
        public var seed: UInt64 = 1
        /// Threads lent to plugins through `parallel_for`.
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        /// Flush denormal floats (below 1.2e-38) to zero while layers and optimizers compute
        /// (x86's FTZ and DAZ modes, on the calling thread for the call's duration and on Ply's
        /// workers), as TensorFlow and XLA do on CPUs. Without it, a model that fits its batch
        /// can leave gradients and momentum buffers denormal for good, and every operation on
        /// them takes a microcode assist: the ConvNet's batch-1 training step ran 20x slower.
        /// `false` keeps IEEE gradual underflow, as PyTorch does by default; results differ
        /// only in values too small to move a weight.
        public var flushDenormals = true
        /// Where plugin log messages go (default: warnings and errors to stderr).
        public var log: @Sendable (LogLevel, String) -> Void = { level, message in
            if level >= .warning { FileHandle.standardError.write(Data("ply: \(message)\n".utf8)) }
        }
        /// Options with every default: built-ins, `PLY_PLUGIN_PATH`, seed 1, one thread per
        /// core, denormals flushed, warnings and errors to stderr, user libraries allowed.
        public init() {}
        /// Refuse attributes for layer types that declare no schema (`attr_specs`), instead of
        /// passing them unchecked with a warning (`ply --strict-attributes`).
        public var strictAttributes = false
        /// Let `user_activation` layers open the shared library a model names (`library:` +
        /// `symbol:`). Opening a library runs its code, so a model file naming one is as
        /// trusted as that library; `false` (`ply --no-user-libraries`) refuses such layers at
        /// create, and only functions registered with the runtime (`function:`) can be called.
        public var allowUserLibraries = true
        /// Checked mode: a guard zone after every buffer the host hands a plugin, verified after
        /// each call, an overrun reported with the layer and the buffer (`PluginOverrunError`).
        /// nil: as the `PLY_CHECK_PLUGINS` environment variable says (on unless unset or `0`).
        public var checkPlugins: Bool? = nil
        /// Bytes the plugins' parameters and scratch may hold in all (the host's `alloc` refuses
        /// a block past it, before allocating: `MemoryLimitError`). nil: the physical memory.
        public var memoryLimit: Int? = nil
        /// Let `infer` keep values in a blocked channel layout (NCHW16c, plugin.h's `ply_layout`)
        /// between layers that can write and read it, in evaluation mode. `false` keeps every
        /// value NCHW (outputs differ only in the order of the same sums). With `useEnvironment`,
        /// `PLY_BLOCKED_LAYOUTS=0` turns it off as well (`1` or unset leaves this value).
        public var blockedLayouts = true
    }

    let state: HostState
    let host: HostTable
    private let lock = NSLock()
    private var types: [String: LayerType] = [:]
    private var order: [String] = []

    /// Creates a runtime and loads the plugins `options` ask for.
    public init(options: Options = Options()) throws {
        _ = cply_prepare_blas()
        state = HostState(seed: options.seed, threads: options.threads, flushDenormals: options.flushDenormals,
                          logHandler: options.log)
        state.strictAttributes = options.strictAttributes
        let blockedByEnvironment = options.useEnvironment ? try Runtime.blockedLayoutsVariable() : true
        state.blockedLayouts = options.blockedLayouts && blockedByEnvironment
        if let check = options.checkPlugins { state.checkPlugins.store(check, ordering: .relaxed) }
        if let limit = options.memoryLimit { state.memoryLimit.store(max(limit, 0), ordering: .relaxed) }
        host = HostTable(state: state)
        state.functions.allowLibraries = options.allowUserLibraries
        state.lookup = { [unowned self] name in self.lock.withLock { self.types[name] } }
        try Runtime.checkCPUVariable()
        if options.loadBuiltins {
            let environment = ProcessInfo.processInfo.environment["PLY_BUILTIN_PLUGIN_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            if let dir = options.builtinDirectory ?? environment {
                let files = Runtime.sharedLibraries(in: dir, prefix: "libply_")
                if files.isEmpty {
                    throw PlyError.notFound("no built-in plugins (libply_*\(Runtime.sharedLibrarySuffix)) found in \(dir)"
                        + (options.builtinDirectory == nil ? " (PLY_BUILTIN_PLUGIN_DIR)" : " (Runtime.Options.builtinDirectory)"))
                }
                for file in files { try loadPlugin(at: file) }
            } else if !Runtime.linkedFamilies.isEmpty {
                for family in Runtime.linkedFamilies { try registerLinked(family) }
            } else {
                let dirs = Runtime.builtinDirectories()
                var found = false
                for dir in dirs {
                    let files = Runtime.sharedLibraries(in: dir, prefix: "libply_")
                    if files.isEmpty { continue }
                    found = true
                    for file in files { try loadPlugin(at: file) }
                    break
                }
                if !found {
                    throw PlyError.notFound("no built-in plugins (libply_*\(Runtime.sharedLibrarySuffix)) found in \(dirs.joined(separator: ", ")); "
                        + "build them with `swift build`, name them in PLY_PLUGIN_PATH, or depend on the `Ply` library product, "
                        + "which links them in")
                }
            }
        }
        if options.useEnvironment, let path = ProcessInfo.processInfo.environment["PLY_PLUGIN_PATH"] {
            for entry in path.split(separator: ":").map(String.init) where !entry.isEmpty {
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: entry, isDirectory: &isDir), isDir.boolValue {
                    try loadPlugins(inDirectory: entry)
                } else {
                    try loadPlugin(at: entry)
                }
            }
        }
    }

    /// Every registered layer type, in load order.
    public var layerTypes: [LayerType] { lock.withLock { order.compactMap { types[$0] } } }

    /// The layer type called `name`.
    public func layerType(named name: String) throws -> LayerType {
        guard let t = lock.withLock({ types[name] }) else {
            throw PlyError.unknownLayerType(name, known: lock.withLock { order })
        }
        return t
    }

    /// The state of the generator behind initialisation and dropout (for checkpoints).
    public var generatorState: UInt64 {
        get { state.rngState }
        set { state.rngState = newValue }
    }

    /// Threads lent to plugins.
    public var threads: Int { state.threads }

    /// Tells the layers that parameter or buffer values were written through a view taken
    /// before the last forward (`Parameter.floats` or `integers` kept and written later): layers
    /// that keep data derived from the values — batch norm folded into the conv before it, at
    /// inference — derive it again before their next forward. Taking a view, `Parameter.write`,
    /// loading weights and the optimizers do this themselves.
    public func parametersChanged() { state.parametersMayChange() }

    /// Bytes the layers of this runtime hold through the host's `alloc` and `alloc_zeroed` now
    /// (weights, data derived from them, scratch, gradients — mapped but never written ones
    /// included — with each block's header): where a model's memory goes, apart from the model's
    /// own activation buffers.
    public var layerBytes: Int { state.liveBytes.load(ordering: .relaxed) }

    /// Blocks plugins took from this runtime's host `alloc` and have not given back to its
    /// `free` (for leak checks: `ply-leak-cycles`, LeakTests).
    package var hostBlocksOutstanding: Int { state.liveAllocations.load(ordering: .relaxed) }

    /// Loads one plugin library and registers its layer types. All or nothing: when any
    /// type is invalid or its name is taken, none of the library's types is registered.
    @discardableResult
    public func loadPlugin(at path: String) throws -> [LayerType] {
        try load(path, skipNonPlugin: false) ?? []
    }

    /// Loads `path`; returns nil (having loaded nothing) for a shared library without the
    /// entry symbol when `skipNonPlugin` is set.
    private func load(_ path: String, skipNonPlugin: Bool) throws -> [LayerType]? {
        let resolved = (path as NSString).resolvingSymlinksInPath
        if lock.withLock({ types.values.contains { ($0.library.path as NSString).resolvingSymlinksInPath == resolved } }) {
            throw PlyError.plugin(path: path, reason: "is already loaded")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw PlyError.io(path: path, problem: .missing, reason: "plugin library")
        }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
            throw PlyError.plugin(path: path, reason: "cannot be loaded as a shared library: \(reason)")
        }
        guard let symbol = dlsym(handle, PLY_PLUGIN_ENTRY_SYMBOL) else {
            dlclose(handle)
            if skipNonPlugin { return nil }
            throw PlyError.plugin(path: path, reason: "does not export '\(PLY_PLUGIN_ENTRY_SYMBOL)': not a Ply plugin")
        }
        let entry = unsafeBitCast(symbol, to: ply_plugin_entry_fn.self)
        _ = ErrorSlot.current.take()
        guard let descriptor = entry(host.pointer) else {
            let why = ErrorSlot.current.take().map { ": \($0)" } ?? " (it may not support host ABI \(PLY_ABI_VERSION_MAJOR).\(PLY_ABI_VERSION_MINOR))"
            dlclose(handle)
            throw PlyError.plugin(path: path, reason: "\(PLY_PLUGIN_ENTRY_SYMBOL) returned no descriptor\(why)")
        }
        // The library object owns the handle from here on: it is closed when the last
        // layer type (and so the last layer) referring to it goes away, or on failure.
        let library = PluginLibrary(path: path, name: "", version: "", handle: handle)
        return try register(descriptor, library: library)
    }

    /// A layer family linked into this program (Sources/PlyBuiltins), with its entry.
    struct LinkedFamily: @unchecked Sendable {
        let name: String
        let entry: ply_plugin_entry_fn
    }

    /// The families linked into this program, as PlyBuiltins recorded them at load.
    static let linkedFamilies: [LinkedFamily] = {
        var families: [LinkedFamily] = []
        var index: Int32 = 0
        while true {
            var count: Int32 = 0
            guard let list = cply_linked_plugins(index, &count) else { break }
            for i in 0..<Int(count) {
                if let entry = list[i].entry, let name = list[i].name {
                    families.append(LinkedFamily(name: String(cString: name), entry: entry))
                }
            }
            index += 1
        }
        return families
    }()

    /// Registers a linked family through its entry, as `load` does for a shared library.
    private func registerLinked(_ family: LinkedFamily) throws {
        let image = unsafeBitCast(family.entry, to: UnsafeRawPointer.self)
        let where_ = cply_object_path(image).map { String(cString: $0) } ?? "this program"
        let label = "\(family.name) (linked into \(where_))"
        _ = ErrorSlot.current.take()
        guard let descriptor = family.entry(host.pointer) else {
            let why = ErrorSlot.current.take().map { ": \($0)" } ?? ""
            throw PlyError.plugin(path: label, reason: "its entry returned no descriptor\(why)")
        }
        _ = try register(descriptor, library: PluginLibrary(path: label, name: "", version: "", handle: nil))
    }

    /// The `PLY_BLOCKED_LAYOUTS` environment variable: `0` false, `1` or unset true, anything else an error.
    static func blockedLayoutsVariable() throws -> Bool {
        guard let value = ProcessInfo.processInfo.environment["PLY_BLOCKED_LAYOUTS"], !value.isEmpty else { return true }
        guard value == "0" || value == "1" else {
            throw PlyError.invalid("PLY_BLOCKED_LAYOUTS=\(value): expected 0 (every value NCHW) or 1 (blocked where layers take it)")
        }
        return value == "1"
    }

    /// Checks the `PLY_CPU` environment variable, which plugins read to take a lower kernel
    /// path than the CPU supports: `generic` (portable C), `avx2` or `avx512`. A value they
    /// could not honour is an error here rather than a silent fallback there.
    static func checkCPUVariable() throws {
        guard let value = ProcessInfo.processInfo.environment["PLY_CPU"], !value.isEmpty else { return }
        let names = ["generic", "avx2", "avx512"]
        let wanted = cply_cpu_parse(value)
        guard wanted >= 0 else {
            throw PlyError.invalid("PLY_CPU=\(value): expected one of \(names.joined(separator: ", ")) (or unset for the CPU's best)")
        }
        let detected = cply_cpu_detected()
        guard wanted <= detected else {
            throw PlyError.invalid("PLY_CPU=\(value) names kernels this CPU cannot run: it supports up to \(names[Int(detected)])")
        }
    }

    /// Loads every `*.so` in `directory`. Libraries without the entry symbol are skipped
    /// (logged as info); a library that fails to load or register (wrong ABI, a bad
    /// descriptor, a type name already taken, ...) is skipped with a warning naming it and the
    /// reason, and the scan goes on: one bad file does not refuse the directory. Only a
    /// missing directory is an error.
    @discardableResult
    public func loadPlugins(inDirectory directory: String) throws -> [LayerType] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw PlyError.io(path: directory, problem: .missing, reason: "plugin directory")
        }
        var loaded: [LayerType] = []
        for file in Runtime.sharedLibraries(in: directory, prefix: "") {
            do {
                if let types = try load(file, skipNonPlugin: true) {
                    loaded += types
                } else {
                    state.logHandler(.info, "skipping \(file): not a Ply plugin (no \(PLY_PLUGIN_ENTRY_SYMBOL))")
                }
            } catch {
                state.logHandler(.warning, "skipping \(file): \(error)")
            }
        }
        return loaded
    }

    private func register(_ d: UnsafePointer<ply_plugin>, library loaded: PluginLibrary) throws -> [LayerType] {
        let path = loaded.path
        // The version first: struct_size and abi_version sit at the same place in every version.
        let major = d.pointee.abi_version >> 16, minor = d.pointee.abi_version & 0xFFFF
        guard major == UInt32(PLY_ABI_VERSION_MAJOR) else {
            throw PlyError.abi(path: path, reason: "built for Ply ABI \(major).\(minor); "
                + "this host speaks ABI \(PLY_ABI_VERSION_MAJOR).\(PLY_ABI_VERSION_MINOR)")
        }
        let needed = (MemoryLayout<ply_plugin>.offset(of: \.types) ?? 0) + MemoryLayout<UnsafeRawPointer>.size
        guard Int(d.pointee.struct_size) >= needed else {
            throw PlyError.abi(path: path, reason: "plugin descriptor declares struct_size \(d.pointee.struct_size); "
                + "the host needs at least \(needed) bytes")
        }
        guard d.pointee.type_count > 0, let list = d.pointee.types else {
            throw PlyError.plugin(path: path, reason: "plugin descriptor lists no layer types")
        }
        loaded.name = d.pointee.name.map { String(cString: $0) } ?? "unnamed"
        loaded.version = d.pointee.version.map { String(cString: $0) } ?? "?"
        let library = loaded
        var newTypes: [LayerType] = []
        for i in 0..<Int(d.pointee.type_count) {
            guard let t = list[i] else {
                throw PlyError.plugin(path: path, reason: "layer type entry \(i) is NULL")
            }
            newTypes.append(try LayerType(t, library: library))
        }
        try lock.withLock {
            var seen = Set<String>()
            for t in newTypes {
                if let existing = types[t.name] {
                    throw PlyError.duplicateLayerType(name: t.name, first: existing.library.path, second: path)
                }
                guard seen.insert(t.name).inserted else {
                    throw PlyError.plugin(path: path, reason: "layer type '\(t.name)' is listed twice")
                }
            }
            for t in newTypes {
                types[t.name] = t
                order.append(t.name)
            }
        }
        return newTypes
    }

    /// Directories searched for built-in plugins: next to the executable, then `../lib/ply`,
    /// then next to the library holding this code and its `ply/` subdirectory.
    static func builtinDirectories() -> [String] {
        var dirs: [String] = []
        let exe = Bundle.main.executablePath
            ?? (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments.first ?? "."
        let exeDir = (exe as NSString).deletingLastPathComponent
        dirs.append(exeDir)
        dirs.append((exeDir as NSString).appendingPathComponent("../lib/ply"))
        if let object = cply_object_path(#dsohandle) {
            let libDir = (String(cString: object) as NSString).deletingLastPathComponent
            if !dirs.contains(libDir) { dirs.append(libDir) }
            // An installed library ($PREFIX/lib/libply.so) keeps its plugins in $PREFIX/lib/ply.
            dirs.append((libDir as NSString).appendingPathComponent("ply"))
        }
        return dirs
    }

    /// The file name suffix of shared libraries on this platform.
    #if canImport(Darwin)
    static let sharedLibrarySuffix = ".dylib"
    #else
    static let sharedLibrarySuffix = ".so"
    #endif

    static func sharedLibraries(in directory: String, prefix: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(sharedLibrarySuffix) }.sorted()
            .map { (directory as NSString).appendingPathComponent($0) }
    }
}
