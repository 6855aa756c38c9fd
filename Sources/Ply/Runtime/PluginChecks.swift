import Foundation
import Synchronization

/// A layer asked the host for more memory than the machine has: the request is refused
/// before anything is allocated (a `linear` of 784 → 5,000,000 wants 31 GB for its weights
/// and their gradients). `requestedBytes` is the refused block, `heldBytes` what the
/// runtime's layers already held, `limitBytes` the limit (`Runtime.memoryLimit`: physical
/// memory by default).
public struct MemoryLimitError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The layer type whose call asked.
    public let layerType: String
    /// The plugin call (`create`, `forward`, ...).
    public let call: String
    /// The block refused.
    public let requestedBytes: Int
    /// What the runtime's layers held at the time.
    public let heldBytes: Int
    /// The limit the two together would pass.
    public let limitBytes: Int
    /// What the plugin said on failing (its own words).
    public let pluginMessage: String

    /// At least this much memory would be needed.
    public var neededBytes: Int { heldBytes.addingReportingOverflow(requestedBytes).overflow ? Int.max : heldBytes + requestedBytes }

    /// The message in words.
    public var description: String {
        "layer '\(layerType)' (\(call)) needs at least \(MemoryLimitError.size(neededBytes, exact: true)): "
            + "\(MemoryLimitError.size(requestedBytes)) more, with \(MemoryLimitError.size(heldBytes)) already held by the layers, "
            + "is more than the memory limit of \(MemoryLimitError.size(limitBytes)); refused before allocating (\(pluginMessage))"
    }

    /// `bytes` in decimal units (`15.7 GB`), with the exact count when `exact`.
    static func size(_ bytes: Int, exact: Bool = false) -> String {
        let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
        var value = Double(bytes), unit = 0
        while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
        if unit == 0 { return "\(bytes) bytes" }
        let rounded = "\((value * 10).rounded() / 10) \(units[unit])"
        return exact ? "\(rounded) (\(bytes) bytes)" : rounded
    }
}

/// Checked mode (`PLY_CHECK_PLUGINS=1`, or `Runtime.checkPlugins`) found that a plugin
/// wrote past the end of a buffer the host handed it: the guard zone of `GuardZone.bytes`
/// after the buffer was changed by the call.
public struct PluginOverrunError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The model node whose layer made the call (nil outside a model).
    public let node: String?
    /// The layer type.
    public let layerType: String
    /// The call (`create`, `forward`, `backward`).
    public let call: String
    /// Which buffer: `output [2, 6]`, `gradient of input 0 ('fc1') [2, 6]`, `a 96-byte block from the host's alloc`.
    public let buffer: String

    /// The message in words.
    public var description: String {
        "plugin overrun: layer \(node.map { "'\($0)' " } ?? "")(\(layerType)) wrote past the end of \(buffer) in \(call) "
            + "(the \(GuardZone.bytes)-byte guard zone after it was changed; PLY_CHECK_PLUGINS)"
    }

    func at(node: String) -> PluginOverrunError {
        PluginOverrunError(node: node, layerType: layerType, call: call, buffer: buffer)
    }
}

/// The guard zone after every buffer the host hands a plugin: `bytes` bytes of `pattern`.
/// Room for it is always allocated (64 bytes a buffer); it is written and checked only in
/// checked mode.
enum GuardZone {
    static let bytes = 64
    static let floats = bytes / MemoryLayout<Float>.stride
    static let pattern: UInt8 = 0xA5

    static func stamp(_ p: UnsafeMutableRawPointer) {
        p.initializeMemory(as: UInt8.self, repeating: pattern, count: bytes)
    }

    static func intact(_ p: UnsafeRawPointer) -> Bool {
        let b = p.assumingMemoryBound(to: UInt8.self)
        for i in 0..<bytes where b[i] != pattern { return false }
        return true
    }

    /// Whether checked mode is asked for in the environment (`PLY_CHECK_PLUGINS=1`).
    static var requestedByEnvironment: Bool {
        isOn(getenv("PLY_CHECK_PLUGINS").map { String(cString: $0) })
    }

    /// A variable's value asks for the mode when it is set, not empty and not `0`.
    static func isOn(_ value: String?) -> Bool {
        guard let value else { return false }
        return !value.isEmpty && value != "0"
    }
}

extension Runtime {
    /// Checked mode: every buffer the host hands a plugin (layer outputs, gradient buffers,
    /// blocks from the host's `alloc`) has a guard zone after it, verified after each plugin
    /// call; a plugin that writes past its buffer is a `PluginOverrunError` naming the node,
    /// the layer type and the buffer. Defaults to the `PLY_CHECK_PLUGINS` environment
    /// variable (set and not `0`). Costs a little time per call; for testing plugins and CI.
    public var checkPlugins: Bool {
        get { state.checkPlugins.load(ordering: .relaxed) }
        set { state.checkPlugins.store(newValue, ordering: .relaxed) }
    }

    /// The most bytes the layers of this runtime may hold through the host's `alloc`
    /// (parameters, gradients, scratch) before a request is refused with `MemoryLimitError`:
    /// physical memory by default.
    public var memoryLimit: Int {
        get { state.memoryLimit.load(ordering: .relaxed) }
        set { state.memoryLimit.store(newValue, ordering: .relaxed) }
    }
}
