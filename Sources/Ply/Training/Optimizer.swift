import Foundation

/// Updates a model's trainable parameters from their accumulated gradients, with PyTorch's
/// update rules exactly (`torch.optim.SGD`, `torch.optim.Adam`), in float32 as PyTorch does.
///
/// State (momentum buffers, moment estimates) lives in the optimizer, keyed by the
/// parameter's name (`conv_1.weight`), created the first time the parameter is stepped and
/// reused afterwards: a step allocates nothing. Buffers and integer entries are skipped.
public protocol Optimizer: AnyObject {
    /// The rate used by the next `step` (a schedule sets it every epoch).
    var learningRate: Double { get set }
    /// Applies one update to every trainable parameter of `parameters` (buffers are skipped).
    func step(_ parameters: [(name: String, parameter: Parameter)]) throws
    /// The optimizer state for a checkpoint: `step` (one value, the step count) and per
    /// parameter tensors such as `momentum_buffer.conv_1.weight`, `exp_avg.*`, `exp_avg_sq.*`.
    func stateTensors() -> [(name: String, values: [Float])]
    /// Restores what `stateTensors` returned. Throws, naming the entry, when a name is not
    /// state this optimizer keeps or when counts disagree; the next `step` also checks that
    /// the state belongs to the parameters it is given.
    func loadState(_ tensors: [String: [Float]]) throws
    /// How many steps have been taken (restored by `loadState`).
    var stepCount: Int { get }
}

/// Float buffers owned by one parameter's optimizer state.
final class OptimizerSlot {
    let buffers: [UnsafeMutableBufferPointer<Float>]
    /// Adam's per-parameter step (PyTorch keeps one per parameter).
    var steps = 0

    init(count: Int, buffers n: Int) {
        buffers = (0..<n).map { _ in
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, 1))
            b.initialize(repeating: 0)
            return UnsafeMutableBufferPointer(rebasing: b[0..<count])
        }
    }

    var count: Int { buffers.first?.count ?? 0 }

    deinit {
        for b in buffers { b.baseAddress?.deallocate() }
    }
}

/// The bookkeeping shared by the optimizers: slots by parameter name, saving and loading.
struct OptimizerState {
    /// Names of the per-parameter tensors, e.g. `["exp_avg", "exp_avg_sq"]`.
    let kinds: [String]
    var slots: [String: OptimizerSlot] = [:]
    /// Parameter names in the order they were first stepped (for a stable `stateTensors`).
    var order: [String] = []
    /// Set by `loadState`: the next step checks the loaded names against its parameters.
    var unverified = false

    init(kinds: [String]) { self.kinds = kinds }

    /// The slot of `name`, created (zeroed) on first use; `fresh` says it was just created.
    mutating func slot(_ name: String, count: Int) throws -> (slot: OptimizerSlot, fresh: Bool) {
        if let s = slots[name] {
            guard s.count == count else {
                throw PlyError.invalid("optimizer state for '\(name)' has \(s.count) values but the parameter has \(count)")
            }
            return (s, false)
        }
        let s = OptimizerSlot(count: count, buffers: kinds.count)
        slots[name] = s
        order.append(name)
        return (s, true)
    }

    /// After a load: every trainable parameter must have state and every state a parameter.
    mutating func verify(_ parameters: [(name: String, parameter: Parameter)], optimizer: String) throws {
        guard unverified else { return }
        if kinds.isEmpty { unverified = false; return }
        var seen = Set<String>()
        for (name, p) in parameters where p.trainable && !p.isInteger {
            guard let s = slots[name] else {
                throw PlyError.invalid("\(optimizer) state was loaded without \(kinds[0]).\(name); "
                    + "the checkpoint does not match the model")
            }
            guard s.count == p.shape.count else {
                throw PlyError.invalid("\(optimizer) state \(kinds[0]).\(name) has \(s.count) values but the parameter "
                    + "\(name) \(p.shape) has \(p.shape.count)")
            }
            seen.insert(name)
        }
        if let extra = order.first(where: { !seen.contains($0) }) {
            throw PlyError.invalid("\(optimizer) state has \(kinds[0]).\(extra) but the model has no trainable parameter '\(extra)'")
        }
        unverified = false
    }

    func tensors(stepCount: Int) -> [(name: String, values: [Float])] {
        var result: [(name: String, values: [Float])] = [("step", [Float(stepCount)])]
        for (k, kind) in kinds.enumerated() {
            for name in order { result.append(("\(kind).\(name)", Array(slots[name]!.buffers[k]))) }
        }
        return result
    }

    /// Parses and checks a saved state; replaces the current one only when all of it is valid.
    mutating func load(_ tensors: [String: [Float]], optimizer: String) throws -> Int {
        guard let stepValues = tensors["step"] else {
            throw PlyError.invalid("\(optimizer) state has no 'step' entry")
        }
        guard stepValues.count == 1, let s = stepValues.first, s >= 0, s == s.rounded(), s < 16_777_216 else {
            throw PlyError.invalid("\(optimizer) state 'step' must be one whole number >= 0, got \(stepValues.count) values \(stepValues.prefix(4))")
        }
        var perKind: [[String: [Float]]] = Array(repeating: [:], count: kinds.count)
        for (key, values) in tensors where key != "step" {
            guard let dot = key.firstIndex(of: "."), let k = kinds.firstIndex(of: String(key[..<dot])),
                  key.index(after: dot) < key.endIndex else {
                let known = kinds.isEmpty ? "no per-parameter state" : kinds.map { "\($0).<parameter>" }.joined(separator: ", ")
                throw PlyError.invalid("\(optimizer) state has an unknown entry '\(key)'; it keeps 'step' and \(known)")
            }
            perKind[k][String(key[key.index(after: dot)...])] = values
        }
        let names = perKind.first.map { Array($0.keys).sorted() } ?? []
        for (k, kind) in kinds.enumerated() {
            let these = perKind[k]
            for name in names {
                guard let v = these[name] else {
                    throw PlyError.invalid("\(optimizer) state has \(kinds[0]).\(name) but no \(kind).\(name)")
                }
                let count = perKind[0][name]!.count
                guard v.count == count else {
                    throw PlyError.invalid("\(optimizer) state \(kind).\(name) has \(v.count) values but \(kinds[0]).\(name) has \(count)")
                }
            }
            if let extra = these.keys.sorted().first(where: { perKind[0][$0] == nil }) {
                throw PlyError.invalid("\(optimizer) state has \(kind).\(extra) but no \(kinds[0]).\(extra)")
            }
        }
        var newSlots: [String: OptimizerSlot] = [:]
        for name in names {
            let slot = OptimizerSlot(count: perKind[0][name]!.count, buffers: kinds.count)
            for k in kinds.indices { _ = slot.buffers[k].update(fromContentsOf: perKind[k][name]!) }
            slot.steps = Int(s)
            newSlots[name] = slot
        }
        slots = newSlots
        order = names
        // A state saved before any step has nothing to check against the parameters.
        unverified = !names.isEmpty || s > 0
        return Int(s)
    }
}

/// Stochastic gradient descent as `torch.optim.SGD`:
///
///     d = g + weightDecay * p
///     buf = momentum * buf + (1 - dampening) * d      (first step: buf = d)
///     d = nesterov ? d + momentum * buf : buf          (when momentum != 0)
///     p -= learningRate * d
public final class SGD: Optimizer {
    /// The rate used by the next `step` (a schedule sets it every epoch).
    public var learningRate: Double
    /// The momentum factor (0: plain SGD).
    public let momentum: Double
    /// Dampening of the momentum update.
    public let dampening: Double
    /// L2 penalty added to the gradient.
    public let weightDecay: Double
    /// Whether Nesterov momentum is used.
    public let nesterov: Bool
    /// How many steps have been taken (restored by `loadState`).
    public private(set) var stepCount = 0
    private var state: OptimizerState

    /// Throws for negative rates or decay, and for Nesterov without momentum or with dampening
    /// (PyTorch's rules).
    public init(learningRate: Double, momentum: Double = 0, dampening: Double = 0,
                weightDecay: Double = 0, nesterov: Bool = false) throws {
        guard learningRate >= 0, learningRate.isFinite else { throw PlyError.invalid("SGD: invalid learning rate \(learningRate)") }
        guard momentum >= 0, momentum.isFinite else { throw PlyError.invalid("SGD: invalid momentum \(momentum)") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw PlyError.invalid("SGD: invalid weight decay \(weightDecay)") }
        guard dampening.isFinite else { throw PlyError.invalid("SGD: invalid dampening \(dampening)") }
        if nesterov && (momentum <= 0 || dampening != 0) {
            throw PlyError.invalid("SGD: Nesterov momentum requires a momentum > 0 and zero dampening "
                + "(got momentum \(momentum), dampening \(dampening))")
        }
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        state = OptimizerState(kinds: momentum != 0 ? ["momentum_buffer"] : [])
    }

    /// Applies one update to every trainable parameter of `parameters` (buffers are skipped).
    public func step(_ parameters: [(name: String, parameter: Parameter)]) throws {
        // with the runtime's floating-point modes (Runtime.Options.flushDenormals)
        guard let runtime = parameters.first?.parameter.layer.runtime else { return try update(parameters) }
        try runtime.state.computing { try update(parameters) }
    }

    private func update(_ parameters: [(name: String, parameter: Parameter)]) throws {
        try state.verify(parameters, optimizer: "SGD")
        let lr = Float(learningRate), wd = Float(weightDecay)
        let mom = Float(momentum), keep = Float(1 - dampening), nesterov = self.nesterov
        // The update is element-wise and memory-bound: the parameters are laid end to end and
        // split over the runtime's threads (a ResNet-18 step moves ~220 MB here).
        var work: [(w: UnsafeMutableBufferPointer<Float>, g: UnsafeMutableBufferPointer<Float>,
                    buf: UnsafeMutablePointer<Float>?, fresh: Bool)] = []
        var total = 0
        for (name, p) in parameters where p.trainable {
            guard let w = p.floats, let g = p.gradient else { continue }
            var buf: UnsafeMutablePointer<Float>?, fresh = false
            if momentum != 0 {
                let (slot, isNew) = try state.slot(name, count: w.count)
                buf = slot.buffers[0].baseAddress
                fresh = isNew
            }
            work.append((w, g, buf, fresh))
            total += w.count
        }
        let update = { (w: UnsafeMutableBufferPointer<Float>, g: UnsafeMutableBufferPointer<Float>,
                        buf: UnsafeMutablePointer<Float>?, fresh: Bool, range: Range<Int>) in
            guard let buf else {
                if wd == 0 {
                    for i in range { w[i] -= lr * g[i] }
                } else {
                    for i in range { w[i] -= lr * (g[i] + wd * w[i]) }
                }
                return
            }
            // The common case (no weight decay, no dampening, not Nesterov, the buffer started) as a
            // loop of its own that LLVM vectorises: with the options tested per element, zeroing the
            // gradients and this update took 19.8 ms of a ResNet-18 step on one thread (11.2 M
            // parameters), 15.8 ms now (CPU time, `ply bench-layers --training`; a C loop: 12 + 4).
            // Multiplying by keep = 1 is exact, so both loops give the same bits.
            if wd == 0 && keep == 1 && !fresh && !nesterov {
                for i in range {
                    let b = mom * buf[i] + g[i]
                    buf[i] = b
                    w[i] -= lr * b
                }
                return
            }
            for i in range {
                let d = wd == 0 ? g[i] : g[i] + wd * w[i]
                let b = fresh ? d : mom * buf[i] + keep * d
                buf[i] = b
                w[i] -= lr * (nesterov ? d + mom * b : b)
            }
        }
        let run = { (begin: Int, end: Int) in
            var offset = 0
            for item in work {
                let n = item.w.count
                let lo = max(begin - offset, 0), hi = min(end - offset, n)
                if lo < hi { update(item.w, item.g, item.buf, item.fresh, lo..<hi) }
                offset += n
                if offset >= end { break }
            }
        }
        if let runtime = parameters.first?.parameter.layer.runtime {
            runtime.state.parallelRanges(total, run)
        } else {
            run(0, total)
        }
        stepCount += 1
    }

    /// The optimizer state for a checkpoint: `step`, and `momentum_buffer.<parameter>` entries when momentum is on.
    public func stateTensors() -> [(name: String, values: [Float])] { state.tensors(stepCount: stepCount) }

    /// Restores what `stateTensors()` returned; throws, naming the entry, when it does not fit.
    public func loadState(_ tensors: [String: [Float]]) throws {
        stepCount = try state.load(tensors, optimizer: "SGD")
    }
}

/// Adam as `torch.optim.Adam` (weight decay is L2 added to the gradient, not AdamW):
///
///     g += weightDecay * p
///     m = m + (1 - beta1) * (g - m);   v = beta2 * v + (1 - beta2) * g * g
///     p -= learningRate / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
public final class Adam: Optimizer {
    /// The rate used by the next `step` (a schedule sets it every epoch).
    public var learningRate: Double
    /// Decay rate of the first-moment (mean) estimate.
    public let beta1: Double
    /// Decay rate of the second-moment (uncentred variance) estimate.
    public let beta2: Double
    /// Added to the denominator for numerical stability.
    public let epsilon: Double
    /// L2 penalty added to the gradient (not AdamW's decoupled decay).
    public let weightDecay: Double
    /// How many steps have been taken (restored by `loadState`).
    public private(set) var stepCount = 0
    private var state = OptimizerState(kinds: ["exp_avg", "exp_avg_sq"])

    /// Throws for rates, betas or epsilon outside PyTorch's accepted ranges.
    public init(learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
                epsilon: Double = 1e-8, weightDecay: Double = 0) throws {
        guard learningRate >= 0, learningRate.isFinite else { throw PlyError.invalid("Adam: invalid learning rate \(learningRate)") }
        guard (0..<1).contains(beta1) else { throw PlyError.invalid("Adam: beta1 must be in [0, 1), got \(beta1)") }
        guard (0..<1).contains(beta2) else { throw PlyError.invalid("Adam: beta2 must be in [0, 1), got \(beta2)") }
        guard epsilon >= 0, epsilon.isFinite else { throw PlyError.invalid("Adam: invalid epsilon \(epsilon)") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw PlyError.invalid("Adam: invalid weight decay \(weightDecay)") }
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Applies one update to every trainable parameter of `parameters` (buffers are skipped).
    public func step(_ parameters: [(name: String, parameter: Parameter)]) throws {
        // with the runtime's floating-point modes (Runtime.Options.flushDenormals)
        guard let runtime = parameters.first?.parameter.layer.runtime else { return try update(parameters) }
        try runtime.state.computing { try update(parameters) }
    }

    private func update(_ parameters: [(name: String, parameter: Parameter)]) throws {
        try state.verify(parameters, optimizer: "Adam")
        let wd = Float(weightDecay), b2 = Float(beta2), eps = Float(epsilon)
        let oneMinusB1 = Float(1 - beta1), oneMinusB2 = Float(1 - beta2)
        for (name, p) in parameters where p.trainable {
            guard let w = p.floats, let g = p.gradient else { continue }
            let n = w.count
            let slot = try state.slot(name, count: n).slot
            slot.steps += 1
            let t = Double(slot.steps)
            let stepSize = Float(learningRate / (1 - Foundation.pow(beta1, t)))
            let bc2Sqrt = Float((1 - Foundation.pow(beta2, t)).squareRoot())
            let m = slot.buffers[0], v = slot.buffers[1]
            for i in 0..<n {
                let gi = wd == 0 ? g[i] : g[i] + wd * w[i]
                // torch's lerp_ with weight < 0.5: self + weight * (end - self)
                let mi = oneMinusB1 < 0.5 ? m[i] + oneMinusB1 * (gi - m[i]) : gi - (gi - m[i]) * (1 - oneMinusB1)
                let vi = v[i] * b2 + oneMinusB2 * gi * gi
                m[i] = mi
                v[i] = vi
                w[i] += -stepSize * (mi / (vi.squareRoot() / bc2Sqrt + eps))
            }
        }
        stepCount += 1
    }

    /// The optimizer state for a checkpoint: `step`, `exp_avg.<parameter>` and `exp_avg_sq.<parameter>` entries.
    public func stateTensors() -> [(name: String, values: [Float])] { state.tensors(stepCount: stepCount) }

    /// Restores what `stateTensors()` returned; throws, naming the entry, when it does not fit.
    public func loadState(_ tensors: [String: [Float]]) throws {
        stepCount = try state.load(tensors, optimizer: "Adam")
    }
}
