/// Evaluates the operators exporters use to compute shapes and paddings (`Shape`, `Gather`,
/// `Unsqueeze`, `Concat`, `Slice`, `Transpose`, `Reshape`, `Cast`, `ConstantOfShape`, ...)
/// when all their inputs are constant, so that a `Pad` or `Reshape` downstream sees its
/// amounts as plain numbers. A graph tensor's dimension that is only known when the model runs
/// (the batch) stays symbolic (`SymInt.dim`).
enum ConstantFolding {
    /// Largest tensor folded (elements): shape arithmetic is tiny; this bounds the work and
    /// memory a hostile file can ask for (a `SymInt` is 25 bytes: 1M of them are 25 MB).
    static let maxElements = 1 << 20

    struct Failure: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    static func strides(_ dims: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: dims.count)
        var acc = 1
        for i in stride(from: dims.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= dims[i]
        }
        return s
    }

    static func count(_ dims: [Int]) throws -> Int {
        var n = 1
        for d in dims {
            guard d >= 0 else { throw Failure("negative dimension in \(dims)") }
            let (m, o) = n.multipliedReportingOverflow(by: d)
            guard !o, m <= maxElements else { throw Failure("a folded tensor of dims \(dims) is too large") }
            n = m
        }
        return n
    }

    /// Every multi-index of `dims`, in C order, passed to `body`.
    static func forEachIndex(_ dims: [Int], _ body: ([Int]) -> Void) throws {
        let n = try count(dims)
        var idx = [Int](repeating: 0, count: dims.count)
        for _ in 0..<n {
            body(idx)
            var k = dims.count - 1
            while k >= 0 {
                idx[k] += 1
                if idx[k] < dims[k] { break }
                idx[k] = 0
                k -= 1
            }
        }
    }

    static func axis(_ a: Int64, rank: Int) throws -> Int {
        let r = a < 0 ? Int(a) + rank : Int(a)
        guard r >= 0, r < max(rank, 1) else { throw Failure("axis \(a) is out of range for rank \(rank)") }
        return r
    }

    static func gather(_ data: ConstTensor, _ indices: ConstTensor, axis a: Int64) throws -> ConstTensor {
        let ax = try axis(a, rank: data.dims.count)
        guard let idx = indices.knownInts else { throw Failure("symbolic indices") }
        let outDims = Array(data.dims[..<ax]) + indices.dims + Array(data.dims[(ax + 1)...])
        let ds = strides(data.dims)
        var flat: [Int] = []
        try forEachIndex(outDims) { o in
            let k = indices.dims.count
            var ii = 0
            let istr = strides(indices.dims)
            for j in 0..<k { ii += o[ax + j] * istr[j] }
            var i = Int(idx[ii])
            if i < 0 { i += data.dims[ax] }
            var off = 0
            for j in 0..<ax { off += o[j] * ds[j] }
            off += min(max(i, 0), data.dims[ax] - 1) * ds[ax]
            for j in (ax + 1)..<data.dims.count { off += o[j - 1 + k] * ds[j] }
            flat.append(off)
        }
        for i in idx where i < -Int64(data.dims[ax]) || i >= Int64(data.dims[ax]) {
            throw Failure("index \(i) is out of range for dimension \(data.dims[ax])")
        }
        return data.with(dims: outDims, indices: flat)
    }

    static func unsqueeze(_ data: ConstTensor, axes: [Int64]) throws -> ConstTensor {
        let rank = data.dims.count + axes.count
        var dims = data.dims
        for a in try axes.map({ try axis($0, rank: rank) }).sorted() {
            guard a <= dims.count else { throw Failure("axis \(a) is out of range") }
            dims.insert(1, at: a)
        }
        return ConstTensor(dims: dims, values: data.values)
    }

    static func squeeze(_ data: ConstTensor, axes: [Int64]?) throws -> ConstTensor {
        let drop = try axes.map { try Set($0.map { try axis($0, rank: data.dims.count) }) }
        var dims: [Int] = []
        for (i, d) in data.dims.enumerated() {
            if let drop {
                if drop.contains(i) {
                    guard d == 1 else { throw Failure("cannot squeeze axis \(i) of size \(d)") }
                    continue
                }
            } else if d == 1 { continue }
            dims.append(d)
        }
        return ConstTensor(dims: dims, values: data.values)
    }

    static func concat(_ parts: [ConstTensor], axis a: Int64) throws -> ConstTensor {
        guard let first = parts.first else { throw Failure("no inputs") }
        let ax = try axis(a, rank: first.dims.count)
        for p in parts where p.dims.count != first.dims.count
            || p.dims.enumerated().contains(where: { $0.offset != ax && $0.element != first.dims[$0.offset] }) {
            throw Failure("inputs of dims \(parts.map(\.dims)) do not concatenate on axis \(ax)")
        }
        var dims = first.dims
        dims[ax] = parts.reduce(0) { $0 + $1.dims[ax] }
        let allInts = parts.allSatisfy { if case .ints = $0.values { return true } else { return false } }
        var ints: [SymInt] = []
        var floats: [Float] = []
        try forEachIndex(dims) { o in
            var k = o[ax]
            var p = 0
            while k >= parts[p].dims[ax] { k -= parts[p].dims[ax]; p += 1 }
            var oo = o
            oo[ax] = k
            let off = zip(oo, strides(parts[p].dims)).reduce(0) { $0 + $1.0 * $1.1 }
            if allInts { ints.append(parts[p].ints[off]) } else { floats.append(parts[p].floats?[off] ?? 0) }
        }
        return ConstTensor(dims: dims, values: allInts ? .ints(ints) : .floats(floats))
    }

    static func reshape(_ data: ConstTensor, shape: [Int64]) throws -> ConstTensor {
        var dims = try shape.enumerated().map { i, s -> Int in
            if s == 0 {
                guard i < data.dims.count else { throw Failure("0 in shape at \(i) beyond the input's rank") }
                return data.dims[i]
            }
            guard s >= -1 else { throw Failure("shape entry \(s)") }
            return Int(s)
        }
        if let m = dims.firstIndex(of: -1) {
            let rest = dims.enumerated().filter { $0.offset != m }.reduce(1) { $0 * $1.element }
            guard rest > 0, data.count % rest == 0 else { throw Failure("cannot reshape \(data.dims) to \(shape)") }
            dims[m] = data.count / rest
        }
        guard try count(dims) == data.count else { throw Failure("cannot reshape \(data.dims) to \(shape)") }
        return ConstTensor(dims: dims, values: data.values)
    }

    static func transpose(_ data: ConstTensor, perm: [Int64]?) throws -> ConstTensor {
        let rank = data.dims.count
        let p = try perm.map { try $0.map { try axis($0, rank: rank) } } ?? Array((0..<rank).reversed())
        guard Set(p).count == rank, p.count == rank else { throw Failure("perm \(p) for rank \(rank)") }
        let dims = p.map { data.dims[$0] }
        let ds = strides(data.dims)
        var flat: [Int] = []
        try forEachIndex(dims) { o in
            var off = 0
            for (j, a) in p.enumerated() { off += o[j] * ds[a] }
            flat.append(off)
        }
        return data.with(dims: dims, indices: flat)
    }

    /// The transpose of a rows x cols float matrix (weights: not bounded by `maxElements`,
    /// their size is bounded by the file's).
    static func transpose2D(_ a: [Float], rows: Int, cols: Int) -> [Float] {
        var t = [Float](repeating: 0, count: a.count)
        for r in 0..<rows { for c in 0..<cols { t[c * rows + r] = a[r * cols + c] } }
        return t
    }

    static func slice(_ data: ConstTensor, starts: [Int64], ends: [Int64], axes: [Int64]?, steps: [Int64]?) throws -> ConstTensor {
        let rank = data.dims.count
        let ax = try (axes ?? (0..<Int64(starts.count)).map { $0 }).map { try axis($0, rank: rank) }
        let st = steps ?? [Int64](repeating: 1, count: starts.count)
        guard ends.count == starts.count, ax.count == starts.count, st.count == starts.count else {
            throw Failure("starts, ends, axes and steps differ in length")
        }
        var begin = [Int](repeating: 0, count: rank)
        var step = [Int](repeating: 1, count: rank)
        var dims = data.dims
        for (i, a) in ax.enumerated() {
            let d = Int64(data.dims[a])
            guard st[i] != 0 else { throw Failure("step 0") }
            func clampIndex(_ v: Int64, _ lo: Int64, _ hi: Int64) -> Int64 {
                let w = v < 0 ? v &+ d : v
                return min(max(w, lo), hi)
            }
            if st[i] > 0 {
                let s = clampIndex(starts[i], 0, d), e = clampIndex(ends[i], 0, d)
                begin[a] = Int(s)
                dims[a] = e > s ? Int((e - s + st[i] - 1) / st[i]) : 0
            } else {
                let s = clampIndex(starts[i], 0, d - 1), e = clampIndex(ends[i], -1, d - 1)
                begin[a] = Int(s)
                dims[a] = s > e ? Int((s - e + (-st[i]) - 1) / (-st[i])) : 0
            }
            step[a] = Int(st[i])
        }
        let ds = strides(data.dims)
        var flat: [Int] = []
        try forEachIndex(dims) { o in
            var off = 0
            for j in 0..<rank { off += (begin[j] + o[j] * step[j]) * ds[j] }
            flat.append(off)
        }
        return data.with(dims: dims, indices: flat)
    }
}
