import Foundation

// PyTorch's `print(model)` for Ply models: each layer's repr in PyTorch's format, composite
// blocks expanded into the children torchvision gives them, and dotted node names nested
// into containers.

/// A child of a composite block (residual or inception), as torchvision registers it.
struct BlockChild {
    /// Path inside the block (`conv1`, `downsample.0`, `branch2.1.conv`); nil for functional
    /// steps torchvision does not register as modules (its F.relu, F.avg_pool2d, ...), which
    /// still count for shapes, MACs and the receptive field.
    let path: String?
    let type: String
    let attributes: Attributes
    /// Index of the child this one reads, or -1 for the block's input.
    let input: Int
}

/// A composite block: its PyTorch class name, the class of each inner container
/// (`branch2.0` → BasicConv2d; unnamed ones are Sequential) and its children in order.
struct BlockTemplate {
    var className: String
    var containers: [String: String] = [:]
    var children: [BlockChild] = []

    init(_ className: String) { self.className = className }

    @discardableResult
    mutating func add(_ path: String?, _ type: String, _ attributes: Attributes, from input: Int) -> Int {
        children.append(BlockChild(path: path, type: type, attributes: attributes, input: input))
        return children.count - 1
    }

    /// torchvision's BasicConv2d: conv (no bias) + BatchNorm2d(eps=0.001) + F.relu.
    @discardableResult
    mutating func basicConv(_ path: String, from input: Int, _ cin: Int, _ cout: Int, kernel: [Int],
                            stride: [Int] = [1, 1], padding: [Int] = [0, 0]) -> Int {
        containers[path] = "BasicConv2d"
        let c = add(path + ".conv", "conv2d", [("in_channels", .int(cin)), ("out_channels", .int(cout)), ("kernel_size", .ints(kernel)),
                                              ("stride", .ints(stride)), ("padding", .ints(padding)), ("bias", .bool(false))], from: input)
        let b = add(path + ".bn", "batchnorm2d", [("num_features", .int(cout)), ("eps", .float(0.001))], from: c)
        return add(nil, "relu", [], from: b)
    }

    /// The trainable parameter names the template implies, in order (checked against the layer's own).
    var parameterNames: [String] {
        children.flatMap { c -> [String] in
            guard let p = c.path else { return [] }
            switch c.type {
            case "conv2d", "linear": return c.attributes.bool("bias") == false ? [p + ".weight"] : [p + ".weight", p + ".bias"]
            case "batchnorm2d": return c.attributes.bool("affine") == false ? [] : [p + ".weight", p + ".bias"]
            default: return []
            }
        }
    }

    /// The children of a block layer of `type`, from its attributes; nil for types that are not known blocks.
    static func make(type: String, attributes a: Attributes) -> BlockTemplate? {
        func int(_ name: String) -> Int? { a.int(name) }
        func conv(_ cin: Int, _ cout: Int, _ k: Int, _ s: Int) -> Attributes {
            [("in_channels", .int(cin)), ("out_channels", .int(cout)), ("kernel_size", .int(k)), ("stride", .int(s)),
             ("padding", .int(k / 2)), ("bias", .bool(false))]
        }
        func bn(_ c: Int) -> Attributes { [("num_features", .int(c)), ("eps", .float(1e-5)), ("momentum", .float(0.1))] }
        switch type {
        case "residual_basic", "residual_bottleneck":
            guard let inplanes = int("inplanes"), let planes = int("planes") else { return nil }
            let stride = int("stride") ?? 1
            let bottleneck = type == "residual_bottleneck"
            let out = planes * (bottleneck ? 4 : 1)
            let downsample = a.bool("downsample") ?? (stride != 1 || inplanes != out)
            var t = BlockTemplate(bottleneck ? "Bottleneck" : "BasicBlock")
            if bottleneck {
                var x = t.add("conv1", "conv2d", conv(inplanes, planes, 1, 1), from: -1)
                x = t.add("bn1", "batchnorm2d", bn(planes), from: x)
                x = t.add("conv2", "conv2d", conv(planes, planes, 3, stride), from: x)
                x = t.add("bn2", "batchnorm2d", bn(planes), from: x)
                x = t.add("conv3", "conv2d", conv(planes, out, 1, 1), from: x)
                x = t.add("bn3", "batchnorm2d", bn(out), from: x)
                t.add("relu", "relu", [], from: x)
            } else {
                var x = t.add("conv1", "conv2d", conv(inplanes, planes, 3, stride), from: -1)
                x = t.add("bn1", "batchnorm2d", bn(planes), from: x)
                x = t.add("relu", "relu", [], from: x)
                x = t.add("conv2", "conv2d", conv(planes, planes, 3, 1), from: x)
                t.add("bn2", "batchnorm2d", bn(planes), from: x)
            }
            if downsample {
                let d = t.add("downsample.0", "conv2d", conv(inplanes, out, 1, stride).map { $0.0 == "padding" ? ($0.0, .int(0)) : $0 }, from: -1)
                t.add("downsample.1", "batchnorm2d", bn(out), from: d)
            }
            return t
        case "basic_conv2d":
            guard let cin = int("in_channels"), let cout = int("out_channels"), let k = a.pair("kernel_size") else { return nil }
            // Its children are the block's own conv and bn (the model node is the BasicConv2d).
            var t = BlockTemplate("BasicConv2d")
            let c = t.add("conv", "conv2d", [("in_channels", .int(cin)), ("out_channels", .int(cout)), ("kernel_size", .ints(k)),
                                            ("stride", .ints(a.pair("stride") ?? [1, 1])),
                                            ("padding", .ints(a.pair("padding") ?? [0, 0])), ("bias", .bool(false))], from: -1)
            let b = t.add("bn", "batchnorm2d", [("num_features", .int(cout)), ("eps", .float(0.001))], from: c)
            t.add(nil, "relu", [], from: b)
            return t
        case "inception_googlenet":
            let names = ["in_channels", "ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj"]
            let v = names.compactMap(int)
            guard v.count == names.count else { return nil }
            var t = BlockTemplate("Inception")
            t.basicConv("branch1", from: -1, v[0], v[1], kernel: [1, 1])
            var x = t.basicConv("branch2.0", from: -1, v[0], v[2], kernel: [1, 1])
            t.basicConv("branch2.1", from: x, v[2], v[3], kernel: [3, 3], padding: [1, 1])
            x = t.basicConv("branch3.0", from: -1, v[0], v[4], kernel: [1, 1])
            t.basicConv("branch3.1", from: x, v[4], v[5], kernel: [3, 3], padding: [1, 1])  // torchvision's "5x5" is a 3x3
            x = t.add("branch4.0", "maxpool2d", [("kernel_size", .int(3)), ("stride", .int(1)), ("padding", .int(1)),
                                                ("ceil_mode", .bool(true))], from: -1)
            t.basicConv("branch4.1", from: x, v[0], v[6], kernel: [1, 1])
            return t
        case "inception_v3_a":
            guard let cin = int("in_channels"), let pf = int("pool_features") else { return nil }
            var t = BlockTemplate("InceptionA")
            t.basicConv("branch1x1", from: -1, cin, 64, kernel: [1, 1])
            var x = t.basicConv("branch5x5_1", from: -1, cin, 48, kernel: [1, 1])
            t.basicConv("branch5x5_2", from: x, 48, 64, kernel: [5, 5], padding: [2, 2])
            x = t.basicConv("branch3x3dbl_1", from: -1, cin, 64, kernel: [1, 1])
            x = t.basicConv("branch3x3dbl_2", from: x, 64, 96, kernel: [3, 3], padding: [1, 1])
            t.basicConv("branch3x3dbl_3", from: x, 96, 96, kernel: [3, 3], padding: [1, 1])
            x = t.add(nil, "avgpool2d", [("kernel_size", .int(3)), ("stride", .int(1)), ("padding", .int(1))], from: -1)
            t.basicConv("branch_pool", from: x, cin, pf, kernel: [1, 1])
            return t
        case "inception_v3_b":
            guard let cin = int("in_channels") else { return nil }
            var t = BlockTemplate("InceptionB")
            t.basicConv("branch3x3", from: -1, cin, 384, kernel: [3, 3], stride: [2, 2])
            var x = t.basicConv("branch3x3dbl_1", from: -1, cin, 64, kernel: [1, 1])
            x = t.basicConv("branch3x3dbl_2", from: x, 64, 96, kernel: [3, 3], padding: [1, 1])
            t.basicConv("branch3x3dbl_3", from: x, 96, 96, kernel: [3, 3], stride: [2, 2])
            t.add(nil, "maxpool2d", [("kernel_size", .int(3)), ("stride", .int(2))], from: -1)
            return t
        case "inception_v3_c":
            guard let cin = int("in_channels"), let c7 = int("channels_7x7") else { return nil }
            var t = BlockTemplate("InceptionC")
            t.basicConv("branch1x1", from: -1, cin, 192, kernel: [1, 1])
            var x = t.basicConv("branch7x7_1", from: -1, cin, c7, kernel: [1, 1])
            x = t.basicConv("branch7x7_2", from: x, c7, c7, kernel: [1, 7], padding: [0, 3])
            t.basicConv("branch7x7_3", from: x, c7, 192, kernel: [7, 1], padding: [3, 0])
            x = t.basicConv("branch7x7dbl_1", from: -1, cin, c7, kernel: [1, 1])
            x = t.basicConv("branch7x7dbl_2", from: x, c7, c7, kernel: [7, 1], padding: [3, 0])
            x = t.basicConv("branch7x7dbl_3", from: x, c7, c7, kernel: [1, 7], padding: [0, 3])
            x = t.basicConv("branch7x7dbl_4", from: x, c7, c7, kernel: [7, 1], padding: [3, 0])
            t.basicConv("branch7x7dbl_5", from: x, c7, 192, kernel: [1, 7], padding: [0, 3])
            x = t.add(nil, "avgpool2d", [("kernel_size", .int(3)), ("stride", .int(1)), ("padding", .int(1))], from: -1)
            t.basicConv("branch_pool", from: x, cin, 192, kernel: [1, 1])
            return t
        case "inception_v3_d":
            guard let cin = int("in_channels") else { return nil }
            var t = BlockTemplate("InceptionD")
            var x = t.basicConv("branch3x3_1", from: -1, cin, 192, kernel: [1, 1])
            t.basicConv("branch3x3_2", from: x, 192, 320, kernel: [3, 3], stride: [2, 2])
            x = t.basicConv("branch7x7x3_1", from: -1, cin, 192, kernel: [1, 1])
            x = t.basicConv("branch7x7x3_2", from: x, 192, 192, kernel: [1, 7], padding: [0, 3])
            x = t.basicConv("branch7x7x3_3", from: x, 192, 192, kernel: [7, 1], padding: [3, 0])
            t.basicConv("branch7x7x3_4", from: x, 192, 192, kernel: [3, 3], stride: [2, 2])
            t.add(nil, "maxpool2d", [("kernel_size", .int(3)), ("stride", .int(2))], from: -1)
            return t
        case "inception_v3_e":
            guard let cin = int("in_channels") else { return nil }
            var t = BlockTemplate("InceptionE")
            t.basicConv("branch1x1", from: -1, cin, 320, kernel: [1, 1])
            var x = t.basicConv("branch3x3_1", from: -1, cin, 384, kernel: [1, 1])
            t.basicConv("branch3x3_2a", from: x, 384, 384, kernel: [1, 3], padding: [0, 1])
            t.basicConv("branch3x3_2b", from: x, 384, 384, kernel: [3, 1], padding: [1, 0])
            x = t.basicConv("branch3x3dbl_1", from: -1, cin, 448, kernel: [1, 1])
            x = t.basicConv("branch3x3dbl_2", from: x, 448, 384, kernel: [3, 3], padding: [1, 1])
            t.basicConv("branch3x3dbl_3a", from: x, 384, 384, kernel: [1, 3], padding: [0, 1])
            t.basicConv("branch3x3dbl_3b", from: x, 384, 384, kernel: [3, 1], padding: [1, 0])
            x = t.add(nil, "avgpool2d", [("kernel_size", .int(3)), ("stride", .int(1)), ("padding", .int(1))], from: -1)
            t.basicConv("branch_pool", from: x, cin, 192, kernel: [1, 1])
            return t
        case "inception_v3_aux":
            guard let cin = int("in_channels"), let classes = int("num_classes") else { return nil }
            var t = BlockTemplate("InceptionAux")
            var x = t.add(nil, "avgpool2d", [("kernel_size", .int(5)), ("stride", .int(3))], from: -1)
            x = t.basicConv("conv0", from: x, cin, 128, kernel: [1, 1])
            x = t.basicConv("conv1", from: x, 128, 768, kernel: [5, 5])
            x = t.add(nil, "adaptive_avgpool2d", [("output_size", .int(1))], from: x)
            x = t.add(nil, "flatten", [], from: x)
            t.add("fc", "linear", [("in_features", .int(768)), ("out_features", .int(classes))], from: x)
            return t
        default:
            return nil
        }
    }
}

extension Array where Element == (String, AttributeValue) {
    func value(_ name: String) -> AttributeValue? { first { $0.0 == name }?.1 }
    func int(_ name: String) -> Int? { if case let .int(v)? = value(name) { return v }; return nil }
    func bool(_ name: String) -> Bool? { if case let .bool(v)? = value(name) { return v }; return nil }
    func double(_ name: String) -> Double? {
        switch value(name) { case let .float(v)?: return v; case let .int(v)?: return Double(v); default: return nil }
    }
    /// An int or a pair as a pair (`3` → [3, 3]); an empty list (PyTorch's "default") is nil.
    func pair(_ name: String) -> [Int]? {
        switch value(name) {
        case let .int(v)?: return [v, v]
        case let .ints(v)? where v.count == 1: return [v[0], v[0]]
        case let .ints(v)? where v.count == 2: return v
        default: return nil
        }
    }
}

/// PyTorch's repr of values and layers.
enum PyRepr {
    /// A Python float as `repr` writes it: 0.1, 1e-05, 0.001, 1.0.
    static func float(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v < 0 ? "-inf" : "inf" }
        // Swift's description is the shortest round-trip form, with Python's switch to
        // exponent form below 1e-4 and at 1e16 and its two-digit exponents (1e-05).
        return "\(v)"
    }

    /// A Python value: ints, floats, True/False, 'strings', tuples.
    static func value(_ v: AttributeValue) -> String {
        switch v {
        case let .int(i): return String(i)
        case let .float(d): return float(d)
        case let .bool(b): return b ? "True" : "False"
        case let .string(s): return "'\(s)'"
        case let .ints(a): return a.count == 1 ? "(\(a[0]),)" : "(" + a.map(String.init).joined(separator: ", ") + ")"
        case let .floats(a): return a.count == 1 ? "(\(float(a[0])),)" : "(" + a.map(float).joined(separator: ", ") + ")"
        }
    }

    static func pair(_ a: Attributes, _ name: String, _ fallback: Int) -> String {
        let p = a.pair(name) ?? [fallback, fallback]
        return "(\(p[0]), \(p[1]))"
    }

    /// The attribute as written (`2` or `(2, 2)`), as PyTorch's pooling layers keep their arguments.
    static func asGiven(_ a: Attributes, _ name: String, _ fallback: String) -> String {
        guard let v = a.value(name) else { return fallback }
        if case let .ints(x) = v, x.isEmpty { return fallback }
        return value(v)
    }

    /// `Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))` — a layer's repr, or nil for blocks.
    static func leaf(type: String, attributes a: Attributes) -> String {
        switch type {
        case "conv2d":
            var s = "Conv2d(\(a.int("in_channels") ?? 0), \(a.int("out_channels") ?? 0), kernel_size=\(pair(a, "kernel_size", 1)), stride=\(pair(a, "stride", 1))"
            if case let .string(p)? = a.value("padding") {
                s += ", padding=\(p)"
            } else if let p = a.pair("padding"), p != [0, 0] {
                s += ", padding=(\(p[0]), \(p[1]))"
            }
            if let d = a.pair("dilation"), d != [1, 1] { s += ", dilation=(\(d[0]), \(d[1]))" }
            if let g = a.int("groups"), g != 1 { s += ", groups=\(g)" }
            if a.bool("bias") == false { s += ", bias=False" }
            return s + ")"
        case "batchnorm2d":
            return "BatchNorm2d(\(a.int("num_features") ?? 0), eps=\(float(a.double("eps") ?? 1e-5)), momentum=\(float(a.double("momentum") ?? 0.1)), "
                + "affine=\(a.bool("affine") ?? true ? "True" : "False"), track_running_stats=\(a.bool("track_running_stats") ?? true ? "True" : "False"))"
        case "maxpool2d":
            let k = asGiven(a, "kernel_size", "?")
            return "MaxPool2d(kernel_size=\(k), stride=\(asGiven(a, "stride", k)), padding=\(asGiven(a, "padding", "0")), "
                + "dilation=\(asGiven(a, "dilation", "1")), ceil_mode=\(a.bool("ceil_mode") ?? false ? "True" : "False"))"
        case "avgpool2d":
            let k = asGiven(a, "kernel_size", "?")
            return "AvgPool2d(kernel_size=\(k), stride=\(asGiven(a, "stride", k)), padding=\(asGiven(a, "padding", "0")))"
        case "adaptive_avgpool2d": return "AdaptiveAvgPool2d(output_size=\(asGiven(a, "output_size", "?")))"
        case "linear":
            return "Linear(in_features=\(a.int("in_features") ?? 0), out_features=\(a.int("out_features") ?? 0), bias=\(a.bool("bias") ?? true ? "True" : "False"))"
        case "dropout": return "Dropout(p=\(float(a.double("p") ?? 0.5)), inplace=False)"
        case "flatten": return "Flatten(start_dim=\(a.int("start_dim") ?? 1), end_dim=\(a.int("end_dim") ?? -1))"
        case "relu": return "ReLU()"
        case "tanh": return "Tanh()"
        case "sigmoid": return "Sigmoid()"
        case "softmax": return "Softmax(dim=\(a.int("dim") ?? 1))"
        case "log_softmax": return "LogSoftmax(dim=\(a.int("dim") ?? 1))"
        case "cross_entropy": return "CrossEntropyLoss()"
        case "add": return "Add()"
        case "concat": return "Concat(dim=\(a.int("dim") ?? 1))"
        case "interpolate":
            let size = a.value("scale_factor").map { "scale_factor=" + value($0) } ?? "size=\(asGiven(a, "size", "None"))"
            if case let .string(m)? = a.value("mode") { return "Upsample(\(size), mode='\(m)')" }
            return "Upsample(\(size), mode='nearest')"
        default:
            // A type PyTorch has no module for (a third-party plugin): its name and attributes.
            return type + "(" + a.map { "\($0.0)=\(value($0.1))" }.joined(separator: ", ") + ")"
        }
    }
}

/// A module tree built from dotted paths, printed as PyTorch prints modules.
final class ModuleNode {
    var repr: String?  // leaves
    var className = "Sequential"
    var children: [(name: String, node: ModuleNode)] = []

    func child(_ name: String) -> ModuleNode {
        if let c = children.first(where: { $0.name == name }) { return c.node }
        let c = ModuleNode()
        children.append((name, c))
        return c
    }

    /// Walks (and creates) the nodes along `path`.
    func descend(_ path: [String]) -> ModuleNode { path.reduce(self) { $0.child($1) } }

    /// PyTorch's `__repr__`: `Name(` + children indented by two + `)`, or the leaf's line.
    var lines: [String] {
        if children.isEmpty { return [repr ?? className + "()"] }
        var out = [className + "("]
        for (name, node) in children {
            let sub = node.lines
            out.append("  (\(name)): " + sub[0])
            out += sub.dropFirst().map { "  " + $0 }
        }
        out.append(")")
        return out
    }
}
