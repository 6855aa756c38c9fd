/// Why `ModelInspector` (and `ply inspect`) could not draw a picture.
public enum InspectError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No node of the model has this name; `valid`: the names `ply summary` lists.
    case noSuchLayer(name: String, valid: [String])
    /// The position is outside the layer's output of `height` x `width`.
    case positionOutside(layer: String, y: Int, x: Int, height: Int, width: Int)
    /// The layer's output is not a feature map (1, C, H, W).
    case notAFeatureMap(layer: String, shape: Shape)
    /// The model has no convolution (no node with a 4-D trainable weight).
    case noConvolution
    /// The image given is not the shape the inspector was made for (C, H, W).
    case imageShape(expected: [Int], got: [Int])
    /// A picture's size, channel count or scale is out of range.
    case invalidPicture(String)
    /// A PNG file could not be read or decoded.
    case pngRead(path: String, reason: String)
    /// A PNG file could not be encoded or written.
    case pngWrite(path: String, reason: String)
    /// A JPEG file could not be read or decoded.
    case jpegRead(path: String, reason: String)

    /// The message in words, as `print` and `ply inspect` show it.
    public var description: String {
        switch self {
        case let .noSuchLayer(name, valid):
            return "no layer named '\(name)'; the model's layers (as `ply summary` lists them): " + valid.joined(separator: ", ")
        case let .positionOutside(layer, y, x, height, width):
            return "position \(y),\(x) is outside layer '\(layer)''s output of \(height)x\(width) (height x width); "
                + "y must be in 0...\(height - 1) and x in 0...\(width - 1)"
        case let .notAFeatureMap(layer, shape):
            return "layer '\(layer)''s output for one image is \(shape), not a feature map (1, channels, height, width)"
        case .noConvolution:
            return "the model has no convolution (no layer with a 4-D weight) whose filters could be drawn"
        case let .imageShape(expected, got):
            return "the image is \(got.map(String.init).joined(separator: "x")) (CxHxW); the model was built for "
                + expected.map(String.init).joined(separator: "x")
        case let .invalidPicture(reason):
            return "picture: \(reason)"
        case let .pngRead(path, reason):
            return "\(path): cannot read PNG: \(reason)"
        case let .pngWrite(path, reason):
            return "\(path): cannot write PNG: \(reason)"
        case let .jpegRead(path, reason):
            return "\(path): cannot read JPEG: \(reason)"
        }
    }
}

/// The input pixels one output position depends on: rows `top...bottom` and columns
/// `left...right`, inclusive, in input pixel coordinates (`ModelSummary.Row.receptiveField(y:x:)`).
/// May reach outside the image (padding); `clipped(height:width:)` keeps the part inside.
public struct ReceptiveFieldBox: Sendable, Equatable, CustomStringConvertible {
    /// First row.
    public var top: Int
    /// First column.
    public var left: Int
    /// Last row (inclusive).
    public var bottom: Int
    /// Last column (inclusive).
    public var right: Int

    /// A box from its inclusive bounds.
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top
        self.left = left
        self.bottom = bottom
        self.right = right
    }

    /// Rows covered (`bottom - top + 1`).
    public var height: Int { bottom - top + 1 }
    /// Columns covered (`right - left + 1`).
    public var width: Int { right - left + 1 }

    /// The part inside an image of `height` x `width` pixels (nil when none is).
    public func clipped(height h: Int, width w: Int) -> ReceptiveFieldBox? {
        let box = ReceptiveFieldBox(top: max(top, 0), left: max(left, 0), bottom: min(bottom, h - 1), right: min(right, w - 1))
        return box.top <= box.bottom && box.left <= box.right ? box : nil
    }

    /// The value in words, as `print` shows it: `rows 0...4, columns 3...7 (5x5)`.
    public var description: String { "rows \(top)...\(bottom), columns \(left)...\(right) (\(height)x\(width))" }
}
