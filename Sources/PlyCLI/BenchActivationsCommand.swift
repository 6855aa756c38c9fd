import ArgumentParser
import Foundation
import Ply

/// `ply bench-activations`: what a user activation (the `user_activation` layer, libffi)
/// costs per element against the built-in `relu`, forward and backward, on the tutorial
/// ConvNet's first activation tensor (128x8x28x28). Figures in BENCHMARKS.md.
struct BenchActivationsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-activations",
        abstract: "Measure user activations (libffi scalar, vectorised, Swift closure) against relu.",
        discussion: """
            Build the example library first:
              cc -std=c99 -O2 -shared -fPIC Examples/activations/activations.c -o libactivations.so -lm
            then: ply bench-activations --library ./libactivations.so [--threads 1]
            """)

    @Option(help: "The example library (Examples/activations built with cc).") var library: String
    @Option(help: "Repetitions per measurement (the best is reported).") var repeats = 10
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(parsing: .upToNextOption, help: "Tensor shape.") var shape: [Int] = [128, 8, 28, 28]
    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        try checkOption("--repeats", repeats, in: OptionLimits.repeats)
        try checkOption("--threads", threads, in: OptionLimits.threads)
        try checkNotEmpty("--library", library)
        guard (1...8).contains(shape.count), shape.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--shape must be 1 to 8 positive sizes, got \(shape)")
        }
        do {
            try MemoryBudget.require("--shape \(shape.map(String.init).joined(separator: " ")) (3 tensors)",
                                     bytes: MemoryBudget.floatBytes(shape + [3]))
        } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        do { try measure() } catch { throw fail(error) }
    }

    /// Best wall time of `body` over `repeats` runs, after one warm-up run.
    func best(_ body: () throws -> Void) rethrows -> Double {
        try body()
        var bestTime = Double.infinity
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            bestTime = min(bestTime, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return bestTime
    }

    func measure() throws {
        let runtime = try pluginOptions.makeRuntime(threads: threads)
        let shape = Shape(shape)
        let n = shape.count
        print("threads: \(runtime.threads); tensor \(shape.dims.map(String.init).joined(separator: "x")) = \(n) elements; "
            + "best of \(repeats)")
        var g = SplitMix64(seed: 1)
        let x = (0..<n).map { _ in 8 * g.nextUnitFloat() - 4 }
        let ones = [Float](repeating: 1, count: n)
        let lib: Attributes = [("library", .string(library))]
        let vec = "void(const float *, float *, int64_t)"
        let closure = try UserActivation({ x in x / (1 + exp(-x)) }, derivative: { x in
            let s = 1 / (1 + exp(-x))
            return s + x * s * (1 - s)
        })
        let closureFD = try UserActivation({ x in x / (1 + exp(-x)) })
        let cases: [(String, String, Attributes)] = [
            ("relu (built-in)", "relu", []),
            ("swish scalar, derivative symbol", "user_activation",
             lib + [("symbol", .string("swish")), ("signature", .string("float(float)")), ("derivative", .string("swish_grad"))]),
            ("swish scalar, central differences", "user_activation",
             lib + [("symbol", .string("swish")), ("signature", .string("float(float)"))]),
            ("swish vectorised, derivative symbol", "user_activation",
             lib + [("symbol", .string("swish_vec")), ("signature", .string(vec)), ("derivative", .string("swish_vec_grad"))]),
            ("swish vectorised, central differences", "user_activation",
             lib + [("symbol", .string("swish_vec")), ("signature", .string(vec))]),
            ("swish Swift closure, derivative closure", "user_activation",
             try closure.register(as: "bench_swish_closure", in: runtime)),
            ("swish Swift closure, central differences", "user_activation",
             try closureFD.register(as: "bench_swish_closure_fd", in: runtime)),
        ]
        print("case: forward ms (ns/element); backward ms (ns/element)")
        for (label, type, attributes) in cases {
            let model = Model(runtime: runtime)
            try model.add("act", type, attributes)
            let fwd = try best { _ = try x.withUnsafeBufferPointer { try model.forward($0, shape: shape) } }
            _ = try x.withUnsafeBufferPointer { try model.forward($0, shape: shape) }
            let bwd = try best { _ = try ones.withUnsafeBufferPointer { try model.backward($0, inputGradient: true) } }
            print(String(format: "  %@: forward %.3f ms (%.2f ns/element); backward %.3f ms (%.2f ns/element)",
                         label, fwd * 1e3, fwd * 1e9 / Double(n), bwd * 1e3, bwd * 1e9 / Double(n)))
        }
    }
}
