import CPly
import Foundation
import Testing
@testable import Ply

/// The `user_activation` layer (Plugins/UserActivation): a user's C function called
/// through libffi. The user library is Examples/activations/activations.c built with
/// plain `cc`; results are checked against closed forms, gradients against closed forms
/// and finite differences, and every configuration mistake must fail at create.
@Suite struct UserActivationTests {
    // MARK: - Helpers

    static let source = CCompiler.repositoryRoot.appendingPathComponent("Examples/activations/activations.c")

    /// The example library, built once per test process into a temporary directory.
    static let built: Result<String, Error> = Result {
        let dir = try CCompiler.temporaryDirectory("user-activations")
        let out = dir.appendingPathComponent("libactivations.so").path
        let args = CCompiler.strictFlags + ["-O2", source.path, "-o", out, "-lm"]
        let result = try CCompiler.run("cc", args)
        guard result.status == 0 else {
            throw PlyError.invalid("cc \(args.joined(separator: " ")) failed (status \(result.status)):\n\(result.stderr)")
        }
        return out
    }

    static func library() throws -> String { try built.get() }

    /// A user_activation layer calling `symbol` from the example library.
    static func layer(_ symbol: String, _ signature: String = "float(float)", _ extra: Attributes = []) throws -> Layer {
        try Layer("user_activation", [("library", .string(library())), ("symbol", .string(symbol)),
                                      ("signature", .string(signature))] + extra, runtime: sharedRuntime)
    }

    /// `n` inputs spread over [-5, 5], none within 0.05 of zero (so kinks stay clear of
    /// finite-difference steps), as a [n/12, 3, 2, 2]-like tensor.
    static func inputs(_ shape: Shape = [4, 3, 5, 2]) throws -> Tensor {
        let n = shape.count
        let data = (0..<n).map { i -> Float in
            var x = -5 + 10 * (Float(i) + 0.37) / Float(n)
            if abs(x) < 0.05 { x = x < 0 ? -0.05 : 0.05 }
            return x
        }
        // Shuffle deterministically so neighbouring elements differ.
        var g = SplitMix64(seed: 7)
        var shuffled = data
        for i in stride(from: n - 1, to: 0, by: -1) { shuffled.swapAt(i, Int(g.next() % UInt64(i + 1))) }
        return try Tensor(shape: shape, data: shuffled)
    }

    /// A non-trivial upstream gradient of `shape`.
    static func gradOut(_ shape: Shape) throws -> Tensor {
        try Tensor(shape: shape, data: (0..<shape.count).map { 0.5 + Float($0 % 7) / 6 })
    }

    /// Forward, then backward with `gradOut`: (y, dx).
    static func run(_ layer: Layer, _ x: Tensor) throws -> (y: Tensor, dx: Tensor) {
        let y = try layer.forward([x])
        let dx = try #require(try layer.backward(inputs: [x], output: y, gradOutput: gradOut(x.shape))[0])
        return (y, dx)
    }

    static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
    static func swish(_ x: Double) -> Double { x * sigmoid(x) }
    static func swishGrad(_ x: Double) -> Double { let s = sigmoid(x); return s + x * s * (1 - s) }
    static func softplus(_ x: Double) -> Double { log1p(exp(-abs(x))) + max(x, 0) }
    static func mish(_ x: Double) -> Double { x * tanh(softplus(x)) }
    static func mishGrad(_ x: Double) -> Double {
        let t = tanh(softplus(x))
        return t + x * (1 - t * t) * sigmoid(x)
    }

    /// Checks `ours` against `f` applied to `x` (times the upstream gradient when `grad`).
    static func expectMatches(_ ours: Tensor, _ x: Tensor, _ label: String, relative: Float = 1e-5, grad: Bool = false,
                              _ f: (Double) -> Double, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let g = try gradOut(x.shape)
        let ref = x.data.indices.map { Float(f(Double(x.data[$0])) * (grad ? Double(g.data[$0]) : 1)) }
        let c = closeness(ours.data, ref, relative: relative)
        #expect(c.ok, "\(label): max error \(c.error) > \(c.bound)", sourceLocation: sourceLocation)
    }

    /// The error a create with `attributes` throws; fails the test when create succeeds.
    static func createError(_ attributes: Attributes, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            _ = try Layer("user_activation", attributes, runtime: sharedRuntime)
            Issue.record("create succeeded with \(attributes)", sourceLocation: sourceLocation)
            return ""
        } catch let PlyError.layer(type, call, _, message) {
            #expect(type == "user_activation" && call == "create", sourceLocation: sourceLocation)
            return message
        } catch let PlyError.attribute(error) {
            // The host's check against user_activation's attribute schema, before create.
            #expect(error.type == "user_activation", sourceLocation: sourceLocation)
            return error.reason
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
            return ""
        }
    }

    // MARK: - Values

    @Test func swishAndMishMatchClosedForms() throws {
        let x = try Self.inputs()
        try Self.expectMatches(Self.layer("swish").forward([x]), x, "swish", Self.swish)
        try Self.expectMatches(Self.layer("mish").forward([x]), x, "mish", Self.mish)
    }

    @Test func parametricFunctionsTakeTheirParams() throws {
        let x = try Self.inputs()
        let prelu = try Self.layer("prelu_like", "float(float, float)", [("params", .floats([0.2]))])
        try Self.expectMatches(prelu.forward([x]), x, "prelu_like(0.2)") { $0 > 0 ? $0 : 0.2 * $0 }
        let selu = try Self.layer("selu_like", "float(float, float, float)", [("params", .floats([1.6733, 1.0507]))])
        try Self.expectMatches(selu.forward([x]), x, "selu_like", relative: 2e-5) {
            1.0507 * ($0 > 0 ? $0 : 1.6733 * expm1($0))
        }
        // An int list works as params too.
        let prelu2 = try Self.layer("prelu_like", "float(float,float)", [("params", .ints([2]))])
        try Self.expectMatches(prelu2.forward([x]), x, "prelu_like(2)") { $0 > 0 ? $0 : 2 * $0 }
    }

    @Test func largeTensorsUseTheThreadPoolAndAgreeWithOneThread() throws {
        let x = try Self.inputs([4, 8, 16, 16])  // 8192 elements: several parallel chunks
        let parallel = try Self.run(Self.layer("swish"), x)
        let serial = try Self.run(Self.layer("swish", "float(float)", [("parallel", .bool(false))]), x)
        #expect(parallel.y == serial.y && parallel.dx == serial.dx)
        try Self.expectMatches(parallel.y, x, "swish", Self.swish)
        try Self.expectMatches(parallel.dx, x, "swish FD gradient", relative: 1e-4, grad: true, Self.swishGrad)
    }

    // MARK: - Gradients

    @Test func gradientsWithAndWithoutDerivativeSymbol() throws {
        let x = try Self.inputs()
        let exact = try Self.run(Self.layer("swish", "float(float)", [("derivative", .string("swish_grad"))]), x)
        try Self.expectMatches(exact.dx, x, "swish with swish_grad", grad: true, Self.swishGrad)
        let fd = try Self.run(Self.layer("swish"), x)
        try Self.expectMatches(fd.dx, x, "swish by central differences", relative: 1e-4, grad: true, Self.swishGrad)
        #expect(fd.y == exact.y)
        let mish = try Self.run(Self.layer("mish"), x)
        try Self.expectMatches(mish.dx, x, "mish by central differences", relative: 1e-4, grad: true, Self.mishGrad)

        // Parametric: derivative with params, and central differences away from the kink.
        let attrs: Attributes = [("params", .floats([0.2]))]
        let slope: (Double) -> Double = { $0 > 0 ? 1 : 0.2 }
        let d = try Self.run(Self.layer("prelu_like", "float(float, float)", attrs + [("derivative", .string("prelu_like_grad"))]), x)
        try Self.expectMatches(d.dx, x, "prelu_like with prelu_like_grad", grad: true, slope)
        let f = try Self.run(Self.layer("prelu_like", "float(float, float)", attrs), x)
        try Self.expectMatches(f.dx, x, "prelu_like by central differences", relative: 1e-4, grad: true, slope)
    }

    @Test func vectorisedEqualsScalar() throws {
        let x = try Self.inputs([2, 3, 7, 5])
        let vec = "void(const float *, float *, int64_t)"
        let scalar = try Self.run(Self.layer("swish", "float(float)", [("derivative", .string("swish_grad"))]), x)
        let vectorised = try Self.run(Self.layer("swish_vec", vec, [("derivative", .string("swish_vec_grad"))]), x)
        #expect(closeness(vectorised.y.data, scalar.y.data, relative: 1e-6).ok)
        #expect(closeness(vectorised.dx.data, scalar.dx.data, relative: 1e-6).ok)
        let fd = try Self.run(Self.layer("swish_vec", vec), x)
        #expect(fd.y == vectorised.y)
        try Self.expectMatches(fd.dx, x, "swish_vec by central differences", relative: 1e-4, grad: true, Self.swishGrad)
    }

    @Test func doubleSignature() throws {
        let x = try Self.inputs()
        let exact = try Self.run(Self.layer("swish_double", "double(double)", [("derivative", .string("swish_double_grad"))]), x)
        try Self.expectMatches(exact.y, x, "swish_double", relative: 1e-6, Self.swish)
        try Self.expectMatches(exact.dx, x, "swish_double_grad", relative: 1e-6, grad: true, Self.swishGrad)
        // Central differences in double: step cbrt(2^-52) ~ 6e-6, error far below float rounding.
        let fd = try Self.run(Self.layer("swish_double", " double ( double x ) "), x)
        try Self.expectMatches(fd.dx, x, "swish_double by central differences", relative: 1e-6, grad: true, Self.swishGrad)
    }

    @Test func signaturesAreParsedRobustly() throws {
        let x = try Self.inputs()
        let reference = try Self.layer("swish").forward([x])
        for s in ["float(float)", "  float ( float )  ", "float (float x)", "float swish(float x);", "float(const float)"] {
            #expect(try Self.layer("swish", s).forward([x]) == reference, "\(s)")
        }
        for s in ["void(const float *, float *, int64_t)", "void (float const* in, float* out, long n)",
                  "void swish_vec(const float*,float*,long long)", "void(const float *restrict_in, float * const out, ptrdiff_t)"] {
            #expect(closeness(try Self.layer("swish_vec", s).forward([x]).data, reference.data, relative: 1e-6).ok, "\(s)")
        }
    }

    // MARK: - Function pointers and Swift closures

    @Test func registeredFunctionByName() throws {
        let handle = try #require(dlopen(try Self.library(), RTLD_NOW | RTLD_LOCAL))
        defer { dlclose(handle) }
        guard let swishSymbol = dlsym(handle, "swish"), let gradSymbol = dlsym(handle, "swish_grad") else {
            Issue.record("dlsym failed on the example library")
            return
        }
        let runtime = try isolatedRuntime()
        try runtime.registerFunction("swish", signature: "float(float)", function: UnsafeRawPointer(swishSymbol),
                                     derivative: UnsafeRawPointer(gradSymbol))
        #expect(runtime.registeredFunctions == ["swish"])
        let x = try Self.inputs()
        let layer = try Layer("user_activation", [("function", .string("swish"))], runtime: runtime)
        let (y, dx) = try Self.run(layer, x)
        try Self.expectMatches(y, x, "swish by name", Self.swish)
        try Self.expectMatches(dx, x, "swish_grad by name", grad: true, Self.swishGrad)

        // The same from model text: the file names the function, never its address.
        let text = """
            model: named
            layers:
              - {name: act, type: user_activation, function: swish}
            """
        let model = try Zoo.model(text: text, runtime: runtime)
        try Self.expectMatches(model.forward(x), x, "swish from a model file", Self.swish)

        // A signature given with `function` must be the registered one.
        let mismatch = try #require(throws: PlyError.self) {
            try Layer("user_activation", [("function", .string("swish")), ("signature", .string("double(double)"))],
                      runtime: runtime)
        }
        #expect(mismatch.description.contains("differs") && mismatch.description.contains("float(float)"), "\(mismatch)")
        // Registrations are never replaced, and unknown names are reported with the known ones.
        #expect(throws: PlyError.self) {
            try runtime.registerFunction("swish", signature: "float(float)", function: UnsafeRawPointer(gradSymbol))
        }
        guard case let .layer(_, _, status, message)? = (try? #require(throws: PlyError.self) {
            try Layer("user_activation", [("function", .string("nope"))], runtime: runtime)
        }) else { Issue.record("expected a layer error"); return }
        #expect(status == Int32(PLY_ERR_NOT_FOUND.rawValue))
        #expect(message.contains("'nope'") && message.contains("registered: swish"), "\(message)")
    }

    /// Pointer-valued attributes, from Swift or from model text, are refused by name.
    @Test func pointersFromAttributesAreRefused() throws {
        for name in ["address", "derivative_address", "owner", "owner_retain", "owner_release"] {
            let m = Self.createError([(name, .int(0x1234)), ("signature", .string("float(float)"))])
            // Refused by the plugin (saying to register the function), or, where the host checks
            // user_activation's attribute schema first, as an attribute it does not take.
            #expect(m.contains("'\(name)'") && (m.contains("is refused") && m.contains("function: NAME")
                || m.contains("unknown attribute")), "\(name): \(m)")
        }
        let text = """
            model: evil
            layers:
              - {name: act, type: user_activation, address: 4198400, signature: "float(float)"}
            """
        let error = try #require(throws: ModelFileError.self) { try Zoo.model(text: text, runtime: sharedRuntime) }
        #expect(error.description.contains("'address'") && (error.description.contains("is refused")
            || error.description.contains("unknown attribute")), "\(error)")
        #expect(error.kind == .badAttribute)
        #expect(error.pluginStatus == nil || error.pluginStatus == Int32(PLY_ERR_INVALID_ARGUMENT.rawValue))
    }

    /// `allowUserLibraries = false` (`--no-user-libraries`) refuses `library:` at create with
    /// PLY_ERR_UNSUPPORTED; registered functions still work.
    @Test func userLibrariesCanBeSwitchedOff() throws {
        var options = Runtime.Options()
        options.useEnvironment = false
        options.threads = 2
        options.log = { _, _ in }
        options.allowUserLibraries = false
        let runtime = try Runtime(options: options)
        let error = try #require(throws: PlyError.self) {
            try Layer("user_activation", [("library", .string(try Self.library())), ("symbol", .string("swish")),
                                          ("signature", .string("float(float)"))], runtime: runtime)
        }
        guard case let .layer(_, _, status, message) = error else { Issue.record("\(error)"); return }
        #expect(status == Int32(PLY_ERR_UNSUPPORTED.rawValue))
        #expect(message.contains("switched off") && message.contains("--no-user-libraries"), "\(message)")
        let act = try UserActivation({ $0 * 2 })
        let y = try Layer("user_activation", try act.register(as: "double_it", in: runtime), runtime: runtime)
            .forward([try Tensor(shape: [2], data: [1, -3])])
        #expect(y.data == [2, -6])
    }

    @Test func swiftClosures() throws {
        let runtime = try isolatedRuntime()
        let x = try Self.inputs([4, 8, 16, 16])
        // A capturing closure with its derivative.
        let beta: Float = 1.7
        let calls = CallCounter()
        let act = try UserActivation({ x in calls.add(); return x / (1 + exp(-beta * x)) }, derivative: { x in
            let s = 1 / (1 + exp(-beta * x))
            return s + beta * x * s * (1 - s)
        })
        #expect(act(2) == 2 / (1 + exp(-beta * 2)))
        let model = Model(runtime: runtime)
        let attributes = try act.register(as: "swish_beta", in: runtime)
        #expect(attributes.count == 1 && attributes[0].0 == "function" && attributes[0].1 == .string("swish_beta"))
        try model.add("act", "user_activation", attributes)
        let y = try model.forward(x)
        #expect(calls.count >= x.shape.count)
        let b = Double(beta)
        try Self.expectMatches(y, x, "swish(beta) closure", relative: 2e-6) { $0 * Self.sigmoid(b * $0) }
        let layer = try #require(model.nodes[1].layer)
        let dx = try #require(try layer.backward(inputs: [x], output: y, gradOutput: Self.gradOut(x.shape))[0])
        let grad: (Double) -> Double = { let s = Self.sigmoid(b * $0); return s + b * $0 * s * (1 - s) }
        try Self.expectMatches(dx, x, "derivative closure", relative: 2e-6, grad: true, grad)

        // Without a derivative: central differences through the closure.
        let plain = try UserActivation({ x in x / (1 + exp(-x)) })
        let (_, fdx) = try Self.run(Layer("user_activation", plain.register(as: "swish_plain", in: runtime),
                                          runtime: runtime), x)
        try Self.expectMatches(fdx, x, "closure by central differences", relative: 1e-4, grad: true, Self.swishGrad)
    }

    @Test func theRuntimeKeepsItsClosuresAlive() throws {
        weak var weakActivation: UserActivation?
        weak var weakRuntime: Runtime?
        var layer: Layer?
        do {
            let runtime = try isolatedRuntime()
            weakRuntime = runtime
            let offset: Float = 0.25
            let act = try UserActivation({ $0 + offset })
            weakActivation = act
            layer = try Layer("user_activation", act.register(as: "shift", in: runtime), runtime: runtime)
        }
        #expect(weakActivation != nil, "the runtime's registry must hold the activation")
        let y = try #require(layer).forward([try Tensor(shape: [3], data: [1, 2, 3])])
        #expect(y.data == [1.25, 2.25, 3.25])
        layer = nil
        #expect(weakRuntime == nil, "the last layer gone, the runtime goes")
        #expect(weakActivation == nil, "the runtime gone, the activation is released")
    }

    // MARK: - Errors, all at create

    @Test func errorsAreReportedAtCreate() throws {
        let lib = try Self.library()
        func attrs(_ symbol: String, _ signature: String, _ extra: Attributes = []) -> Attributes {
            [("library", .string(lib)), ("symbol", .string(symbol)), ("signature", .string(signature))] + extra
        }
        var m = Self.createError([("library", .string("/no/such/dir/libnope.so")), ("symbol", .string("swish")),
                                  ("signature", .string("float(float)"))])
        #expect(m.contains("/no/such/dir/libnope.so") && m.contains("not found"), "\(m)")
        m = Self.createError([("library", .string("./libnope.so")), ("symbol", .string("swish")),
                              ("signature", .string("float(float)"))])
        #expect(m.contains("./libnope.so") && m.contains("current directory"), "\(m)")

        m = Self.createError(attrs("no_such_function", "float(float)"))
        #expect(m.contains("'no_such_function' not found") && m.contains(lib), "\(m)")
        m = Self.createError(attrs("swish", "float(float)", [("derivative", .string("no_such_grad"))]))
        #expect(m.contains("'no_such_grad' not found") && m.contains(lib), "\(m)")

        for bad in ["int(int)", "float(double)", "float *(float)", "void(const float *, float *, int)", "half(half)"] {
            m = Self.createError(attrs("swish", bad))
            #expect(m.contains("'signature'") && m.contains(bad) && m.contains("not supported")
                || m.contains("must be") && m.contains("supported signatures"), "\(bad): \(m)")
        }
        m = Self.createError(attrs("swish", "void(const float *, float *, int)"))
        #expect(m.contains("64-bit"), "\(m)")
        for bad in ["float(float", "float()", "float(void)", "float(float) extra", "(float)", "float float(float)x"] {
            m = Self.createError(attrs("swish", bad))
            #expect(m.contains("'signature'") && m.contains("supported signatures"), "\(bad): \(m)")
        }
        m = Self.createError([("library", .string(lib)), ("symbol", .string("swish"))])
        #expect(m.contains("missing attribute 'signature'"), "\(m)")

        // Arity: params must match the signature's extra parameters.
        m = Self.createError(attrs("prelu_like", "float(float, float)"))
        #expect(m.contains("missing attribute 'params'") && m.contains("takes 1 extra parameter"), "\(m)")
        m = Self.createError(attrs("prelu_like", "float(float, float)", [("params", .floats([0.1, 0.2]))]))
        #expect(m.contains("'params' has 2 values") && m.contains("takes 1 extra parameter"), "\(m)")
        m = Self.createError(attrs("swish", "float(float)", [("params", .floats([0.5]))]))
        #expect(m.contains("'params' has 1 value,") && m.contains("takes 0 extra parameters"), "\(m)")
        m = Self.createError(attrs("swish_vec", "void(const float*, float*, int64_t)", [("params", .floats([0.5]))]))
        #expect(m.contains("takes none"), "\(m)")
        m = Self.createError(attrs("swish", "float(float)", [("params", .string("0.5"))]))
        #expect(m.contains("'params'"), "\(m)")

        // Where the function comes from.
        m = Self.createError([("signature", .string("float(float)"))])
        #expect(m.contains("'library'") && m.contains("'function'"), "\(m)")
        m = Self.createError([("library", .string(lib)), ("signature", .string("float(float)"))])
        #expect(m.contains("missing attribute 'symbol'"), "\(m)")
        m = Self.createError(attrs("swish", "float(float)", [("function", .string("swish"))]))
        #expect(m.contains("not both"), "\(m)")
        m = Self.createError(attrs("swish", "float(float)", [("signatrue", .string("float(float)"))]))
        #expect(m.contains("unknown attribute 'signatrue'"), "\(m)")
        m = Self.createError(attrs("swish", "float(float)", [("fd_step", .float(0))]))
        #expect(m.contains("'fd_step'"), "\(m)")

        // The runtime is unharmed and a correct layer still works.
        try expectHostSurvives(sharedRuntime)
        _ = try Self.layer("swish").forward([try Self.inputs()])
    }

    // MARK: - Training through a user activation

    @Test func trainingThroughSwishLearns() throws {
        let model = Model(runtime: sharedRuntime)
        try model.add("conv", "conv2d", [("in_channels", .int(1)), ("out_channels", .int(4)),
                                         ("kernel_size", .int(3)), ("padding", .int(1))])
        try model.add("act", "user_activation", [("library", .string(Self.library())), ("symbol", .string("swish")),
                                                 ("signature", .string("float(float)"))])
        try model.add("flatten", "flatten")
        try model.add("fc", "linear", [("in_features", .int(4 * 6 * 6)), ("out_features", .int(2))])

        // Eight 6x6 images: class 0 is bright on the left half, class 1 on the right, plus noise.
        var g = SplitMix64(seed: 3)
        let n = 8
        var images: [Float] = []
        let labels = (0..<n).map { $0 % 2 }
        for label in labels {
            for _ in 0..<6 {
                for col in 0..<6 {
                    let bright = (col < 3) == (label == 0)
                    images.append((bright ? 1 : 0) + 0.2 * (g.nextUnitFloat() - 0.5))
                }
            }
        }
        let x = try Tensor(shape: [n, 1, 6, 6], data: images)
        let sgd = try SGD(learningRate: 0.1)
        var losses: [Float] = []
        for _ in 0..<30 { losses.append(try TrainingTests.trainStep(model, x, labels, sgd)) }
        print("user_activation(swish) training losses: \(losses.first!) -> \(losses.last!)")
        #expect(losses.allSatisfy { $0.isFinite })
        #expect(losses.last! < 0.3 * losses.first!, "loss did not fall clearly: \(losses)")
    }
}

/// Counts calls from several threads.
final class CallCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func add() { lock.withLock { value += 1 } }
    var count: Int { lock.withLock { value } }
}
