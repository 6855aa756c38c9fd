import Foundation

/// A model's summary: the module tree as PyTorch prints it, and per node its output shape,
/// parameters, multiply-accumulates and receptive field, with totals.
///
/// Conventions:
/// - **Parameters** are trainable values (PyTorch's `sum(p.numel() for p in model.parameters())`,
///   which is what torchvision's counts are); batch-norm running statistics and
///   `num_batches_tracked` are buffers, reported separately and not counted.
/// - **MACs** are the multiply-accumulates of convolutions and linear layers only
///   (conv: output elements × in_channels/groups × kh × kw; linear: output elements ×
///   in_features), for the whole batch of `inputShape`. Bias additions, batch-norm,
///   activations, pooling, joins and resizing count 0. This is fvcore's convention for
///   conv/linear and gives torchvision's published GMACs (resnet18 at 224: 1.814 G).
/// - **Receptive field and jump**, per spatial axis, in input pixels, on the main path: a
///   window layer (conv, max/avg pool) of kernel k (dilated: d·(k−1)+1) and stride s gives
///   jump_out = jump_in·s and rf_out = rf_in + (k−1)·jump_in; adaptive pooling uses its
///   largest window and stride in/out; bilinear resizing a window of 2 (nearest 1) and
///   stride in/out (so jumps can be fractions of a pixel); a linear layer sees the whole
///   last feature map (k = its size); other layers keep the field. A join (add, concat)
///   takes the maximum over its inputs. A block (residual, inception) composes its inner
///   layers along each branch and takes the maximum over branches — the longest path, e.g.
///   conv3×3(stride s) → conv3×3 for a BasicBlock. Fields are not clipped to the image.
///   Unknown (third-party) layer types keep the field and count 0 MACs.
public struct ModelSummary: Sendable, CustomStringConvertible {
    /// A receptive field or jump per spatial axis, in input pixels.
    public struct Extent: Sendable, Equatable, CustomStringConvertible {
        /// Along the height axis.
        public var height: Double
        /// Along the width axis.
        public var width: Double
        /// An extent of `height` by `width` input pixels.
        public init(_ height: Double, _ width: Double) { self.height = height; self.width = width }
        /// The value in words, as `print` shows it.
        public var description: String {
            height == width ? Self.number(height) : Self.number(height) + "x" + Self.number(width)
        }
        static func number(_ v: Double) -> String {
            v.rounded() == v && abs(v) < 1e15 ? String(Int(v)) : String(format: "%.2f", v)
        }
        static func max(_ a: Extent, _ b: Extent) -> Extent { Extent(Swift.max(a.height, b.height), Swift.max(a.width, b.width)) }
    }

    /// One node of the graph.
    public struct Row: Sendable {
        /// The node name (PyTorch's module path, `layer1.0`).
        public let name: String
        /// The layer type (`conv2d`, `residual_basic`).
        public let type: String
        /// The nodes it reads.
        public let inputs: [String]
        /// The node's output shape for the analysed input.
        public let outputShape: Shape
        /// Trainable parameter values.
        public let parameters: Int
        /// Buffer values (running statistics, counters).
        public let buffers: Int
        /// Multiply-accumulates for the batch (see the type's conventions).
        public let macs: Int
        /// The input pixels one output value depends on, per axis.
        public let receptiveField: Extent
        /// Input pixels between neighbouring output values (the product of the strides so far), per axis.
        public let jump: Extent
    }

    /// The root module's class name (`ResNet`).
    public let className: String
    /// The input shape the model was analysed for.
    public let inputShape: Shape
    /// One row per layer node, in graph order.
    public let rows: [Row]
    /// PyTorch's `print(model)` text.
    public let tree: String
    /// All parameters (equal to `trainableParameters`: every parameter a plugin reports is
    /// trainable; frozen values are buffers).
    public let totalParameters: Int
    /// Trainable parameter values.
    public let trainableParameters: Int
    /// Parameters that are not trainable (always 0: frozen values are buffers).
    public let nonTrainableParameters: Int
    /// Buffer values (batch-norm running statistics and counters), not counted as parameters.
    public let bufferValues: Int
    /// Multiply-accumulates of the whole model for the batch (conv and linear only).
    public let totalMACs: Int
    /// The shape of the model's output.
    public let outputShape: Shape
    /// Names of block nodes whose parameter names did not match the known block layout
    /// (their children are not expanded; empty for every zoo model).
    public let unexpandedBlocks: [String]

    /// The PyTorch class name for a model file's `model:` name: the zoo's torchvision names
    /// (`resnet` → `ResNet`, `inception_v3` → `Inception3`), else the name in CamelCase.
    public static func className(forModelNamed name: String) -> String {
        let known = ["convnet": "ConvNet", "lenet5": "LeNet5", "alexnet": "AlexNet", "vgg": "VGG", "googlenet": "GoogLeNet",
                     "inception_v3": "Inception3", "resnet": "ResNet"]
        if let k = known[name.lowercased()] { return k }
        let camel = name.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        return camel.isEmpty ? "Model" : camel
    }

    /// Analyses `model` for inputs of `inputShape` (NCHW; the batch scales shapes and MACs).
    public init(model: Model, inputShape: Shape, className: String = "Model") throws {
        self.className = className
        self.inputShape = inputShape
        let shapes = try model.shapes(for: inputShape)
        let root = ModuleNode()
        root.className = className
        var rows: [Row] = []
        var states = [Field.start(inputShape)]
        var unexpanded: [String] = []
        var trainable = 0, buffers = 0
        // shapes has one entry per node with a layer (every node but the input has one).
        for (id, node) in model.nodes.enumerated() where id > 0 {
            guard let layer = node.layer else { states.append(states[0]); continue }
            let type = layer.type.name
            let inShapes = node.inputs.map { shapes[$0] }
            let params = try layer.parameters
            let p = params.filter(\.trainable).reduce(0) { $0 + $1.shape.count }
            let b = params.filter { !$0.trainable }.reduce(0) { $0 + $1.shape.count }
            trainable += p
            buffers += b
            let input = node.inputs.map { states[$0] }.reduce(nil) { (acc: Field?, f) in acc.map { $0.joined(f) } ?? f } ?? states[0]
            let path = node.name.split(separator: ".").map(String.init)
            let module = root.descend(path)
            var macs = 0
            var state: Field
            if let block = BlockTemplate.make(type: type, attributes: layer.attributes),
               block.parameterNames == params.filter(\.trainable).map(\.name), let inShape = inShapes.first {
                module.className = block.className
                var childShapes: [Shape] = [], childStates: [Field] = []
                var field = input
                for c in block.children {
                    let cin = c.input < 0 ? inShape : childShapes[c.input]
                    let cstate = c.input < 0 ? input : childStates[c.input]
                    let cout = Self.shape(type: c.type, attributes: c.attributes, input: cin)
                    let s = cstate.through(type: c.type, attributes: c.attributes, input: cin, output: cout)
                    childShapes.append(cout)
                    childStates.append(s)
                    field = field.joined(s)
                    macs = try Self.checkedSum(macs, try Self.macs(type: c.type, attributes: c.attributes, input: cin, output: cout))
                    if let p = c.path { module.descend(p.split(separator: ".").map(String.init)).repr = PyRepr.leaf(type: c.type, attributes: c.attributes) }
                }
                // Container classes once the children exist, so they print in registration order.
                for (path, cls) in block.containers { module.descend(path.split(separator: ".").map(String.init)).className = cls }
                state = field
                state.spatial = Field.spatial(shapes[id]) ?? field.spatial
            } else {
                if BlockTemplate.make(type: type, attributes: layer.attributes) != nil { unexpanded.append(node.name) }
                module.repr = PyRepr.leaf(type: type, attributes: layer.attributes)
                let inShape = inShapes.first ?? inputShape
                macs = try Self.macs(type: type, attributes: layer.attributes, input: inShape, output: shapes[id])
                state = input.through(type: type, attributes: layer.attributes, input: inShape, output: shapes[id])
            }
            states.append(state)
            rows.append(Row(name: node.name, type: type, inputs: node.inputs.map { model.nodes[$0].name }, outputShape: shapes[id],
                            parameters: p, buffers: b, macs: macs, receptiveField: state.rf, jump: state.jump))
        }
        self.rows = rows
        self.tree = root.lines.joined(separator: "\n")
        self.trainableParameters = trainable
        self.nonTrainableParameters = 0
        self.totalParameters = trainable
        self.bufferValues = buffers
        self.totalMACs = try rows.reduce(0) { try Self.checkedSum($0, $1.macs) }
        self.outputShape = shapes[model.output]
        self.unexpandedBlocks = unexpanded
    }

    // MARK: - analysis of one layer

    /// Receptive-field state after a node: field, jump and the size of the last feature map.
    struct Field {
        var rf: Extent
        var jump: Extent
        var spatial: Extent

        static func spatial(_ s: Shape) -> Extent? { s.rank == 4 ? Extent(Double(s.dims[2]), Double(s.dims[3])) : nil }
        static func start(_ s: Shape) -> Field { Field(rf: Extent(1, 1), jump: Extent(1, 1), spatial: spatial(s) ?? Extent(1, 1)) }

        func joined(_ o: Field) -> Field {
            Field(rf: .max(rf, o.rf), jump: .max(jump, o.jump), spatial: .max(spatial, o.spatial))
        }

        /// The state after a window of `k` and stride `s` per axis.
        func window(_ k: (Double, Double), _ s: (Double, Double), spatial out: Extent) -> Field {
            Field(rf: Extent(rf.height + (k.0 - 1) * jump.height, rf.width + (k.1 - 1) * jump.width),
                  jump: Extent(jump.height * s.0, jump.width * s.1), spatial: out)
        }

        func through(type: String, attributes a: Attributes, input: Shape, output: Shape) -> Field {
            let out = Field.spatial(output) ?? spatial
            switch type {
            case "conv2d", "maxpool2d", "avgpool2d":
                guard let k = a.pair("kernel_size") else { return self }
                let s = a.pair("stride") ?? (type == "conv2d" ? [1, 1] : k)
                let d = a.pair("dilation") ?? [1, 1]
                return window((Double(d[0] * (k[0] - 1) + 1), Double(d[1] * (k[1] - 1) + 1)), (Double(s[0]), Double(s[1])), spatial: out)
            case "adaptive_avgpool2d":
                guard input.rank == 4, output.rank == 4 else { return self }
                func axis(_ n: Int, _ o: Int) -> (Double, Double) {
                    let w = (0..<o).map { i in (i + 1) * n / o + ((i + 1) * n % o == 0 ? 0 : 1) - i * n / o }.max() ?? n
                    return (Double(w), Double(n) / Double(o))
                }
                let h = axis(input.dims[2], output.dims[2]), w = axis(input.dims[3], output.dims[3])
                return window((h.0, w.0), (h.1, w.1), spatial: out)
            case "interpolate":
                guard input.rank == 4, output.rank == 4 else { return self }
                var k = 1.0
                if case let .string(m)? = a.value("mode"), m == "bilinear" { k = 2 }
                return window((k, k), (Double(input.dims[2]) / Double(output.dims[2]), Double(input.dims[3]) / Double(output.dims[3])),
                              spatial: out)
            case "linear":
                // Every output sees the whole last feature map.
                return window((spatial.height, spatial.width), (spatial.height, spatial.width), spatial: Extent(1, 1))
            default:
                return Field(rf: rf, jump: jump, spatial: out)
            }
        }
    }

    /// Multiply-accumulates of one layer (conv and linear only).
    /// Throws when the count does not fit in an `Int` (a huge batch or image size).
    static func macs(type: String, attributes a: Attributes, input: Shape, output: Shape) throws -> Int {
        let factors: [Int]
        switch type {
        case "conv2d":
            guard let k = a.pair("kernel_size"), let cin = a.int("in_channels") else { return 0 }
            factors = output.dims + [cin / max(a.int("groups") ?? 1, 1), k[0], k[1]]
        case "linear":
            factors = output.dims + [a.int("in_features") ?? 0]
        default:
            return 0
        }
        return try checkedProduct(factors, what: "multiply-accumulates of a \(type) layer with output \(output)")
    }

    /// The product of `factors`, or an error saying it overflows 64 bits.
    static func checkedProduct(_ factors: [Int], what: String) throws -> Int {
        var total = 1
        for f in factors {
            let (p, overflow) = total.multipliedReportingOverflow(by: f)
            guard !overflow else { throw PlyError.invalid("model summary: the \(what) exceed 2^63; use a smaller batch or image size") }
            total = p
        }
        return total
    }

    /// `a + b`, or an error saying the total overflows 64 bits.
    static func checkedSum(_ a: Int, _ b: Int) throws -> Int {
        let (s, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw PlyError.invalid("model summary: total multiply-accumulates exceed 2^63; use a smaller batch or image size") }
        return s
    }

    /// Output shape of a layer inside a block (the block's own types; 4-D NCHW inputs).
    static func shape(type: String, attributes a: Attributes, input: Shape) -> Shape {
        guard input.rank == 4 else {
            if type == "linear", let o = a.int("out_features") { return Shape(input.dims.dropLast() + [o]) }
            return input
        }
        let (n, c, h, w) = (input.dims[0], input.dims[1], input.dims[2], input.dims[3])
        func window(_ size: Int, _ k: Int, _ s: Int, _ p: Int, _ d: Int, ceil: Bool) -> Int {
            let span = size + 2 * p - d * (k - 1) - 1
            var o = (ceil ? (span + s - 1) / s : span / s) + 1
            if ceil && (o - 1) * s >= size + p { o -= 1 }  // PyTorch: the last window must start inside
            return o
        }
        switch type {
        case "conv2d", "maxpool2d", "avgpool2d":
            let k = a.pair("kernel_size") ?? [1, 1]
            let s = a.pair("stride") ?? (type == "conv2d" ? [1, 1] : k)
            let p = a.pair("padding") ?? [0, 0]
            let d = a.pair("dilation") ?? [1, 1]
            let ceil = a.bool("ceil_mode") ?? false
            return Shape([n, type == "conv2d" ? a.int("out_channels") ?? c : c,
                          window(h, k[0], s[0], p[0], d[0], ceil: ceil), window(w, k[1], s[1], p[1], d[1], ceil: ceil)])
        case "adaptive_avgpool2d":
            let o = a.pair("output_size") ?? [1, 1]
            return Shape([n, c, o[0], o[1]])
        case "flatten":
            return Shape([n, c * h * w])
        default:
            return input
        }
    }

    // MARK: - text

    /// The per-node table: name, type, output shape, parameters, MACs, receptive field, jump.
    public var table: String {
        let header = ["Layer (type)", "Output shape", "Params", "MACs", "RF", "Jump"]
        var lines = [[ "input", inputShape.description, "0", "0", "1", "1"]]
        for r in rows {
            lines.append(["\(r.name) (\(r.type))", r.outputShape.description, Self.grouped(r.parameters), Self.grouped(r.macs),
                          r.receptiveField.description, r.jump.description])
        }
        let widths = header.indices.map { i in ([header[i]] + lines.map { $0[i] }).map(\.count).max() ?? 0 }
        func format(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                i < 2 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[i] - c.count) + c
            }.joined(separator: "  ")
        }
        let rule = String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))
        return ([format(header), rule] + lines.map(format) + [rule]).joined(separator: "\n")
    }

    /// The totals block.
    public var totals: String {
        """
        Total params: \(Self.grouped(totalParameters))
        Trainable params: \(Self.grouped(trainableParameters))
        Non-trainable params: \(Self.grouped(nonTrainableParameters))
        Buffers (running statistics, not parameters): \(Self.grouped(bufferValues)) values
        MACs: \(Self.grouped(totalMACs)) (\(Self.scaled(totalMACs))) — conv and linear multiply-accumulates, batch \(inputShape.dims.first ?? 1)
        Input shape: \(inputShape)
        Output shape: \(outputShape)
        """
    }

    /// The tree, the table and the totals.
    public var description: String { tree + "\n\n" + table + "\n" + totals }

    static func grouped(_ n: Int) -> String {
        let digits = String(abs(n))
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }

    static func scaled(_ n: Int) -> String {
        let v = Double(n)
        if v >= 1e9 { return String(format: "%.3f GMACs", v / 1e9) }
        if v >= 1e6 { return String(format: "%.3f MMACs", v / 1e6) }
        if v >= 1e3 { return String(format: "%.3f KMACs", v / 1e3) }
        return "\(n) MACs"
    }
}
