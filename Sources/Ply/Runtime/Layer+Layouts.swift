import CPly

/// A value's memory layout in an inference plan (plugin.h's `ply_layout`, ABI 1.7).
public enum ValueLayout: Int32, Sendable {
    /// Compact row-major (N, C, H, W): every value outside a blocked run.
    case nchw = 0
    /// Channels in blocks of 16, a position's 16 adjacent: [N][⌈C/16⌉][H][W][16], zero lanes past C.
    case nchw16c = 1

    /// The bit of this layout in `eval_layouts`' sets.
    var bit: UInt32 { 1 << UInt32(rawValue) }

    /// Floats a value of `shape` holds in this layout: padded to whole blocks of 16 channels in
    /// NCHW16c (4-D shapes only), nil when that overflows.
    func floats(_ shape: Shape) -> Int? {
        guard self == .nchw16c, shape.rank == 4 else { return shape.checkedCount }
        let d = shape.dims
        let blocks = (d[1] + 15) / 16
        let (a, o1) = d[0].multipliedReportingOverflow(by: blocks * 16)
        let (b, o2) = a.multipliedReportingOverflow(by: d[2])
        let (c, o3) = b.multipliedReportingOverflow(by: d[3])
        return o1 || o2 || o3 ? nil : c
    }
}

extension Layer {
    /// The layouts the layer's evaluation forward takes for `inputs` (plugin.h's
    /// `eval_layouts`): per input the set it reads, and the set it writes (bits of
    /// `ValueLayout.bit`). NCHW only for a type without the ABI 1.7 slots.
    func evalLayouts(_ inputs: [ply_shape]) throws -> (accepts: [UInt32], produces: UInt32) {
        let nchw = ValueLayout.nchw.bit
        guard let query = type.vtable.evalLayouts else { return (Array(repeating: nchw, count: inputs.count), nchw) }
        var accepts = Array(repeating: UInt32(0), count: inputs.count)
        var produces: UInt32 = 0
        _ = ErrorSlot.current.take()
        let status = inputs.withUnsafeBufferPointer { ins in
            accepts.withUnsafeMutableBufferPointer { query(instance, Int32(inputs.count), ins.baseAddress, $0.baseAddress, &produces) }
        }
        try Layer.check(status, type: type.name, call: "eval_layouts")
        if let k = accepts.firstIndex(where: { $0 & nchw == 0 }) {
            throw PlyError.layer(type: type.name, call: "eval_layouts", status: Int32(bitPattern: PLY_ERR_INTERNAL.rawValue),
                                 message: "the set of layouts for input \(k) (\(accepts[k])) leaves out NCHW, which every set holds")
        }
        guard produces & nchw != 0 else {
            throw PlyError.layer(type: type.name, call: "eval_layouts", status: Int32(bitPattern: PLY_ERR_INTERNAL.rawValue),
                                 message: "the set of output layouts (\(produces)) leaves out NCHW, which every set holds")
        }
        return (accepts, produces)
    }

    /// Forward with inputs laid out as `inLayouts` and the output to be written as `outLayout`
    /// (plugin.h's `forward_layout`); plain `forward` when every layout is NCHW.
    func forward(_ inputs: UnsafeBufferPointer<ply_tensor>, layouts inLayouts: [ValueLayout],
                 _ output: UnsafeMutablePointer<ply_tensor>, layout outLayout: ValueLayout) throws {
        guard outLayout != .nchw || inLayouts.contains(where: { $0 != .nchw }) else { return try forward(inputs, output) }
        guard let call = type.vtable.forwardLayout else {
            throw PlyError.invalid("layer '\(type.name)' has no forward_layout: it cannot take the layouts the plan chose")
        }
        _ = ErrorSlot.current.take()
        let raw = inLayouts.map(\.rawValue)
        let status = raw.withUnsafeBufferPointer { lay in
            runtime.state.computing { call(instance, Int32(inputs.count), inputs.baseAddress, lay.baseAddress, output, outLayout.rawValue) }
        }
        try Layer.check(status, type: type.name, call: "forward_layout")
        try checkHostBlocks("forward_layout")
    }
}
