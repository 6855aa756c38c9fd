import Foundation
import Testing

/// `PLY_REGION_TRACE` (Sources/Ply/Runtime/RegionTrace.swift) from outside, as a user runs it: `ply
/// bench-model` on 2 threads writes, at exit, one `mark` line per node's start and end and one
/// `region` line per parallel region with each chunk's four stamps and the caller's two, in the
/// format Benchmarks/region_trace.py reads.
@Suite struct RegionTraceTests {
    @Test func benchModelWritesRegionsAndNodeMarks() throws {
        let dir = try TrainerTests.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/trace.tsv"
        let out = try CLITests.run(["bench-model", "convnet", "--batch", "8", "--image-size", "28", "--channels", "1",
                                    "--classes", "10", "--threads", "2", "--runs", "1", "--iterations", "1", "--warmup", "0"],
                                   environment: ["PLY_REGION_TRACE": path])
        #expect(out.status == 0, "\(out.stderr)")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { $0.split(separator: "\t") }
        let begins = lines.filter { $0.first == "mark" && $0.count == 5 && $0[1] == "begin" }
        let ends = lines.filter { $0.first == "mark" && $0.count == 5 && $0[1] == "end" }
        #expect(!begins.isEmpty && begins.count == ends.count, "\(lines.prefix(5))")
        let regions = lines.filter { $0.first == "region" }
        #expect(!regions.isEmpty, "no region lines")
        for r in regions {
            let chunks = Int(r[3]) ?? 0
            #expect(chunks >= 1 && chunks <= 2 && r.count == 6 + 4 * chunks + 2, "\(r)")
            #expect(r[1].contains("+0x"), "the body is not a file and offset: \(r[1])")
        }
        #expect(regions.contains { $0[3] == "2" }, "no region ran on 2 threads")
    }
}
