import ArgumentParser
import Foundation
import Ply

/// Accepted ranges of the options, one place for every subcommand's `validate()`.
enum OptionLimits {
    static let batch = 1...TrainingConfiguration.maxBatchSize
    static let epochs = 1...Checkpoint.maxEpochs
    static let threads = 1...1024
    static let channels = 1...65_536
    static let imageSize = 1...65_536
    static let classes = 1...100_000
    static let repeats = 1...1_000_000
    static let count = 0...1_000_000
}

/// Throws a `ValidationError` naming `option`, the value given and `range` unless it holds `value`.
func checkOption(_ option: String, _ value: Int, in range: ClosedRange<Int>) throws {
    guard range.contains(value) else {
        throw ValidationError("\(option) must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
    }
}

/// `checkOption` for an optional value (nil: not given, nothing to check).
func checkOption(_ option: String, _ value: Int?, in range: ClosedRange<Int>) throws {
    if let value { try checkOption(option, value, in: range) }
}

/// Throws a `ValidationError` naming `option`, the value and what is accepted unless `ok`.
func checkOption(_ option: String, _ value: Double, _ ok: Bool, _ accepted: String) throws {
    guard ok else { throw ValidationError("\(option) must be \(accepted), got \(value)") }
}

/// Throws a `ValidationError` naming `option` when a path, name or word it was given is empty
/// (`--output ''` otherwise failed only after loading the data, as "output directory  is not
/// writable: cannot create it: : no such file or directory").
func checkNotEmpty(_ option: String, _ value: String?) throws {
    if let value, value.isEmpty { throw ValidationError("\(option) must not be empty") }
}

/// `checkNotEmpty` for every value of a repeatable option.
func checkNotEmpty(_ option: String, _ values: [String]) throws {
    for value in values { try checkNotEmpty(option, value) }
}

/// Bytes of a float32 batch `dims`, refused (naming `option`) when it cannot fit in memory.
func checkBatchMemory(_ option: String, _ dims: [Int]) throws {
    do {
        try MemoryBudget.require("\(option) \(dims[0]): one input batch \(dims.map(String.init).joined(separator: "x"))",
                                 bytes: MemoryBudget.floatBytes(dims))
    } catch { throw ValidationError("\(error)") }
}

/// Weights that do not fit a model built for the input's images: the mismatch, and (when a
/// shape is wrong) which of the input's dimensions the weights were not trained for.
struct InputMismatch: Error, CustomStringConvertible {
    let error: WeightMismatchError
    let input: String
    let channels: Int, height: Int, width: Int

    var description: String {
        guard !error.report.wrongShape.isEmpty else { return error.description }
        // The first convolution's weight is (out, in, kh, kw): its `in` is the channel count trained for.
        if let conv = error.report.wrongShape.first(where: { $0.expected.rank == 4 && $0.got.rank == 4 }),
           conv.expected.dims[1] == channels, conv.got.dims[1] != channels {
            return "\(input) has images with \(channels) channel(s), but \(error.path) was trained on \(conv.got.dims[1]) "
                + "(\(conv.name) is \(conv.got)); the input does not fit these weights. Details: \(error)"
        }
        return "\(error.path) does not fit a model built for \(input)'s \(channels)x\(height)x\(width) images "
            + "(weights trained on another image size or channel count, or for another model): \(error)"
    }
}

/// Refuses an output file path that cannot be written, before any work: a directory, or a
/// parent directory that does not exist or cannot take a new file.
func checkOutputFile(_ option: String, _ path: String) throws {
    try checkNotEmpty(option, path)
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw ValidationError("\(option) \(path) is a directory; give a file name")
    }
    let parent = (path as NSString).deletingLastPathComponent
    let dir = parent.isEmpty ? "." : parent
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ValidationError("\(option) \(path): the directory \(dir) does not exist")
    }
    guard access(dir, W_OK) == 0 else {
        throw ValidationError("\(option) \(path): the directory \(dir) is not writable (\(String(cString: strerror(errno))))")
    }
}
