import Foundation
import Testing
@testable import Ply

/// Issue #15 item 9 (checked mode: a plugin writing past a buffer the host handed it is an
/// error naming the node, the layer type and the buffer; without the mode nothing is
/// checked) and item 4's memory limit (a layer whose parameters cannot fit is refused with
/// the size it would need, before allocating). The plugin is Fixtures/checkedplugins/overrun.c.
@Suite struct CheckedPluginTests {
    static func overrunRuntime(_ tag: String) throws -> (runtime: Runtime, directory: URL) {
        let dir = try CCompiler.temporaryDirectory(tag)
        let library = try CCompiler.compile(fixtures.appendingPathComponent("checkedplugins/overrun.c"),
                                            to: dir.appendingPathComponent("liboverrun.so"))
        let runtime = try isolatedRuntime()
        #expect(try runtime.loadPlugin(at: library).map(\.name) == ["overrun"])
        return (runtime, dir)
    }

    /// linear(4→3) → overrun(where) → linear(3→2).
    static func model(_ runtime: Runtime, where fault: Int, bytes: Int = 4) throws -> Model {
        let model = Model(runtime: runtime)
        try model.add("fc1", "linear", [("in_features", .int(4)), ("out_features", .int(3))])
        try model.add("spill", "overrun", [("where", .int(fault)), ("bytes", .int(bytes))])
        try model.add("fc2", "linear", [("in_features", .int(3)), ("out_features", .int(2))])
        return model
    }

    static let input = try! Tensor(shape: [2, 4], data: (0..<8).map { Float($0) / 8 })

    /// Forward, then backward with a gradient of ones.
    static func step(_ model: Model) throws {
        let out = try model.forward(input)
        let ones = [Float](repeating: 1, count: out.data.count)
        try ones.withUnsafeBufferPointer { _ = try model.backward($0) }
    }

    @Test(arguments: [
        (1, "forward", "its output [2, 3]"),
        (2, "backward", "the gradient of its input 0 ('fc1') [2, 3]"),
        (3, "forward", "a 24-byte block from the host's alloc (freed during the call)"),
        (4, "forward", "a 96-byte block from the host's alloc"),
    ])
    func overrunIsCaughtInCheckedMode(fault: Int, call: String, buffer: String) throws {
        let (runtime, dir) = try Self.overrunRuntime("checked-\(fault)")
        defer { try? FileManager.default.removeItem(at: dir) }
        runtime.checkPlugins = true
        let model = try Self.model(runtime, where: fault)
        let error = #expect(throws: PluginOverrunError.self) { try Self.step(model) }
        #expect(error == PluginOverrunError(node: "spill", layerType: "overrun", call: call, buffer: buffer))
        #expect(error?.description.contains("layer 'spill' (overrun) wrote past the end of \(buffer) in \(call)") == true)

        // A well-behaved plugin passes in checked mode, forward and backward.
        let clean = try Self.model(runtime, where: 0)
        try Self.step(clean)
        try Self.input.data.withUnsafeBufferPointer { _ = try clean.infer($0, shape: Self.input.shape) }
    }

    /// Without the mode, nothing is checked: the same overruns go unreported (the bytes land
    /// in the guard room every buffer has, so nothing else is harmed).
    @Test(arguments: [1, 2, 3, 4])
    func withoutCheckedModeNothingIsChecked(fault: Int) throws {
        let (runtime, dir) = try Self.overrunRuntime("unchecked-\(fault)")
        defer { try? FileManager.default.removeItem(at: dir) }
        runtime.checkPlugins = false
        let model = try Self.model(runtime, where: fault)
        try Self.step(model)
    }

    /// `infer` checks its pooled buffers too.
    @Test func inferIsChecked() throws {
        let (runtime, dir) = try Self.overrunRuntime("checked-infer")
        defer { try? FileManager.default.removeItem(at: dir) }
        runtime.checkPlugins = true
        let model = try Self.model(runtime, where: 1, bytes: 1)
        let error = #expect(throws: PluginOverrunError.self) {
            try Self.input.data.withUnsafeBufferPointer { _ = try model.infer($0, shape: Self.input.shape) }
        }
        #expect(error?.node == "spill")
        #expect(error?.buffer == "its output [2, 3]")
    }

    /// PLY_CHECK_PLUGINS: set and not `0` turns the mode on (the variable itself is not
    /// changed here: other tests create runtimes in parallel).
    /// The convenience API (`Layer.forward([Tensor])`, `Layer.backward(inputs:…)`) is checked too.
    @Test func convenienceAPIIsChecked() throws {
        let (runtime, dir) = try Self.overrunRuntime("checked-convenience")
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let forwardSpill = try Layer("overrun", [("where", .int(1))], runtime: runtime)
        let backwardSpill = try Layer("overrun", [("where", .int(2))], runtime: runtime)
        runtime.checkPlugins = false
        #expect(try forwardSpill.forward([x]).data == x.data)
        _ = try backwardSpill.backward(inputs: [x], output: x, gradOutput: x)
        runtime.checkPlugins = true
        #expect(throws: PluginOverrunError(node: nil, layerType: "overrun", call: "forward", buffer: "its output [2, 3]")) {
            _ = try forwardSpill.forward([x])
        }
        #expect(throws: PluginOverrunError(node: nil, layerType: "overrun", call: "backward",
                                           buffer: "the gradient of its input 0 [2, 3]")) {
            _ = try backwardSpill.backward(inputs: [x], output: x, gradOutput: x)
        }
        #expect(try backwardSpill.forward([x]).data == x.data)
    }

    @Test func environmentVariableTurnsTheModeOn() {
        #expect(GuardZone.isOn("1"))
        #expect(GuardZone.isOn("yes"))
        #expect(!GuardZone.isOn("0"))
        #expect(!GuardZone.isOn(""))
        #expect(!GuardZone.isOn(nil))
    }

    // MARK: - Memory limit

    /// linear 784 → 5,000,000 (31 GB of weights and gradients) is refused with the size it
    /// needs before anything is allocated, whatever the machine (the limit is set below it).
    @Test func layerThatCannotFitIsRefusedBeforeAllocating() throws {
        let runtime = try isolatedRuntime()
        runtime.memoryLimit = 1 << 30
        let before = runtime.hostBlocksOutstanding
        let error = #expect(throws: MemoryLimitError.self) {
            _ = try Layer("linear", [("in_features", .int(784)), ("out_features", .int(5_000_000))], runtime: runtime)
        }
        #expect(error?.layerType == "linear")
        #expect(error?.call == "create")
        #expect(error?.requestedBytes == 784 * 5_000_000 * 4)
        #expect(error?.limitBytes == 1 << 30)
        #expect(error?.description.contains("15.7 GB") == true)
        #expect(runtime.hostBlocksOutstanding == before)

        // Through a model file, the error names the line.
        let text = "layers:\n  - {type: linear, in_features: 784, out_features: 5000000}\n"
        let fileError = #expect(throws: ModelFileError.self) { _ = try ModelFile(text: text, source: "big.yaml").build(runtime: runtime) }
        #expect(fileError?.kind == .limit)
        #expect(fileError?.line == 2)
        #expect(fileError?.description.contains("needs at least") == true)

        // The default limit is physical memory; a small layer is fine.
        let small = try isolatedRuntime()
        #expect(small.memoryLimit == Int(ProcessInfo.processInfo.physicalMemory))
        _ = try Layer("linear", [("in_features", .int(784)), ("out_features", .int(10))], runtime: small)
    }
}
