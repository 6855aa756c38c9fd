import CPly
import Foundation
import Testing
@testable import Ply

/// Broken plugins and misused layers: each failure must be reported as an error that names
/// where it happened and what was wrong, and must leave the host working (the same runtime
/// still creates and runs a built-in layer afterwards). The broken plugins are C sources in
/// Fixtures/badplugins, compiled with `cc` per test into a directory of the test's own.
@Suite struct BadPluginTests {
    /// Loads `path` into `runtime` expecting a `.plugin` error about that path; returns the reason.
    func pluginFailure(_ runtime: Runtime, _ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let error = try #require(throws: PlyError.self, sourceLocation: sourceLocation) { try runtime.loadPlugin(at: path) }
        let errorPath: String, reason: String
        switch error {
        case let .plugin(p, r), let .abi(p, r): (errorPath, reason) = (p, r)
        default:
            Issue.record("expected PlyError.plugin or .abi, got \(error)", sourceLocation: sourceLocation)
            return ""
        }
        #expect(errorPath == path, sourceLocation: sourceLocation)
        #expect(error.description.contains(path), "message names the library: \(error)", sourceLocation: sourceLocation)
        return reason
    }

    /// The registry is unchanged by a failed load: only the built-in types are there.
    func expectRegistryUnchanged(_ runtime: Runtime, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let builtins = try isolatedRuntime().layerTypes.map(\.name)
        #expect(runtime.layerTypes.map(\.name) == builtins, sourceLocation: sourceLocation)
    }

    // MARK: - Loading

    @Test func missingPath() throws {
        let runtime = try isolatedRuntime()
        let dir = try CCompiler.temporaryDirectory("missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("libdoes_not_exist.so").path
        // A missing file is an I/O error (PLY_ERR_IO through the C API), not a bad plugin.
        let error = try #require(throws: PlyError.self) { try runtime.loadPlugin(at: path) }
        #expect(error == .io(path: path, problem: .missing, reason: "plugin library"), "\(error)")
        #expect(error.description.contains(path) && error.description.contains("no such file"), "\(error)")

        let nowhere = dir.appendingPathComponent("nowhere").path
        let dirError = try #require(throws: PlyError.self) { try runtime.loadPlugins(inDirectory: nowhere) }
        #expect(dirError == .io(path: nowhere, problem: .missing, reason: "plugin directory"), "\(dirError)")
        #expect(dirError.description.contains("nowhere") && dirError.description.contains("no such file or directory"),
                "\(dirError)")
        try expectRegistryUnchanged(runtime)
        try expectHostSurvives(runtime)
    }

    @Test func textFileIsNotALibrary() throws {
        let runtime = try isolatedRuntime()
        let dir = try CCompiler.temporaryDirectory("text")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("libnotes.so").path
        try "These are notes, not machine code.\n".write(toFile: path, atomically: true, encoding: .utf8)
        let reason = try pluginFailure(runtime, path)
        #expect(reason.contains("cannot be loaded as a shared library"), "\(reason)")
        // dlopen's own explanation is passed on (e.g. "invalid ELF header" or "file too short").
        #expect(reason.count > "cannot be loaded as a shared library: ".count, "\(reason)")
        try expectRegistryUnchanged(runtime)
        try expectHostSurvives(runtime)
    }

    @Test func libraryWithoutEntrySymbol() throws {
        let log = LogRecorder()
        let runtime = try isolatedRuntime(log: log)
        let dir = try CCompiler.temporaryDirectory("noentry")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try CCompiler.compileBadPlugin("no_entry", into: dir)
        let reason = try pluginFailure(runtime, path)
        #expect(reason.contains("ply_plugin_entry") && reason.contains("not a Ply plugin"), "\(reason)")

        // In a directory scan such a library is skipped (and logged), not an error.
        let loaded = try runtime.loadPlugins(inDirectory: dir.path)
        #expect(loaded.isEmpty)
        #expect(log.messages.contains { $0.contains(path) && $0.contains("not a Ply plugin") }, "\(log.messages)")
        try expectRegistryUnchanged(runtime)
        try expectHostSurvives(runtime)
    }

    /// A directory with one bad library (another ABI major) beside a good one: the bad one is
    /// skipped with a warning naming it and the reason, the good one is loaded (README:
    /// "the host goes on"); through the C API the call succeeds too.
    @Test func directoryScanSkipsABadLibrary() throws {
        let log = LogRecorder()
        let runtime = try isolatedRuntime(log: log)
        let dir = try CCompiler.temporaryDirectory("dirskip")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = try CCompiler.compileBadPlugin("abi_major2", into: dir, library: "a_bad")
        try CCompiler.compileBadPlugin("duplicate", into: dir, library: "b_good", extraFlags: ["-DSCALE=2.0f"])
        try "not machine code\n".write(toFile: dir.appendingPathComponent("libc_text.so").path, atomically: true, encoding: .utf8)

        let loaded = try runtime.loadPlugins(inDirectory: dir.path)
        #expect(loaded.map(\.name) == ["acme_scale"])
        #expect(log.messages.contains { $0.contains(bad) && $0.contains("skipping") && $0.contains("ABI 2.3") }, "\(log.messages)")
        #expect(log.messages.contains { $0.contains("libc_text.so") && $0.contains("cannot be loaded as a shared library") },
                "\(log.messages)")
        #expect(throws: PlyError.self) { try runtime.layerType(named: "abi_major2_scale") }
        #expect(try Layer("acme_scale", runtime: runtime).forward([try Tensor(shape: [2], data: [1, -2])]).data == [2, -4])
        // Scanning again: the good library is already loaded, which is a skip too, not an error.
        #expect(try runtime.loadPlugins(inDirectory: dir.path).isEmpty)
        try expectHostSurvives(runtime)
    }

    @Test func entryReturnsNullSilently() throws {
        let runtime = try isolatedRuntime()
        let dir = try CCompiler.temporaryDirectory("entrynull")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try CCompiler.compileBadPlugin("entry_null", into: dir)
        let reason = try pluginFailure(runtime, path)
        #expect(reason.contains("returned no descriptor"), "\(reason)")
        // With no message from the plugin, the runtime suggests the likely cause.
        #expect(reason.contains("ABI \(PLY_ABI_VERSION_MAJOR).\(PLY_ABI_VERSION_MINOR)"), "\(reason)")
        try expectRegistryUnchanged(runtime)
        try expectHostSurvives(runtime)
    }

    @Test func entryReturnsNullWithMessage() throws {
        let runtime = try isolatedRuntime()
        let dir = try CCompiler.temporaryDirectory("entrynullmsg")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try CCompiler.compileBadPlugin("entry_null_message", into: dir)
        let reason = try pluginFailure(runtime, path)
        #expect(reason.contains("returned no descriptor"), "\(reason)")
        #expect(reason.contains("needs an accelerator and found none"), "plugin's message relayed: \(reason)")
        try expectRegistryUnchanged(runtime)
        try expectHostSurvives(runtime)
    }

    @Test func otherABIMajorVersion() throws {
        let runtime = try isolatedRuntime()
        let dir = try CCompiler.temporaryDirectory("abi2")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try CCompiler.compileBadPlugin("abi_major2", into: dir)
        let reason = try pluginFailure(runtime, path)
        // Both versions are named.
        #expect(reason.contains("ABI 2.3") && reason.contains("ABI \(PLY_ABI_VERSION_MAJOR).\(PLY_ABI_VERSION_MINOR)"), "\(reason)")
        #expect(throws: PlyError.self) { try runtime.layerType(named: "abi_major2_scale") }
        try expectRegistryUnchanged(runtime)
        try expectHostSurvives(runtime)
    }

    @Test func descriptorTooSmall() throws {
        let runtime = try isolatedRuntime()
        let dir = try CCompiler.temporaryDirectory("smalldesc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try CCompiler.compileBadPlugin("small_descriptor", into: dir)
        let reason = try pluginFailure(runtime, path)
        let declared = MemoryLayout<ply_plugin>.offset(of: \.type_count)!
        #expect(reason.contains("descriptor") && reason.contains("struct_size \(declared)")
            && reason.contains("at least \(MemoryLayout<ply_plugin>.size)"), "\(reason)")
        try expectRegistryUnchanged(runtime)
        try expectHostSurvives(runtime)
    }

    @Test func layerTypeTooSmallForRequiredCallback() throws {
        let runtime = try isolatedRuntime()
        let dir = try CCompiler.temporaryDirectory("smalltype")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try CCompiler.compileBadPlugin("small_layer_type", into: dir)
        let reason = try pluginFailure(runtime, path)
        let declared = MemoryLayout<ply_layer_type>.offset(of: \.forward)!
        #expect(reason.contains("'short_type'") && reason.contains("struct_size \(declared)")
            && reason.contains("'forward'"), "\(reason)")
        #expect(throws: PlyError.self) { try runtime.layerType(named: "short_type") }
        try expectRegistryUnchanged(runtime)
        try expectHostSurvives(runtime)
    }

    @Test func nullRequiredCallback() throws {
        let runtime = try isolatedRuntime()
        let dir = try CCompiler.temporaryDirectory("nullfwd")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try CCompiler.compileBadPlugin("null_forward", into: dir)
        let reason = try pluginFailure(runtime, path)
        #expect(reason.contains("'no_forward'") && reason.contains("'forward'") && reason.contains("NULL"), "\(reason)")
        try expectRegistryUnchanged(runtime)
        try expectHostSurvives(runtime)
    }

    // MARK: - Name collisions

    @Test func twoLibrariesClaimTheSameType() throws {
        let runtime = try isolatedRuntime()
        let dir = try CCompiler.temporaryDirectory("dup")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try CCompiler.compileBadPlugin("duplicate", into: dir, library: "dup_first", extraFlags: ["-DSCALE=2.0f"])
        let second = try CCompiler.compileBadPlugin("duplicate", into: dir, library: "dup_second", extraFlags: ["-DSCALE=3.0f"])

        let types = try runtime.loadPlugin(at: first)
        #expect(types.map(\.name) == ["acme_scale"])
        let error = try #require(throws: PlyError.self) { try runtime.loadPlugin(at: second) }
        #expect(error == .duplicateLayerType(name: "acme_scale", first: first, second: second))
        #expect(error.description.contains(first) && error.description.contains(second)
            && error.description.contains("'acme_scale'"), "\(error)")

        // The first registration stands and keeps working (it scales by 2, the refused one by 3).
        let type = try runtime.layerType(named: "acme_scale")
        #expect(type.library.path == first)
        let layer = try Layer("acme_scale", runtime: runtime)
        let input = try Tensor(shape: [2, 2], data: [1, -2, 0.5, 4])
        #expect(try layer.forward([input]).data == [2, -4, 1, 8])
        #expect(runtime.layerTypes.filter { $0.name == "acme_scale" }.count == 1)
        try expectHostSurvives(runtime)
    }

    @Test func libraryClaimsABuiltinName() throws {
        let runtime = try isolatedRuntime()
        let dir = try CCompiler.temporaryDirectory("clash")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try CCompiler.compileBadPlugin("builtin_clash", into: dir)
        let builtin = try runtime.layerType(named: "relu").library.path

        let error = try #require(throws: PlyError.self) { try runtime.loadPlugin(at: path) }
        #expect(error == .duplicateLayerType(name: "relu", first: builtin, second: path))
        #expect(error.description.contains(builtin) && error.description.contains(path), "\(error)")
        // All or nothing: the library's other, unclashing type is not registered either.
        #expect(throws: PlyError.self) { try runtime.layerType(named: "clash_own_type") }
        #expect(try runtime.layerType(named: "relu").library.path == builtin)
        try expectRegistryUnchanged(runtime)
        try expectHostSurvives(runtime)

        // Without the built-ins the same library loads, and its relu is the one used.
        let bare = try isolatedRuntime(builtins: false)
        #expect(try bare.loadPlugin(at: path).map(\.name) == ["clash_own_type", "relu"])
        #expect(try Layer("relu", runtime: bare).forward([try Tensor(shape: [2], data: [-1, 3])]).data == [-2, 6])
    }

    // MARK: - Layer creation and shapes

    @Test func createFailsWithItsOwnMessage() throws {
        let runtime = try isolatedRuntime()
        let dir = try CCompiler.temporaryDirectory("create")
        defer { try? FileManager.default.removeItem(at: dir) }
        try runtime.loadPlugin(at: CCompiler.compileBadPlugin("create_fails", into: dir))

        let error = try #require(throws: PlyError.self) { try Layer("picky", [("mode", .string("lenient"))], runtime: runtime) }
        #expect(error == .layer(type: "picky", call: "create", status: Int32(PLY_ERR_INVALID_ARGUMENT.rawValue),
                                message: "picky: mode must be 'strict' (got 'lenient')"))
        #expect(error.description.contains("picky.create failed (invalid argument)"), "\(error)")

        let missing = try #require(throws: PlyError.self) { try Layer("picky", runtime: runtime) }
        #expect(missing.description.contains("missing attribute 'mode'") && missing.description.contains("not found"), "\(missing)")

        // The host's own attribute message, for a wrong kind, reaches the caller too.
        let wrongKind = try #require(throws: PlyError.self) { try Layer("picky", [("mode", .int(1))], runtime: runtime) }
        #expect(wrongKind.description.contains("'mode'") && wrongKind.description.contains("must be a string"), "\(wrongKind)")

        // The type itself is fine: a valid create works, and so does the host.
        let layer = try Layer("picky", [("mode", .string("strict"))], runtime: runtime)
        #expect(try layer.forward([try Tensor(shape: [1], data: [1.5])]).data == [3])
        try expectHostSurvives(runtime)
    }

    static let convAttributes: Attributes = [("in_channels", .int(3)), ("out_channels", .int(4)), ("kernel_size", .int(3))]

    /// The host checks attributes against conv2d's schema (ABI 1.2) before create: a value of
    /// the wrong kind is a typed error naming the attribute, what it takes and what it got.
    @Test func builtinWrongAttributeType() throws {
        let runtime = try isolatedRuntime()
        var attrs = Self.convAttributes
        attrs[2] = ("kernel_size", .string("three"))
        let error = try requireAttributeProblem { try Layer("conv2d", attrs, runtime: runtime) }
        guard case .wrongKind = error.kind else {
            Issue.record("expected a wrong-kind error, got \(error)")
            return
        }
        #expect(error.type == "conv2d" && error.name == "kernel_size")
        #expect(error.reason.contains("'kernel_size'") && error.reason.contains("a string"), "\(error.reason)")

        let float = try requireAttributeProblem {
            try Layer("conv2d", [("in_channels", .float(3.5)), ("out_channels", .int(4)), ("kernel_size", .int(3))], runtime: runtime)
        }
        #expect(float.description.contains("'in_channels'") && float.description.contains("a float"), "\(float)")
        try expectHostSurvives(runtime)
    }

    @Test func builtinMissingAttribute() throws {
        let runtime = try isolatedRuntime()
        let error = try requireAttributeProblem {
            try Layer("conv2d", Array(Self.convAttributes.dropFirst()), runtime: runtime)
        }
        #expect(error.kind == .missing && error.type == "conv2d" && error.name == "in_channels", "\(error)")
        #expect(error.reason.contains("in_channels") && error.reason.contains("missing"), "\(error.reason)")

        let unknown = try #require(throws: PlyError.self) { try Layer("conv3d", runtime: runtime) }
        #expect(unknown.description.contains("'conv3d'") && unknown.description.contains("conv2d"), "\(unknown)")
        try expectHostSurvives(runtime)
    }

    @Test func builtinRejectsInputShape() throws {
        let runtime = try isolatedRuntime()
        let conv = try Layer("conv2d", Self.convAttributes, runtime: runtime)
        let error = try #require(throws: PlyError.self) { try conv.outputShape(for: [[1, 1, 8, 8]]) }
        guard case let .layer(type, call, status, message) = error else {
            Issue.record("expected PlyError.layer, got \(error)")
            return
        }
        #expect(type == "conv2d" && call == "infer_shape" && status == Int32(PLY_ERR_SHAPE.rawValue))
        // Names the expected and the actual channel count.
        #expect(message.contains("channels") && message.contains("is 1") && message.contains("in_channels=3"), "\(message)")
        // forward checks the shape before touching memory.
        #expect(throws: PlyError.self) { try conv.forward([Tensor(shape: [1, 1, 8, 8])]) }
        // The layer is still usable with a fitting input.
        #expect(try conv.outputShape(for: [[2, 3, 8, 8]]) == [2, 4, 6, 6])
        try expectHostSurvives(runtime)
    }

    @Test func modelShapePlanningNamesTheNode() throws {
        let runtime = try isolatedRuntime()
        let model = Model(runtime: runtime)
        try model.add("stem", "conv2d", Self.convAttributes)
        try model.add("act", "relu")
        let error = try #require(throws: PlyError.self) { try model.forward(Tensor(shape: [1, 1, 8, 8])) }
        #expect(error.description.contains("node 'stem'") && error.description.contains("in_channels=3"), "\(error)")
        let planning = try #require(throws: PlyError.self) { try model.shapes(for: [1, 1, 8, 8]) }
        #expect(planning.description.contains("node 'stem' (conv2d)"), "\(planning)")
        // The model recovers with an input it can take.
        #expect(try model.forward(Tensor(shape: [1, 3, 8, 8])).shape == [1, 4, 6, 6])
        try expectHostSurvives(runtime)
    }
}
