import Foundation
import Testing
@testable import Ply

/// Issue #15 items 4 and 5: every reader stops at what its header declares (a gzip bomb,
/// /dev/zero or appended data is refused after reading at most the declared size plus a
/// stated margin), a model file cannot expand without bound, and a worker pool whose threads
/// cannot all be created runs with those it has instead of waiting for ever.
@Suite struct BoundedReadTests {
    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ply-bounded-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    /// An IDX image file header declaring 3 images of 2×4 (40 bytes in all).
    static let imagesHeader: [UInt8] = bigEndian(0x0803) + bigEndian(3) + bigEndian(2) + bigEndian(4)

    // MARK: - IDX and gzip

    /// A small .gz that inflates far past what its header declares (a gzip bomb) is refused
    /// once the declared size plus the 1 MiB margin is passed, not decompressed whole.
    @Test func gzipBombStopsAtTheDeclaredSize() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bomb = dir + "/bomb-images.gz"
        try Gzip.write(Self.imagesHeader + [UInt8](repeating: 0, count: 24 + (8 << 20)), to: bomb)
        let error = #expect(throws: DataError.self) { _ = try IDX.readImages(path: bomb) }
        #expect(error == .longerThanDeclared(path: bomb, expectedBytes: 40, readBytes: 40 + IDX.trailingMargin + 1))
        #expect(error?.description.contains(bomb) == true)
        #expect(error?.description.contains("declares 40 bytes") == true)

        // A little trailing data inside the gzip stream is measured exactly.
        let small = dir + "/small-images.gz"
        try Gzip.write(Self.imagesHeader + [UInt8](repeating: 1, count: 24 + 2), to: small)
        #expect(throws: DataError.trailingBytes(path: small, expectedBytes: 40, actualBytes: 42)) {
            _ = try IDX.readImages(path: small)
        }
        // IDX.readBytes has a limit too.
        #expect(throws: DataError.decompressedTooLarge(path: bomb, limit: 1000)) { _ = try IDX.readBytes(path: bomb, limit: 1000) }
    }

    /// /dev/zero as IDX data: refused by name before any read (a device never ends; a named
    /// pipe is read, but only up to what its header declares: `pipesAreReadUpToTheDeclaredSize`).
    @Test func devZeroAsIDX() throws {
        #expect(throws: DataError.notARegularFile(path: "/dev/zero", kind: "a character device")) {
            _ = try IDX.readImages(path: "/dev/zero")
        }
        #expect(throws: DataError.notARegularFile(path: "/dev/zero", kind: "a character device")) { _ = try IDX.read(path: "/dev/zero") }
        // A directory is a clear error too.
        #expect(throws: DataError.self) { _ = try IDX.read(path: "/tmp") }
    }

    /// A pipe (not a regular file) holding a valid IDX file reads as the file does, and one
    /// with data after the declared end is refused.
    @Test func pipesAreReadUpToTheDeclaredSize() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/images.fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let pixels = (0..<24).map { UInt8($0 * 7) }
        for (extra, expectTrailing) in [([UInt8](), false), ([UInt8](repeating: 9, count: 5), true)] {
            let content = Self.imagesHeader + pixels + extra
            let writer = Thread {
                let fd = open(fifo, O_WRONLY)
                content.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
            writer.start()
            if expectTrailing {
                #expect(throws: DataError.trailingBytes(path: fifo, expectedBytes: 40, actualBytes: 45)) {
                    _ = try IDX.readImages(path: fifo)
                }
            } else {
                let array = try IDX.readImages(path: fifo)
                #expect(array.shape == [3, 2, 4])
                #expect(array.data == pixels)
            }
        }
    }

    // MARK: - safetensors and .npy

    @Test func devZeroAsWeights() throws {
        #expect(throws: SafeTensorsError.self) { _ = try SafeTensors.read(path: "/dev/zero") }
        let npy = #expect(throws: NumPyError.self) { _ = try NumPy.read(path: "/dev/zero") }
        #expect(npy?.description.contains("/dev/zero") == true)
    }

    /// Data after the last tensor the header declares is refused, naming both sizes.
    @Test func safetensorsTrailingDataIsRefused() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/w.safetensors"
        let entry = SafeTensors.Entry(dtype: .F32, shape: [2], bytes: [0, 0, 128, 63, 0, 0, 0, 64])
        try SafeTensors.write(path: path, tensors: [("w", entry)], metadata: [:])
        let good = try #require(FileManager.default.contents(atPath: path))
        #expect(try SafeTensors.read(path: path).entries["w"] == entry)
        try (good + Data([1, 2, 3])).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: SafeTensorsError.trailingData(path: path, declared: good.count, size: good.count + 3)) {
            _ = try SafeTensors.read(path: path)
        }
        #expect(error?.description.contains("\(good.count + 3)") == true)
    }

    @Test func numpyTrailingDataInAFileIsRefused() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/x.npy"
        try NumPy.write(path: path, shape: [2], values: [1, 2])
        #expect(try NumPy.read(path: path).values == [1, 2])
        let good = try #require(FileManager.default.contents(atPath: path))
        try (good + Data([0, 0, 0, 0])).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: NumPyError.self) { _ = try NumPy.read(path: path) }
        #expect(error?.reason.contains("trailing") == true)
    }

    // MARK: - Model files

    @Test func devZeroAsModelFileIsRefused() throws {
        let error = #expect(throws: PlyError.self) { _ = try ModelFile(contentsOf: URL(fileURLWithPath: "/dev/zero")) }
        #expect(error?.description.contains("/dev/zero") == true && error?.description.contains("character device") == true)
    }

    /// A model file larger than the limit is refused after reading limit + 1 bytes (a sparse
    /// file: nothing is written).
    @Test func modelFileLargerThanTheLimitIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ply-big-\(UUID().uuidString).yaml").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(truncate(path, off_t(ModelFile.maxFileBytes + 100)) == 0)
        let error = #expect(throws: ModelFileError.self) { _ = try ModelFile(contentsOf: URL(fileURLWithPath: path)) }
        #expect(error?.kind == .limit)
        #expect(error?.description.contains("\(ModelFile.maxFileBytes)") == true)
    }

    /// `repeat: 1000000000` is an error at its line naming the limit, found before any layer
    /// is made; nested repeats that multiply past the limit stop there too.
    @Test func hugeRepeatIsRefusedWithTheLimit() throws {
        let text = "model: m\nlayers:\n  - type: relu\n  - repeat: 1000000000\n    layers: [{type: relu}]\n"
        let error = #expect(throws: ModelFileError.self) {
            _ = try ModelFile(text: text, source: "huge.yaml").build(runtime: sharedRuntime)
        }
        #expect(error?.kind == .limit)
        #expect(error?.line == 4)
        #expect(error?.field == "repeat")
        #expect(error?.description.hasPrefix("huge.yaml:4:") == true)
        #expect(error?.description.contains("100000") == true)

        // 600 × 600 entries switched off by `if:` make no node but are still bounded.
        let idle = "layers:\n  - type: relu\n  - repeat: 600\n    layers:\n      - repeat: 600\n        layers: [{type: relu, if: false}]\n"
        let steps = #expect(throws: ModelFileError.self) { _ = try ModelFile(text: idle).build(runtime: sharedRuntime) }
        #expect(steps?.kind == .limit)
        #expect(steps?.description.contains("\(ModelFile.maxExpansionSteps)") == true)
    }

    /// A repeat of 20,000 layers builds (adding a node no longer scans every node before it).
    @Test func largeRepeatBuilds() throws {
        let text = "layers:\n  - repeat: 20000\n    layers: [{type: relu}]\n"
        let model = try ModelFile(text: text).build(runtime: sharedRuntime)
        #expect(model.nodes.count == 20_001)
        #expect(model.node(named: "19999") == 20_000)
        #expect(model.node(named: "input") == Model.input)
    }

    // MARK: - Worker threads that cannot be created

    /// Sums chunk sizes a job ran, so a test can see every item was covered once.
    final class Coverage: @unchecked Sendable {
        let lock = NSLock()
        var items = 0
        var calls = 0
    }

    /// When the system refuses threads after the second, the pool runs with two workers and
    /// covers every item (it used to wait for ever for workers that never started); with
    /// none, parallel_for runs on the caller. Each case says so through the log.
    @Test(arguments: [0, 2])
    func workerPoolRunsWithTheThreadsItCouldStart(startable: Int) throws {
        let spawned = Coverage()
        var messages: [String] = []
        let pool = WorkerPool(workers: 5, log: { messages.append($0) }, spawn: { body in
            spawned.lock.withLock { spawned.calls += 1 }
            guard spawned.lock.withLock({ spawned.calls }) <= startable else { errno = EAGAIN; return false }
            return WorkerPool.spawnThread(body)
        })
        defer { pool.shutdown() }
        #expect(pool.workers == startable)
        #expect(messages.count == 1)
        #expect(messages.first?.contains("could not start worker thread \(startable + 1) of 5") == true)
        let coverage = Coverage()
        let ran = pool.run(fn: { context, begin, end in
            let c = Unmanaged<Coverage>.fromOpaque(context!).takeUnretainedValue()
            c.lock.withLock { c.items += Int(end - begin); c.calls += 1 }
        }, context: Unmanaged.passUnretained(coverage).toOpaque(), n: 1000, chunks: 6)
        if startable == 0 {
            #expect(!ran)  // the caller runs the chunks itself (HostState.parallelFor)
        } else {
            #expect(ran)
            #expect(coverage.items == 1000)
            #expect(coverage.calls == startable + 1)
        }
    }
}
