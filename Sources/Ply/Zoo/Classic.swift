import Foundation

/// The model zoo: every model is a model file (docs/model-format.md) shipped as a string
/// constant, one Swift file per family. `Zoo.model(named:)` builds one by name, or from a
/// `.yaml`/`.json` path; `Zoo.model(text:)` builds one from text (e.g. handed over by a C program).
public enum Zoo {
    /// A zoo model: its model file and the parameter values that make it this variant
    /// (e.g. vgg16_bn = the VGG file with batch_norm true and 2, 2, 3, 3, 3 convs per stage).
    struct Entry: Sendable {
        let name: String
        let text: String
        let parameters: [String: AttributeValue]
        init(_ name: String, _ text: String, _ parameters: [String: AttributeValue] = [:]) {
            self.name = name
            self.text = text
            self.parameters = parameters
        }
    }

    static let entries: [Entry] = classic + alexNetFamily + vggFamily + googLeNetFamily + inceptionFamily + resNetFamily
    static let aliases = ["seed_convnet": "convnet", "lenet": "lenet5", "seed_lenet5": "lenet5"]

    /// Names `Zoo.model(named:)` knows.
    public static let names: [String] = entries.map(\.name)

    /// The model file of the zoo model `name`, and the parameters that select its variant.
    public static func modelFile(named name: String) throws -> (file: ModelFile, parameters: [String: AttributeValue]) {
        let key = aliases[name.lowercased()] ?? name.lowercased()
        guard let e = entries.first(where: { $0.name == key }) else {
            throw PlyError.invalid("unknown model '\(name)'; the zoo has: \(names.joined(separator: ", ")) (or give a .yaml / .json model file)")
        }
        return (try ModelFile(text: e.text, source: "<zoo:\(e.name)>"), e.parameters)
    }

    /// Builds the zoo model `name` — or the model file at that path, when it ends in `.yaml`,
    /// `.yml` or `.json` — for `inChannels`-channel images of `imageSize`² pixels and
    /// `numClasses` classes. Images smaller than the model's `min_input_size` are resized up
    /// by a first node named `resize` (no parameters); `parameters` sets any other parameter
    /// the file declares (e.g. `["aux_logits": .bool(true)]`).
    public static func model(named name: String, runtime: Runtime, numClasses: Int = 10, inChannels: Int = 1,
                             imageSize: Int = 28, parameters: [String: AttributeValue] = [:]) throws -> Model {
        let lower = name.lowercased()
        if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") || lower.hasSuffix(".json") {
            let file = try ModelFile(contentsOf: URL(fileURLWithPath: name))
            return try build(file, [:], runtime, numClasses, inChannels, imageSize, parameters)
        }
        let (file, variant) = try modelFile(named: name)
        return try build(file, variant, runtime, numClasses, inChannels, imageSize, parameters)
    }

    /// Builds a model from model-file text (YAML or JSON), as `model(named:)` does; errors
    /// name `source` (default `<text>`) with line and column.
    public static func model(text: String, source: String = "<text>", runtime: Runtime, numClasses: Int = 10,
                             inChannels: Int = 1, imageSize: Int = 28, parameters: [String: AttributeValue] = [:]) throws -> Model {
        try build(ModelFile(text: text, source: source), [:], runtime, numClasses, inChannels, imageSize, parameters)
    }

    /// num_classes, in_channels and image_size go to the file when it declares them.
    static func build(_ file: ModelFile, _ variant: [String: AttributeValue], _ runtime: Runtime, _ numClasses: Int,
                      _ inChannels: Int, _ imageSize: Int, _ parameters: [String: AttributeValue]) throws -> Model {
        var values = variant
        let declared = Set(file.parameters.map(\.name))
        for (k, v) in [("num_classes", numClasses), ("in_channels", inChannels), ("image_size", imageSize)] where declared.contains(k) {
            values[k] = .int(v)
        }
        for (k, v) in parameters { values[k] = v }
        return try file.build(runtime: runtime, parameters: values, inputShape: Shape([1, inChannels, imageSize, imageSize]))
    }

    /// The tutorial's ConvNet: conv 3×3 (8) → ReLU → max-pool 2 → conv 3×3 (16) → ReLU →
    /// max-pool 2 → linear. 9,098 parameters for 28×28×1 and 10 classes.
    public static func convNet(runtime: Runtime, numClasses: Int = 10, inChannels: Int = 1, imageSize: Int = 28) throws -> Model {
        try model(named: "convnet", runtime: runtime, numClasses: numClasses, inChannels: inChannels, imageSize: imageSize)
    }

    /// LeNet-5 as the PyTorch tutorial writes it (ReLU and max-pool); see `lenet5Text`.
    public static func leNet5(runtime: Runtime, numClasses: Int = 10, inChannels: Int = 1, imageSize: Int = 32) throws -> Model {
        try model(named: "lenet5", runtime: runtime, numClasses: numClasses, inChannels: inChannels, imageSize: imageSize)
    }

    static func conv(_ inC: Int, _ outC: Int, kernel: Int, padding: Int, stride: Int = 1, bias: Bool = true) -> Attributes {
        [("in_channels", .int(inC)), ("out_channels", .int(outC)), ("kernel_size", .int(kernel)),
         ("stride", .int(stride)), ("padding", .int(padding)), ("bias", .bool(bias))]
    }

    static let classic = [Entry("convnet", convNetText), Entry("lenet5", leNet5Text)]

    /// The tutorial's ConvNet (the seed's node names conv_1, pool_1, conv_2, pool_2, linear_1).
    public static let convNetText = """
        model: convnet
        description: the tutorial's ConvNet, two 3x3 conv + max-pool stages and a linear classifier
        params:
          num_classes: 10
          in_channels: 1
          image_size: 28
        layers:
          - {name: conv_1, type: conv2d, in_channels: $in_channels, out_channels: 8, kernel_size: 3, stride: 1, padding: 1}
          - {name: relu_1, type: relu}
          - {name: pool_1, type: maxpool2d, kernel_size: 2, stride: 2, padding: 0}
          - {name: conv_2, type: conv2d, in_channels: 8, out_channels: 16, kernel_size: 3, stride: 1, padding: 1}
          - {name: relu_2, type: relu}
          - {name: pool_2, type: maxpool2d, kernel_size: 2, stride: 2, padding: 0}
          - {name: flatten, type: flatten}
          - {name: linear_1, type: linear, in_features: $(16 * (image_size / 4) * (image_size / 4)), out_features: $num_classes}

        """

    /// LeNet-5 as the PyTorch tutorial writes it (ReLU and max-pool). Its linear layer expects
    /// 32×32 inputs; for smaller images (28×28 MNIST) the first conv pads, which is what the
    /// original LeNet-5 did by padding MNIST to 32×32. 61,706 parameters either way.
    public static let leNet5Text = """
        model: lenet5
        description: LeNet-5 as in the PyTorch tutorial (ReLU, max-pool)
        params:
          num_classes: 10
          in_channels: 1
          image_size: 32
        vars:
          pad: $(max(0, (33 - image_size) / 2))              # 28x28 -> pad 2, as LeNet-5 padded MNIST to 32x32
          side: $(((image_size + 2 * pad - 4) / 2 - 4) / 2)  # 5 for 32x32
        layers:
          - {name: conv1, type: conv2d, in_channels: $in_channels, out_channels: 6, kernel_size: 5, stride: 1, padding: $pad}
          - {name: relu1, type: relu}
          - {name: pool1, type: maxpool2d, kernel_size: 2}
          - {name: conv2, type: conv2d, in_channels: 6, out_channels: 16, kernel_size: 5, stride: 1, padding: 0}
          - {name: relu2, type: relu}
          - {name: pool2, type: maxpool2d, kernel_size: 2}
          - {name: flatten, type: flatten}
          - {name: fc1, type: linear, in_features: $(16 * side * side), out_features: 120}
          - {name: relu3, type: relu}
          - {name: fc2, type: linear, in_features: 120, out_features: 84}
          - {name: relu4, type: relu}
          - {name: fc3, type: linear, in_features: 84, out_features: $num_classes}

        """
}
