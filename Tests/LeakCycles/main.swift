// ply-leak-cycles: the runtime and model lifetimes behind LeakTests and scripts/leaks, in a
// process of their own (heap and mappings are process-wide, and the test suite runs other
// tests in parallel; valgrind also cannot run the Swift Testing binary here, see
// RELIABILITY.md). Not installed; built by `swift build` next to the test binary.
//
//     ply-leak-cycles [CYCLES [WARMUP]]
//
// Runs WARMUP (default CYCLES/10, 10...50) then CYCLES (default 1000) runtime cycles — a
// Runtime created (loading every built-in plugin library) and released (unloading them) —
// then the same numbers of model cycles on one runtime — a ConvNet built, run forward and
// backward on a batch of 2 and destroyed — and prints one line, `PLY-LEAKS key=value ...`:
// heap bytes in use (glibc mallinfo2) and RSS after the warm-up, half-way and at the end of
// each phase, plugin libraries still mapped, and the host's outstanding alloc/free count
// after every model cycle. Run it with
// GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.mmap_threshold=131072 for exact
// heap figures (see `measure`). LeakTests judges the figures; under valgrind or LeakSanitizer the
// exit check is the verdict.
import CPly
import Foundation
import Ply

/// The resident set size, from /proc/self/statm. Read with open/read: Foundation's file
/// reading leaks a buffer for files whose size reads as 0, as /proc's do
/// (scripts/sanitizers/lsan.supp), which would put Foundation's leak in the figures.
func residentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return -1 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return -1 }
    let fields = String(decoding: buffer[0..<n], as: UTF8.self).split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return -1 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Built-in plugin libraries mapped into this process.
func mappedPlugins() -> Int {
    guard let file = fopen("/proc/self/maps", "r") else { return -1 }
    defer { fclose(file) }
    var paths = Set<String>()
    var line = [CChar](repeating: 0, count: 4096)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(cString: line).trimmingCharacters(in: .whitespacesAndNewlines)
        if let path = text.split(separator: " ", omittingEmptySubsequences: true).last, path.contains("/libply_") {
            paths.insert(String(path))
        }
    }
    return paths.count
}

/// Images (executables and shared libraries with Swift metadata sections) the Swift runtime
/// has registered. Every library SwiftPM links carries them, the built-in plugins too (their
/// code is C, but SwiftPM links them with swiftc), and the Swift runtime never forgets an
/// image: each dlopen() appends 8 bytes to its table (swift_addNewDSOImage ->
/// ConcurrentReadableArray<MetadataSections *>::push_back), which doubles when full; dlclose()
/// does not remove it. 13 plugin libraries per runtime cycle: about 100 bytes per cycle,
/// outside Ply (valgrind: the only reachable block that grows with the cycles).
@_silgen_name("swift_enumerateAllMetadataSections")
func swift_enumerateAllMetadataSections(_ body: @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?) -> Bool,
                                        _ context: UnsafeMutableRawPointer?)

func swiftImages() -> Int {
    var count = 0
    withUnsafeMutablePointer(to: &count) { p in
        swift_enumerateAllMetadataSections({ _, context in
            context!.assumingMemoryBound(to: Int.self).pointee += 1
            return true
        }, p)
    }
    return count
}

/// Grows the Swift runtime's image table now, so that `images` more registrations during the
/// measurement fit in its capacity and do not show up as heap growth: the table doubles from
/// capacity p to 2p when its (p+1)th image is added, so registering images (dlopen + dlclose
/// of one plugin library) until the count is p + 1, for the least power of two p with
/// p - 1 >= `images`, leaves p - 1 free slots. Returns the dlopen() calls it made.
func reserveSwiftImages(_ images: Int, library: String) throws -> Int {
    let count = swiftImages()
    var p = 16
    while p - 1 < images || p + 1 < count { p *= 2 }
    for _ in count..<(p + 1) {
        guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
            throw PlyError.invalid("cannot dlopen \(library): \(String(cString: dlerror()))")
        }
        dlclose(handle)
    }
    return p + 1 - count
}

func makeRuntime() throws -> Runtime {
    var options = Runtime.Options()
    options.useEnvironment = false
    options.threads = 2
    options.log = { _, _ in }
    return try Runtime(options: options)
}

func measure(cycles: Int, warmup: Int) throws -> String {
    // glibc's per-thread caches (tcache) hold freed chunks that mallinfo2 counts as in use,
    // and its mmap threshold moves after the first large free: both make the figure depend
    // on which thread freed what. The parent runs this with
    // GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.mmap_threshold=131072, under
    // which the model cycles' figure is flat to the byte.
    let tunables = ProcessInfo.processInfo.environment["GLIBC_TUNABLES"] ?? ""
    let tuned = tunables.contains("glibc.malloc.tcache_count=0") && tunables.contains("glibc.malloc.mmap_threshold=")
    var figures: [(String, Int)] = [("cycles", cycles), ("warmup", warmup), ("malloc_tuned", tuned ? 1 : 0)]
    figures.reserveCapacity(64)
    /// Heap bytes in use and RSS (after giving free memory back, so RSS says something).
    func sample(_ name: String) {
        _ = cply_malloc_trim()
        figures.append(("\(name)_heap", Int(cply_malloc_in_use())))
        figures.append(("\(name)_rss", residentBytes()))
    }

    // 1. Runtimes: each loads every built-in plugin (dlopen) and unloads it (dlclose) when released.
    var typeCount = 0
    var hostAtLoad = 0
    func runtimeCycle() throws {
        let runtime = try makeRuntime()
        typeCount = runtime.layerTypes.count
        hostAtLoad = max(hostAtLoad, runtime.hostBlocksOutstanding)
    }
    for _ in 0..<warmup { try runtimeCycle() }
    let imagesBefore = swiftImages()
    try runtimeCycle()
    let imagesPerCycle = swiftImages() - imagesBefore
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    let reserved = try reserveSwiftImages(imagesPerCycle * cycles + 16,
                                          library: exe.deletingLastPathComponent().appendingPathComponent("libply_reshape.so").path)
    let imagesStart = swiftImages()
    sample("runtime_start")
    for i in 0..<cycles {
        try runtimeCycle()
        if i == cycles / 2 - 1 { sample("runtime_mid") }
    }
    sample("runtime_end")
    figures += [("swift_images_per_cycle", imagesPerCycle), ("swift_images_reserved", reserved),
                ("swift_images_start", imagesStart), ("swift_images_end", swiftImages()),
                ("layer_types", typeCount), ("runtime_host_blocks_at_load", hostAtLoad),
                ("plugins_mapped_after", mappedPlugins())]

    // 2. Models: a ConvNet built, run forward and backward on a batch of 2, and destroyed.
    let runtime = try makeRuntime()
    var g = SplitMix64(seed: 3)
    let input = try Tensor(shape: [2, 1, 28, 28], data: (0..<(2 * 784)).map { _ in g.nextUnitFloat() })
    let gradOutput = [Float](repeating: 0.1, count: 20)
    var hostDuring = 0
    func modelCycle() throws {
        let model = try Zoo.convNet(runtime: runtime)
        _ = try model.forward(input)
        try gradOutput.withUnsafeBufferPointer { _ = try model.backward($0, inputGradient: true) }
        hostDuring = max(hostDuring, runtime.hostBlocksOutstanding)
    }
    for _ in 0..<warmup { try modelCycle() }
    let hostBaseline = runtime.hostBlocksOutstanding
    var hostOff = 0, hostWorst = hostBaseline
    sample("model_start")
    for i in 0..<cycles {
        try modelCycle()
        let live = runtime.hostBlocksOutstanding
        if live != hostBaseline { hostOff += 1; hostWorst = max(hostWorst, live) }
        if i == cycles / 2 - 1 { sample("model_mid") }
    }
    sample("model_end")
    figures += [("host_blocks_baseline", hostBaseline), ("host_blocks_in_a_model", hostDuring),
                ("host_blocks_end", runtime.hostBlocksOutstanding),
                ("host_cycles_off_baseline", hostOff), ("host_blocks_worst", hostWorst)]
    return figures.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
}

let arguments = CommandLine.arguments.dropFirst().map { Int($0) }
guard arguments.count <= 2, arguments.allSatisfy({ $0 != nil && $0! >= 0 }) else {
    FileHandle.standardError.write(Data("usage: ply-leak-cycles [CYCLES [WARMUP]]\n".utf8))
    exit(2)
}
let cycles = arguments.first.flatMap { $0 } ?? 1_000
let warmup = arguments.count > 1 ? arguments[1]! : max(10, min(50, cycles / 10))
do {
    print("PLY-LEAKS " + (try measure(cycles: cycles, warmup: warmup)))
} catch {
    FileHandle.standardError.write(Data("ply-leak-cycles: \(error)\n".utf8))
    exit(1)
}
