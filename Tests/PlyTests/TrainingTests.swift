import Foundation
import Testing
@testable import Ply

/// Optimizers, schedules and initialisation against PyTorch: the three-step SGD golden run
/// of the seed ConvNet, the hash-initialised model goldens, and hand-computed updates.
@Suite struct TrainingTests {
    // MARK: - Helpers

    /// Mean cross-entropy of `logits` [N, C] against `labels` and its gradient d loss / d logits.
    static func crossEntropy(_ logits: Tensor, _ labels: [Int]) throws -> (loss: Float, gradient: Tensor) {
        let loss = try Layer("cross_entropy", [], runtime: sharedRuntime)
        let targets = try Tensor(shape: Shape([labels.count]), data: labels.map(Float.init))
        let out = try loss.forward([logits, targets])
        let grads = try loss.backward(inputs: [logits, targets], output: out, gradOutput: Tensor(shape: out.shape, repeating: 1),
                                      wanted: [true, false])
        return (out.data[0], try #require(grads[0]))
    }

    /// One training step: forward, loss, backward, optimizer step. Returns the step's loss.
    static func trainStep(_ model: Model, _ input: Tensor, _ labels: [Int], _ optimizer: any Optimizer) throws -> Float {
        try model.zeroGradients()
        let logits = try model.forward(input)
        let (loss, dlogits) = try crossEntropy(logits, labels)
        try dlogits.data.withUnsafeBufferPointer { _ = try model.backward($0) }
        try optimizer.step(model.namedParameters())
        return loss
    }

    /// A small linear layer (weight [2, 3], bias [2]) as a named parameter list.
    static func tinyParameters() throws -> (layer: Layer, parameters: [(name: String, parameter: Parameter)]) {
        let layer = try Layer("linear", [("in_features", .int(3)), ("out_features", .int(2))], runtime: sharedRuntime)
        let params = try layer.parameters.map { (name: "tiny.\($0.name)", parameter: $0) }
        return (layer, params)
    }

    static let initialWeights: [Float] = [0.5, -0.25, 1.0, -1.5, 0.75, 0.125, 0.3, -0.6]
    /// The gradient fed at step t (0-based) to flat entry i of the tiny parameters.
    static func gradient(_ t: Int, _ i: Int) -> Float { Float(sin(Double(3 * t + i) * 0.7) * (1 + 0.5 * Double(t))) }
    /// Rates per step: the optimizer must use the rate set before each step.
    static let rates: [Double] = [0.1, 0.05, 0.02]

    /// Runs three steps of `optimizer` on the tiny parameters and returns the flat values after.
    static func runTiny(_ optimizer: any Optimizer) throws -> [Float] {
        let (_, params) = try tinyParameters()
        var offset = 0
        for (_, p) in params { try p.write(Array(initialWeights[offset..<offset + p.shape.count])); offset += p.shape.count }
        for t in 0..<3 {
            offset = 0
            for (_, p) in params {
                let g = try #require(p.gradient)
                for i in 0..<g.count { g[i] = gradient(t, offset + i) }
                offset += g.count
            }
            optimizer.learningRate = rates[t]
            try optimizer.step(params)
        }
        #expect(optimizer.stepCount == 3)
        return params.flatMap { $0.parameter.read() }
    }

    /// torch.optim.SGD's update, in Double.
    static func expectedSGD(momentum: Double, dampening: Double, weightDecay: Double, nesterov: Bool) -> [Double] {
        var p = initialWeights.map(Double.init)
        var buf = [Double](repeating: 0, count: p.count)
        for t in 0..<3 {
            for i in p.indices {
                var d = Double(gradient(t, i)) + weightDecay * p[i]
                if momentum != 0 {
                    buf[i] = t == 0 ? d : momentum * buf[i] + (1 - dampening) * d
                    d = nesterov ? d + momentum * buf[i] : buf[i]
                }
                p[i] -= rates[t] * d
            }
        }
        return p
    }

    /// torch.optim.Adam's update, in Double.
    static func expectedAdam(beta1: Double, beta2: Double, eps: Double, weightDecay: Double) -> [Double] {
        var p = initialWeights.map(Double.init)
        var m = [Double](repeating: 0, count: p.count), v = m
        for t in 0..<3 {
            let bc1 = 1 - pow(beta1, Double(t + 1)), bc2 = 1 - pow(beta2, Double(t + 1))
            for i in p.indices {
                let g = Double(gradient(t, i)) + weightDecay * p[i]
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                p[i] -= rates[t] / bc1 * m[i] / (v[i].squareRoot() / bc2.squareRoot() + eps)
            }
        }
        return p
    }

    static func expectClose(_ ours: [Float], _ expected: [Double], _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let c = closeness(ours, expected.map { Float($0) }, relative: 2e-6)
        #expect(c.ok, "\(label): max error \(c.error) > \(c.bound); ours \(ours) expected \(expected)", sourceLocation: sourceLocation)
        // The update really moved the parameters (the comparison is not vacuous).
        #expect(zip(expected, initialWeights).contains { abs($0 - Double($1)) > 1e-3 }, "\(label): no movement", sourceLocation: sourceLocation)
    }

    // MARK: - (a) the three-step SGD golden run

    @Test func seedConvNetSGDMatchesPyTorch() throws {
        let json = try JSON.load(fixtures.appendingPathComponent("golden/training/seed_convnet_sgd.json"))
        let shape = Shape(try #require(json["input_shape"]).array.compactMap(\.int))
        let labels = try #require(json["labels"]).array.compactMap(\.int)
        #expect(labels == (0..<shape.dims[0]).map { $0 % 10 })
        let lr = try #require(json["optimizer"]?["lr"]?.double)
        #expect(json["optimizer"]?["kind"]?.string == "sgd" && json["optimizer"]?["momentum"]?.double == 0)
        let steps = try #require(json["steps"]?.int)
        let reference = try #require(json["losses"]).array.compactMap(\.double)

        let model = try Zoo.convNet(runtime: sharedRuntime)
        try hashInitialize(model)
        var input = hashInput(shape)
        for i in input.data.indices { input.data[i] = input.data[i] * 0.5 + 0.5 }
        let sgd = try SGD(learningRate: lr)
        var losses: [Float] = []
        for _ in 0..<steps { losses.append(try Self.trainStep(model, input, labels, sgd)) }
        // The reference losses are those of each step's own forward (before its update).
        #expect(losses.count == reference.count)
        for (i, (ours, ref)) in zip(losses, reference).enumerated() {
            let rel = abs(Double(ours) - ref) / abs(ref)
            #expect(rel <= 1e-5, "loss of step \(i): \(ours) vs \(ref) (relative error \(rel))")
        }

        let finalState = try #require(json["final_state_dict"]).object
        let params = try model.namedParameters()
        #expect(Set(params.map(\.name)) == Set(finalState.keys))
        var worst: Float = 0
        for (name, p) in params {
            let ref = try #require(finalState[name]?.tensor, "no reference for \(name)")
            #expect(p.shape == ref.shape, "\(name) shape")
            let c = closeness(p.read(), ref.data, relative: 1e-4)
            worst = max(worst, c.error)
            #expect(c.ok, "\(name) after \(steps) steps: max error \(c.error) > \(c.bound)")
        }
        print("seed_convnet_sgd: losses \(losses) vs \(reference); worst weight error \(worst)")
    }

    // MARK: - (b) hash-initialised model goldens

    @Test(arguments: ["seed_convnet", "seed_lenet5"])
    func modelGolden(_ name: String) throws {
        let json = try JSON.load(fixtures.appendingPathComponent("golden/models/\(name).json"))
        let model = try name == "seed_convnet" ? Zoo.convNet(runtime: sharedRuntime) : Zoo.leNet5(runtime: sharedRuntime, imageSize: 32)
        model.isTraining = false
        let params = try model.namedParameters()
        let stateDict = try #require(json["state_dict"]).array.map { entry -> (String, Shape) in
            let pair = entry.array
            return (pair.first?.string ?? "", Shape(pair.last?.array.compactMap(\.int) ?? []))
        }
        #expect(params.map(\.name) == stateDict.map(\.0), "\(name): state_dict names and order")
        #expect(params.map(\.parameter.shape) == stateDict.map(\.1), "\(name): state_dict shapes")
        let trainable = params.filter(\.parameter.trainable).reduce(0) { $0 + $1.parameter.shape.count }
        #expect(trainable == json["param_count"]?.int, "\(name): \(trainable) trainable parameters")

        try hashInitialize(model)
        let shape = Shape(try #require(json["input_shape"]).array.compactMap(\.int))
        let output = try model.forward(hashInput(shape))
        let expected = try #require(json["output"]?.tensor)
        #expect(output.shape == expected.shape)
        let scale = expected.data.map(abs).max() ?? 1
        let c = closeness(output.data, expected.data, relative: 1e-3)
        let worst = zip(output.data, expected.data).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-3 * scale, "\(name): max error \(worst) > \(1e-3 * scale)")
        print("\(name): output max error \(worst) (max|ref| \(scale), closeness bound \(c.bound))")
    }

    // MARK: - (c) optimizer formulas

    @Test func sgdMatchesPyTorchFormulas() throws {
        let configs: [(momentum: Double, dampening: Double, weightDecay: Double, nesterov: Bool)] = [
            (0, 0, 0, false), (0, 0, 0.1, false), (0.9, 0, 0, false), (0.9, 0.3, 0.05, false),
            (0.9, 0, 0, true), (0.8, 0, 0.02, true),
        ]
        for c in configs {
            let sgd = try SGD(learningRate: 1, momentum: c.momentum, dampening: c.dampening, weightDecay: c.weightDecay, nesterov: c.nesterov)
            let ours = try Self.runTiny(sgd)
            let expected = Self.expectedSGD(momentum: c.momentum, dampening: c.dampening, weightDecay: c.weightDecay, nesterov: c.nesterov)
            Self.expectClose(ours, expected, "SGD \(c)")
        }
    }

    @Test func adamMatchesPyTorchFormulas() throws {
        let configs: [(beta1: Double, beta2: Double, eps: Double, weightDecay: Double)] = [
            (0.9, 0.999, 1e-8, 0), (0.8, 0.99, 1e-3, 0.1), (0.5, 0.9, 1e-8, 0.01),
        ]
        for c in configs {
            let adam = try Adam(learningRate: 1, beta1: c.beta1, beta2: c.beta2, epsilon: c.eps, weightDecay: c.weightDecay)
            let ours = try Self.runTiny(adam)
            Self.expectClose(ours, Self.expectedAdam(beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay), "Adam \(c)")
        }
    }

    @Test func defaultsAreTorchDefaults() throws {
        let adam = try Adam()
        #expect(adam.learningRate == 1e-3 && adam.beta1 == 0.9 && adam.beta2 == 0.999 && adam.epsilon == 1e-8 && adam.weightDecay == 0)
        let sgd = try SGD(learningRate: 0.1)
        #expect(sgd.momentum == 0 && sgd.dampening == 0 && sgd.weightDecay == 0 && !sgd.nesterov)
    }

    @Test func invalidSettingsThrow() {
        #expect { try SGD(learningRate: 0.1, nesterov: true) } throws: { "\($0)".contains("Nesterov") }
        #expect { try SGD(learningRate: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true) } throws: { "\($0)".contains("dampening") }
        #expect(throws: PlyError.self) { try SGD(learningRate: -1) }
        #expect(throws: PlyError.self) { try SGD(learningRate: 0.1, momentum: -0.5) }
        #expect(throws: PlyError.self) { try Adam(beta1: 1) }
        #expect(throws: PlyError.self) { try Adam(beta2: -0.1) }
        #expect(throws: PlyError.self) { try Adam(epsilon: -1) }
    }

    /// Buffers (running statistics, the integer `num_batches_tracked`) are never updated.
    @Test func onlyTrainableParametersMove() throws {
        let bn = try Layer("batchnorm2d", [("num_features", .int(2))], runtime: sharedRuntime)
        let params = try bn.parameters.map { (name: "bn.\($0.name)", parameter: $0) }
        #expect(params.contains { !$0.parameter.trainable })
        for (_, p) in params { p.gradient?.update(repeating: 0.5) }
        let before = params.map { $0.parameter.read() }
        for opt in [try SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.1) as any Optimizer, try Adam(weightDecay: 0.1)] {
            try opt.step(params)
            for ((name, p), old) in zip(params, before) where !p.trainable {
                #expect(p.read() == old, "\(name) is a buffer and must not change")
            }
            #expect(!opt.stateTensors().contains { $0.name.hasSuffix("running_mean") || $0.name.hasSuffix("num_batches_tracked") })
        }
        #expect(params.first { $0.name == "bn.weight" }!.parameter.read() != before[0])
    }

    // MARK: - optimizer state (checkpoints)

    /// Saving after two steps and loading into a new optimizer continues exactly.
    @Test func stateRoundTripContinuesExactly() throws {
        let makers: [() throws -> any Optimizer] = [
            { try SGD(learningRate: 0.1, momentum: 0.9, nesterov: true) },
            { try SGD(learningRate: 0.1) },
            { try Adam(learningRate: 0.05, weightDecay: 0.01) },
        ]
        for make in makers {
            let (_, params) = try Self.tinyParameters()
            var offset = 0
            for (_, p) in params { try p.write(Array(Self.initialWeights[offset..<offset + p.shape.count])); offset += p.shape.count }
            func setGradient(_ t: Int) throws {
                var off = 0
                for (_, p) in params {
                    let g = try #require(p.gradient)
                    for i in 0..<g.count { g[i] = Self.gradient(t, off + i) }
                    off += g.count
                }
            }
            let a = try make()
            for t in 0..<2 { try setGradient(t); try a.step(params) }
            let saved = a.stateTensors()
            let names = saved.map(\.name)
            #expect(names.first == "step" && saved.first?.values == [2])
            if let sgd = a as? SGD, sgd.momentum != 0 {
                #expect(names == ["step", "momentum_buffer.tiny.weight", "momentum_buffer.tiny.bias"])
            } else if a is Adam {
                #expect(names == ["step", "exp_avg.tiny.weight", "exp_avg.tiny.bias", "exp_avg_sq.tiny.weight", "exp_avg_sq.tiny.bias"])
            } else {
                #expect(names == ["step"])
            }
            let snapshot = params.map { $0.parameter.read() }
            try setGradient(2)
            try a.step(params)
            let continued = params.map { $0.parameter.read() }

            for ((_, p), values) in zip(params, snapshot) { try p.write(values) }
            let b = try make()
            try b.loadState(Dictionary(uniqueKeysWithValues: saved.map { ($0.name, $0.values) }))
            #expect(b.stepCount == 2)
            try b.step(params)
            #expect(b.stepCount == 3)
            #expect(params.map { $0.parameter.read() } == continued, "\(type(of: a)) resumed from its state must continue exactly")
        }
    }

    @Test func loadStateNamesWhatIsWrong() throws {
        let adam = try Adam()
        let w: [Float] = [1, 2, 3, 4, 5, 6]
        func check(_ state: [String: [Float]], _ word: String, _ opt: any Optimizer) {
            #expect { try opt.loadState(state) } throws: { "\($0)".contains(word) }
        }
        check(["exp_avg.tiny.weight": w, "exp_avg_sq.tiny.weight": w], "step", adam)
        check(["step": [1], "exp_avg.tiny.weight": w], "exp_avg_sq.tiny.weight", adam)
        check(["step": [1], "exp_avg.tiny.weight": w, "exp_avg_sq.tiny.weight": [1, 2]], "exp_avg_sq.tiny.weight", adam)
        check(["step": [1], "exp_avg.a": w, "exp_avg_sq.a": w, "momentum_buffer.a": w], "momentum_buffer.a", adam)
        check(["step": [1.5]], "step", adam)
        let plain = try SGD(learningRate: 0.1)
        check(["step": [1], "momentum_buffer.tiny.weight": w], "momentum_buffer.tiny.weight", plain)
        let momentum = try SGD(learningRate: 0.1, momentum: 0.9)
        check(["step": [1], "exp_avg.tiny.weight": w], "exp_avg.tiny.weight", momentum)

        // A state for other parameters is refused at the first step, naming the parameter.
        let (_, params) = try Self.tinyParameters()
        try momentum.loadState(["step": [1], "momentum_buffer.tiny.weight": w, "momentum_buffer.other.bias": [1, 2]])
        #expect { try momentum.step(params) } throws: { "\($0)".contains("tiny.bias") }
        try momentum.loadState(["step": [1], "momentum_buffer.tiny.weight": [1, 2], "momentum_buffer.tiny.bias": [1, 2]])
        #expect { try momentum.step(params) } throws: { "\($0)".contains("tiny.weight") }
        try momentum.loadState(["step": [1], "momentum_buffer.tiny.weight": w, "momentum_buffer.tiny.bias": [1, 2],
                                "momentum_buffer.gone.weight": [0]])
        #expect { try momentum.step(params) } throws: { "\($0)".contains("gone.weight") }
        // A state saved before any step loads and steps.
        let fresh = try SGD(learningRate: 0.1, momentum: 0.9)
        try fresh.loadState(Dictionary(uniqueKeysWithValues: fresh.stateTensors().map { ($0.name, $0.values) }))
        try fresh.step(params)
        #expect(fresh.stepCount == 1)
    }

    // MARK: - (d) schedules

    @Test func schedulesMatchTorchClosedForms() throws {
        #expect(LearningRateSchedule.constant.rate(base: 0.1, epoch: 7) == 0.1)
        let step = LearningRateSchedule.step(stepSize: 3, gamma: 0.1)
        let stepRates = (0..<8).map { step.rate(base: 0.5, epoch: $0) }
        let stepExpected = [0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.005, 0.005]
        for (r, e) in zip(stepRates, stepExpected) { #expect(abs(r - e) <= 1e-15, "StepLR \(stepRates)") }

        let cosine = LearningRateSchedule.cosine(epochs: 10, minimum: 0.001)
        #expect(cosine.rate(base: 0.1, epoch: 0) == 0.1)
        #expect(abs(cosine.rate(base: 0.1, epoch: 5) - 0.0505) <= 1e-15)
        #expect(abs(cosine.rate(base: 0.1, epoch: 10) - 0.001) <= 1e-15)
        // epoch 3: eta_min + (base - eta_min) * (1 + cos(3π/10)) / 2, computed by hand
        #expect(abs(cosine.rate(base: 0.1, epoch: 3) - 0.0795953700) <= 1e-9)
        let rates = (0...10).map { cosine.rate(base: 0.1, epoch: $0) }
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 > $1 }, "cosine decreases monotonically to T_max")

        try LearningRateSchedule.constant.validate()
        try step.validate()
        try cosine.validate()
        #expect(throws: PlyError.self) { try LearningRateSchedule.step(stepSize: 0, gamma: 0.1).validate() }
        #expect(throws: PlyError.self) { try LearningRateSchedule.cosine(epochs: 0, minimum: 0).validate() }
        #expect(throws: PlyError.self) { try LearningRateSchedule.cosine(epochs: 5, minimum: -1).validate() }
    }

    // MARK: - (e) initialisation

    @Test func normalInitialization() throws {
        let model = try Zoo.convNet(runtime: sharedRuntime)
        try Initialization.normal(std: 0.01).apply(to: model, seed: 42)
        let params = try model.namedParameters()
        let weight = try #require(params.first { $0.name == "linear_1.weight" }).parameter.read().map(Double.init)
        let n = Double(weight.count)
        let mean = weight.reduce(0, +) / n
        let std = (weight.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)).squareRoot()
        #expect(abs(mean) <= 4 * 0.01 / n.squareRoot(), "mean \(mean)")
        #expect(abs(std - 0.01) <= 0.05 * 0.01, "std \(std)")
        for (name, p) in params where name.hasSuffix("bias") {
            #expect(p.read().allSatisfy { $0 == 0 }, "\(name) must be zero")
        }
        for (name, p) in params where name.hasSuffix("weight") {
            let values = p.read()
            #expect(Set(values).count > values.count / 2, "\(name) must be drawn, not constant")
        }

        let same = try Zoo.convNet(runtime: sharedRuntime)
        try Initialization.normal(std: 0.01).apply(to: same, seed: 42)
        #expect(try same.namedParameters().map { $0.parameter.read() } == params.map { $0.parameter.read() })
        let other = try Zoo.convNet(runtime: sharedRuntime)
        try Initialization.normal(std: 0.01).apply(to: other, seed: 43)
        #expect(try other.namedParameters().first { $0.name == "linear_1.weight" }!.parameter.read().map(Double.init) != weight)

        // pytorchDefault leaves the plugins' initialisation untouched.
        let untouched = try Zoo.convNet(runtime: sharedRuntime)
        let before = try untouched.namedParameters().map { $0.parameter.read() }
        try Initialization.pytorchDefault.apply(to: untouched, seed: 42)
        #expect(try untouched.namedParameters().map { $0.parameter.read() } == before)
        #expect(throws: PlyError.self) { try Initialization.normal(std: -1).apply(to: untouched, seed: 1) }
    }

    /// The hash init reproduces the README's definition on known values.
    @Test func hashInitBasics() throws {
        #expect(hashUniform(0, 0) >= -1 && hashUniform(0, 0) < 1)
        #expect(hashSplitMix64(0) == 0xE220_A839_7B1D_CDAF)  // splitmix64's first output from seed 0
        let model = try Zoo.convNet(runtime: sharedRuntime)
        try hashInitialize(model)
        let params = try model.namedParameters()
        let bias = try #require(params.first { $0.name == "conv_1.bias" }).parameter.read()
        #expect(bias[3] == 0.1 * hashUniform(1, 3))
        let w = try #require(params.first { $0.name == "conv_2.weight" }).parameter.read()
        #expect(w[5] == hashUniform(2, 5) * Float((6.0 / 72.0).squareRoot()))
    }
}
