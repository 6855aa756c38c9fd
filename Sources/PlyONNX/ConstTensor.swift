import Foundation
import Ply

/// An integer the importer may know only symbolically: a dimension of a graph tensor whose size
/// is fixed only when the model runs (the batch), as `Shape` produces it.
enum SymInt: Equatable, Sendable, CustomStringConvertible {
    /// A known value.
    case value(Int64)
    /// Dimension `axis` of the graph tensor `tensor`.
    case dim(tensor: String, axis: Int)

    var value: Int64? { if case let .value(v) = self { return v } else { return nil } }

    var description: String {
        switch self {
        case let .value(v): return "\(v)"
        case let .dim(tensor, axis): return "\(tensor).shape[\(axis)]"
        }
    }
}

/// A constant tensor: an initializer, a `Constant`, or what folding made of them. Weights are
/// float32; shapes and indices are (possibly symbolic) integers.
struct ConstTensor: Sendable {
    enum Values: Sendable {
        case floats([Float])
        case ints([SymInt])
    }

    var dims: [Int]
    var values: Values

    var count: Int {
        switch values {
        case let .floats(f): return f.count
        case let .ints(i): return i.count
        }
    }

    /// The values as floats (integers converted), nil when one is symbolic.
    var floats: [Float]? {
        switch values {
        case let .floats(f): return f
        case let .ints(i):
            let known = i.compactMap(\.value)
            return known.count == i.count ? known.map { Float($0) } : nil
        }
    }

    /// The values as integers, symbolic ones included; floats are truncated.
    var ints: [SymInt] {
        switch values {
        case let .floats(f): return f.map { .value($0.isFinite ? Int64(max(min($0, 9e18), -9e18)) : 0) }
        case let .ints(i): return i
        }
    }

    /// The values as known integers, nil when one is symbolic.
    var knownInts: [Int64]? {
        let i = ints.compactMap(\.value)
        return i.count == count ? i : nil
    }

    /// Rebuilt with other values of the same kind.
    func with(dims: [Int], indices: [Int]) -> ConstTensor {
        switch values {
        case let .floats(f): return ConstTensor(dims: dims, values: .floats(indices.map { f[$0] }))
        case let .ints(i): return ConstTensor(dims: dims, values: .ints(indices.map { i[$0] }))
        }
    }
}
