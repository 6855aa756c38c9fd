/// An error in a model file, naming the file (or `<text>`), the line and column, the field
/// and — when it is inside a layer — the layer's node name.
///
///     resnet.yaml:14:18: layer 'layer1.0', field 'inputs': no node named 'conv9' before this layer ...
public struct ModelFileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of problem the model file has.
    public enum Kind: String, Sendable {
        /// Not valid YAML / JSON.
        case syntax
        /// A key that does not belong, a missing key or a value of the wrong form.
        case structure
        /// `type:` names no loaded layer type.
        case unknownLayerType
        /// The layer's plugin refused an attribute (missing, wrong type or bad value).
        case badAttribute
        /// `inputs:` or `output:` names no earlier node.
        case unknownInput
        /// An expression uses a name that is neither a parameter, a variable nor a loop index,
        /// or the caller sets a parameter the file does not declare.
        case unknownParameter
        /// A caller's parameter value has another type than the file's default.
        case badParameter
        /// Two layers would get the same node name.
        case duplicateName
        /// Shapes do not fit (a join of different shapes, a channel count, an input too small).
        case shape
        /// A limit is exceeded: the file is larger than `ModelFile.maxFileBytes`, or it expands
        /// to more than `ModelFile.maxNodes` nodes (`repeat:`).
        case limit
    }

    /// What kind of problem it is.
    public let kind: Kind
    /// The file path, or `<text>` for text passed in directly.
    public let file: String
    /// 1-based line, when known.
    public let line: Int?
    /// 1-based column, when known.
    public let column: Int?
    /// The key the problem is in (`kernel_size`, `inputs`, `params.num_classes`, ...).
    public let field: String
    /// The node name of the layer the problem is in, if any.
    public let layer: String?
    /// What is wrong, in words.
    public let message: String
    /// For `.badAttribute` raised by the layer's plugin: the plugin's own `ply_status`
    /// (PLY_ERR_NOT_FOUND for a missing attribute or function, ...), which the C API returns.
    /// Not part of equality.
    public var pluginStatus: Int32? = nil

    /// Equal when everything but `pluginStatus` is.
    public static func == (a: ModelFileError, b: ModelFileError) -> Bool {
        a.kind == b.kind && a.file == b.file && a.line == b.line && a.column == b.column && a.field == b.field
            && a.layer == b.layer && a.message == b.message
    }

    /// An error of `kind` at `file`:`line`:`column` in `field` (of the layer whose node name is `layer`, if any).
    public init(_ kind: Kind, file: String, line: Int?, column: Int?, field: String, layer: String? = nil, message: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.layer = layer
        self.message = message
    }

    /// The message in words, as `print` and error reports show it.
    public var description: String {
        var s = file
        if let line {
            s += ":\(line)"
            if let column { s += ":\(column)" }
        }
        s += ": "
        if let layer { s += "layer '\(layer)', " }
        return s + "field '\(field)': \(message)"
    }
}
