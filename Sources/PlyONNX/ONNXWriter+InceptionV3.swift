import Ply

extension ONNXWriter {
    /// One step of an Inception-v3 branch, as torchvision's `forward` runs it.
    enum InceptionStep {
        /// The BasicConv2d child of this name.
        case conv(String)
        /// These children each read the previous value; their outputs are concatenated (InceptionE).
        case split(String, String)
        /// `F.avg_pool2d(x, 3, stride 1, padding 1)` (count_include_pad, as torch's default).
        case avgPool
        /// `F.max_pool2d(x, 3, stride 2)`.
        case maxPool
    }

    /// The branches of torchvision's InceptionA..E (models/inception.py), each read from the
    /// block's input, concatenated on channels in this order.
    static func inceptionV3Branches(_ type: String) -> [[InceptionStep]] {
        switch type {
        case "inception_v3_a":
            return [[.conv("branch1x1")], [.conv("branch5x5_1"), .conv("branch5x5_2")],
                    [.conv("branch3x3dbl_1"), .conv("branch3x3dbl_2"), .conv("branch3x3dbl_3")], [.avgPool, .conv("branch_pool")]]
        case "inception_v3_b":
            return [[.conv("branch3x3")], [.conv("branch3x3dbl_1"), .conv("branch3x3dbl_2"), .conv("branch3x3dbl_3")], [.maxPool]]
        case "inception_v3_c":
            return [[.conv("branch1x1")], [.conv("branch7x7_1"), .conv("branch7x7_2"), .conv("branch7x7_3")],
                    (1...5).map { .conv("branch7x7dbl_\($0)") }, [.avgPool, .conv("branch_pool")]]
        case "inception_v3_d":
            return [[.conv("branch3x3_1"), .conv("branch3x3_2")], (1...4).map { .conv("branch7x7x3_\($0)") }, [.maxPool]]
        default:  // inception_v3_e
            return [[.conv("branch1x1")], [.conv("branch3x3_1"), .split("branch3x3_2a", "branch3x3_2b")],
                    [.conv("branch3x3dbl_1"), .conv("branch3x3dbl_2"), .split("branch3x3dbl_3a", "branch3x3dbl_3b")],
                    [.avgPool, .conv("branch_pool")]]
        }
    }

    /// An Inception-v3 block (`inception_v3_a` .. `_e`) as its sub-graph: the branches of
    /// ``inceptionV3Branches(_:)`` with the block's described children (BasicConv2d, each
    /// with its own attributes and the state_dict's tensors) and the functional pools.
    mutating func inceptionV3(type: String, children: [LayerDescription.Child], prefix: String, input: String) throws -> String {
        var byName: [String: LayerDescription.Child] = [:]
        for c in children { if let n = c.name { byName[n] = c } }
        func child(_ name: String) throws -> LayerDescription.Child {
            guard let c = byName[name], c.attributes != nil else {
                throw ONNXError.unsupportedLayer(node: prefix, type: type,
                                                 reason: "its child '\(name)' is not described (describe, plugin ABI 1.2)")
            }
            return c
        }
        func conv(_ name: String, _ x: String) throws -> String {
            let c = try child(name)
            return try emit(type: c.typeName, attributes: c.attributes ?? [], children: c.details.children, prefix: "\(prefix).\(name)",
                            inputs: [x], inShapes: c.inputShapes, outShape: c.outputShape)
        }
        var outs: [String] = []
        for (b, steps) in Self.inceptionV3Branches(type).enumerated() {
            var t = input
            for step in steps {
                switch step {
                case let .conv(name): t = try conv(name, t)
                case let .split(n1, n2):
                    let (y1, y2) = (try conv(n1, t), try conv(n2, t))
                    t = node("Concat", [y1, y2], name: "\(prefix).\(n1.dropLast())", [Self.attribute("axis", int: 1)])
                case .avgPool:
                    t = node("AveragePool", [t], name: "\(prefix).pool\(b)",
                             [Self.attribute("kernel_shape", ints: [3, 3]), Self.attribute("strides", ints: [1, 1]),
                              Self.attribute("pads", ints: [1, 1, 1, 1]), Self.attribute("count_include_pad", int: 1)])
                case .maxPool:
                    t = node("MaxPool", [t], name: "\(prefix).pool\(b)",
                             [Self.attribute("kernel_shape", ints: [3, 3]), Self.attribute("strides", ints: [2, 2])])
                }
            }
            outs.append(t)
        }
        return node("Concat", outs, name: prefix, [Self.attribute("axis", int: 1)])
    }
}
