import Foundation

/// FNV-1a, 64 bits: a stable hash (Swift's `Hasher` is seeded per process).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add<C: Collection>(bytes: C) where C.Element == UInt8 {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    }
    mutating func add(_ x: UInt64) { withUnsafeBytes(of: x.littleEndian) { add(bytes: $0) } }
    mutating func add(_ x: Int) { add(UInt64(bitPattern: Int64(x))) }
    mutating func add(_ s: String) { add(s.utf8.count); add(bytes: s.utf8) }
    var hex: String { String(value, radix: 16).leftPadded(to: 16) }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

extension ImageDataset {
    /// Identifies a data set cheaply, to tell whether a checkpoint was trained on it: a hash of
    /// its shape, every label, and the pixels of the first and last images. Stable across
    /// processes and machines.
    public var fingerprint: String {
        var h = FNV1a()
        for x in [count, channels, height, width] { h.add(x) }
        labels.withUnsafeBytes { h.add(bytes: $0) }
        if count > 0 {
            // Two images, copied or decoded (a streamed set: the same floats as cached).
            var pixels = [Float](repeating: 0, count: sampleSize)
            for i in Set([0, count - 1]).sorted() {
                do throws(DataError) {
                    try pixels.withUnsafeMutableBufferPointer { (p) throws(DataError) in try copyImages([i], into: p.baseAddress!) }
                    for v in pixels { h.add(UInt64(v.bitPattern)) }
                } catch {
                    h.add("unreadable: \(error)")  // the run fails at that image anyway
                }
            }
        }
        return h.hex
    }
}

extension Model {
    /// Identifies a model's architecture: a hash of every node's name, layer type, attributes
    /// and inputs, and every parameter's name and shape.
    public var fingerprint: String {
        var h = FNV1a()
        for node in nodes {
            h.add(node.name)
            h.add(node.layer?.type.name ?? "")
            h.add(node.layer.map { "\($0.attributes)" } ?? "")
            for i in node.inputs { h.add(i) }
        }
        for (name, p) in (try? namedParameters()) ?? [] {
            h.add(name)
            for d in p.shape.dims { h.add(d) }
        }
        return h.hex
    }

    /// Bytes of every node's output for `input` (float32), or nil when the sum does not fit
    /// in an `Int`. Computed from shapes only: nothing is allocated.
    public func activationBytes(for input: Shape) throws -> Int? {
        guard MemoryBudget.floatBytes(input.dims) != nil else { return nil }
        var total = 0
        for shape in try shapes(for: input) {
            guard let bytes = MemoryBudget.floatBytes(shape.dims) else { return nil }
            let (sum, overflow) = total.addingReportingOverflow(bytes)
            if overflow { return nil }
            total = sum
        }
        return total
    }
}

/// Sizes checked against the machine before allocating.
public enum MemoryBudget {
    /// The machine's physical memory in bytes.
    public static var physicalBytes: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }

    /// Bytes of a float32 tensor with these dimensions, or nil when a dimension is negative or
    /// the product overflows.
    public static func floatBytes(_ dims: [Int]) -> Int? {
        var total = MemoryLayout<Float>.size
        for d in dims {
            guard d >= 0 else { return nil }
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            total = p
        }
        return total
    }

    /// Throws `ResourceError.tooLarge` when `bytes` (nil: beyond `Int`) exceeds physical memory.
    public static func require(_ what: String, bytes: Int?) throws(ResourceError) {
        let available = physicalBytes
        guard let bytes, bytes <= available else { throw .tooLarge(what: what, bytes: bytes, available: available) }
    }
}

/// A size that cannot be allocated on this machine, refused before trying.
public enum ResourceError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `what` would need `bytes` (nil: more than 2^63) but the machine has `available`.
    case tooLarge(what: String, bytes: Int?, available: Int)

    /// The value in words, as `print` shows it.
    public var description: String {
        switch self {
        case let .tooLarge(what, bytes, available):
            let need = bytes.map { ResourceError.format($0) } ?? "more than 2^63 bytes"
            return "\(what) would need \(need), more than this machine's \(ResourceError.format(available)) of memory"
        }
    }

    static func format(_ bytes: Int) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var v = Double(bytes), u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(bytes) bytes" : String(format: "%.1f %@", v, units[u])
    }
}
