/// The classic models, composed from plugin layers with PyTorch's parameter names.
public enum Zoo {
    /// Names `Zoo.model(named:)` knows.
    public static let names = ["convnet", "lenet5"]

    /// Builds the model called `name` for `inChannels`-channel images of `imageSize`² pixels.
    public static func model(named name: String, runtime: Runtime, numClasses: Int = 10,
                             inChannels: Int = 1, imageSize: Int = 28) throws -> Model {
        switch name.lowercased() {
        case "convnet", "seed_convnet":
            return try convNet(runtime: runtime, numClasses: numClasses, inChannels: inChannels, imageSize: imageSize)
        case "lenet5", "lenet", "seed_lenet5":
            return try leNet5(runtime: runtime, numClasses: numClasses, inChannels: inChannels, imageSize: imageSize)
        default:
            throw PlyError.invalid("unknown model '\(name)'; the zoo has: \(names.joined(separator: ", "))")
        }
    }

    /// The tutorial's ConvNet: conv 3×3 (8) → ReLU → max-pool 2 → conv 3×3 (16) → ReLU →
    /// max-pool 2 → linear. 9,098 parameters for 28×28×1 and 10 classes.
    public static func convNet(runtime: Runtime, numClasses: Int = 10, inChannels: Int = 1, imageSize: Int = 28) throws -> Model {
        let m = Model(runtime: runtime)
        let pool: Attributes = [("kernel_size", .int(2)), ("stride", .int(2)), ("padding", .int(0))]
        try m.add("conv_1", "conv2d", conv(inChannels, 8, kernel: 3, padding: 1))
        try m.add("relu_1", "relu")
        try m.add("pool_1", "maxpool2d", pool)
        try m.add("conv_2", "conv2d", conv(8, 16, kernel: 3, padding: 1))
        try m.add("relu_2", "relu")
        try m.add("pool_2", "maxpool2d", pool)
        try m.add("flatten", "flatten")
        let side = imageSize / 2 / 2
        try m.add("linear_1", "linear", [("in_features", .int(16 * side * side)), ("out_features", .int(numClasses))])
        return m
    }

    /// LeNet-5 as the PyTorch tutorial writes it (ReLU and max-pool). Its linear layer expects
    /// 32×32 inputs; for 28×28 images (MNIST) the first conv pads by 2, which is what the
    /// original LeNet-5 did by padding MNIST to 32×32. Parameter count is unchanged (61,706).
    public static func leNet5(runtime: Runtime, numClasses: Int = 10, inChannels: Int = 1, imageSize: Int = 32) throws -> Model {
        let m = Model(runtime: runtime)
        let pad = imageSize < 32 ? (32 - imageSize + 1) / 2 : 0
        try m.add("conv1", "conv2d", conv(inChannels, 6, kernel: 5, padding: pad))
        try m.add("relu1", "relu")
        try m.add("pool1", "maxpool2d", [("kernel_size", .int(2))])
        try m.add("conv2", "conv2d", conv(6, 16, kernel: 5, padding: 0))
        try m.add("relu2", "relu")
        try m.add("pool2", "maxpool2d", [("kernel_size", .int(2))])
        try m.add("flatten", "flatten")
        let side = ((imageSize + 2 * pad - 4) / 2 - 4) / 2
        try m.add("fc1", "linear", [("in_features", .int(16 * side * side)), ("out_features", .int(120))])
        try m.add("relu3", "relu")
        try m.add("fc2", "linear", [("in_features", .int(120)), ("out_features", .int(84))])
        try m.add("relu4", "relu")
        try m.add("fc3", "linear", [("in_features", .int(84)), ("out_features", .int(numClasses))])
        return m
    }

    static func conv(_ inC: Int, _ outC: Int, kernel: Int, padding: Int, stride: Int = 1, bias: Bool = true) -> Attributes {
        [("in_channels", .int(inC)), ("out_channels", .int(outC)), ("kernel_size", .int(kernel)),
         ("stride", .int(stride)), ("padding", .int(padding)), ("bias", .bool(bias))]
    }
}
