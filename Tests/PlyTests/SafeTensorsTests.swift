import Foundation
import Testing
@testable import Ply

/// A fresh empty directory under the system temporary directory.
private func scratchDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ply-safetensors-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// A safetensors file from a header text and buffer (header length as given unless overridden).
private func file(_ header: String, buffer: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    return littleEndianBytes([length ?? UInt64(h.count)]) + h + buffer
}

/// A small model with every kind of state: conv and linear weights, batch-norm buffers and
/// the integer `num_batches_tracked`.
private func batchNormModel() throws -> Model {
    let m = Model(runtime: sharedRuntime)
    try m.add("conv1", "conv2d", Zoo.conv(1, 3, kernel: 3, padding: 1, bias: false))
    try m.add("bn1", "batchnorm2d", [("num_features", .int(3))])
    try m.add("relu", "relu")
    try m.add("flatten", "flatten")
    try m.add("fc", "linear", [("in_features", .int(3 * 4 * 4)), ("out_features", .int(2))])
    return m
}

/// Every parameter's values by name (integers converted to Float).
private func snapshot(_ m: Model) throws -> [String: [Float]] {
    Dictionary(uniqueKeysWithValues: try m.namedParameters().map { ($0.name, $0.parameter.read()) })
}

@Suite struct SafeTensorsTests {
    // MARK: (a) files written by the reference library

    @Test(arguments: ["seed_convnet", "seed_lenet5"])
    func goldenModelReproducesLogits(name: String) throws {
        let dir = fixtures.appendingPathComponent("golden/models")
        let golden = try JSON.load(dir.appendingPathComponent("\(name).json"))
        let path = dir.appendingPathComponent("\(name).safetensors").path

        let file = try SafeTensors.read(path: path)
        let stateDict = golden["state_dict"]!.array.map { ($0.array[0].string!, $0.array[1].array.compactMap(\.int)) }
        #expect(Set(file.order) == Set(stateDict.map(\.0)))
        for (n, shape) in stateDict {
            #expect(file.entries[n]?.dtype == .F32)
            #expect(file.entries[n]?.shape == shape, "\(n)")
        }

        let model = name == "seed_convnet" ? try Zoo.convNet(runtime: sharedRuntime)
                                           : try Zoo.leNet5(runtime: sharedRuntime, imageSize: 32)
        let report = try model.loadWeights(from: path)
        #expect(report.loaded == stateDict.count && report.isComplete)

        // The file holds exactly the README's hash init.
        let hashed = name == "seed_convnet" ? try Zoo.convNet(runtime: sharedRuntime)
                                            : try Zoo.leNet5(runtime: sharedRuntime, imageSize: 32)
        try hashInitialize(hashed)
        #expect(try snapshot(model) == snapshot(hashed))

        model.isTraining = false
        let input = hashInput(Shape(golden["input_shape"]!.array.compactMap(\.int)))
        let out = try model.forward(input)
        let ref = try #require(golden["output"]?.tensor)
        #expect(out.shape == ref.shape)
        let scale = ref.data.map(abs).max() ?? 1
        let worst = zip(out.data, ref.data).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-3 * scale, "max|ours - ref| = \(worst), bound \(1e-3 * scale)")
    }

    // MARK: (b) round trips

    @Test func modelRoundTripWithMetadata() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bn.safetensors").path
        let a = try batchNormModel()
        try hashInitialize(a)
        let nbt = try #require(try a.namedParameters().first { $0.name == "bn1.num_batches_tracked" }?.parameter)
        #expect(nbt.isInteger && nbt.shape == [])
        let count: Int64 = (1 << 40) + 7  // beyond Float's exact range: must survive as I64
        nbt.integers![0] = count
        let metadata = ["format": "pt", "epoch": "3", "quote\"and\\slash": "line\nbreak é"]
        try a.saveWeights(to: path, metadata: metadata)

        let file = try SafeTensors.read(path: path)
        #expect(file.metadata == metadata)
        #expect(file.order == (try a.namedParameters().map(\.name)))
        #expect(file.entries["bn1.num_batches_tracked"]?.dtype == .I64)
        #expect(file.entries["bn1.num_batches_tracked"].map { try? $0.int64s() } == [count])
        #expect(file.entries["bn1.running_var"]?.dtype == .F32)
        let raw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let headerLength = raw.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        #expect((8 + headerLength) % 8 == 0)

        let b = try batchNormModel()
        let report = try b.loadWeights(from: path)
        #expect(report.loaded == 8 && report.isComplete)
        #expect(try snapshot(a) == snapshot(b))
        let nbtB = try #require(try b.namedParameters().first { $0.name == "bn1.num_batches_tracked" }?.parameter)
        #expect(nbtB.integers?[0] == count)
        let x = hashInput([2, 1, 4, 4])
        a.isTraining = false; b.isTraining = false
        #expect(try a.forward(x) == b.forward(x))
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["bn.safetensors"])
    }

    @Test func everyDTypeRoundTripsAndConverts() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("all.safetensors").path
        typealias E = SafeTensors.Entry
        let tensors: [(name: String, entry: E)] = [
            ("f32", E(floats: [1.5, -2, 0.25, 3], shape: [2, 2])),
            ("f64", E(dtype: .F64, shape: [2], bytes: littleEndianBytes([(0.5).bitPattern, (-3.0).bitPattern]))),
            ("f16", E(dtype: .F16, shape: [2], bytes: littleEndianBytes([Float16(1.5).bitPattern, Float16(-0.25).bitPattern]))),
            ("bf16", E(dtype: .BF16, shape: [2], bytes: littleEndianBytes([UInt16(0x3FC0), UInt16(0xC000)]))),  // 1.5, -2
            ("i64", E(int64s: [-5, 1 << 40], shape: [2])),
            ("i32", E(dtype: .I32, shape: [1], bytes: littleEndianBytes([Int32(-7)]))),
            ("i16", E(dtype: .I16, shape: [1], bytes: littleEndianBytes([Int16(300)]))),
            ("i8", E(dtype: .I8, shape: [2], bytes: [0xFF, 0x05])),
            ("u8", E(dtype: .U8, shape: [2], bytes: [0xFF, 0x05])),
            ("bool", E(dtype: .BOOL, shape: [3], bytes: [0, 1, 1])),
            ("empty", E(floats: [], shape: [0, 3])),
            ("scalar", E(floats: [42], shape: [])),
        ]
        try SafeTensors.write(path: path, tensors: tensors, metadata: [:])
        let back = try SafeTensors.read(path: path)
        #expect(back.order == tensors.map(\.name))
        #expect(back.metadata.isEmpty)
        for (n, e) in tensors { #expect(back.entries[n] == e, "\(n)") }
        let f = { (n: String) in try back.entries[n]!.floats() }
        #expect(try f("f32") == [1.5, -2, 0.25, 3])
        #expect(try f("f64") == [0.5, -3])
        #expect(try f("f16") == [1.5, -0.25])
        #expect(try f("bf16") == [1.5, -2])
        #expect(try f("i64") == [-5, Float(1 << 40)])
        #expect(try f("i32") == [-7])
        #expect(try f("i16") == [300])
        #expect(try f("i8") == [-1, 5])
        #expect(try f("u8") == [255, 5])
        #expect(try f("bool") == [0, 1, 1])
        #expect(try f("empty") == [])
        #expect(try f("scalar") == [42])
        #expect(try back.entries["i64"]!.int64s() == [-5, 1 << 40])
        #expect(try back.entries["f32"]!.int64s() == nil)
    }

    @Test func writeRejectsInconsistentTensors() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("w.safetensors").path
        let ok = SafeTensors.Entry(floats: [1, 2], shape: [2])
        let cases: [(String, [(name: String, entry: SafeTensors.Entry)])] = [
            ("bytes", [("x", SafeTensors.Entry(dtype: .F32, shape: [3], bytes: [0, 0, 0, 0]))]),
            ("twice", [("x", ok), ("x", ok)]),
            ("reserved", [("__metadata__", ok)]),
            ("negative", [("x", SafeTensors.Entry(dtype: .F32, shape: [-1], bytes: []))]),
        ]
        for (label, tensors) in cases {
            #expect(throws: SafeTensorsError.self, "\(label)") {
                try SafeTensors.write(path: path, tensors: tensors, metadata: [:])
            }
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    // MARK: (c) malformed files

    struct Malformed: Sendable, CustomTestStringConvertible {
        let label: String
        let bytes: [UInt8]
        /// Words the error description must contain (besides the file's path).
        let mentions: [String]
        let matches: @Sendable (SafeTensorsError) -> Bool
        var testDescription: String { label }
    }

    static let f32x2 = [UInt8](repeating: 0, count: 8)
    static let malformed: [Malformed] = [
        Malformed(label: "shorter than 8 bytes", bytes: [1, 0, 0], mentions: ["too short"]) {
            if case .truncated(_, 3) = $0 { true } else { false }
        },
        Malformed(label: "header length beyond the file", bytes: file("{}", length: 64), mentions: ["header length 64"]) {
            if case .headerLength(_, 64, 10) = $0 { true } else { false }
        },
        Malformed(label: "absurd header length", bytes: file("{}", length: 1 << 62), mentions: ["limited"]) {
            if case .headerLength = $0 { true } else { false }
        },
        Malformed(label: "header not UTF-8", bytes: littleEndianBytes([UInt64(4)]) + [0x7B, 0xFF, 0xFE, 0x7D], mentions: ["UTF-8"]) {
            if case .headerEncoding = $0 { true } else { false }
        },
        Malformed(label: "header not JSON", bytes: file(#"{"x": {"dtype": "F32""#), mentions: ["not valid JSON"]) {
            if case .headerSyntax = $0 { true } else { false }
        },
        Malformed(label: "trailing garbage", bytes: file("{} x"), mentions: ["after the value"]) {
            if case .headerSyntax = $0 { true } else { false }
        },
        Malformed(label: "duplicate tensor", bytes: file(#"{"x": {}, "x": {}}"#), mentions: ["duplicate key 'x'"]) {
            if case .headerSyntax = $0 { true } else { false }
        },
        Malformed(label: "header not an object", bytes: file("[1, 2]"), mentions: ["not a JSON object"]) {
            if case .headerNotObject = $0 { true } else { false }
        },
        Malformed(label: "entry not an object", bytes: file(#"{"w": 3}"#), mentions: ["'w'", "an object"]) {
            if case .invalidEntry(_, "w", "entry", _) = $0 { true } else { false }
        },
        Malformed(label: "missing dtype", bytes: file(#"{"w": {"shape": [2], "data_offsets": [0, 8]}}"#, buffer: f32x2),
                  mentions: ["'w'", "dtype", "missing"]) {
            if case .invalidEntry(_, "w", "dtype", _) = $0 { true } else { false }
        },
        Malformed(label: "missing shape", bytes: file(#"{"w": {"dtype": "F32", "data_offsets": [0, 8]}}"#, buffer: f32x2),
                  mentions: ["'w'", "shape", "missing"]) {
            if case .invalidEntry(_, "w", "shape", _) = $0 { true } else { false }
        },
        Malformed(label: "missing data_offsets", bytes: file(#"{"w": {"dtype": "F32", "shape": [2]}}"#, buffer: f32x2),
                  mentions: ["'w'", "data_offsets", "missing"]) {
            if case .invalidEntry(_, "w", "data_offsets", _) = $0 { true } else { false }
        },
        Malformed(label: "dtype not a string", bytes: file(#"{"w": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}}"#, buffer: f32x2),
                  mentions: ["'w'", "dtype", "string"]) {
            if case .invalidEntry(_, "w", "dtype", _) = $0 { true } else { false }
        },
        Malformed(label: "shape not an array", bytes: file(#"{"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}"#, buffer: f32x2),
                  mentions: ["'w'", "shape", "array"]) {
            if case .invalidEntry(_, "w", "shape", _) = $0 { true } else { false }
        },
        Malformed(label: "unknown dtype", bytes: file(#"{"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}"#, buffer: [0, 0]),
                  mentions: ["'w'", "unknown dtype 'F8_E4M3'"]) {
            if case .unknownDType(_, "w", "F8_E4M3") = $0 { true } else { false }
        },
        Malformed(label: "negative dimension", bytes: file(#"{"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}"#, buffer: f32x2),
                  mentions: ["'w'", "shape", "negative"]) {
            if case .invalidEntry(_, "w", "shape", _) = $0 { true } else { false }
        },
        Malformed(label: "non-integer dimension", bytes: file(#"{"w": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}"#, buffer: f32x2),
                  mentions: ["'w'", "shape", "non-integer"]) {
            if case .invalidEntry(_, "w", "shape", _) = $0 { true } else { false }
        },
        Malformed(label: "dimension beyond Int", bytes: file(#"{"w": {"dtype": "F32", "shape": [99999999999999999999], "data_offsets": [0, 8]}}"#, buffer: f32x2),
                  mentions: ["out of range"]) {
            if case .headerSyntax = $0 { true } else { false }
        },
        Malformed(label: "shape product overflow",
                  bytes: file(#"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}}"#, buffer: f32x2),
                  mentions: ["'w'", "overflows"]) {
            if case .invalidEntry(_, "w", "shape", _) = $0 { true } else { false }
        },
        Malformed(label: "one data offset", bytes: file(#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [8]}}"#, buffer: f32x2),
                  mentions: ["'w'", "data_offsets", "two integers"]) {
            if case .invalidEntry(_, "w", "data_offsets", _) = $0 { true } else { false }
        },
        Malformed(label: "string data offset", bytes: file(#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": ["0", 8]}}"#, buffer: f32x2),
                  mentions: ["'w'", "data_offsets"]) {
            if case .invalidEntry(_, "w", "data_offsets", _) = $0 { true } else { false }
        },
        Malformed(label: "begin after end", bytes: file(#"{"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}"#, buffer: f32x2),
                  mentions: ["'w'", "data_offsets", "[8, 0]"]) {
            if case .invalidEntry(_, "w", "data_offsets", _) = $0 { true } else { false }
        },
        Malformed(label: "end beyond the buffer", bytes: file(#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#, buffer: f32x2),
                  mentions: ["'w'", "past the end of the 8-byte buffer"]) {
            if case .invalidEntry(_, "w", "data_offsets", _) = $0 { true } else { false }
        },
        Malformed(label: "byte length not shape × size", bytes: file(#"{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, buffer: f32x2),
                  mentions: ["'w'", "8 bytes", "need 12"]) {
            if case .sizeMismatch(_, "w", 12, 8) = $0 { true } else { false }
        },
        Malformed(label: "overlapping tensors",
                  bytes: file(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#,
                              buffer: [UInt8](repeating: 0, count: 12)),
                  mentions: ["'a'", "'b'", "overlapping"]) {
            if case .overlap(_, "a", "b") = $0 { true } else { false }
        },
        Malformed(label: "metadata value not a string", bytes: file(#"{"__metadata__": {"epoch": 3}}"#),
                  mentions: ["__metadata__['epoch']", "strings"]) {
            if case .invalidMetadata(_, "epoch", _) = $0 { true } else { false }
        },
        Malformed(label: "metadata not an object", bytes: file(#"{"__metadata__": ["a"]}"#), mentions: ["__metadata__", "object"]) {
            if case .invalidMetadata(_, nil, _) = $0 { true } else { false }
        },
    ]

    @Test(arguments: malformed)
    func malformedFileIsRejected(_ c: Malformed) throws {
        let path = "bad/\(c.label.replacingOccurrences(of: " ", with: "_")).safetensors"
        let error = #expect(throws: SafeTensorsError.self) { try SafeTensors.parse(bytes: c.bytes, path: path) }
        guard let error else { return }
        #expect(c.matches(error), "unexpected error: \(error)")
        #expect(error.description.contains(path), "\(error)")
        for word in c.mentions { #expect(error.description.contains(word), "'\(word)' not in: \(error)") }
    }

    @Test func headerPaddingAndEmptyFilesAreAccepted() throws {
        let padded = file(#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "__metadata__": {"k": "v"}}     "#,
                          buffer: littleEndianBytes([Float(1).bitPattern, Float(2).bitPattern]))
        let r = try SafeTensors.parse(bytes: padded, path: "padded")
        #expect(try r.entries["w"]?.floats() == [1, 2])
        #expect(r.metadata == ["k": "v"])
        #expect(try SafeTensors.parse(bytes: file("{}"), path: "empty").order.isEmpty)
    }

    @Test func missingFileNamesIt() throws {
        let error = #expect(throws: SafeTensorsError.self) { try SafeTensors.read(path: "/nonexistent/ply/w.safetensors") }
        #expect(error?.description.contains("/nonexistent/ply/w.safetensors") == true)
    }

    // MARK: (d) strict and non-strict loading

    @Test func strictLoadListsEveryMismatchAndWritesNothing() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("off.safetensors").path
        let source = try batchNormModel()
        try hashInitialize(source)
        var tensors = try source.namedParameters().compactMap { name, p -> (name: String, entry: SafeTensors.Entry)? in
            switch name {
            case "conv1.weight", "bn1.running_mean": return nil  // missing
            case "fc.weight": return (name, SafeTensors.Entry(floats: [Float](repeating: 1, count: 2 * 10), shape: [2, 10]))
            case "bn1.num_batches_tracked": return (name, SafeTensors.Entry(floats: [3], shape: []))  // float for an integer buffer
            default: return (name, SafeTensors.Entry(floats: p.read(), shape: p.shape.dims))
            }
        }
        tensors.append(("fc.extra", SafeTensors.Entry(floats: [0], shape: [1])))
        tensors.append(("head.weight", SafeTensors.Entry(floats: [0, 0], shape: [2])))
        try SafeTensors.write(path: path, tensors: tensors, metadata: [:])

        let target = try batchNormModel()
        let before = try snapshot(target)
        let error = #expect(throws: WeightMismatchError.self) { try target.loadWeights(from: path) }
        let report = try #require(error?.report)
        #expect(report.missing == ["conv1.weight", "bn1.running_mean"])
        #expect(report.unexpected == ["fc.extra", "head.weight"])
        #expect(report.wrongShape.map(\.name) == ["fc.weight"])
        #expect(report.wrongShape.first?.expected == [2, 48] && report.wrongShape.first?.got == [2, 10])
        #expect(report.wrongDType.map(\.name) == ["bn1.num_batches_tracked"])
        let text = try #require(error?.description)
        for name in ["conv1.weight", "bn1.running_mean", "fc.extra", "head.weight", "fc.weight", "bn1.num_batches_tracked", path] {
            #expect(text.contains(name), "'\(name)' not in: \(text)")
        }
        #expect(try snapshot(target) == before, "a failed strict load must leave the model unchanged")

        // Non-strict: what matches is loaded, the rest reported.
        let loose = try target.loadWeights(from: path, strict: false)
        #expect(loose.loaded == 4)
        let after = try snapshot(target), expected = try snapshot(source)
        for name in ["bn1.weight", "bn1.bias", "bn1.running_var", "fc.bias"] { #expect(after[name] == expected[name], "\(name)") }
        for name in ["conv1.weight", "bn1.running_mean", "fc.weight", "bn1.num_batches_tracked"] {
            #expect(after[name] == before[name], "\(name) must be untouched")
        }
        #expect(loose.missing == report.missing && loose.unexpected == report.unexpected)
    }

    // MARK: (e) atomic writes

    @Test func failedTemporaryFileLeavesOldFileIntact() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("w.safetensors").path
        try SafeTensors.write(path: path, tensors: [("old", SafeTensors.Entry(floats: [1], shape: [1]))], metadata: [:])
        let old = try Data(contentsOf: URL(fileURLWithPath: path))
        // Something that is not a file sits at the temporary path (works even as root).
        let temp = dir.appendingPathComponent(".w.safetensors.tmp-\(getpid())").path
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: false)
        let error = #expect(throws: SafeTensorsError.self) {
            try SafeTensors.write(path: path, tensors: [("new", SafeTensors.Entry(floats: [2], shape: [1]))], metadata: [:])
        }
        #expect(error?.description.contains("create temporary file") == true, "\(String(describing: error))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == old)
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: temp, isDirectory: &isDir) && isDir.boolValue, "not ours to remove")

        #expect(throws: SafeTensorsError.self) {
            try SafeTensors.write(path: dir.appendingPathComponent("no/such/dir/w.safetensors").path, tensors: [], metadata: [:])
        }
    }

    @Test func fullDiskRemovesTemporaryFileAndKeepsOldFile() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("w.safetensors").path
        let model = try batchNormModel()
        try model.saveWeights(to: path, metadata: ["v": "1"])
        let old = try Data(contentsOf: URL(fileURLWithPath: path))
        let tensors = [("big", SafeTensors.Entry(floats: [Float](repeating: 3, count: 1000), shape: [1000]))]

        // The disk fills after 100 bytes: write(2) fails with ENOSPC.
        var budget = 100
        let error = #expect(throws: SafeTensorsError.self) {
            try SafeTensors.write(path: path, tensors: tensors, metadata: [:]) { fd, p, n in
                guard budget > 0 else { errno = ENOSPC; return -1 }
                let k = write(fd, p, min(n, budget))
                budget -= max(k, 0)
                return k
            }
        }
        #expect(error.map { if case .io(_, "write", ENOSPC) = $0 { true } else { false } } == true, "\(String(describing: error))")
        #expect(error?.description.contains("No space left on device") == true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == old)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["w.safetensors"])

        // A write that makes no progress without an error is not an endless loop.
        #expect(throws: SafeTensorsError.shortWrite(path: dir.appendingPathComponent(".w.safetensors.tmp-\(getpid())").path,
                                                    written: 0, expected: 8)) {
            try SafeTensors.write(path: path, tensors: tensors, metadata: [:]) { _, _, _ in 0 }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == old)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["w.safetensors"])

        // Partial writes (7 bytes at a time) are continued, not mistaken for failure.
        try SafeTensors.write(path: path, tensors: tensors, metadata: [:]) { fd, p, n in write(fd, p, min(n, 7)) }
        #expect(try SafeTensors.read(path: path).entries["big"]?.floats() == [Float](repeating: 3, count: 1000))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["w.safetensors"])
    }
}
