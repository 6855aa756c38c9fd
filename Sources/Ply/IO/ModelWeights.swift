import Foundation

/// What `Model.loadWeights` matched between a file and the model.
public struct WeightReport: Sendable, CustomStringConvertible {
    /// Model parameters and buffers the file does not have.
    public var missing: [String]
    /// File tensors the model has no parameter or buffer for.
    public var unexpected: [String]
    /// Names present in both whose shapes differ.
    public var wrongShape: [(name: String, expected: Shape, got: Shape)]
    /// Names present in both whose dtype cannot be stored (e.g. a float tensor for an integer buffer).
    public var wrongDType: [(name: String, expected: String, got: SafeTensors.DType)]
    /// Number of parameters and buffers written into the model.
    public var loaded: Int

    /// True when every model tensor was found with the right shape and type and nothing was left over.
    public var isComplete: Bool { missing.isEmpty && unexpected.isEmpty && wrongShape.isEmpty && wrongDType.isEmpty }

    /// The value in words, as `print` shows it.
    public var description: String {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing: " + missing.joined(separator: ", ")) }
        if !unexpected.isEmpty { parts.append("unexpected: " + unexpected.joined(separator: ", ")) }
        if !wrongShape.isEmpty {
            parts.append("wrong shape: " + wrongShape.map { "\($0.name) (model \($0.expected), file \($0.got))" }.joined(separator: ", "))
        }
        if !wrongDType.isEmpty {
            parts.append("wrong dtype: " + wrongDType.map { "\($0.name) (model \($0.expected), file \($0.got.rawValue))" }.joined(separator: ", "))
        }
        return parts.isEmpty ? "all \(loaded) tensors loaded" : parts.joined(separator: "; ")
    }
}

/// A strict load found tensors that do not match the model; nothing was written into it.
public struct WeightMismatchError: Error, CustomStringConvertible, Sendable {
    /// The file that did not match.
    public let path: String
    /// What matched and what did not.
    public let report: WeightReport
    /// The value in words, as `print` shows it.
    public var description: String { "\(path) does not match the model (nothing was loaded): \(report)" }
}

extension Model {
    /// Loads parameters and buffers from a safetensors file with PyTorch state_dict names
    /// (`conv1.weight`, `bn1.running_var`, `bn1.num_batches_tracked`). Float tensors may be
    /// F32, F64, F16 or BF16; integer buffers any integer dtype.
    ///
    /// Strict (default): any missing, unexpected, wrong-shaped or wrong-typed tensor throws a
    /// `WeightMismatchError` listing them all, and the model is left unchanged. Non-strict:
    /// loads what matches and reports the rest.
    /// Entries whose names start with `ignoringPrefix` (a checkpoint's `optimizer.` state)
    /// are not model weights and are passed over.
    @discardableResult
    public func loadWeights(from path: String, strict: Bool = true, ignoringPrefix: String? = nil) throws -> WeightReport {
        let file = try SafeTensors.read(path: path)
        let keep = { (name: String) in ignoringPrefix.map { !name.hasPrefix($0) } ?? true }
        return try loadState(file.entries.filter { keep($0.key) }, order: file.order.filter(keep), source: path, strict: strict)
    }

    /// Loads tensors already read (see `loadWeights`); `source` names them in errors.
    @discardableResult
    public func loadState(_ entries: [String: SafeTensors.Entry], order: [String], source path: String,
                          strict: Bool = true) throws -> WeightReport {
        let file = (entries: entries, order: order)
        let params = try namedParameters()
        var report = WeightReport(missing: [], unexpected: [], wrongShape: [], wrongDType: [], loaded: 0)
        enum Staged { case floats([Float]), ints([Int64]) }
        var staged: [(Parameter, Staged)] = []
        // Validate and convert everything first; the model is written only afterwards.
        for (name, p) in params {
            guard let entry = file.entries[name] else { report.missing.append(name); continue }
            let got = Shape(entry.shape)
            guard got == p.shape else { report.wrongShape.append((name, p.shape, got)); continue }
            if p.isInteger {
                guard let ints = try entry.int64s() else { report.wrongDType.append((name, "integer", entry.dtype)); continue }
                staged.append((p, .ints(ints)))
            } else {
                guard entry.dtype.isFloatingPoint else { report.wrongDType.append((name, "float", entry.dtype)); continue }
                staged.append((p, .floats(try entry.floats())))
            }
        }
        let known = Set(params.map(\.name))
        report.unexpected = file.order.filter { !known.contains($0) }
        if strict && !report.isComplete { throw WeightMismatchError(path: path, report: report) }
        for (p, values) in staged {
            switch values {
            case let .floats(f): _ = p.floats?.update(fromContentsOf: f)
            case let .ints(i): _ = p.integers?.update(fromContentsOf: i)
            }
        }
        report.loaded = staged.count
        return report
    }

    /// Saves every parameter and buffer (F32, integer buffers as I64) in `namedParameters`
    /// order, atomically (see `SafeTensors.write`).
    public func saveWeights(to path: String, metadata: [String: String] = [:]) throws {
        try SafeTensors.write(path: path, tensors: stateEntries(), metadata: metadata)
    }

    /// Every parameter and buffer as a safetensors entry (F32; integer buffers I64), in order.
    public func stateEntries() throws -> [(name: String, entry: SafeTensors.Entry)] {
        try namedParameters().map { name, p -> (name: String, entry: SafeTensors.Entry) in
            if let ints = p.integers { return (name, SafeTensors.Entry(int64s: Array(ints), shape: p.shape.dims)) }
            return (name, SafeTensors.Entry(floats: p.read(), shape: p.shape.dims))
        }
    }
}
