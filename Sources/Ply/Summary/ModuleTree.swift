import Foundation

// PyTorch's `print(model)` for Ply models: each layer's repr in PyTorch's format, composite
// layers expanded into the children their `describe` reports (ModelSummary), and dotted node
// names nested into containers. What is known here by type name is only PyTorch's spelling of
// a layer (its class name and repr); structure, MACs and windows come from `describe`.

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
        case "relu6": return "ReLU6()"
        case "hardswish": return "Hardswish()"
        case "hardtanh":
            return "Hardtanh(min_val=\(float(a.double("min_val") ?? -1)), max_val=\(float(a.double("max_val") ?? 1)))"
        case "leakyrelu": return "LeakyReLU(negative_slope=\(float(a.double("negative_slope") ?? 0.01)))"
        case "hardsigmoid" where a.value("alpha") == nil && a.value("beta") == nil: return "Hardsigmoid()"
        case "pad2d":
            var p = a.int("padding").map { [$0, $0, $0, $0] } ?? []
            if case let .ints(v)? = a.value("padding") { p = v }
            let pads = "(" + p.map(String.init).joined(separator: ", ") + ")"
            if case .string("reflect")? = a.value("mode") { return "ReflectionPad2d(\(pads))" }
            let v = a.double("value") ?? 0
            return v == 0 ? "ZeroPad2d(\(pads))" : "ConstantPad2d(padding=\(pads), value=\(float(v)))"
        case "mul": return "Mul()"
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
