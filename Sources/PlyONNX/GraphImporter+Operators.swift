import Ply

extension GraphImporter {
    /// Maps one node (see `GraphImporter.supported`).
    mutating func map(_ node: Onnx_NodeProto) throws {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw ONNXError.unsupportedOperator(path: path, node: node.name, opType: "\(node.domain).\(node.opType)",
                                                opset: opset, supported: Self.supported)
        }
        if try fold(node) { return }
        // A waiting zero Pad folds into a Conv, an unpadded AveragePool, or passes an Identity;
        // any other consumer reads a pad2d layer.
        let folds = node.opType == "Conv" || node.opType == "Identity"
            || (node.opType == "AveragePool" && (try? pads(node)) == [0, 0, 0, 0])
        for i in node.input where padded[i] != nil && !(folds && i == input(node, 0)) { try materializePad(i) }
        switch node.opType {
        case "Conv": try conv(node)
        case "BatchNormalization": try batchNorm(node)
        case "Relu", "Sigmoid", "Tanh":
            let x = input(node, 0)
            try add(node, type: node.opType.lowercased(), [], inputs: [try plyInput(node, x)], rank: rank(x))
        case "Clip": try clip(node)
        case "LeakyRelu":
            let x = input(node, 0)
            try add(node, type: "leakyrelu", [("negative_slope", .float(Double(float(node, "alpha", 0.01))))],
                    inputs: [try plyInput(node, x)], rank: rank(x))
        case "HardSwish":
            let x = input(node, 0)
            try add(node, type: "hardswish", [], inputs: [try plyInput(node, x)], rank: rank(x))
        case "HardSigmoid":
            // ONNX's defaults are alpha 0.2, beta 0.5; Ply's (PyTorch's Hardsigmoid) 1/6, 0.5.
            let x = input(node, 0)
            let alpha = float(node, "alpha", 0.2), beta = float(node, "beta", 0.5)
            let attrs: Attributes = alpha == Float(1.0 / 6.0) && beta == 0.5 ? []
                : [("alpha", .float(Double(alpha))), ("beta", .float(Double(beta)))]
            try add(node, type: "hardsigmoid", attrs, inputs: [try plyInput(node, x)], rank: rank(x))
        case "Mul": try mulNode(node)
        case "MaxPool", "AveragePool": try pool(node)
        case "GlobalAveragePool":
            let x = input(node, 0)
            try add(node, type: "adaptive_avgpool2d", [("output_size", .int(1))], inputs: [try plyInput(node, x)], rank: 4)
        case "ReduceMean": try reduceMean(node)
        case "Flatten":
            let x = input(node, 0)
            let axis = int(node, "axis", 1)
            guard axis == 1 || (axis == -1 && rank(x) == 2) else {
                throw unsupported(node, "axis \(axis): Ply flattens everything after the batch dimension (axis 1)")
            }
            try add(node, type: "flatten", [], inputs: [try plyInput(node, x)], rank: 2)
        case "Reshape": try reshape(node)
        case "Gemm": try gemm(node)
        case "MatMul": try matmul(node)
        case "Add": try addNode(node)
        case "Concat":
            let xs = try node.input.map { try plyInput(node, $0) }
            let r = rank(node.input.first ?? "")
            let axis = int(node, "axis", 1)
            try add(node, type: "concat", [("dim", .int(axis < 0 ? axis + r : axis))], inputs: xs, rank: r)
        case "Dropout":
            let x = input(node, 0)
            var p: Float = 0.5
            if opset >= 12 {
                if !input(node, 1).isEmpty { p = try constant(node, 1, "ratio").floats?.first ?? 0.5 }
            } else {
                p = float(node, "ratio", 0.5)
            }
            try add(node, type: "dropout", [("p", .float(Double(p)))], inputs: [try plyInput(node, x)], rank: rank(x))
        case "Softmax":
            let x = input(node, 0)
            try add(node, type: "softmax", [("dim", .int(int(node, "axis", opset >= 13 ? -1 : 1)))],
                    inputs: [try plyInput(node, x)], rank: rank(x))
        case "Identity":
            try alias(node, to: input(node, 0))
        case "Pad": try pad(node)
        default:
            throw ONNXError.unsupportedOperator(path: path, node: node.name.isEmpty ? node.output.first ?? "?" : node.name,
                                                opType: node.opType, opset: opset, supported: Self.supported)
        }
    }

    /// Clip(min 0) is a relu, Clip(0, 6) a relu6, anything else a hardtanh (an absent bound
    /// is infinite).
    mutating func clip(_ node: Onnx_NodeProto) throws {
        let x = input(node, 0)
        func bound(_ i: Int, _ name: String) throws -> Float? {
            if opset < 11 { return attr(node, name)?.f }
            if input(node, i).isEmpty { return nil }
            let c = try constant(node, i, name)
            guard c.count == 1, let v = c.floats?.first else { throw unsupported(node, "\(name) of dims \(c.dims) (a scalar expected)") }
            return v
        }
        let lo = try bound(1, "min") ?? -.infinity, hi = try bound(2, "max") ?? .infinity
        guard !lo.isNaN, !hi.isNaN, lo <= hi else {
            throw unsupported(node, "min \(lo) is greater than max \(hi) (or NaN); Ply clamps to min <= max")
        }
        let source = try plyInput(node, x)
        if lo == 0 && hi == .infinity {
            try add(node, type: "relu", [], inputs: [source], rank: rank(x))
        } else if lo == 0 && hi == 6 {
            try add(node, type: "relu6", [], inputs: [source], rank: rank(x))
        } else {
            try add(node, type: "hardtanh", [("min_val", .float(Double(lo))), ("max_val", .float(Double(hi)))],
                    inputs: [source], rank: rank(x))
        }
    }

    /// `node`'s output is the same tensor as `source` (Identity, Dropout in a graph that keeps none).
    mutating func alias(_ node: Onnx_NodeProto, to source: String) throws {
        guard let out = node.output.first else { return }
        if let c = constants[source] { constants[out] = c; return }
        if let p = padded[source] { padded[out] = p; return }
        nodeOf[out] = try plyInput(node, source)
        rankOf[out] = rank(source)
    }

    /// Evaluates `node` when every input is constant (or a `Shape`); true when it did.
    mutating func fold(_ node: Onnx_NodeProto) throws -> Bool {
        let out = node.output.first ?? ""
        if node.opType == "Constant" {
            guard let a = node.attribute.first else { throw unsupported(node, "has no value attribute") }
            switch a.name {
            case "value": constants[out] = try decoder.decode(a.t)
            case "value_float": constants[out] = ConstTensor(dims: [], values: .floats([a.f]))
            case "value_floats": constants[out] = ConstTensor(dims: [a.floats.count], values: .floats(a.floats))
            case "value_int": constants[out] = ConstTensor(dims: [], values: .ints([.value(a.i)]))
            case "value_ints": constants[out] = ConstTensor(dims: [a.ints.count], values: .ints(a.ints.map { .value($0) }))
            default: throw unsupported(node, "a Constant given by '\(a.name)' is not supported")
            }
            return true
        }
        if node.opType == "Shape" {
            let x = input(node, 0)
            guard nodeOf[x] != nil || constants[x] != nil else { return false }
            let r = constants[x]?.dims.count ?? rank(x)
            var start = int(node, "start", 0), end = int(node, "end", r)
            if start < 0 { start += r }
            if end < 0 { end += r }
            start = min(max(start, 0), r)
            end = min(max(end, start), r)
            let dims: [SymInt] = (start..<end).map { i in constants[x].map { .value(Int64($0.dims[i])) } ?? .dim(tensor: x, axis: i) }
            constants[out] = ConstTensor(dims: [dims.count], values: .ints(dims))
            return true
        }
        let foldable: Set = ["Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Slice", "Transpose", "Cast",
                             "ConstantOfShape", "Identity", "Dropout"]
        guard foldable.contains(node.opType) else { return false }
        let present = node.input.filter { !$0.isEmpty }
        guard !present.isEmpty, present.allSatisfy({ constants[$0] != nil }) else { return false }
        let consts = constants
        let c = { (i: Int) -> ConstTensor in consts[i < node.input.count ? node.input[i] : ""]! }
        func known(_ i: Int, _ what: String) throws -> [Int64] {
            guard let v = c(i).knownInts else { throw unsupported(node, "\(what) depends on the batch size") }
            return v
        }
        func optional(_ i: Int) -> Bool { !input(node, i).isEmpty }
        do {
            let result: ConstTensor
            switch node.opType {
            case "Gather": result = try ConstantFolding.gather(c(0), c(1), axis: Int64(int(node, "axis", 0)))
            case "Unsqueeze":
                result = try ConstantFolding.unsqueeze(c(0), axes: opset >= 13 ? try known(1, "axes") : (ints(node, "axes") ?? []).map { Int64($0) })
            case "Squeeze":
                let axes: [Int64]? = opset >= 13 ? (optional(1) ? try known(1, "axes") : nil) : ints(node, "axes")?.map { Int64($0) }
                result = try ConstantFolding.squeeze(c(0), axes: axes)
            case "Concat": result = try ConstantFolding.concat(present.map { constants[$0]! }, axis: Int64(int(node, "axis", 0)))
            case "Reshape": result = try ConstantFolding.reshape(c(0), shape: try known(1, "shape"))
            case "Slice":
                result = try ConstantFolding.slice(c(0), starts: try known(1, "starts"), ends: try known(2, "ends"),
                                                   axes: optional(3) ? try known(3, "axes") : nil,
                                                   steps: optional(4) ? try known(4, "steps") : nil)
            case "Transpose": result = try ConstantFolding.transpose(c(0), perm: ints(node, "perm")?.map { Int64($0) })
            case "Cast":
                let to = Onnx_TensorProto.DataType(rawValue: int(node, "to", 1))
                let x = c(0)
                if to == .float || to == .double || to == .float16 {
                    guard let f = x.floats else { throw unsupported(node, "casts a symbolic size to float") }
                    result = ConstTensor(dims: x.dims, values: .floats(f))
                } else {
                    result = ConstTensor(dims: x.dims, values: .ints(x.ints))
                }
            case "ConstantOfShape":
                let dims = try known(0, "shape").map { Int($0) }
                let n = try ConstantFolding.count(dims)
                let v = try attr(node, "value").map { try decoder.decode($0.t) } ?? ConstTensor(dims: [1], values: .floats([0]))
                switch v.values {
                case let .floats(f): result = ConstTensor(dims: dims, values: .floats(Array(repeating: f.first ?? 0, count: n)))
                case let .ints(i): result = ConstTensor(dims: dims, values: .ints(Array(repeating: i.first ?? .value(0), count: n)))
                }
            default: result = c(0)  // Identity, Dropout (inference: identity)
            }
            constants[out] = result
        } catch let f as ConstantFolding.Failure {
            throw unsupported(node, "cannot evaluate its constant inputs: \(f.reason)")
        }
        return true
    }

    mutating func conv(_ node: Onnx_NodeProto) throws {
        let w = try constant(node, 1, "the weight")
        guard w.dims.count == 4, let wf = w.floats else {
            throw unsupported(node, "weight of dims \(w.dims): Ply's conv2d is 2-d (a 4-d float weight expected)")
        }
        // ONNX's weight is [M, C/group, kH, kW] like Ply's (and PyTorch's): in_channels = C/group * group
        let group = int(node, "group", 1)
        guard group >= 1, w.dims[0] % group == 0 else {
            throw unsupported(node, "group \(group): expected a positive divisor of the weight's \(w.dims[0]) output channels")
        }
        let dil = try pair(node, "dilations", 1)
        guard dil.allSatisfy({ $0 >= 1 }) else { throw unsupported(node, "dilations \(dil): expected positive values") }
        let k = ints(node, "kernel_shape") ?? [w.dims[2], w.dims[3]]
        guard k == [w.dims[2], w.dims[3]] else { throw unsupported(node, "kernel_shape \(k) differs from the weight's \(w.dims)") }
        let (sym, extra) = Self.split(try pads(node))
        var (ph, pw) = sym
        // auto_pad SAME_* (stride 1, odd kernels, as pads checked): a dilated kernel spans d*(k-1)+1
        if dil != [1, 1], (string(node, "auto_pad") ?? "").hasPrefix("SAME") { (ph, pw) = (dil[0] * (k[0] - 1) / 2, dil[1] * (k[1] - 1) / 2) }
        var x = input(node, 0)
        if let p = padded[x] { ph += p.h; pw += p.w; x = p.source }
        let name = plyName(for: node, weight: input(node, 1))
        var source = try plyInput(node, x)
        if extra != [0, 0, 0, 0] { source = addPad(name: uniqueName(name + "_pad"), source: source, padding: extra) }
        var params: [(String, SafeTensors.Entry)] = [("weight", .init(floats: wf, shape: w.dims))]
        if !input(node, 2).isEmpty {
            let b = try constant(node, 2, "the bias")
            guard let bf = b.floats, bf.count == w.dims[0] else { throw unsupported(node, "bias of dims \(b.dims) for \(w.dims[0]) channels") }
            params.append(("bias", .init(floats: bf, shape: [bf.count])))
        }
        let attrs: Attributes = [
            ("in_channels", .int(w.dims[1] * group)), ("out_channels", .int(w.dims[0])), ("kernel_size", Self.pairValue(k)),
            ("stride", Self.pairValue(try pair(node, "strides", 1))), ("padding", Self.pairValue([ph, pw])),
        ] + (dil == [1, 1] ? [] : [("dilation", Self.pairValue(dil))]) + (group == 1 ? [] : [("groups", .int(group))])
            + [("bias", .bool(params.count == 2))]
        try add(node, type: "conv2d", attrs, inputs: [source], rank: 4, params: params, name: name)
    }

    mutating func batchNorm(_ node: Onnx_NodeProto) throws {
        guard int(node, "training_mode", 0) == 0 else { throw unsupported(node, "training_mode 1: Ply imports inference graphs") }
        let names = ["weight", "bias", "running_mean", "running_var"]
        var params: [(String, SafeTensors.Entry)] = []
        var channels = -1
        for (i, p) in names.enumerated() {
            let t = try constant(node, i + 1, p)
            guard let f = t.floats, t.dims.count == 1, channels < 0 || f.count == channels else {
                throw unsupported(node, "\(p) of dims \(t.dims) (one value per channel expected)")
            }
            channels = f.count
            params.append((p, .init(floats: f, shape: [f.count])))
        }
        params.append(("num_batches_tracked", .init(int64s: [0], shape: [])))
        let eps = Double(float(node, "epsilon", 1e-5))
        let momentum = 1 - Double(float(node, "momentum", 0.9))
        try add(node, type: "batchnorm2d", [("num_features", .int(channels)), ("eps", .float(eps)), ("momentum", .float(momentum))],
                inputs: [try plyInput(node, input(node, 0))], rank: 4, weight: input(node, 1), params: params)
    }

    mutating func pool(_ node: Onnx_NodeProto) throws {
        let k = try pair(node, "kernel_shape", 0)
        guard try pair(node, "dilations", 1) == [1, 1] else { throw unsupported(node, "dilations: Ply pools with dilation 1 only") }
        guard int(node, "storage_order", 0) == 0 else { throw unsupported(node, "storage_order 1 is not supported") }
        let (sym, extra) = Self.split(try pads(node))
        var (ph, pw) = sym
        var x = input(node, 0)
        var includePad = int(node, "count_include_pad", 0) == 1
        let ceil = int(node, "ceil_mode", 0) == 1
        if let p = padded[x] {  // an AveragePool without pads of its own (see map)
            (ph, pw, includePad, x) = (p.h, p.w, true, p.source)
        }
        let name = plyName(for: node)
        var source = try plyInput(node, x)
        if extra != [0, 0, 0, 0] {
            // The extra pixels on one side go into a pad2d before the pool: -inf for a max pool,
            // zeros for an average that counts its padding. Without ceil_mode both give ONNX's
            // windows exactly.
            let isMax = node.opType == "MaxPool"
            guard !ceil, isMax || includePad else {
                throw unsupported(node, "pads \(try pads(node)) are not symmetric; Ply pads one side more only for "
                    + "ceil_mode 0 and, for AveragePool, count_include_pad 1")
            }
            source = addPad(name: uniqueName(name + "_pad"), source: source, padding: extra, value: isMax ? -.infinity : 0)
        }
        guard 2 * ph <= k[0], 2 * pw <= k[1] else { throw unsupported(node, "pads (\(ph), \(pw)) exceed half the kernel \(k)") }
        var attrs: Attributes = [("kernel_size", Self.pairValue(k)), ("stride", Self.pairValue(try pair(node, "strides", 1))),
                                 ("padding", Self.pairValue([ph, pw])), ("ceil_mode", .bool(ceil))]
        if node.opType == "AveragePool" { attrs.append(("count_include_pad", .bool(includePad))) }
        try add(node, type: node.opType == "MaxPool" ? "maxpool2d" : "avgpool2d", attrs, inputs: [source], rank: 4, name: name)
    }

    mutating func reshape(_ node: Onnx_NodeProto) throws {
        let x = input(node, 0)
        let shape = try constant(node, 1, "the shape").ints
        let batchKept: Bool
        switch shape.first {
        case .some(.dim(let t, 0)): batchKept = t == x || nodeOf[t] == nodeOf[x]
        case .some(.value(0)): batchKept = true
        // torch.onnx's dynamo exporter writes the batch it was exported with: (N, -1), (N, C*H*W)
        case .some(.value(let n)) where exportedBatch > 0 && n == Int64(exportedBatch): batchKept = true
        case .some(.value(-1)): batchKept = shape.count == 2 && shape[1].value.map { $0 > 0 } == true
        default: batchKept = false
        }
        guard shape.count == 2, batchKept, shape[0] == .value(-1) || shape[1] == .value(-1) || shape[1].value.map({ $0 > 0 }) == true else {
            throw unsupported(node, "shape \(shape): Ply maps a Reshape only of the flatten kind, (batch, -1)")
        }
        try add(node, type: "flatten", [], inputs: [try plyInput(node, x)], rank: 2)
    }

    /// ReduceMean over height and width: a global average pool (and a flatten without keepdims),
    /// as torch.onnx's dynamo exporter writes `AdaptiveAvgPool2d(1)` and `x.mean((2, 3))`.
    mutating func reduceMean(_ node: Onnx_NodeProto) throws {
        let x = input(node, 0)
        let axes: [Int64]
        if opset >= 18 {
            guard !input(node, 1).isEmpty, let a = try constant(node, 1, "axes").knownInts else {
                throw unsupported(node, "ReduceMean needs constant axes (2, 3) to map onto Ply's global average pool")
            }
            axes = a
        } else {
            axes = (ints(node, "axes") ?? []).map { Int64($0) }
        }
        let r = Int64(rank(x))
        guard r == 4, Set(axes.map { $0 < 0 ? $0 + r : $0 }) == [2, 3], axes.count == 2 else {
            throw unsupported(node, "axes \(axes) of a rank-\(r) input: Ply maps ReduceMean only over height and width (2, 3) of an image tensor")
        }
        let keep = int(node, "keepdims", 1) == 1
        let pooled = try plyInput(node, x)
        if keep {
            try add(node, type: "adaptive_avgpool2d", [("output_size", .int(1))], inputs: [pooled], rank: 4)
        } else {
            var pool = node
            pool.output = ["\(node.output.first ?? "")#pooled"]
            try add(pool, type: "adaptive_avgpool2d", [("output_size", .int(1))], inputs: [pooled], rank: 4)
            let name = nodeOf[pool.output[0]]!
            try add(node, type: "flatten", [], inputs: [name], rank: 2)
        }
    }

    mutating func gemm(_ node: Onnx_NodeProto) throws {
        guard int(node, "transA", 0) == 0 else { throw unsupported(node, "transA 1 is not supported") }
        let b = try constant(node, 1, "the weight (B)")
        guard b.dims.count == 2, var wf = b.floats else { throw unsupported(node, "B of dims \(b.dims) (a 2-d weight expected)") }
        var (out, inF) = (b.dims[0], b.dims[1])
        if int(node, "transB", 0) == 0 {
            wf = ConstantFolding.transpose2D(wf, rows: b.dims[0], cols: b.dims[1])
            (out, inF) = (b.dims[1], b.dims[0])
        }
        let alpha = float(node, "alpha", 1), beta = float(node, "beta", 1)
        if alpha != 1 { wf = wf.map { $0 * alpha } }
        var params: [(String, SafeTensors.Entry)] = [("weight", .init(floats: wf, shape: [out, inF]))]
        if !input(node, 2).isEmpty {
            let c = try constant(node, 2, "the bias (C)")
            guard var cf = c.floats, c.count == out || c.count == 1 else { throw unsupported(node, "C of dims \(c.dims) for \(out) outputs") }
            if cf.count == 1 { cf = Array(repeating: cf[0], count: out) }
            params.append(("bias", .init(floats: cf.map { $0 * beta }, shape: [out])))
        }
        try add(node, type: "linear", [("in_features", .int(inF)), ("out_features", .int(out)), ("bias", .bool(params.count == 2))],
                inputs: [try plyInput(node, input(node, 0))], rank: 2, weight: input(node, 1), params: params)
    }

    mutating func matmul(_ node: Onnx_NodeProto) throws {
        let x = input(node, 0)
        guard rank(x) == 2 else { throw unsupported(node, "input of rank \(rank(x)): Ply maps MatMul of a (batch, features) input only") }
        let b = try constant(node, 1, "the weight")
        guard b.dims.count == 2, let bf = b.floats else { throw unsupported(node, "weight of dims \(b.dims) (2-d expected)") }
        let w = ConstantFolding.transpose2D(bf, rows: b.dims[0], cols: b.dims[1])
        try add(node, type: "linear", [("in_features", .int(b.dims[0])), ("out_features", .int(b.dims[1])), ("bias", .bool(false))],
                inputs: [try plyInput(node, x)], rank: 2, weight: input(node, 1),
                params: [("weight", .init(floats: w, shape: [b.dims[1], b.dims[0]]))])
        matmulLinear[node.output[0]] = layers.count - 1
    }

    mutating func addNode(_ node: Onnx_NodeProto) throws {
        let (a, b) = (input(node, 0), input(node, 1))
        if constants[a] != nil || constants[b] != nil {
            let (x, c) = constants[a] != nil ? (b, a) : (a, b)
            // The bias of a MatMul (a Linear) or of a Mul by a constant (a scale) before it.
            for (table, key) in [(matmulLinear, "out_features"), (scaleLayer, "num_features")] {
                guard let li = table[x], consumers[x, default: 0] == 1, let bias = constants[c]?.floats,
                      case let .int(out)? = layers[li].attributes.first(where: { $0.0 == key })?.1,
                      try channelVector(node, constants[c]!, rank: rank(x))?.count == out else { continue }
                layers[li].attributes = layers[li].attributes.filter { $0.0 != "bias" } + [("bias", .bool(true))]
                weights.append((name: "\(layers[li].name).bias", entry: .init(floats: bias, shape: [out])))
                nodeOf[node.output[0]] = layers[li].name
                rankOf[node.output[0]] = rank(x)
                return
            }
            // A per-channel constant alone: a scale of weight 1 with that bias.
            guard let bias = try channelVector(node, constants[c]!, rank: rank(x)) else {
                throw unsupported(node, "adds a constant of dims \(constants[c]!.dims) to a rank-\(rank(x)) tensor; Ply adds "
                    + "a scalar or one value per channel (dims [C, 1, 1] or [1, C, 1, 1])")
            }
            try add(node, type: "scale", [("num_features", .int(bias.count)), ("bias", .bool(true))],
                    inputs: [try plyInput(node, x)], rank: rank(x), weight: c,
                    params: [("weight", .init(floats: Array(repeating: 1, count: bias.count), shape: [bias.count])),
                             ("bias", .init(floats: bias, shape: [bias.count]))])
            return
        }
        try add(node, type: "add", [], inputs: [try plyInput(node, a), try plyInput(node, b)], rank: max(rank(a), rank(b)))
    }

    /// The constant `c` as one value per channel of a rank-`rank` tensor (axis 1), as ONNX
    /// broadcasts it: a scalar (one value), or dims [C, 1, ...] / [1, C, 1, ...] with as many
    /// trailing ones as the tensor has axes after the channels. nil: another shape.
    func channelVector(_ node: Onnx_NodeProto, _ c: ConstTensor, rank: Int) throws -> [Float]? {
        guard let f = c.floats else { throw unsupported(node, "its constant is not a float tensor") }
        if f.count == 1 { return f }
        var d = c.dims
        guard d.count <= rank else { return nil }
        d = Array(repeating: 1, count: rank - d.count) + d
        guard rank >= 2, d[0] == 1, d[1] == f.count, d.dropFirst(2).allSatisfy({ $0 == 1 }) else { return nil }
        return f
    }

    /// Mul of two computed tensors: a mul layer (broadcasting axes of size 1); by a scalar or
    /// per-channel constant: a scale layer (its weight the constant, trainable).
    mutating func mulNode(_ node: Onnx_NodeProto) throws {
        let (a, b) = (input(node, 0), input(node, 1))
        guard constants[a] != nil || constants[b] != nil else {
            guard rank(a) == rank(b) else {
                throw unsupported(node, "multiplies tensors of rank \(rank(a)) and \(rank(b)); Ply's mul takes equal ranks")
            }
            try add(node, type: "mul", [], inputs: [try plyInput(node, a), try plyInput(node, b)], rank: rank(a))
            return
        }
        let (x, c) = constants[a] != nil ? (b, a) : (a, b)
        guard let w = try channelVector(node, constants[c]!, rank: rank(x)) else {
            throw unsupported(node, "multiplies by a constant of dims \(constants[c]!.dims) a rank-\(rank(x)) tensor; Ply "
                + "scales by a scalar or one value per channel (dims [C, 1, 1] or [1, C, 1, 1])")
        }
        try add(node, type: "scale", [("num_features", .int(w.count))], inputs: [try plyInput(node, x)], rank: rank(x),
                weight: c, params: [("weight", .init(floats: w, shape: [w.count]))])
        scaleLayer[node.output[0]] = layers.count - 1
    }

    /// Pad of height and width: a symmetric zero Pad waits for its consumer (a Conv or
    /// AveragePool folds it into its own padding); any other becomes a pad2d layer.
    mutating func pad(_ node: Onnx_NodeProto) throws {
        let mode = string(node, "mode") ?? "constant"
        guard mode == "constant" || mode == "reflect" else {
            throw unsupported(node, "mode '\(mode)': Ply pads in modes constant and reflect")
        }
        let pads: [Int64]
        var value: Float = 0
        if opset >= 11 {
            guard let p = try constant(node, 1, "pads").knownInts else { throw unsupported(node, "pads depend on the batch size") }
            if !input(node, 2).isEmpty {
                let v = try constant(node, 2, "constant_value")
                guard v.count == 1, let f = v.floats?.first else { throw unsupported(node, "constant_value of dims \(v.dims) (a float scalar expected)") }
                value = f
            }
            guard input(node, 3).isEmpty else { throw unsupported(node, "the axes input is not supported") }
            pads = p
        } else {
            pads = (ints(node, "pads") ?? []).map { Int64($0) }
            value = float(node, "value", 0)
        }
        guard pads.count == 8, pads[0] == 0, pads[1] == 0, pads[4] == 0, pads[5] == 0,
              pads.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }), !value.isNaN else {
            throw unsupported(node, "pads \(pads): Ply pads height and width (pads 2, 3, 6, 7) by 0 to 1048576 pixels, "
                + "not batch or channels, and does not crop")
        }
        let (t, l, b, r) = (Int(pads[2]), Int(pads[3]), Int(pads[6]), Int(pads[7]))
        let x = input(node, 0)
        let source = try plyInput(node, x)
        if mode == "constant", value == 0, t == b, l == r {
            padded[node.output[0]] = (x, t, l, node)
            return
        }
        nodeOf[node.output[0]] = addPad(name: plyName(for: node), source: source, padding: [l, r, t, b], mode: mode, value: value)
        rankOf[node.output[0]] = 4
    }
}
