import CPly
import Foundation

/// A `conv2d` node followed by a `batchnorm2d` node, run at inference as one conv with folded
/// weights: bn(conv(x; w, b)) = conv(x; w', b') with s = γ / √(var + ε), w' = w·s and
/// b' = (b − mean)·s + β (b = 0 without a bias). The model's own layers stay as they are
/// (they own the weights, train, load and save); the fold is one more conv, inference only
/// (`trainable: false`: no random draws, no gradients), whose values are derived from theirs
/// again when the runtime's parameter generation moved or a training forward ran (the batch
/// norm's running statistics moved). Plugins fold their children the same way
/// (Plugins/Support/plugin_fold.h).
final class ConvBatchNormFold {
    /// The conv node and the batch-norm node it feeds (and nothing else).
    let conv: Model.NodeID, batchNorm: Model.NodeID
    /// The folded conv: bias on, the batch norm's fused relu taken over when it had one.
    let layer: Layer
    /// The sources; the conv goes at `freeze()` (its node then gives shapes through `layer`).
    private var convLayer: Layer?
    private let bnLayer: Layer
    private let eps: Double
    private var generation: UInt64 = 0
    private var valid = false

    /// The fold of `convLayer` (node `conv`) into `bnLayer` (node `batchNorm`), or nil when the
    /// pair cannot fold: a conv other than the built-in's attributes, a batch norm without
    /// running statistics, or a relu the folded conv will not take.
    init?(conv: Model.NodeID, _ convLayer: Layer, batchNorm: Model.NodeID, _ bnLayer: Layer, relu: Bool) {
        func attribute(_ name: String, of layer: Layer) -> AttributeValue? { layer.attributes.first { $0.0 == name }?.1 }
        if case .bool(false)? = attribute("track_running_stats", of: bnLayer) { return nil }
        switch attribute("eps", of: bnLayer) {
        case nil: eps = 1e-5
        case let .float(v)?: eps = v
        case let .int(v)?: eps = Double(v)
        default: return nil
        }
        var attributes = convLayer.attributes.filter { $0.0 != "bias" && $0.0 != "trainable" }
        attributes += [("bias", .bool(true)), ("trainable", .bool(false))]
        guard let folded = try? Layer(type: convLayer.type, attributes: attributes, runtime: convLayer.runtime) else {
            _ = ErrorSlot.current.take()
            return nil
        }
        if relu && !folded.fuseActivation("relu") { return nil }
        folded.setTraining(false)
        self.conv = conv
        self.batchNorm = batchNorm
        self.layer = folded
        self.convLayer = convLayer
        self.bnLayer = bnLayer
    }

    /// Set by `freeze()`: the values are final and the sources are never read again.
    private var final = false

    /// The batch norm's running statistics moved (a training forward): derive again before use.
    func invalidate() { if !final { valid = false } }

    /// The model is being frozen for inference: derives the values a last time (while the conv's
    /// and batch norm's parameters can still be read), then never again.
    /// Returns the conv layer it no longer reads, frozen, for the model to let go of.
    func freeze() throws -> Layer? {
        try sync()
        final = true
        layer.freeze()
        let conv = convLayer
        conv?.freeze()
        convLayer = nil
        return conv
    }

    /// Derives the folded weight and bias when the sources may have changed since.
    func sync() throws {
        if final { return }
        let state = layer.runtime.state
        let now = state.paramGeneration.load(ordering: .relaxed)
        if valid && now == generation { return }
        func values(_ layer: Layer) throws -> [String: Parameter] {
            Dictionary(try layer.parameters.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        }
        guard let convLayer else { return } // only after freeze(), which made the values final
        let c = try values(convLayer), b = try values(bnLayer), f = try values(layer)
        guard let w = c["weight"], let mean = b["running_mean"], let variance = b["running_var"],
              let fw = f["weight"], let fb = f["bias"], w.shape == fw.shape, !w.isInteger, !mean.isInteger,
              !variance.isInteger else {
            throw PlyError.invalid("cannot fold batch norm into conv: parameters missing or of other shapes")
        }
        let outChannels = w.shape.dims.first ?? 0, perChannel = outChannels > 0 ? w.shape.count / outChannels : 0
        let bias = c["bias"].map { $0.read() }, gamma = b["weight"].map { $0.read() }, beta = b["bias"].map { $0.read() }
        let mv = mean.read(), vv = variance.read(), wv = w.read()
        guard mv.count == outChannels, vv.count == outChannels, fb.shape.count == outChannels else {
            throw PlyError.invalid("cannot fold batch norm into conv: \(outChannels) output channels, "
                + "\(mv.count) running means")
        }
        // The folded layer's own values: written without moving the generation (nothing derived from them).
        let outW = fw.value.assumingMemoryBound(to: Float.self), outB = fb.value.assumingMemoryBound(to: Float.self)
        for o in 0..<outChannels {
            let s = Double(gamma?[o] ?? 1) / (Double(vv[o]) + eps).squareRoot()
            for k in 0..<perChannel { outW[o * perChannel + k] = Float(Double(wv[o * perChannel + k]) * s) }
            outB[o] = Float((Double(bias?[o] ?? 0) - Double(mv[o])) * s + Double(beta?[o] ?? 0))
        }
        // Written without moving the generation: conv2d takes set_training as the sign to check what it
        // derived from its weights (Winograd's U, packed weights) against them (Plugins/Conv/conv.c).
        layer.setTraining(false)
        generation = now
        valid = true
    }
}
