import Foundation
import Testing
@testable import Ply

/// Where the test fixtures live (copied from shared/golden so a clone is self-contained).
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// A runtime with the built-in plugins, shared by tests that do not change its registry.
let sharedRuntime: Runtime = {
    do { return try Runtime() } catch { fatalError("cannot create the test runtime: \(error)") }
}()

/// A runtime whose built-ins come from the families' shared libraries (libply_*, built next
/// to this test bundle) instead of the copies linked into it.
let loadedRuntime: Runtime = {
    var options = Runtime.Options()
    options.builtinDirectory = CAPITests.buildDirectory
    do { return try Runtime(options: options) } catch { fatalError("cannot create the loaded-plugins runtime: \(error)") }
}()

/// The CPU level whose kernels the plugins run, as PLY_CPU spells it: the level this CPU has
/// (its /proc/cpuinfo flags: "avx512" needs AVX-512 F, VL, DQ and BW besides AVX2 and FMA),
/// lowered by PLY_CPU=generic|avx2 as Plugins/Support/plugin_support.h lowers it. Read from the
/// CPU, not asked of a plugin, so that a plugin that wrongly refuses its AVX-512 kernels fails.
let cpuLevel: String = {
    var detected = "generic"
    #if arch(x86_64)
    if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
       let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) {
        let flags = Set(line.split(separator: " ").map(String.init))
        if flags.isSuperset(of: ["avx2", "fma"]) { detected = "avx2" }
        if detected == "avx2" && flags.isSuperset(of: ["avx512f", "avx512vl", "avx512dq", "avx512bw"]) { detected = "avx512" }
    }
    #endif
    let order = ["generic", "avx2", "avx512"]
    let wanted = ProcessInfo.processInfo.environment["PLY_CPU"]?.lowercased() ?? ""
    guard let w = order.firstIndex(of: wanted), let d = order.firstIndex(of: detected) else { return detected }
    return order[min(w, d)]
}()

/// Whether conv2d's AVX-512-only algorithms ("winograd", "s2d", "panels") run here; below that
/// level forcing one is refused with a message naming the algorithm and the level.
let avx512Kernels = cpuLevel == "avx512"

/// Whether conv2d's algorithms with AVX2 kernels too ("direct", "pointwise", "spans") run here; below that level (the
/// portable path) forcing one is refused with a message naming the algorithm and the level.
let avx2Kernels = cpuLevel != "generic"

/// A JSON value as the golden files use it.
enum JSON: Decodable {
    case bool(Bool), int(Int), double(Double), string(String), array([JSON]), object([String: JSON]), null

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSON].self)) }
    }

    static func load(_ url: URL) throws -> JSON { try JSONDecoder().decode(JSON.self, from: Data(contentsOf: url)) }

    subscript(key: String) -> JSON? { if case let .object(o) = self { return o[key] } else { return nil } }
    var object: [String: JSON] { if case let .object(o) = self { return o } else { return [:] } }
    var array: [JSON] { if case let .array(a) = self { return a } else { return [] } }
    var string: String? { if case let .string(s) = self { return s } else { return nil } }
    var int: Int? { if case let .int(i) = self { return i } else { return nil } }
    var double: Double? {
        switch self { case let .double(d): return d; case let .int(i): return Double(i); default: return nil }
    }

    /// A golden tensor: `{"shape": [...], "data": [...]}`.
    var tensor: Tensor? {
        guard let shape = self["shape"]?.array.compactMap(\.int), let data = self["data"]?.array.compactMap(\.double) else { return nil }
        return try? Tensor(shape: Shape(shape), data: data.map { Float($0) })
    }

    /// A fixture case's `"attrs"` object as layer attributes, in name order; `name` labels a failure.
    func attributes(case name: String) throws -> Attributes {
        var attrs: Attributes = []
        for (key, value) in self["attrs"]?.object.sorted(by: { $0.key < $1.key }) ?? [] {
            attrs.append((key, try #require(value.attribute, "\(name): attribute \(key)")))
        }
        return attrs
    }

    /// The attribute this JSON value stands for.
    var attribute: AttributeValue? {
        switch self {
        case let .bool(b): return .bool(b)
        case let .int(i): return .int(i)
        case let .double(d): return .float(d)
        case let .string(s): return .string(s)
        case let .array(a):
            if a.allSatisfy({ $0.int != nil }) { return .ints(a.compactMap(\.int)) }
            return .floats(a.compactMap(\.double))
        default: return nil
        }
    }
}

/// The largest absolute difference, and whether it is within `max|ours - ref| <= 1e-5 * max(1, max|ref|)`.
func closeness(_ ours: [Float], _ ref: [Float], relative: Float = 1e-5) -> (ok: Bool, error: Float, bound: Float) {
    guard ours.count == ref.count else { return (false, .infinity, 0) }
    var worst: Float = 0, scale: Float = 1
    for (a, b) in zip(ours, ref) {
        worst = max(worst, abs(a - b))
        if a.isNaN != b.isNaN { worst = .infinity }
        scale = max(scale, abs(b))
    }
    return (worst <= relative * scale, worst, relative * scale)
}

/// One image's square conv2d in double: y[o][oh][ow] = b[o] + sum_{c, kh, kw} w[o][c][kh][kw]
/// x[c][oh*stride + kh - pad][ow*stride + kw - pad] (zero outside the side x side plane), relu'd when
/// asked; k x k kernel, output side (side + 2 pad - k) / stride + 1.
func referenceConv(_ x: [Float], _ w: [Float], _ b: [Float], c: Int, oc: Int, side: Int, k: Int, stride: Int,
                   pad: Int, relu: Bool = false) -> [Float] {
    let out = (side + 2 * pad - k) / stride + 1
    var y = [Float](repeating: 0, count: oc * out * out)
    for o in 0..<oc {
        for oh in 0..<out {
            for ow in 0..<out {
                var acc = Double(b[o])
                for ci in 0..<c {
                    for kh in 0..<k {
                        let ih = oh * stride + kh - pad
                        if ih < 0 || ih >= side { continue }
                        for kw in 0..<k {
                            let iw = ow * stride + kw - pad
                            if iw < 0 || iw >= side { continue }
                            acc += Double(w[((o * c + ci) * k + kh) * k + kw]) * Double(x[(ci * side + ih) * side + iw])
                        }
                    }
                }
                y[(o * out + oh) * out + ow] = Float(relu ? max(acc, 0) : acc)
            }
        }
    }
    return y
}

/// A conv2d in evaluation (`attrs`, weight `w`, bias `b`, the relu fused when asked) on each runtime:
/// its second forward of `x` (the first on a fresh layer, the second reusing what it kept: claim
/// counters must start from 0 again) and the runtime's thread count, each output of `shape`.
func convOutputsOnThreads(_ runtimes: [Runtime], _ attrs: Attributes, w: [Float], b: [Float], relu: Bool = false,
                          x: Tensor, shape: Shape, _ label: String) throws -> [(threads: Int, y: [Float])] {
    var outputs: [(threads: Int, y: [Float])] = []
    for runtime in runtimes {
        let conv = try Layer("conv2d", attrs, runtime: runtime)
        let params = try conv.parameters
        try params[0].write(w)
        try params[1].write(b)
        conv.setTraining(false)
        if relu { #expect(conv.fuseActivation("relu"), "conv2d fuses the relu") }
        for pass in 1...2 {
            let y = try conv.forward([x])
            #expect(y.shape == shape, "\(label): \(y.shape)")
            if pass == 2 { outputs.append((runtime.threads, y.data)) }
        }
    }
    return outputs
}

/// Checks a layer's outputs on several thread counts (the 1-thread one first): the 1-thread output
/// within `closeness` of `reference` (a plain sum: a part left out everywhere does not pass), and
/// every other bit for bit equal to it (splits that claim work must compute each part the same way
/// whichever thread runs it).
func expectSameAsOneThread(_ outputs: [(threads: Int, y: [Float])], reference: [Float], _ label: String) {
    #expect(outputs.first?.threads == 1, "\(label): the first output is not 1 thread's")
    guard let one = outputs.first?.y else { return }
    let c = closeness(one, reference)
    #expect(c.ok, "\(label), 1 thread: max error \(c.error) > \(c.bound)")
    for (threads, y) in outputs.dropFirst() {
        let differing = zip(y, one).filter { $0.0.bitPattern != $0.1.bitPattern }.count
        #expect(differing == 0 && y.count == one.count,
                "\(label), \(threads) threads: \(differing) of \(y.count) outputs differ from 1 thread's")
    }
}

/// Checks that a conv whose kernel keeps its own packed copy of the weights (`fast`) follows every
/// change of them: it is compared with `reference` (its parameters copied over from `fast` before
/// each comparison) at the first forward, a second forward with the same weights (bit for bit), after
/// an SGD step (backward from a random output gradient drawn from `g`), after a change of the last
/// weight only, and with the first weights written back. `label` names the case in failures.
func expectPackedWeightsFollowChanges(_ fast: Layer, _ reference: Layer, input x: Tensor,
                                      _ g: inout SplitMix64, label: String) throws {
    func agree(_ what: String) throws -> Tensor {
        for (p, q) in zip(try fast.parameters, try reference.parameters) { try q.write(p.read()) }
        let y0 = try reference.forward([x]), y1 = try fast.forward([x])
        let c = closeness(y1.data, y0.data)
        #expect(c.ok, "\(label), \(what): max error \(c.error) > \(c.bound)")
        return y1
    }
    let y = try agree("first forward")
    #expect(try fast.forward([x]).data == y.data, "\(label): a second forward with the same weights")
    let old = try fast.parameters[0].read()
    let dy = try Tensor(shape: y.shape, data: (0..<y.shape.count).map { _ in g.nextUnitFloat() * 2 - 1 })
    _ = try fast.backward(inputs: [x], output: y, gradOutput: dy)
    let params = try fast.parameters
    try SGD(learningRate: 0.1).step([("weight", params[0]), ("bias", params[1])])
    #expect(try fast.parameters[0].read() != old, "\(label): the SGD step changed no weight")
    _ = try agree("after an SGD step")
    var w = try fast.parameters[0].read()
    w[w.count - 1] += 0.5
    try fast.parameters[0].write(w)
    _ = try agree("after a change of the last weight")
    try fast.parameters[0].write(old)
    _ = try agree("with the first weights back")
}

/// Expects a conv's backward from `dy` (after the forward that gave `y` from `x`) to give the input
/// gradient `dx`, and its weight (and bias, given `db`) gradients to hold `pass` times `dw` (`db`):
/// each backward adds into them. `params` are the conv's; `label` names the case.
func expectConvBackward(_ conv: Layer, _ params: [Parameter], x: Tensor, y: Tensor, dy: Tensor, dx: [Double],
                        dw: [Double], db: [Double]?, pass: Int, _ label: String) throws {
    let gx = try #require(try conv.backward(inputs: [x], output: y, gradOutput: dy)[0])
    let e = closeness(gx.data, dx.map(Float.init))
    #expect(e.ok, "\(label) pass \(pass): grad_input max error \(e.error) > \(e.bound)")
    let gw = closeness(Array(try #require(params[0].gradient)), dw.map { Float($0 * Double(pass)) })
    #expect(gw.ok, "\(label) pass \(pass): grad_weight max error \(gw.error) > \(gw.bound)")
    if let db {
        let gb = closeness(Array(try #require(params[1].gradient)), db.map { Float($0 * Double(pass)) })
        #expect(gb.ok, "\(label) pass \(pass): grad_bias max error \(gb.error) > \(gb.bound)")
    }
}

/// The attribute-schema problem `body` throws (`PlyError.attribute`); records an issue and
/// throws when it throws nothing or another error.
func requireAttributeProblem<T>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T) throws
    -> PlyError.AttributeProblem {
    let error = try #require(throws: PlyError.self, sourceLocation: sourceLocation) { _ = try body() }
    guard case let .attribute(problem) = error else {
        Issue.record("expected PlyError.attribute, got \(error)", sourceLocation: sourceLocation)
        throw error
    }
    return problem
}

/// A runtime with the built-in plugins and `threads` threads, for tests of how kernels split work.
func threadedRuntime(_ threads: Int) -> Runtime {
    var options = Runtime.Options()
    options.threads = threads
    do { return try Runtime(options: options) } catch { fatalError("cannot create the test runtime: \(error)") }
}

/// The cases in `Fixtures/<folder>`: its `.json` files' names without the extension that `keep`
/// accepts, sorted (none when the folder is missing: each suite's `casesArePresent` counts them).
func fixtureCases(_ folder: String, where keep: (String) -> Bool = { _ in true }) -> [String] {
    let dir = fixtures.appendingPathComponent(folder)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
    return names.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.filter(keep).sorted()
}

/// Writes a fixture's parameters (`json[key]`: name -> tensor, e.g. "params") into the parameters of
/// those names of `layer` (nothing when the fixture has no `key`); a name the layer lacks fails the
/// test, naming `label`.
func writeFixtureParams(_ json: JSON, _ key: String, to layer: Layer, _ label: String) throws {
    guard let given = json[key]?.object else { return }
    let params = try layer.parameters
    for (pname, value) in given {
        let p = try #require(params.first { $0.name == pname }, "\(label): no parameter '\(pname)'")
        try p.write(try #require(value.tensor).data)
    }
}

/// Runs `layer` on `inputs` `passes` times (a second forward reuses the scratch, packed or
/// transformed weights the first left) and expects each output to have `expected`'s shape and to
/// be within `closeness` of it; a failure is reported at the caller's line.
func expectForwardsMatch(_ layer: Layer, _ inputs: [Tensor], _ expected: Tensor, _ label: String, passes: Int = 2,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
    for pass in 1...passes {
        let y = try layer.forward(inputs)
        #expect(y.shape == expected.shape, "\(label): output shape \(y.shape) vs \(expected.shape)",
                sourceLocation: sourceLocation)
        let c = closeness(y.data, expected.data)
        #expect(c.ok, "\(label)\(passes > 1 ? ", pass \(pass)" : ""): max error \(c.error) > \(c.bound)",
                sourceLocation: sourceLocation)
    }
}

/// `expectForwardsMatch` on a single input.
func expectForwardsMatch(_ layer: Layer, _ input: Tensor, _ expected: Tensor, _ label: String, passes: Int = 2,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
    try expectForwardsMatch(layer, [input], expected, label, passes: passes, sourceLocation: sourceLocation)
}

/// The runtimes a suite runs its fixture cases on: the shared one and its own of 2 and 3 threads
/// (its own, so that only its own parameter writes move their parameter generation).
struct SuiteRuntimes: Sendable {
    let two = threadedRuntime(2), three = threadedRuntime(3)
    /// The shared runtime, then 2 and 3 threads.
    var all: [Runtime] { [sharedRuntime, two, three] }
}

/// One case of `Fixtures/<folder>`, a layer golden in golden/README.md's format written by the
/// folder's make-*.py (PyTorch in double precision): its JSON and attributes, and the tensors and
/// the layer the suites build from it.
struct FixtureCase {
    let name: String
    let json: JSON
    let attrs: Attributes

    init(_ folder: String, _ name: String) throws {
        self.name = name
        json = try JSON.load(fixtures.appendingPathComponent("\(folder)/\(name).json"))
        attrs = try json.attributes(case: name)
    }

    /// The case's tensor `key` ("input", "output", "residual", ...).
    func tensor(_ key: String) throws -> Tensor { try #require(json[key]?.tensor, "\(name): no tensor '\(key)'") }

    var input: Tensor { get throws { try tensor("input") } }

    /// The case's "output", through a relu when `relu` (the layer fuses one the fixture lacks).
    func expected(relu: Bool = false) throws -> Tensor {
        let y = try tensor("output")
        return relu ? try Tensor(shape: y.shape, data: y.data.map { max($0, 0) }) : y
    }

    /// A `type` layer with the case's attributes and `extra` on `runtime`, set to training or
    /// evaluation, the relu fused when `relu` (expected to fuse), and then the fixture's `params`
    /// written (`label` names a failure).
    func layer(_ extra: Attributes = [], type: String = "conv2d", on runtime: Runtime, training: Bool = false,
               relu: Bool = false, params: String = "params", label: String) throws -> Layer {
        let layer = try Layer(type, attrs + extra, runtime: runtime)
        layer.setTraining(training)
        if relu { #expect(layer.fuseActivation("relu"), "\(type) fuses the relu") }
        try writeFixtureParams(json, params, to: layer, label)
        return layer
    }
}

// MARK: - golden/layers cases (Fixtures/golden/README.md)

/// Writes a golden case's "params" and "buffers" (name -> tensor) into the parameters of those
/// names in `params`, each expected to have the tensor's shape; a name missing fails, naming `label`.
func writeGoldenParamsAndBuffers(_ json: JSON, to params: [Parameter], _ label: String) throws {
    var given = json["params"]?.object ?? [:]
    for (k, v) in json["buffers"]?.object ?? [:] { given[k] = v }
    for (pname, value) in given {
        let p = try #require(params.first { $0.name == pname }, "\(label): no parameter '\(pname)'")
        let t = try #require(value.tensor)
        #expect(p.shape == t.shape, "\(label): \(pname) shape")
        try p.write(t.data)
    }
}

/// Expects the gradients in `params` to be the golden case's "grad_params" times `accumulated`
/// (the number of backward passes added into them), and the buffers its "buffers_after".
func expectGoldenGradsAndBuffers(_ json: JSON, _ params: [Parameter], _ label: String, accumulated: Float = 1) throws {
    for (pname, value) in json["grad_params"]?.object ?? [:] {
        let p = try #require(params.first { $0.name == pname })
        let c = closeness(Array(try #require(p.gradient)), try #require(value.tensor).data.map { $0 * accumulated })
        #expect(c.ok, "\(label): grad of \(pname) (x\(accumulated)) max error \(c.error) > \(c.bound)")
    }
    for (pname, value) in json["buffers_after"]?.object ?? [:] {
        let p = try #require(params.first { $0.name == pname })
        let c = closeness(p.read(), try #require(value.tensor).data)
        #expect(c.ok, "\(label): buffer \(pname) after forward, max error \(c.error) > \(c.bound)")
    }
}

/// One step of a block's golden case on `layer` (whose `params` they are), its gradients not zeroed
/// before: the case's parameters and buffers written, a forward in training or evaluation and a
/// backward, each against the case (the parameter gradients as `accumulated` times its own).
func goldenBlockStep(_ layer: Layer, _ params: [Parameter], _ json: JSON, training: Bool, accumulated: Float,
                     _ label: String) throws {
    try writeGoldenParamsAndBuffers(json, to: params, label)
    layer.setTraining(training)
    let x = try #require(json["input"]?.tensor)
    let y = try layer.forward([x])
    let expected = try #require(json["output"]?.tensor)
    #expect(y.shape == expected.shape, "\(label): output shape")
    let fwd = closeness(y.data, expected.data)
    #expect(fwd.ok, "\(label): output max error \(fwd.error) > \(fwd.bound)")
    let gin = try layer.backward(inputs: [x], output: y, gradOutput: try #require(json["grad_output"]?.tensor))
    let gx = closeness(try #require(gin[0]).data, try #require(json["grad_input"]?.tensor).data)
    #expect(gx.ok, "\(label): grad_input max error \(gx.error) > \(gx.bound)")
    try expectGoldenGradsAndBuffers(json, params, label, accumulated: accumulated)
}
