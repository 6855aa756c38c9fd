import Foundation
import Testing
@testable import Ply

/// `.npy` reading and writing against files NumPy wrote (Fixtures/npy, see its README),
/// and every kind of malformed file refused with a message naming the file.
@Suite struct NumPyTests {
    static let dir = fixtures.appendingPathComponent("npy")
    static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// A .npy file from a header dictionary and raw data bytes (no padding unless given).
    static func npy(_ header: String, version: (UInt8, UInt8) = (1, 0), data: [UInt8] = []) -> [UInt8] {
        let h = Array(header.utf8)
        let length: [UInt8] = version.0 == 1 ? [UInt8(h.count & 0xFF), UInt8(h.count >> 8)]
            : [UInt8(h.count & 0xFF), UInt8((h.count >> 8) & 0xFF), UInt8((h.count >> 16) & 0xFF), UInt8(h.count >> 24)]
        return NumPy.magic + [version.0, version.1] + length + h + data
    }

    static func f32Bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v -> [UInt8] in let b = v.bitPattern; return [UInt8(b & 0xFF), UInt8((b >> 8) & 0xFF), UInt8((b >> 16) & 0xFF), UInt8(b >> 24)] }
    }

    /// The message of the error `body` throws (fails the test when it does not throw a NumPyError).
    static func error(_ body: () throws -> Any) -> String {
        do {
            _ = try body()
            Issue.record("expected a NumPyError")
            return ""
        } catch let e as NumPyError {
            return e.description
        } catch {
            Issue.record("expected a NumPyError, got \(error)")
            return ""
        }
    }

    @Test func readsFloat32InEveryFormatVersion() throws {
        let expected: [Float] = [-1, -0.5, 0, 0.5, 1, 1.5]
        for name in ["f32_2x3.npy", "f32_2x3_v2.npy", "f32_2x3_v3.npy"] {
            let (shape, values) = try NumPy.read(path: Self.path(name))
            #expect(shape == [2, 3], "\(name)")
            #expect(values == expected, "\(name)")
        }
        let (shape, values) = try NumPy.read(path: Self.path("f32_nchw_1x1x2x2.npy"))
        #expect(shape == [1, 1, 2, 2] && values == [1, 2, 3, 4])
    }

    @Test func convertsFloat64AndUInt8() throws {
        let f64 = try NumPy.read(path: Self.path("f64_2x3.npy"))
        #expect(f64.shape == [2, 3])
        #expect(f64.values == [Float(0.1), -2.5, 3, Float(1e-3), Float(1e10), -0.0])
        #expect(f64.values[5].sign == .minus)
        let u8 = try NumPy.read(path: Self.path("u8_2x2.npy"))
        #expect(u8.shape == [2, 2])
        #expect(u8.values == [0, 1, Float(128) / 255, Float(1) / 255], "uint8 is scaled by 1/255 like the IDX loader")
    }

    @Test func scalarsAndEmptyArrays() throws {
        let s = try NumPy.read(path: Self.path("f32_scalar.npy"))
        #expect(s.shape == [] && s.values == [7.5])
        let e = try NumPy.read(path: Self.path("f32_empty_0x3.npy"))
        #expect(e.shape == [0, 3] && e.values.isEmpty)
    }

    /// Our writer produces exactly the bytes of `np.save` for float32 C-order arrays.
    @Test func writesWhatNumPyWrites() throws {
        for (name, shape, values) in [("f32_2x3.npy", [2, 3], [Float(-1), -0.5, 0, 0.5, 1, 1.5]),
                                      ("f32_nchw_1x1x2x2.npy", [1, 1, 2, 2], [1, 2, 3, 4]),
                                      ("f32_scalar.npy", [], [7.5]), ("f32_empty_0x3.npy", [0, 3], [])] {
            let numpy = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent(name)))
            #expect(try NumPy.encode(shape: shape, values: values) == numpy, "\(name)")
        }
    }

    @Test func roundTripIsExact() throws {
        let dir = try CCompiler.temporaryDirectory("npy")
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(seed: 7)
        for shape in [[5], [2, 10], [3, 1, 28, 28], [1, 3, 7, 5], [4, 0, 2]] {
            var values = (0..<shape.reduce(1, *)).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
            values = values.map { $0.isNaN ? 1 : $0 }  // NaN != NaN; the bits round-trip anyway
            let path = dir.appendingPathComponent("x.npy").path
            try NumPy.write(path: path, shape: shape, values: values)
            let back = try NumPy.read(path: path)
            #expect(back.shape == shape)
            #expect(back.values.map(\.bitPattern) == values.map(\.bitPattern))
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
            #expect((size - values.count * 4) % 64 == 0, "data starts on a 64-byte boundary, as NumPy writes")
        }
        // A header too long for format 1.0 is written as 2.0.
        let long = Array(repeating: 1, count: 25_000) + [0]
        let bytes = try NumPy.encode(shape: long, values: [])
        #expect(bytes[6] == 2 && bytes[7] == 0)
        #expect(try NumPy.parse(bytes: bytes).shape == long)
        #expect(Self.error { try NumPy.encode(shape: [2, 2], values: [1]) }.contains("needs 4 values, got 1"))
    }

    /// What NumPy writes but a model cannot take, refused with the file and the reason.
    @Test(arguments: [
        ("bad_fortran.npy", "Fortran-order arrays are not supported"),
        ("bad_bigendian.npy", "big-endian data ('>f4') is not supported"),
        ("bad_object.npy", "object arrays ('|O') are not supported"),
        ("bad_int64.npy", "dtype '<i8' is not supported"),
        ("bad_structured.npy", "structured arrays"),
    ])
    func refusesWhatItCannotRead(_ name: String, _ reason: String) {
        let message = Self.error { try NumPy.read(path: Self.path(name)) }
        #expect(message.hasPrefix(Self.path(name) + ": "), "\(message)")
        #expect(message.contains(reason), "\(message)")
    }

    static let good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n"

    /// Hand-made malformed files: each is a clear error, never a crash or a huge allocation.
    @Test(arguments: [
        ([], "shorter than the 10-byte preamble"),
        (Array("NUMPY hello".utf8), "magic string"),
        (npy(good, version: (4, 0)), "unsupported .npy format version 4.0"),
        (npy(good, version: (1, 1)), "unsupported .npy format version 1.1"),
        (Array(npy(good, version: (2, 0)).prefix(11)), "preamble is truncated"),
        (NumPy.magic + [1, 0, 0xFF, 0xFF] + Array("{}".utf8), "runs past the end"),
        (NumPy.magic + [2, 0, 0xFF, 0xFF, 0xFF, 0x7F], "exceeds the limit"),
        (npy("[1, 2]"), "malformed header"),
        (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)"), "malformed header"),
        (npy("{'descr': '<f4, 'fortran_order': False}"), "malformed header"),
        (npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}"), "duplicate key 'descr'"),
        (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk"), "unexpected text"),
        (npy("{'descr': '<f4', 'fortran_order': False, 'shape': " + String(repeating: "(", count: 100) + "}"), "nesting"),
        (npy("{'descr': '<f4', 'shape': (2,)}"), "no 'fortran_order' key"),
        (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}"), "unexpected key 'extra'"),
        (npy("{'descr': 4, 'fortran_order': False, 'shape': (2,)}"), "'descr' must be a string"),
        (npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}"), "'fortran_order' must be True or False"),
        (npy("{'descr': '<f4', 'fortran_order': False, 'shape': [2]}"), "'shape' must be a tuple"),
        (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 'a')}"), "dimension 1 is not an integer"),
        (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}"), "dimension 1 is negative"),
        (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}"), "out of range"),
        (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"), "needs more data than"),
        (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000,)}"), "needs more data than"),
        (npy(good, data: f32Bytes([1])), "needs 8 bytes of data, the file has 4 (truncated)"),
        (npy(good, data: f32Bytes([1, 2, 3])), "needs 8 bytes of data, the file has 12 (trailing bytes)"),
        (npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2,)}", data: [0, 0, 0, 0]), "dtype '<f2' is not supported"),
        (npy("{'descr': '>f8', 'fortran_order': False, 'shape': (2,)}"), "big-endian"),
        (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", version: (3, 0)) + [0xFF], "needs 8 bytes"),
        (NumPy.magic + [3, 0, 2, 0, 0, 0, 0xC3, 0x28], "not valid UTF-8"),
    ] as [([UInt8], String)])
    func refusesMalformedFiles(_ bytes: [UInt8], _ reason: String) {
        let message = Self.error { try NumPy.parse(bytes: bytes, path: "bad.npy") }
        #expect(message.hasPrefix("bad.npy: "), "\(message)")
        #expect(message.contains(reason), "expected '\(reason)' in: \(message)")
    }

    @Test func missingFileIsNamed() {
        let message = Self.error { try NumPy.read(path: "/nonexistent/x.npy") }
        #expect(message == "/nonexistent/x.npy: no such file")
    }

    /// Format 3.0 (UTF-8 header) reads; a parenthesised integer is not a tuple; double quotes work.
    @Test func headerDetails() throws {
        let v3 = Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }   \n", version: (3, 0), data: Self.f32Bytes([2]))
        #expect(try NumPy.parse(bytes: v3).values == [2])
        let notTuple = Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", data: Self.f32Bytes([2]))
        #expect(Self.error { try NumPy.parse(bytes: notTuple) }.contains("'shape' must be a tuple"))
        let doubleQuoted = Self.npy("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1,)}\n", data: Self.f32Bytes([3]))
        #expect(try NumPy.parse(bytes: doubleQuoted).values == [3])
    }

    /// Random corruptions of valid files: parse either succeeds or throws a NumPyError.
    @Test func fuzzedFilesNeverCrash() throws {
        let seeds = try ["f32_2x3.npy", "f64_2x3.npy", "u8_2x2.npy", "f32_2x3_v2.npy"].map {
            try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent($0)))
        }
        var rng = SplitMix64(seed: 2024)
        var accepted = 0
        for round in 0..<3000 {
            var bytes = seeds[round % seeds.count]
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 4 {
                case 0: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.remove(at: i)
                case 2: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                default: bytes = Array(bytes.prefix(i))
                }
                if bytes.isEmpty { break }
            }
            do { _ = try NumPy.parse(bytes: bytes); accepted += 1 } catch is NumPyError {} catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        #expect(accepted < 3000)
    }
}

/// `ply predict` end to end: .npy in, logits .npy out, against the golden seed ConvNet.
@Suite struct PredictCLITests {
    static let weights = fixtures.appendingPathComponent("golden/models/seed_convnet.safetensors").path

    /// hashInput([2, 1, 28, 28]) through the seed ConvNet's weights gives the golden logits
    /// within 1e-3 · max|ref|, whole, in batches of 1, and in two batch lanes; --lanes 0 is refused.
    @Test func seedConvNetMatchesGolden() throws {
        let dir = try CCompiler.temporaryDirectory("predict")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = hashInput([2, 1, 28, 28])
        let inPath = dir.appendingPathComponent("x.npy").path
        try NumPy.write(path: inPath, shape: input.shape.dims, values: input.data)
        let json = try JSON.load(fixtures.appendingPathComponent("golden/models/seed_convnet.json"))
        let ref = try #require(json["output"]?.tensor)
        let lanes = String(min(2, ProcessInfo.processInfo.activeProcessorCount))
        for extra in [[], ["--batch-size", "1"], ["--lanes", lanes]] {
            let outPath = dir.appendingPathComponent("y\(extra.joined()).npy").path
            let run = try CLITests.run(["predict", "--model", "convnet", "--weights", Self.weights, "--input", inPath, "--output", outPath] + extra)
            #expect(run.status == 0, "\(run.stderr)")
            let (shape, logits) = try NumPy.read(path: outPath)
            #expect(shape == [2, 10])
            let bound = 1e-3 * (ref.data.map(abs).max() ?? 1)
            let worst = zip(logits, ref.data).map { abs($0 - $1) }.max() ?? .infinity
            #expect(logits.count == ref.data.count && worst <= bound, "max error \(worst) > \(bound)")
        }
        let refused = try CLITests.run(["predict", "--model", "convnet", "--weights", Self.weights, "--input", inPath,
                                        "--output", dir.appendingPathComponent("z.npy").path, "--lanes", "0"])
        #expect(refused.status != 0 && refused.stderr.contains("--lanes"), "\(refused.stderr)")
    }

    /// Without --num-classes the classes come from the output layer's weight in the file (4 here,
    /// not the default 10); --node writes an inner node's output with its own shape.
    @Test func classesFromTheWeightsAndNodeOutputs() throws {
        let dir = try CCompiler.temporaryDirectory("predict-node")
        defer { try? FileManager.default.removeItem(at: dir) }
        let net = try Zoo.model(named: "convnet", runtime: sharedRuntime, numClasses: 4, inChannels: 1, imageSize: 28)
        let weights = dir.appendingPathComponent("four.safetensors").path
        try net.saveWeights(to: weights)
        let inPath = dir.appendingPathComponent("x.npy").path
        let input = hashInput([3, 1, 28, 28])
        try NumPy.write(path: inPath, shape: input.shape.dims, values: input.data)
        let logits = dir.appendingPathComponent("logits.npy").path
        var run = try CLITests.run(["predict", "--weights", weights, "--input", inPath, "--output", logits])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try NumPy.read(path: logits).shape == [3, 4])
        let features = dir.appendingPathComponent("pool2.npy").path
        run = try CLITests.run(["predict", "--weights", weights, "--input", inPath, "--output", features, "--node", "pool_2"])
        #expect(run.status == 0, "\(run.stderr)")
        let (shape, values) = try NumPy.read(path: features)
        #expect(shape == [3, 16, 7, 7])
        #expect(values.allSatisfy { $0 >= 0 }, "pooled relu outputs are not negative")
        run = try CLITests.run(["predict", "--weights", weights, "--input", inPath, "--output", features, "--node", "pool_3"])
        #expect(run.status != 0 && run.stderr.contains("--node pool_3") && run.stderr.contains("pool_2"), "\(run.stderr)")
    }

    /// uint8 images are scaled by 1/255 and float64 rounded: the same logits as the float32 file.
    @Test func convertedInputsGiveTheSameLogits() throws {
        let dir = try CCompiler.temporaryDirectory("predict-dtypes")
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(seed: 3)
        let bytes = (0..<(3 * 28 * 28)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let header = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 1, 28, 28), }\n"
        try Data(NumPyTests.npy(header, data: bytes)).write(to: dir.appendingPathComponent("u8.npy"))
        try NumPy.write(path: dir.appendingPathComponent("f32.npy").path, shape: [3, 1, 28, 28], values: bytes.map { Float($0) / 255 })
        var outputs: [[Float]] = []
        for name in ["u8", "f32"] {
            let run = try CLITests.run(["predict", "--weights", Self.weights, "--input", dir.appendingPathComponent("\(name).npy").path,
                                        "--output", dir.appendingPathComponent("\(name)-out.npy").path])
            #expect(run.status == 0, "\(run.stderr)")
            outputs.append(try NumPy.read(path: dir.appendingPathComponent("\(name)-out.npy").path).values)
        }
        #expect(outputs[0] == outputs[1] && outputs[0].count == 30)
    }

    @Test func errorsNameTheProblem() throws {
        let dir = try CCompiler.temporaryDirectory("predict-errors")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("y.npy").path
        func predict(_ input: String, _ extra: [String] = []) throws -> CCompiler.Output {
            try CLITests.run(["predict", "--weights", Self.weights, "--input", input, "--output", out] + extra)
        }
        let fortran = NumPyTests.path("bad_fortran.npy")
        var r = try predict(fortran)
        #expect(r.status != 0 && r.stderr.contains(fortran) && r.stderr.contains("Fortran"), "\(r.stderr)")
        r = try predict(NumPyTests.path("f32_2x3.npy"))
        #expect(r.status != 0 && r.stderr.contains("(N, C, H, W)"), "\(r.stderr)")
        let three = dir.appendingPathComponent("rgb.npy").path
        try NumPy.write(path: three, shape: [1, 3, 28, 28], values: Array(repeating: 0, count: 3 * 784))
        r = try predict(three)
        #expect(r.status != 0 && r.stderr.contains("seed_convnet.safetensors"), "the 1-channel weights do not fit: \(r.stderr)")
        r = try predict(three, ["--in-channels", "1"])
        #expect(r.status != 0 && r.stderr.contains("3 channel(s), --in-channels says 1"), "\(r.stderr)")
        r = try predict("/nonexistent/in.npy")
        #expect(r.status != 0 && r.stderr.contains("/nonexistent/in.npy: no such file"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out), "no output on failure")
    }
}
