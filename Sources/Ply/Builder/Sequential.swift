/// A layer description for building models in Swift code. Each value names a plugin layer
/// type and its attributes; `Sequential` instantiates the same plugin layers a model file
/// or the C API would.
public protocol LayerSpec {
    /// The plugin layer type (`conv2d`).
    var type: String { get }
    /// Attributes with PyTorch's argument names.
    var attributes: Attributes { get }
    /// The node name (nil: numbered like `nn.Sequential`: `0`, `1`, ...).
    var name: String? { get }
}

/// Collects layer descriptions written one per line.
@resultBuilder
public enum LayerBuilder {
    /// Wraps one layer description.
    public static func buildExpression(_ layer: any LayerSpec) -> [any LayerSpec] { [layer] }
    /// Passes an array of layer descriptions through (e.g. one built in a loop).
    public static func buildExpression(_ layers: [any LayerSpec]) -> [any LayerSpec] { layers }
    /// Joins the lines of a builder block in order.
    public static func buildBlock(_ parts: [any LayerSpec]...) -> [any LayerSpec] { parts.flatMap { $0 } }
    /// The layers of an `if` without `else`, or none.
    public static func buildOptional(_ part: [any LayerSpec]?) -> [any LayerSpec] { part ?? [] }
    /// The layers of an `if`'s first branch.
    public static func buildEither(first: [any LayerSpec]) -> [any LayerSpec] { first }
    /// The layers of an `if`'s `else` branch.
    public static func buildEither(second: [any LayerSpec]) -> [any LayerSpec] { second }
    /// The layers of a `for` loop, one iteration after another.
    public static func buildArray(_ parts: [[any LayerSpec]]) -> [any LayerSpec] { parts.flatMap { $0 } }
}

extension Model {
    /// Builds a chain of layers, PyTorch `nn.Sequential` style:
    ///
    /// ```swift
    /// let model = try Model.sequential(runtime: runtime) {
    ///     Conv2d(1, 8, kernel: 3, padding: 1).named("conv_1")
    ///     ReLU()
    ///     MaxPool2d(2)
    ///     Flatten()
    ///     Linear(8 * 14 * 14, 10)
    /// }
    /// ```
    /// Unnamed layers are numbered by position (`0`, `1`, ...), so parameter names match
    /// `nn.Sequential`'s state_dict (`0.weight`).
    public static func sequential(runtime: Runtime, @LayerBuilder _ layers: () -> [any LayerSpec]) throws -> Model {
        let model = Model(runtime: runtime)
        for (index, spec) in layers().enumerated() {
            try model.add(spec.name ?? String(index), spec.type, spec.attributes)
        }
        return model
    }
}

/// Any plugin layer type by name, for types without a Swift spelling (third-party plugins).
public struct AnyLayer: LayerSpec {
    public let type: String
    public let attributes: Attributes
    public var name: String?
    /// A layer of plugin type `type` with `attributes` (PyTorch's argument names), under node name `name` (nil: numbered by position).
    public init(_ type: String, _ attributes: Attributes = [], name: String? = nil) {
        self.type = type
        self.attributes = attributes
        self.name = name
    }
}

extension LayerSpec {
    /// The same layer under an explicit node name (its parameters become `name.weight`).
    public func named(_ name: String) -> AnyLayer { AnyLayer(type, attributes, name: name) }
}

/// `nn.Conv2d(inChannels, outChannels, kernel_size, stride, padding, bias)`.
public struct Conv2d: LayerSpec {
    public let type = "conv2d"
    public let attributes: Attributes
    public let name: String? = nil
    /// A convolution with square kernel, stride and padding.
    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        attributes = [("in_channels", .int(inChannels)), ("out_channels", .int(outChannels)), ("kernel_size", .int(kernel)),
                      ("stride", .int(stride)), ("padding", .int(padding)), ("bias", .bool(bias))]
    }
    /// Rectangular kernels, strides and paddings: `(height, width)`.
    public init(_ inChannels: Int, _ outChannels: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), bias: Bool = true) {
        attributes = [("in_channels", .int(inChannels)), ("out_channels", .int(outChannels)),
                      ("kernel_size", .ints([kernel.0, kernel.1])), ("stride", .ints([stride.0, stride.1])),
                      ("padding", .ints([padding.0, padding.1])), ("bias", .bool(bias))]
    }
}

/// `nn.MaxPool2d(kernel_size, stride = kernel_size, padding, ceil_mode)`.
public struct MaxPool2d: LayerSpec {
    public let type = "maxpool2d"
    public let attributes: Attributes
    public let name: String? = nil
    /// Max pooling over `kernel`×`kernel` windows; `stride` defaults to `kernel`.
    public init(_ kernel: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false) {
        attributes = [("kernel_size", .int(kernel)), ("stride", .int(stride ?? kernel)), ("padding", .int(padding)),
                      ("ceil_mode", .bool(ceilMode))]
    }
}

/// `nn.AvgPool2d(kernel_size, stride = kernel_size, padding, ceil_mode, count_include_pad)`.
public struct AvgPool2d: LayerSpec {
    public let type = "avgpool2d"
    public let attributes: Attributes
    public let name: String? = nil
    /// Average pooling over `kernel`×`kernel` windows; `stride` defaults to `kernel`.
    public init(_ kernel: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false, countIncludePad: Bool = true) {
        attributes = [("kernel_size", .int(kernel)), ("stride", .int(stride ?? kernel)), ("padding", .int(padding)),
                      ("ceil_mode", .bool(ceilMode)), ("count_include_pad", .bool(countIncludePad))]
    }
}

/// `nn.AdaptiveAvgPool2d(output_size)`.
public struct AdaptiveAvgPool2d: LayerSpec {
    public let type = "adaptive_avgpool2d"
    public let attributes: Attributes
    public let name: String? = nil
    /// Pools to `height`×`width` outputs (`width` defaults to `height`).
    public init(_ height: Int, _ width: Int? = nil) { attributes = [("output_size", .ints([height, width ?? height]))] }
}

/// `nn.Linear(in_features, out_features, bias)`.
public struct Linear: LayerSpec {
    public let type = "linear"
    public let attributes: Attributes
    public let name: String? = nil
    /// A fully connected layer from `inFeatures` to `outFeatures`.
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        attributes = [("in_features", .int(inFeatures)), ("out_features", .int(outFeatures)), ("bias", .bool(bias))]
    }
}

/// `nn.BatchNorm2d(num_features, eps, momentum)`.
public struct BatchNorm2d: LayerSpec {
    public let type = "batchnorm2d"
    public let attributes: Attributes
    public let name: String? = nil
    /// Batch normalisation over `features` channels.
    public init(_ features: Int, eps: Double = 1e-5, momentum: Double = 0.1) {
        attributes = [("num_features", .int(features)), ("eps", .float(eps)), ("momentum", .float(momentum))]
    }
}

/// `nn.Dropout(p)`.
public struct Dropout: LayerSpec {
    public let type = "dropout"
    public let attributes: Attributes
    public let name: String? = nil
    /// Zeroes elements with probability `p` in training mode (scaling the rest by 1/(1-p)); identity in evaluation mode.
    public init(_ p: Double = 0.5) { attributes = [("p", .float(p))] }
}

/// `nn.Flatten(start_dim = 1)`.
public struct Flatten: LayerSpec {
    public let type = "flatten"
    public let attributes: Attributes
    public let name: String? = nil
    /// Flattens every dimension from `startDim` on into one.
    public init(startDim: Int = 1) { attributes = [("start_dim", .int(startDim))] }
}

/// `nn.ReLU()`.
public struct ReLU: LayerSpec {
    public let type = "relu"
    public let attributes: Attributes = []
    public let name: String? = nil
    /// The rectified linear unit, max(0, x).
    public init() {}
}

/// `nn.Tanh()`.
public struct Tanh: LayerSpec {
    public let type = "tanh"
    public let attributes: Attributes = []
    public let name: String? = nil
    /// The hyperbolic tangent.
    public init() {}
}

/// `nn.Sigmoid()`.
public struct Sigmoid: LayerSpec {
    public let type = "sigmoid"
    public let attributes: Attributes = []
    public let name: String? = nil
    /// The logistic sigmoid, 1 / (1 + e^-x).
    public init() {}
}

/// `nn.Softmax(dim)` / `nn.LogSoftmax(dim)`.
public struct Softmax: LayerSpec {
    public let type: String
    public let attributes: Attributes
    public let name: String? = nil
    /// Softmax over dimension `dim`, or its logarithm when `log` is set (`log_softmax`).
    public init(dim: Int = 1, log: Bool = false) {
        type = log ? "log_softmax" : "softmax"
        attributes = [("dim", .int(dim))]
    }
}
