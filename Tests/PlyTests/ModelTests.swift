import Foundation
import Testing
@testable import Ply

/// The model graph: chains, `add` and `concat` joins, gradients through fan-out.
@Suite struct ModelTests {
    /// x -> conv a -> relu ─┬─> add -> concat(add, conv b) -> flatten -> linear
    ///                      └─> (conv b) ─┘
    func makeGraph() throws -> Model {
        let m = Model(runtime: sharedRuntime)
        let a = try m.add("a", "conv2d", [("in_channels", .int(2)), ("out_channels", .int(3)), ("kernel_size", .int(3)), ("padding", .int(1))])
        let r = try m.add("r", "tanh", [], inputs: [a])
        let b = try m.add("b", "conv2d", [("in_channels", .int(3)), ("out_channels", .int(3)), ("kernel_size", .int(1))], inputs: [r])
        let s = try m.add("sum", "add", [], inputs: [r, b])
        let c = try m.add("cat", "concat", [("dim", .int(1))], inputs: [s, b])
        try m.add("flat", "flatten", [], inputs: [c])
        try m.add("fc", "linear", [("in_features", .int(6 * 4 * 4)), ("out_features", .int(3))])
        return m
    }

    @Test func shapesAndParameterNames() throws {
        let m = try makeGraph()
        let shapes = try m.shapes(for: [2, 2, 4, 4])
        #expect(shapes.last == [2, 3])
        let names = try m.namedParameters().map(\.name)
        #expect(names == ["a.weight", "a.bias", "b.weight", "b.bias", "fc.weight", "fc.bias"])
    }

    /// Input and parameter gradients agree with central differences in double-checked float32.
    @Test func gradientsMatchFiniteDifferences() throws {
        let m = try makeGraph()
        var gen = SplitMix64(seed: 7)
        let x = try Tensor(shape: [2, 2, 4, 4], data: (0..<64).map { _ in gen.nextUnitFloat() * 2 - 1 })
        let w = (0..<6).map { _ in gen.nextUnitFloat() * 2 - 1 }  // loss = sum(w * out)
        func loss() throws -> Float {
            let out = try m.forward(x)
            return zip(out.data, w).reduce(0) { $0 + $1.0 * $1.1 }
        }
        _ = try loss()
        try m.zeroGradients()
        let gx = try #require(try w.withUnsafeBufferPointer { try m.backward($0, inputGradient: true) }).map { $0 }
        // Input gradient.
        var xs = x
        for i in stride(from: 0, to: 64, by: 7) {
            let h: Float = 1e-2
            xs.data[i] = x.data[i] + h
            let up = try m.forward(xs).data
            xs.data[i] = x.data[i] - h
            let down = try m.forward(xs).data
            xs.data[i] = x.data[i]
            let fd = zip(zip(up, down), w).reduce(Float(0)) { $0 + ($1.0.0 - $1.0.1) * $1.1 } / (2 * h)
            #expect(abs(fd - gx[i]) <= 2e-3 * max(1, abs(fd)), "d/dx[\(i)]: analytic \(gx[i]) vs numeric \(fd)")
        }
        // A parameter of the conv that feeds both branches of the join.
        let (_, p) = try #require(try m.namedParameters().first { $0.name == "a.weight" })
        let analytic = Array(try #require(p.gradient))
        let values = try #require(p.floats)
        for i in [0, 5, 17, 40] {
            let h: Float = 1e-2, v = values[i]
            values[i] = v + h; let up = try loss()
            values[i] = v - h; let down = try loss()
            values[i] = v
            let fd = (up - down) / (2 * h)
            #expect(abs(fd - analytic[i]) <= 2e-3 * max(1, abs(fd)), "d/d a.weight[\(i)]: \(analytic[i]) vs \(fd)")
        }
    }

    @Test func planningErrorsNameTheNode() throws {
        let m = Model(runtime: sharedRuntime)
        try m.add("conv", "conv2d", [("in_channels", .int(3)), ("out_channels", .int(4)), ("kernel_size", .int(3))])
        #expect { try m.forward(Tensor(shape: [1, 1, 8, 8])) } throws: { error in
            "\(error)".contains("node 'conv'") && "\(error)".contains("3")
        }
        #expect(throws: PlyError.self) { try m.add("bad", "add", [], inputs: [5]) }
        #expect(throws: PlyError.self) { try m.add("conv", "relu") }
    }
}

/// The tutorial's output-size formula ⌊(n + p − k + s) / s⌋ (p = total padding, both sides)
/// against the plugins' shape inference, over a grid of (n, k, p, s).
@Suite struct ShapeFormulaTests {
    @Test(arguments: ["conv2d", "maxpool2d", "avgpool2d"])
    func formulaAgreesWithShapeInference(_ op: String) throws {
        var checked = 0
        for n in 1...12 { for k in 1...5 { for pad in 0...2 { for s in 1...4 {
            if op != "conv2d" && pad > k / 2 { continue }  // PyTorch: pool padding <= kernel / 2
            let p = 2 * pad
            let expected = (n + p - k + s) / s
            var attrs: Attributes = [("kernel_size", .int(k)), ("stride", .int(s)), ("padding", .int(pad))]
            if op == "conv2d" { attrs += [("in_channels", .int(1)), ("out_channels", .int(1))] }
            let layer = try Layer(op, attrs, runtime: sharedRuntime)
            if expected <= 0 {
                #expect(throws: PlyError.self, "\(op) n=\(n) k=\(k) p=\(pad) s=\(s)") {
                    try layer.outputShape(for: [[1, 1, n, n]])
                }
            } else {
                let shape = try layer.outputShape(for: [[1, 1, n, n]])
                #expect(shape == [1, 1, expected, expected], "\(op) n=\(n) k=\(k) p=\(pad) s=\(s)")
            }
            checked += 1
        } } } }
        #expect(checked > 300)
    }
}

/// Dropout has no PyTorch golden case (its mask is random): its properties instead.
@Suite struct DropoutTests {
    let x = try! Tensor(shape: [4, 8, 32, 32], data: (0..<32768).map { Float($0 % 97) / 10 + 0.5 })

    @Test func evalIsIdentity() throws {
        let d = try Layer("dropout", [("p", .float(0.3))], runtime: sharedRuntime)
        d.setTraining(false)
        #expect(try d.forward([x]) == x)
    }

    @Test func trainDropsAboutPAndScalesTheRest() throws {
        for p in [0.1, 0.5, 0.8] {
            let d = try Layer("dropout", [("p", .float(p))], runtime: sharedRuntime)
            let y = try d.forward([x])
            var dropped = 0
            for (a, b) in zip(x.data, y.data) {
                if b == 0 { dropped += 1 } else { #expect(abs(b - a / Float(1 - p)) <= 1e-6 * abs(b)) }
            }
            let fraction = Double(dropped) / Double(x.data.count)
            // 32768 Bernoulli draws: 5 standard deviations is under 0.014.
            #expect(abs(fraction - p) < 0.014, "p=\(p): dropped \(fraction)")
            // Backward uses the same mask and scale.
            let g = try d.backward(inputs: [x], output: y, gradOutput: Tensor(shape: x.shape, repeating: 1))
            let gx = try #require(g[0])
            for (yi, gi) in zip(y.data, gx.data) { #expect((yi == 0) == (gi == 0)) }
        }
    }

    @Test func sameSeedSameMask() throws {
        func mask(seed: UInt64) throws -> [Bool] {
            var o = Runtime.Options(); o.seed = seed
            let rt = try Runtime(options: o)
            return try Layer("dropout", [("p", .float(0.5))], runtime: rt).forward([x]).data.map { $0 == 0 }
        }
        #expect(try mask(seed: 3) == mask(seed: 3))
        #expect(try mask(seed: 3) != mask(seed: 4))
    }

    @Test func invalidProbabilityIsRefused() {
        #expect(throws: PlyError.self) { try Layer("dropout", [("p", .float(1.5))], runtime: sharedRuntime) }
    }
}
