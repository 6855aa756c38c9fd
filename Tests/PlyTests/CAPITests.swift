import Foundation
import Testing
@testable import Ply

/// The C API (Include/ply/ply.h, libPlyC) as a C program uses it: the examples and a test
/// program are compiled with plain `cc` against the build tree and run as child processes.
@Suite struct CAPITests {
    /// The build directory: where the test bundle, libPlyC.so and the plugins are.
    static let buildDirectory: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent
    }()
    static let examples = CCompiler.repositoryRoot.appendingPathComponent("Examples/c")
    static let dataDirectory = fixtures.appendingPathComponent("fashion-mnist-small").path

    /// Compiles a C program against the build tree's libPlyC.so, as Examples/c/README.md says.
    static func compileProgram(_ source: URL, into directory: URL) throws -> String {
        let library = (buildDirectory as NSString).appendingPathComponent("libPlyC.so")
        guard FileManager.default.fileExists(atPath: library) else {
            throw PlyError.invalid("\(library) is missing: build it with `swift build` before `swift test --skip-build`")
        }
        let output = directory.appendingPathComponent(source.deletingPathExtension().lastPathComponent).path
        let args = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-I", CCompiler.includeDirectory.path,
                    source.path, "-o", output, "-L", buildDirectory, "-lPlyC", "-lm", "-Wl,-rpath,\(buildDirectory)"]
        let result = try CCompiler.run("cc", args)
        guard result.status == 0 else {
            throw PlyError.invalid("cc \(args.joined(separator: " ")) failed:\n\(result.stderr)")
        }
        return output
    }

    /// Runs a program with extra environment variables (PLY_PLUGIN_PATH cleared).
    static func run(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CCompiler.Output {
        let env = ["PLY_PLUGIN_PATH="] + environment.map { "\($0.key)=\($0.value)" }
        return try CCompiler.run("env", env + [program] + arguments)
    }

    /// A ConvNet with PyTorch-default weights (varied predictions), saved to `path`.
    /// Deterministic weights (the golden hash init), so the check does not depend on what
    /// other tests drew from the shared runtime's generator.
    static func saveDefaultConvNet(to path: String) throws {
        let model = try Zoo.convNet(runtime: sharedRuntime)
        try hashInitialize(model)
        try model.saveWeights(to: path)
    }

    static func argmax(_ row: ArraySlice<Float>) -> Int {
        var best = row.startIndex
        for k in row.indices where row[k] > row[best] { best = k }
        return best - row.startIndex
    }

    @Test(arguments: [
        ["-x", "c", "-std=c99"], ["-x", "c", "-std=c11"], ["-x", "c++", "-std=c++11"], ["-x", "c++", "-std=c++17"],
    ])
    func headerCompilesAlone(_ language: [String]) throws {
        let dir = try CCompiler.temporaryDirectory("capi-header")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("only_header.c")
        try "#include <ply/ply.h>\nint ply_capi_header_test_symbol;\n".write(to: source, atomically: true, encoding: .utf8)
        let compiler = language.contains("c++") ? "c++" : "cc"
        let result = try CCompiler.run(compiler, language + ["-Wall", "-Wextra", "-pedantic", "-Werror", "-fsyntax-only",
                                                             "-I", CCompiler.includeDirectory.path, source.path])
        #expect(result.status == 0, "\(compiler) \(language): \(result.stderr)")
    }

    /// train_convnet.c trains one epoch and prints the tutorial's lines; its test accuracy is
    /// the Swift Trainer's for the same settings (same shuffle, init and arithmetic).
    @Test func trainConvNetExampleMatchesTheSwiftTrainer() throws {
        let dir = try CCompiler.temporaryDirectory("capi-train")
        defer { try? FileManager.default.removeItem(at: dir) }
        let program = try Self.compileProgram(Self.examples.appendingPathComponent("train_convnet.c"), into: dir)
        let weights = dir.appendingPathComponent("convnet.safetensors").path
        let out = try Self.run(program, [Self.dataDirectory], environment: ["PLY_WEIGHTS_OUT": weights])
        #expect(out.status == 0, "train_convnet failed: \(out.stderr)")
        let lines = out.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("ConvNet: 9098 parameters"), "\(out.stdout)")
        #expect(lines.contains { $0.hasPrefix("Epoch: 001/001 | Batch 000/005 | Cost: ") }, "\(out.stdout)")
        #expect(lines.contains { $0.hasPrefix("Epoch: 001/001 training accuracy: ") }, "\(out.stdout)")
        let accuracyLine = try #require(lines.first { $0.hasPrefix("Test accuracy: ") && $0.hasSuffix("%") }, "\(out.stdout)")
        let accuracy = try #require(Double(accuracyLine.dropFirst("Test accuracy: ".count).dropLast()))
        #expect(accuracy >= 0 && accuracy <= 100)
        #expect(FileManager.default.fileExists(atPath: weights))

        // The same run through the Swift API.
        let train = try ImageDataset.mnist(directory: Self.dataDirectory, split: .train)
        let test = try ImageDataset.mnist(directory: Self.dataDirectory, split: .test)
        let model = try Zoo.convNet(runtime: sharedRuntime)
        var config = TrainingConfiguration()
        config.epochs = 1
        let summary = try Trainer(model: model, configuration: config).run(train: train, test: test)
        #expect(accuracyLine == String(format: "Test accuracy: %.2f%%", summary.testAccuracy ?? -1))
    }

    /// classify.c prints one class per image, equal to the Swift API's argmax for the same
    /// weights and images.
    @Test func classifyExampleMatchesSwiftPredictions() throws {
        let dir = try CCompiler.temporaryDirectory("capi-classify")
        defer { try? FileManager.default.removeItem(at: dir) }
        let program = try Self.compileProgram(Self.examples.appendingPathComponent("classify.c"), into: dir)
        let weights = dir.appendingPathComponent("w.safetensors").path
        try Self.saveDefaultConvNet(to: weights)
        let images = (Self.dataDirectory as NSString).appendingPathComponent("t10k-images-idx3-ubyte.gz")
        let n = 25
        let out = try Self.run(program, ["convnet", weights, images, String(n)])
        #expect(out.status == 0, "classify failed: \(out.stderr)")
        let classes = out.stdout.split(separator: "\n").map { $0.split(separator: " ").compactMap { Int($0) } }
        #expect(classes.count == n, "\(out.stdout)")
        #expect(classes.enumerated().allSatisfy { $1.count == 2 && $1[0] == $0 && (0..<10).contains($1[1]) }, "\(out.stdout)")

        let model = try Zoo.convNet(runtime: sharedRuntime)
        try model.loadWeights(from: weights)
        model.isTraining = false
        let test = try ImageDataset.mnist(directory: Self.dataDirectory, split: .test).prefix(n)
        let logits = try model.forward(Tensor(shape: [n, 1, 28, 28], data: test.images))
        let expected = (0..<n).map { Self.argmax(logits.data[$0 * 10..<$0 * 10 + 10]) }
        #expect(classes.map { $0.last ?? -1 } == expected)
        #expect(Set(expected).count > 1, "the check needs weights that predict more than one class")

        let missing = try Self.run(program, ["convnet", "/nonexistent/w.safetensors", images, "3"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("/nonexistent/w.safetensors"), "\(missing.stderr)")
    }

    /// Fixtures/capi/capi_inspect.c: ply_inspect_* write the pictures the Swift API draws
    /// (decoded back with libpng), the receptive field is the summary's, and each error has its
    /// own code. Examples/c/inspect.c on the tutorial ConvNet prints conv_2's (3, 4) field.
    @Test func inspectFunctions() throws {
        let dir = try CCompiler.temporaryDirectory("capi-inspect")
        defer { try? FileManager.default.removeItem(at: dir) }
        let program = try Self.compileProgram(fixtures.appendingPathComponent("capi/capi_inspect.c"), into: dir)
        let model = try InspectTests.tiny()
        let weights = dir.appendingPathComponent("tiny.safetensors").path
        try hashInitialize(model)
        try model.saveWeights(to: weights)
        let jpeg = fixtures.appendingPathComponent("images/china-crop-28.jpg").path
        let out = try Self.run(program, [weights, dir.path, jpeg])
        let failed = out.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        // ply_image_read's gray pixels are PNGImage's, which are Pillow's (InspectTests).
        let grayBytes = try Data(contentsOf: dir.appendingPathComponent("jpeg-gray.f32"))
        let gray = grayBytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(gray == (try PNGImage(contentsOf: jpeg, channels: 1).planes))
        #expect(out.status == 0 && failed.isEmpty, "capi_inspect: \(failed.joined(separator: "\n"))\n\(out.stderr)")
        #expect(out.stdout.contains("0 failures"), "\(out.stdout)\n\(out.stderr)")
        let inspector = try ModelInspector(model: model, channels: 1, height: 8, width: 8)
        let image = (0..<64).map(Float.init)
        #expect(try PNGImage(contentsOf: dir.appendingPathComponent("filters.png").path) == inspector.filters(scale: 1).picture)
        #expect(try PNGImage(contentsOf: dir.appendingPathComponent("features.png").path)
                == inspector.featureMaps(layer: "pool", image: image, scale: 2))
        #expect(try PNGImage(contentsOf: dir.appendingPathComponent("rf.png").path)
                == inspector.receptiveFieldPicture(layer: "conv2", y: 1, x: 0, image: image, scale: 1).picture)

        let example = try Self.compileProgram(Self.examples.appendingPathComponent("inspect.c"), into: dir)
        let convnet = dir.appendingPathComponent("convnet.safetensors").path
        try Self.saveDefaultConvNet(to: convnet)
        let images = (Self.dataDirectory as NSString).appendingPathComponent("t10k-images-idx3-ubyte.gz")
        let run = try Self.run(example, ["convnet", convnet, images, "0", "conv_2", "3", "4", dir.path])
        #expect(run.status == 0 && run.stdout == "receptive field: rows 3..10, columns 5..12\n", "\(run.stdout)\(run.stderr)")
        let rf = try PNGImage(contentsOf: dir.appendingPathComponent("receptive-field.png").path)
        #expect(rf.channels == 3 && rf.width % 28 == 0 && rf.width == rf.height)
    }

    /// Fixtures/capi/capi_errors.c: each kind of error reaches C with its own code (PLY_ERR_IO
    /// for a missing model file or plugin, PLY_ERR_ABI, a plugin's own status from create,
    /// infer_shape and forward), registered functions by name, and a directory scan that
    /// skips a bad library.
    @Test func resultCodesKeepTheirKind() throws {
        let dir = try CCompiler.temporaryDirectory("capi-result-codes")
        defer { try? FileManager.default.removeItem(at: dir) }
        let program = try Self.compileProgram(fixtures.appendingPathComponent("capi/capi_errors.c"), into: dir)
        let scan = dir.appendingPathComponent("scan")
        try FileManager.default.createDirectory(at: scan, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: scan.appendingPathComponent("dir.yaml"), withIntermediateDirectories: true)
        let failing = try CCompiler.compileBadPlugin("fail_status", into: scan)
        let abi2 = try CCompiler.compileBadPlugin("abi_major2", into: scan)
        let out = try Self.run(program, [failing, abi2, scan.path])
        let failed = out.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        #expect(out.status == 0 && failed.isEmpty, "capi_errors: \(failed.joined(separator: "\n"))\n\(out.stderr)")
        #expect(out.stdout.contains("0 failures"), "\(out.stdout)\n\(out.stderr)")
        // The skipped library is named in the warning, with the reason.
        #expect(out.stderr.contains(abi2) && out.stderr.contains("skipping"), "\(out.stderr)")
    }

    /// Fixtures/capi/capi_test.c: NULL handles, bad paths, wrong shapes and options each give
    /// a non-zero status and a message; forward on the caller's buffers equals Model.forward.
    @Test func errorPathsAndForwardOnCallerBuffers() throws {
        let dir = try CCompiler.temporaryDirectory("capi-errors")
        defer { try? FileManager.default.removeItem(at: dir) }
        let program = try Self.compileProgram(fixtures.appendingPathComponent("capi/capi_test.c"), into: dir)
        let weights = dir.appendingPathComponent("w.safetensors").path
        try Self.saveDefaultConvNet(to: weights)
        let out = try Self.run(program, [weights, Self.dataDirectory])
        let failed = out.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        #expect(out.status == 0 && failed.isEmpty, "capi_test: \(failed.joined(separator: "\n"))\n\(out.stderr)")
        #expect(out.stdout.contains("0 failures"), "\(out.stdout)\n\(out.stderr)")

        var cValues: [Float] = []
        for line in out.stdout.split(separator: "\n") where line.hasPrefix("forward ") {
            let parts = line.split(separator: " ")
            if parts.count == 3, let v = Float(parts[2]) { cValues.append(v) }
        }
        let model = try Zoo.convNet(runtime: sharedRuntime)
        try model.loadWeights(from: weights)
        model.isTraining = false
        var input = [Float](repeating: 0, count: 2 * 28 * 28)
        for i in input.indices { input[i] = Float((i * 37) % 101) / 100 }
        let swift = try model.forward(Tensor(shape: [2, 1, 28, 28], data: input))
        #expect(cValues.count == 20)
        let (ok, error, bound) = closeness(cValues, swift.data)
        #expect(ok, "C forward differs from Model.forward by \(error) (bound \(bound))")
    }
}
