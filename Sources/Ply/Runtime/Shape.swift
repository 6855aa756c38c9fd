import CPly

/// The shape of a dense tensor, outermost dimension first (NCHW for images).
public struct Shape: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    /// The dimensions; empty for a scalar.
    public var dims: [Int]

    /// A shape with dimensions `dims`, outermost first.
    public init(_ dims: [Int]) { self.dims = dims }
    /// A shape from an array literal: `[1, 1, 28, 28]`.
    public init(arrayLiteral elements: Int...) { self.dims = elements }

    /// Number of dimensions.
    public var rank: Int { dims.count }
    /// Number of elements (1 for a scalar). Traps when the product overflows; shapes that
    /// come from plugins are checked with `checkedCount` first (`Layer.outputShape`).
    public var count: Int { dims.reduce(1, *) }
    /// Number of elements, or nil when a dimension is negative or the product overflows `Int`.
    public var checkedCount: Int? {
        var n = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = p
        }
        return n
    }
    /// The value in words, as `print` shows it.
    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }

    /// The C view of this shape. Throws when it has more than `PLY_MAX_NDIM` dimensions.
    func cShape() throws -> ply_shape {
        guard dims.count <= Int(PLY_MAX_NDIM) else {
            throw PlyError.shape("shape \(self) has \(dims.count) dimensions; at most \(PLY_MAX_NDIM) are supported")
        }
        var s = ply_shape()
        s.ndim = Int32(dims.count)
        withUnsafeMutableBytes(of: &s.dims) { raw in
            let p = raw.bindMemory(to: Int64.self)
            for (i, d) in dims.enumerated() { p[i] = Int64(d) }
        }
        return s
    }

    /// A shape read from its C view (dimensions past `ndim` are ignored).
    init(_ s: ply_shape) throws {
        guard s.ndim >= 0, s.ndim <= Int32(PLY_MAX_NDIM) else {
            throw PlyError.shape("shape with ndim \(s.ndim) is out of range 0...\(PLY_MAX_NDIM)")
        }
        var copy = s.dims
        dims = withUnsafeBytes(of: &copy) { raw in
            Array(raw.bindMemory(to: Int64.self).prefix(Int(s.ndim)).map { Int($0) })
        }
    }
}

/// A dense float32 tensor that owns its values.
public struct Tensor: Sendable, Equatable {
    /// The tensor's shape.
    public var shape: Shape
    /// The values, `shape.count` of them, row-major (NCHW for images).
    public var data: [Float]

    /// A tensor of `shape` filled with `value`.
    public init(shape: Shape, repeating value: Float = 0) {
        self.shape = shape
        self.data = [Float](repeating: value, count: shape.count)
    }

    /// A tensor from values; throws when their count does not fit the shape.
    public init(shape: Shape, data: [Float]) throws {
        guard data.count == shape.count else {
            throw PlyError.shape("tensor of shape \(shape) needs \(shape.count) values, got \(data.count)")
        }
        self.shape = shape
        self.data = data
    }
}

extension ply_tensor {
    /// A C view of float32 memory.
    static func view(_ data: UnsafeMutableRawPointer?, _ shape: ply_shape, dtype: Int32 = Int32(PLY_DTYPE_F32.rawValue)) -> ply_tensor {
        var t = ply_tensor()
        t.struct_size = UInt32(MemoryLayout<ply_tensor>.size)
        t.abi_version = cply_abi_version()
        t.data = data
        t.dtype = dtype
        t.shape = shape
        t.strides = nil
        return t
    }
}
