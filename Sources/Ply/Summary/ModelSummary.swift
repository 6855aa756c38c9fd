import Foundation

/// A model's summary: the module tree as PyTorch prints it, and per node its output shape,
/// parameters, multiply-accumulates and receptive field, with totals.
///
/// Conventions:
/// - **Parameters** are trainable values (PyTorch's `sum(p.numel() for p in model.parameters())`,
///   which is what torchvision's counts are); batch-norm running statistics and
///   `num_batches_tracked` are buffers, reported separately and not counted.
/// - **MACs** are what each layer's `describe` reports (ABI 1.2), its own plus its
///   children's: by the ABI's convention the multiply-accumulates of convolutions and linear
///   layers only (conv: output elements × in_channels/groups × kh × kw; linear: output
///   elements × in_features), for the whole batch of `inputShape`. Bias additions,
///   batch-norm, activations, pooling, joins and resizing count 0. This is fvcore's
///   convention for conv/linear and gives torchvision's published GMACs (resnet18 at 224:
///   1.814 G).
/// - **Receptive field and jump**, per spatial axis, in input pixels, on the main path, from
///   the window each layer's `describe` reports: a spatial window of kernel k (dilation
///   applied) and stride s gives jump_out = jump_in·s and rf_out = rf_in + (k−1)·jump_in
///   (strides may be fractions: resizing, adaptive pooling); a global window (global pooling,
///   linear, squeeze-and-excitation) spans the whole last feature map (k = its size, and s =
///   its size over the output's, or its size when the output has no spatial axes); an
///   identity window keeps the field. A join (add, concat) takes the maximum over its inputs;
///   a block reports its effective window along its longest path. Fields are not clipped to
///   the image. A type without `describe` counts 0 MACs and keeps the field.
/// - **The module tree** expands composites into the children their `describe` reports
///   (`add_child`), recursively; unnamed children (functional steps) count but are not printed.
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
        /// The centre of output position (0, 0)'s receptive field, in input pixel coordinates
        /// (pixel centres at integers; negative when padding puts it left of or above the
        /// image): start_out = start_in + ((k − 1)/2 − p)·jump_in per window, with p the layer's
        /// `padding` attribute when it has one, else the symmetric padding its input and output
        /// sizes imply, ⌈((out − 1)·s + k − in)/2⌉ (the convention of every zoo block).
        public let start: Extent

        /// The input pixels output position (`y`, `x`) of this node depends on: a rectangle of
        /// `receptiveField` pixels centred on `start + position · jump`, rounded outwards to
        /// whole pixels. Not clipped to the image (`ReceptiveFieldBox.clipped`).
        public func receptiveField(y: Int, x: Int) -> ReceptiveFieldBox {
            func span(_ start: Double, _ jump: Double, _ rf: Double, _ i: Int) -> (Int, Int) {
                let centre = start + Double(i) * jump
                return (Int((centre - (rf - 1) / 2).rounded(.down)), Int((centre + (rf - 1) / 2).rounded(.up)))
            }
            let (top, bottom) = span(start.height, jump.height, receptiveField.height, y)
            let (left, right) = span(start.width, jump.width, receptiveField.width, x)
            return ReceptiveFieldBox(top: top, left: left, bottom: bottom, right: right)
        }
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
    /// Names of composite nodes whose reported children (`describe`'s `add_child`) do not
    /// account for the node's own trainable parameters, name for name (empty for every zoo
    /// model once its blocks describe themselves).
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
            let module = root.descend(node.name.split(separator: ".").map(String.init))
            let described = try layer.describe(inputShapes: inShapes)
            if described.children.contains(where: { $0.name != nil }) {
                module.className = described.className ?? type
                Self.expand(described.children, into: module)
                // The children must account for the layer's own parameters, name for name.
                let names = Self.trainableNames(described.children, prefix: "")
                if names != params.filter(\.trainable).map(\.name) { unexpanded.append(node.name) }
            } else {
                module.repr = PyRepr.leaf(type: type, attributes: layer.attributes)
            }
            let state = input.through(described.window, output: shapes[id], padding: Self.padding(layer.attributes))
            states.append(state)
            rows.append(Row(name: node.name, type: type, inputs: node.inputs.map { model.nodes[$0].name }, outputShape: shapes[id],
                            parameters: p, buffers: b, macs: described.totalMACs, receptiveField: state.rf, jump: state.jump,
                            start: state.start))
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

    /// Adds reported children under `module` (dotted names nest; unnamed ones are skipped):
    /// composites by class name with their own children, leaves by their PyTorch repr.
    static func expand(_ children: [LayerDescription.Child], into module: ModuleNode) {
        for child in children {
            guard let name = child.name else { continue }
            let node = module.descend(name.split(separator: ".").map(String.init))
            if child.details.children.contains(where: { $0.name != nil }) {
                node.className = child.details.className ?? child.typeName
                expand(child.details.children, into: node)
            } else {
                node.repr = PyRepr.leaf(type: child.typeName, attributes: child.attributes ?? [])
            }
        }
    }

    /// The trainable parameter names the children imply, prefixed by their names, in order.
    static func trainableNames(_ children: [LayerDescription.Child], prefix: String) -> [String] {
        children.flatMap { c -> [String] in
            let p = c.name.map { prefix + $0 + "." } ?? prefix
            return c.parameters.filter(\.trainable).map { p + $0.name }
        }
    }

    // MARK: - analysis of one layer

    /// A layer's `padding` attribute as (height, width) input pixels, when it states one as
    /// numbers (`padding: 1`, `[1, 2]`, `'valid'`); nil otherwise (`'same'`, or no attribute).
    static func padding(_ attributes: Attributes) -> (Double, Double)? {
        guard let value = attributes.first(where: { $0.0 == "padding" })?.1 else { return nil }
        switch value {
        case let .int(p): return (Double(p), Double(p))
        case let .ints(p) where p.count == 1: return (Double(p[0]), Double(p[0]))
        case let .ints(p) where p.count == 2: return (Double(p[0]), Double(p[1]))
        case .string("valid"): return (0, 0)
        default: return nil
        }
    }

    /// Receptive-field state after a node: field, jump, the centre of position 0's field and
    /// the size of the last feature map.
    struct Field {
        var rf: Extent
        var jump: Extent
        var start: Extent
        var spatial: Extent

        static func spatial(_ s: Shape) -> Extent? { s.rank == 4 ? Extent(Double(s.dims[2]), Double(s.dims[3])) : nil }
        static func start(_ s: Shape) -> Field {
            Field(rf: Extent(1, 1), jump: Extent(1, 1), start: Extent(0, 0), spatial: spatial(s) ?? Extent(1, 1))
        }

        /// The larger field per axis; the start of the input with the larger field (the longest path).
        func joined(_ o: Field) -> Field {
            Field(rf: .max(rf, o.rf), jump: .max(jump, o.jump),
                  start: Extent(o.rf.height > rf.height ? o.start.height : start.height,
                                o.rf.width > rf.width ? o.start.width : start.width),
                  spatial: .max(spatial, o.spatial))
        }

        /// The state after a window of `k`, stride `s` and padding `p` per axis.
        func window(_ k: (Double, Double), _ s: (Double, Double), _ p: (Double, Double), spatial out: Extent) -> Field {
            Field(rf: Extent(rf.height + (k.0 - 1) * jump.height, rf.width + (k.1 - 1) * jump.width),
                  jump: Extent(jump.height * s.0, jump.width * s.1),
                  start: Extent(start.height + ((k.0 - 1) / 2 - p.0) * jump.height,
                                start.width + ((k.1 - 1) / 2 - p.1) * jump.width),
                  spatial: out)
        }

        /// The symmetric padding that takes `n` input positions to `o` outputs with kernel `k`
        /// and stride `s`: ⌈((o − 1)·s + k − n)/2⌉, at least 0 (not rounded for fractional strides).
        static func impliedPadding(n: Double, o: Double, k: Double, s: Double) -> Double {
            let twice = (o - 1) * s + k - n
            return max(0, s.rounded() == s ? (twice / 2).rounded(.up) : twice / 2)
        }

        /// The state after a layer with window `w` whose output is `output` (`padding`: the
        /// layer's own, when it states one).
        func through(_ w: LayerDescription.Window, output: Shape, padding: (Double, Double)? = nil) -> Field {
            let out = Field.spatial(output) ?? spatial
            switch w {
            case .identity:
                return Field(rf: rf, jump: jump, start: start, spatial: out)
            case let .spatial(k, s):
                let p = padding ?? (Field.impliedPadding(n: spatial.height, o: out.height, k: k[0], s: s[0]),
                                    Field.impliedPadding(n: spatial.width, o: out.width, k: k[1], s: s[1]))
                return window((k[0], k[1]), (s[0], s[1]), p, spatial: out)
            case .global:
                // Every output sees the whole last feature map; outputs are that map's size
                // over the output's apart (one position when the output has no spatial axes).
                let o = Field.spatial(output)
                let k = (spatial.height, spatial.width)
                let s = (spatial.height / (o?.height ?? 1), spatial.width / (o?.width ?? 1))
                let p = (Field.impliedPadding(n: spatial.height, o: o?.height ?? 1, k: k.0, s: s.0),
                         Field.impliedPadding(n: spatial.width, o: o?.width ?? 1, k: k.1, s: s.1))
                return window(k, s, p, spatial: o ?? Extent(1, 1))
            }
        }
    }

    /// `a + b`, or an error saying the total overflows 64 bits (a layer's own count saturates at
    /// Int.max when it does not fit: see `ply_count_mul`).
    static func checkedSum(_ a: Int, _ b: Int) throws -> Int {
        let (s, overflow) = a.addingReportingOverflow(b)
        guard !overflow, a != Int.max, b != Int.max else {
            throw PlyError.invalid("model summary: total multiply-accumulates exceed 2^63; use a smaller batch or image size")
        }
        return s
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
