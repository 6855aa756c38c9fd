import Foundation

/// Pictures of what a model has learnt and what it computes for one image: the first
/// convolution's filters, any layer's feature maps, and the receptive field of one output
/// position drawn on the input (`ply inspect`, `ply_inspect_*` in the C API).
///
/// Conventions, the same for every picture:
/// - Pictures are 8-bit RGB PNGs (`PNGImage`). Each tile (a filter, a channel's feature map,
///   the input) is **normalised on its own**: its smallest finite value becomes 0, its largest
///   255, linearly, rounded to the nearest integer (`255·(v − min)/(max − min)`); a tile whose
///   values are all equal is 128 (mid-grey); NaN and infinities are 0. A one-channel tile is grey
///   (R = G = B); a 3-channel filter or input is drawn in colour, its channels normalised together.
/// - Every value becomes `scale`×`scale` pixels (nearest neighbour). Automatic scale (nil):
///   the tile's longer side becomes at least 64 pixels, at most 32 pixels per value.
/// - Tiles sit in a grid of ⌈√n⌉ columns in row-major order (filters of a first convolution
///   with neither 1 nor 3 input channels: one row per filter, one tile per input channel),
///   separated by 1-pixel lines and framed in `ModelInspector.gapColour`.
/// - Layer names are the node names `ply summary` lists (PyTorch's module paths). A layer
///   whose following relu is fused into it (`Model.fuseActivations`) shows the activated values.
public final class ModelInspector {
    /// The model inspected (its weights as loaded; run in evaluation mode, its mode restored).
    public let model: Model
    /// The input the inspector was made for: channels, height and width of one image.
    public let channels: Int, height: Int, width: Int
    /// The model's summary for one image: output shapes, receptive fields, jumps and starts.
    public let summary: ModelSummary

    /// The colour of the lines between tiles and around the grid.
    public static let gapColour: [UInt8] = [64, 96, 160]
    /// The colour of the receptive-field rectangle.
    public static let boxColour: [UInt8] = [255, 0, 0]
    /// Accepted `scale` values (pixels per value).
    public static let scales = 1...32

    /// An inspector for images of `channels` x `height` x `width` (the model's analysis for
    /// that input is done here: a model that cannot take it throws).
    public init(model: Model, channels: Int, height: Int, width: Int) throws {
        self.model = model
        self.channels = channels
        self.height = height
        self.width = width
        summary = try ModelSummary(model: model, inputShape: Shape([1, channels, height, width]))
    }

    /// The layer names pictures can be asked for, in graph order (as `ply summary` lists them).
    public var layerNames: [String] { summary.rows.map(\.name) }

    /// The summary row of `layer`, or `InspectError.noSuchLayer` listing the valid names.
    public func row(_ layer: String) throws(InspectError) -> ModelSummary.Row {
        guard let row = summary.rows.first(where: { $0.name == layer }) else {
            throw .noSuchLayer(name: layer, valid: layerNames)
        }
        return row
    }

    // MARK: - filters

    /// The first convolution's filters: the weight (out, in, kh, kw) of the first node, in
    /// graph order, with a 4-D trainable parameter. Returns that node's name and parameter
    /// name (`conv1`, `weight`) with the picture: one tile per filter (in colour when the
    /// convolution reads 3 channels), each filter normalised on its own.
    public func filters(scale: Int? = nil) throws -> (layer: String, parameter: String, picture: PNGImage) {
        for node in model.nodes {
            guard let layer = node.layer,
                  let weight = try layer.parameters.first(where: { $0.trainable && $0.shape.rank == 4 }) else { continue }
            let d = weight.shape.dims
            let (out, inputs, kh, kw) = (d[0], d[1], d[2], d[3])
            let values = weight.read()
            let size = inputs * kh * kw
            var tiles: [[UInt8]] = []
            if inputs == 1 || inputs == 3 {
                for o in 0..<out { tiles.append(Self.rgbTile(values[(o * size)..<((o + 1) * size)], channels: inputs, plane: kh * kw)) }
                let picture = try Self.grid(tiles, tileHeight: kh, tileWidth: kw, columns: Self.columns(out), scale: scale)
                return (node.name, weight.name, picture)
            }
            for o in 0..<out {
                let filter = Self.normalised(values[(o * size)..<((o + 1) * size)])
                for i in 0..<inputs { tiles.append(Self.grey(filter[(i * kh * kw)..<((i + 1) * kh * kw)])) }
            }
            let picture = try Self.grid(tiles, tileHeight: kh, tileWidth: kw, columns: inputs, scale: scale)
            return (node.name, weight.name, picture)
        }
        throw InspectError.noConvolution
    }

    // MARK: - feature maps

    /// The output of `layer` for `image` (`channels * height * width` values, CHW, as the
    /// model takes them): one tile per channel, each normalised on its own.
    public func featureMaps(layer: String, image: [Float], scale: Int? = nil) throws -> PNGImage {
        let row = try row(layer)
        let dims = row.outputShape.dims
        guard dims.count == 4, dims[0] == 1 else { throw InspectError.notAFeatureMap(layer: layer, shape: row.outputShape) }
        let values = try output(of: layer, image: image)
        let (c, h, w) = (dims[1], dims[2], dims[3])
        let tiles = (0..<c).map { Self.grey(Self.normalised(values[($0 * h * w)..<(($0 + 1) * h * w)])[...]) }
        return try Self.grid(tiles, tileHeight: h, tileWidth: w, columns: Self.columns(c), scale: scale)
    }

    /// The values `layer` computes for `image` (CHW), in evaluation mode.
    public func output(of layer: String, image: [Float]) throws -> [Float] {
        _ = try row(layer)
        try checkImage(image)
        guard let id = model.node(named: layer) else { throw InspectError.noSuchLayer(name: layer, valid: layerNames) }
        let (savedOutput, wasTraining) = (model.output, model.isTraining)
        defer {
            model.output = savedOutput
            model.isTraining = wasTraining
        }
        model.output = id
        model.isTraining = false
        return try image.withUnsafeBufferPointer { Array(try model.infer($0, shape: Shape([1, channels, height, width]))) }
    }

    // MARK: - receptive field

    /// The input pixels output position (`y`, `x`) of `layer` depends on, from the summary's
    /// receptive field, jump and start (`ModelSummary.Row.receptiveField(y:x:)`), unclipped.
    /// A position outside the layer's output throws `InspectError.positionOutside` naming its size.
    public func receptiveField(layer: String, y: Int, x: Int) throws(InspectError) -> ReceptiveFieldBox {
        let row = try row(layer)
        let dims = row.outputShape.dims
        let (h, w) = dims.count == 4 ? (dims[2], dims[3]) : (1, 1)
        guard (0..<h).contains(y), (0..<w).contains(x) else {
            throw .positionOutside(layer: layer, y: y, x: x, height: h, width: w)
        }
        return row.receptiveField(y: y, x: x)
    }

    /// The input `image` (normalised as one tile; grey for one channel, colour for three, the
    /// first channel otherwise) with the receptive field of `layer`'s position (`y`, `x`) drawn
    /// as a 1-pixel `boxColour` rectangle on the outermost pixels of the part inside the image.
    public func receptiveFieldPicture(layer: String, y: Int, x: Int, image: [Float],
                                      scale: Int? = nil) throws -> (box: ReceptiveFieldBox, picture: PNGImage) {
        let box = try receptiveField(layer: layer, y: y, x: x)
        try checkImage(image)
        let shown = channels == 3 ? 3 : 1
        let tile = Self.rgbTile(image[0..<(shown * height * width)], channels: shown, plane: height * width)
        var picture = try Self.grid([tile], tileHeight: height, tileWidth: width, columns: 1, scale: scale, frame: false)
        if let inside = box.clipped(height: height, width: width) {
            let s = picture.width / width
            let (top, left) = (inside.top * s, inside.left * s)
            let (bottom, right) = ((inside.bottom + 1) * s - 1, (inside.right + 1) * s - 1)
            for yy in top...bottom { picture[yy, left] = Self.boxColour; picture[yy, right] = Self.boxColour }
            for xx in left...right { picture[top, xx] = Self.boxColour; picture[bottom, xx] = Self.boxColour }
        }
        return (box, picture)
    }

    private func checkImage(_ image: [Float]) throws(InspectError) {
        guard image.count == channels * height * width else {
            throw .imageShape(expected: [channels, height, width], got: [image.count])
        }
    }

    // MARK: - drawing

    /// ⌈√n⌉: the grid's columns for n tiles.
    static func columns(_ n: Int) -> Int {
        var c = 1
        while c * c < n { c += 1 }
        return c
    }

    /// `values` mapped to 0...255 as the type's conventions say.
    static func normalised<C: Collection>(_ values: C) -> [UInt8] where C.Element == Float {
        let finite = values.filter(\.isFinite)
        guard let lo = finite.min(), let hi = finite.max() else { return values.map { _ in 0 } }
        guard hi > lo else { return values.map { $0.isFinite ? 128 : 0 } }
        let range = Double(hi) - Double(lo)
        return values.map { v in v.isFinite ? UInt8((255 * (Double(v) - Double(lo)) / range).rounded()) : 0 }
    }

    /// Grey RGB pixels from normalised values.
    static func grey(_ values: ArraySlice<UInt8>) -> [UInt8] { values.flatMap { [$0, $0, $0] } }

    /// RGB pixels of `channels` (1 or 3) planes of `plane` values, normalised together.
    static func rgbTile(_ values: ArraySlice<Float>, channels: Int, plane: Int) -> [UInt8] {
        let n = normalised(values)
        guard channels == 3 else { return grey(n[...]) }
        var out = [UInt8](repeating: 0, count: plane * 3)
        for i in 0..<plane { for c in 0..<3 { out[i * 3 + c] = n[c * plane + i] } }
        return out
    }

    /// Tiles (RGB, `tileHeight` x `tileWidth` each) in a grid of `columns`, each value
    /// `scale` pixels a side, 1-pixel `gapColour` lines between tiles (and around them when `frame`).
    static func grid(_ tiles: [[UInt8]], tileHeight: Int, tileWidth: Int, columns: Int, scale: Int?,
                     frame: Bool = true) throws(InspectError) -> PNGImage {
        let s = scale ?? max(1, min(scales.upperBound, (64 + max(tileHeight, tileWidth) - 1) / max(tileHeight, tileWidth)))
        guard scales.contains(s) else { throw .invalidPicture("scale is \(s); accepted: \(scales.lowerBound)...\(scales.upperBound)") }
        let rows = (tiles.count + columns - 1) / columns
        let border = frame ? 1 : 0
        let (w, wOverflow) = (tileWidth * s + 1).multipliedReportingOverflow(by: columns)
        let (h, hOverflow) = (tileHeight * s + 1).multipliedReportingOverflow(by: rows)
        guard !wOverflow, !hOverflow, w - 1 + 2 * border <= PNGImage.maxSide, h - 1 + 2 * border <= PNGImage.maxSide else {
            throw .invalidPicture("\(tiles.count) tiles of \(tileHeight)x\(tileWidth) at scale \(s) exceed \(PNGImage.maxSide) pixels a side")
        }
        var picture = try PNGImage(width: w - 1 + 2 * border, height: h - 1 + 2 * border, channels: 3, fill: gapColour)
        for (t, tile) in tiles.enumerated() {
            let y0 = border + (t / columns) * (tileHeight * s + 1), x0 = border + (t % columns) * (tileWidth * s + 1)
            for ty in 0..<tileHeight {
                for tx in 0..<tileWidth {
                    let source = (ty * tileWidth + tx) * 3
                    for dy in 0..<s {
                        var at = ((y0 + ty * s + dy) * picture.width + x0 + tx * s) * 3
                        for _ in 0..<s {
                            picture.pixels[at] = tile[source]
                            picture.pixels[at + 1] = tile[source + 1]
                            picture.pixels[at + 2] = tile[source + 2]
                            at += 3
                        }
                    }
                }
            }
        }
        return picture
    }
}
