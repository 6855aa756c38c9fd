import Foundation
import Testing
@testable import Ply

/// Memory growth over many runtime and model lifetimes: 1,000 runtimes created and destroyed
/// (each loads and unloads every built-in plugin library), then 1,000 ConvNets built, run
/// forward and backward on one batch, and destroyed. Three signals:
///
/// - **Heap bytes in use** (glibc's `mallinfo2()`: chunks handed out and not freed, in every
///   arena, plus mmap()ed large chunks; `cply_malloc_in_use`) after the cycles must be within
///   `slack` of the figure after a warm-up. Unlike the resident set size (which moved by
///   -0.1 to +3.5 MiB per 1,000 cycles with glibc's arenas and trimming, so its bound had to
///   be disabled), this counts bytes in blocks, not pages; with glibc's per-thread caches off
///   and a fixed mmap threshold (`tunables`) it is exact, and the one growth outside Ply (the
///   Swift runtime's table of loaded images, which never shrinks) is reserved before
///   measuring (Tests/LeakCycles/main.swift).
/// - **Host allocations outstanding** (the runtime's count of `alloc` minus `free` through the
///   `ply_host` table) must be back to its baseline after *every* model cycle: exact, so a
///   plugin that loses one block of the host's memory fails at once.
/// - Every plugin library is unmapped when its last runtime goes away.
///
/// Why a child process: the heap and the mappings belong to the whole process, and the other
/// tests run in parallel with this one (Swift Testing runs suites concurrently, allocating and
/// freeing hundreds of megabytes), so the cycles run in `ply-leak-cycles`
/// (Tests/LeakCycles/main.swift, built next to this test binary), where nothing else runs,
/// and this process checks the figures it prints. No lock in this process could keep other
/// suites' allocations out of a process-wide counter.
///
/// Under a sanitizer (whose allocator replaces malloc, so mallinfo2 sees nothing) the heap
/// bound is skipped; the host count still applies, and LeakSanitizer's exit check in the
/// child is the verdict on lost blocks. `scripts/leaks` runs the same program under valgrind
/// or LeakSanitizer, or prints the figures.
@Suite struct LeakTests {
    /// Allowed growth of heap bytes in use over each run of cycles. Measured: +272 bytes over
    /// 1,000 runtime cycles (the same every run) and 0 over 1,000 model cycles. Any block lost
    /// per cycle, however small, exceeds it (glibc's smallest chunk is 32 bytes: 32,000 bytes
    /// per 1,000 cycles); an injected malloc(24) per cycle showed +33,312 and +33,744.
    static let slack = 8 << 10
    static let resultPrefix = "PLY-LEAKS "
    /// No per-thread caches, a fixed mmap threshold: exact heap figures (Tests/LeakCycles).
    static let tunables = "GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.mmap_threshold=131072"

    /// "address" or "thread" when this process runs under a sanitizer, else nil.
    static var sanitizer: String? {
        if dlsym(nil, "__asan_init") != nil { return "address" }
        if dlsym(nil, "__tsan_init") != nil { return "thread" }
        return nil
    }

    @Test func runtimeAndModelLifetimesDoNotLeak() throws {
        let environment = ProcessInfo.processInfo.environment
        // Under a sanitizer each cycle is ~20 times slower and LeakSanitizer needs only one
        // cycle to see a lost block, so 100 cycles do.
        let cycles = environment["PLY_LEAK_CYCLES"].flatMap(Int.init) ?? (Self.sanitizer == nil ? 1_000 : 100)
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let helper = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("ply-leak-cycles").path
        try #require(FileManager.default.isExecutableFile(atPath: helper),
                     "\(helper) is missing: build everything first (`swift build`, as scripts/test does)")
        let started = Date()
        let child = try CCompiler.run("env", [Self.tunables, helper, String(cycles)])
        let seconds = Date().timeIntervalSince(started)
        // Under ASan, LeakSanitizer checks the child at exit and fails it on any lost block.
        #expect(child.status == 0, "the child failed (status \(child.status)):\n\(child.stdout.suffix(2000))\n\(child.stderr.suffix(4000))")
        let line = try #require(child.stdout.split(separator: "\n").first { $0.hasPrefix(Self.resultPrefix) },
                                "no figures from the child:\n\(child.stdout.suffix(2000))\n\(child.stderr.suffix(2000))")
        let f = Self.figures(line)
        print(Self.report(f, seconds: seconds))
        try Self.check(f)
    }

    /// The `key=value` pairs of the child's line.
    static func figures(_ line: Substring) -> [String: Int] {
        var f: [String: Int] = [:]
        for pair in line.dropFirst(resultPrefix.count).split(separator: " ") {
            let kv = pair.split(separator: "=")
            if kv.count == 2, let v = Int(kv[1]) { f[String(kv[0])] = v }
        }
        return f
    }

    static func report(_ f: [String: Int], seconds: Double) -> String {
        func phase(_ p: String) -> String {
            let h0 = f["\(p)_start_heap", default: 0], h1 = f["\(p)_mid_heap", default: 0], h2 = f["\(p)_end_heap", default: 0]
            let r0 = f["\(p)_start_rss", default: 0], r2 = f["\(p)_end_rss", default: 0]
            return "heap in use \(h0) -> \(h1) -> \(h2) bytes (\(h2 - h0 >= 0 ? "+" : "")\(h2 - h0)), RSS \(r0 >> 10) -> \(r2 >> 10) KiB"
        }
        let cycles = f["cycles", default: 0]
        return "LeakTests: \(cycles) runtime cycles (each loading \(f["layer_types", default: 0]) layer types): \(phase("runtime")); "
            + "\(cycles) ConvNet build/forward/backward/destroy cycles: \(phase("model")); host blocks "
            + "\(f["host_blocks_baseline", default: 0]) -> \(f["host_blocks_end", default: 0]) (\(f["host_blocks_in_a_model", default: 0]) while a model lives); "
            + String(format: "%.1f s", seconds) + (sanitizer.map { " (under \($0) sanitizer: heap bound not checked)" } ?? "")
    }

    /// The verdict on the child's figures.
    static func check(_ f: [String: Int]) throws {
        #expect(f["layer_types", default: 0] > 10)
        // Every plugin library was unloaded when its last runtime went away.
        #expect(f["plugins_mapped_after"] == 0, "plugin libraries still mapped after the runtime cycles")
        // A model's layers hold host memory while it lives, and give every block back.
        #expect(f["host_blocks_in_a_model", default: 0] > f["host_blocks_baseline", default: 0], "the host count saw no allocation")
        #expect(f["host_cycles_off_baseline"] == 0,
                "host alloc/free unbalanced after \(f["host_cycles_off_baseline", default: -1]) model cycles (baseline \(f["host_blocks_baseline", default: -1]) blocks, worst \(f["host_blocks_worst", default: -1]))")
        guard sanitizer == nil else { return }
        #expect(f["malloc_tuned"] == 1, "the child ran without \(tunables)")
        for phase in ["runtime", "model"] {
            let start = try #require(f["\(phase)_start_heap"]), end = try #require(f["\(phase)_end_heap"])
            try #require(start > 0, "mallinfo2 is not available: no heap figure")
            #expect(end - start <= slack, "\(phase) cycles: heap bytes in use grew by \(end - start) (more than \(slack)): \(f)")
        }
    }
}
