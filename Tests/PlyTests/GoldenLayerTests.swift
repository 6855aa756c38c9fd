import CPly
import Foundation
import Testing
@testable import Ply

/// Every single-layer case PyTorch produced in Fixtures/golden/layers, through the real
/// plugins: forward output, input gradients, parameter gradients and buffers after.
/// Blocks (residual_*, inception_*) are tested with the block plugins.
@Suite struct GoldenLayerTests {
    static let cases = fixtureCases("golden/layers") { !$0.hasPrefix("residual_") && !$0.hasPrefix("inception_") }

    @Test func casesArePresent() {
        #expect(Self.cases.count >= 30)
    }

    @Test(arguments: cases)
    func golden(_ name: String) throws {
        try GoldenLayerTests.run(name, runtime: sharedRuntime)
    }

    /// The same cases through the families' shared libraries (libply_*, what `ply` and the C
    /// library load) rather than the copies linked into this test bundle: one source, two
    /// builds, the same numbers.
    @Test(arguments: cases)
    func goldenThroughSharedLibraries(_ name: String) throws {
        try GoldenLayerTests.run(name, runtime: loadedRuntime)
    }

    @Test func builtinsComeLinkedAndLoaded() throws {
        #expect(sharedRuntime.layerTypes.allSatisfy { $0.library.path.contains("linked into") },
                "\(sharedRuntime.layerTypes.map(\.library.path))")
        #expect(loadedRuntime.layerTypes.allSatisfy { $0.library.path.hasSuffix(Runtime.sharedLibrarySuffix) },
                "\(loadedRuntime.layerTypes.map(\.library.path))")
        #expect(Set(sharedRuntime.layerTypes.map(\.name)) == Set(loadedRuntime.layerTypes.map(\.name)))
    }

    /// OpenBLAS is loaded with this test bundle (the built-ins are linked in), before the runtime
    /// could set OPENBLAS_CORETYPE: the runtime re-runs its kernel choice so that the variable
    /// holds all the same (Debian's OpenBLAS 0.3.21 otherwise takes its SSE3 kernels on CPUs it
    /// does not know, such as this machine's).
    @Test func openBLASRunsTheCoreTypeTheRuntimeNamed() throws {
        _ = sharedRuntime
        guard let name = cply_blas_corename(), let wanted = getenv("OPENBLAS_CORETYPE") else { return }
        #expect(String(cString: name).lowercased() == String(cString: wanted).lowercased())
    }

    /// Runs one golden case; shared with the block tests.
    static func run(_ name: String, runtime: Runtime) throws {
        let json = try JSON.load(fixtures.appendingPathComponent("golden/layers/\(name).json"))
        let op = try #require(json["op"]?.string)
        var attrs: Attributes = []
        var inputs: [Tensor] = []
        if let single = json["input"]?.tensor { inputs = [single] } else { inputs = json["inputs"]?.array.compactMap(\.tensor) ?? [] }
        try #require(!inputs.isEmpty, "\(name): no input")
        for (key, value) in json["attrs"]?.object.sorted(by: { $0.key < $1.key }) ?? [] {
            if op == "cross_entropy" && key == "target" {
                let targets = value.array.compactMap(\.int).map(Float.init)
                inputs.append(try Tensor(shape: Shape([targets.count]), data: targets))
                continue
            }
            attrs.append((key, try #require(value.attribute, "\(name): attribute \(key)")))
        }
        let layer = try Layer(op, attrs, runtime: runtime)
        layer.setTraining(json["mode"]?.string == "train")

        // Load parameters and buffers by their PyTorch names.
        let params = try layer.parameters
        try writeGoldenParamsAndBuffers(json, to: params, name)
        for p in params { p.gradient?.update(repeating: 0) }

        let output = try layer.forward(inputs)
        let expected = try #require(json["output"]?.tensor)
        #expect(output.shape == expected.shape, "\(name): output shape \(output.shape) vs \(expected.shape)")
        let fwd = closeness(output.data, expected.data)
        #expect(fwd.ok, "\(name): output max error \(fwd.error) > \(fwd.bound)")

        // Backward.
        let gradOutput = try #require(json["grad_output"]?.tensor)
        let wanted = inputs.indices.map { !(op == "cross_entropy" && $0 == 1) }
        let grads = try layer.backward(inputs: inputs, output: output, gradOutput: gradOutput, wanted: wanted)
        var expectedGrads: [Tensor] = []
        if let g = json["grad_input"]?.tensor { expectedGrads = [g] } else { expectedGrads = json["grad_inputs"]?.array.compactMap(\.tensor) ?? [] }
        #expect(!expectedGrads.isEmpty, "\(name): no expected input gradient")
        for (i, g) in expectedGrads.enumerated() {
            let ours = try #require(grads[i], "\(name): no gradient for input \(i)")
            let c = closeness(ours.data, g.data)
            #expect(c.ok, "\(name): grad_input[\(i)] max error \(c.error) > \(c.bound)")
        }
        try expectGoldenGradsAndBuffers(json, params, name)
    }
}
