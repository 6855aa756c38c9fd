import Foundation
import Testing
@testable import Ply

/// The host's `alloc` keeps the last large block given back mapped for the next request it covers
/// (LargeBlockCache): frozen layers free their scratch after every forward, and glibc would map and unmap
/// blocks of 32 MB and more at every call.
@Suite struct LargeBlockCacheTests {
    static func state() -> HostState { HostState(seed: 1, threads: 1, logHandler: { _, _ in }) }

    @Test func aFreedLargeBlockServesTheNextRequestItCovers() throws {
        let host = Self.state()
        let big = LargeBlockCache.minimum + (8 << 20)
        let a = try #require(host.allocate(big))
        a.storeBytes(of: 0x5eed, as: Int.self)
        #expect(host.liveBytes.load(ordering: .relaxed) >= big)
        host.release(a)
        #expect(host.liveAllocations.load(ordering: .relaxed) == 0 && host.liveBytes.load(ordering: .relaxed) == 0)
        // a smaller large request takes the same mapping, its pages already there
        let b = try #require(host.allocate(LargeBlockCache.minimum))
        #expect(b == a && b.load(as: Int.self) == 0x5eed, "not the kept mapping: a fresh one reads zero")
        // while it is taken, another request maps a block of its own
        let c = try #require(host.allocate(big))
        #expect(c != b)
        host.release(b)
        host.release(c)
        #expect(host.liveAllocations.load(ordering: .relaxed) == 0 && host.liveBytes.load(ordering: .relaxed) == 0)
        // the larger of the two is kept: a request of `big` bytes takes one of them
        let d = try #require(host.allocate(big))
        #expect(d == a || d == c)
        host.release(d)
    }

    @Test func zeroedAndSmallBlocksDoNotTakeIt() throws {
        let host = Self.state()
        let big = LargeBlockCache.minimum + (1 << 20)
        let a = try #require(host.allocate(big))
        memset(a, 0xff, big)
        host.release(a)
        // alloc_zeroed reads zero: fresh pages, never the kept block's contents
        let z = try #require(host.allocate(big, zeroed: true))
        #expect(z != a)
        let bytes = UnsafeBufferPointer(start: z.assumingMemoryBound(to: UInt8.self), count: big)
        #expect(bytes.allSatisfy { $0 == 0 })
        host.release(z)
        let small = try #require(host.allocate(1 << 20))
        #expect(small != a)
        host.release(small)
        #expect(host.liveAllocations.load(ordering: .relaxed) == 0 && host.liveBytes.load(ordering: .relaxed) == 0)
    }

    @Test func guardZonesHoldOnAReusedBlock() throws {
        let host = Self.state()
        host.checkPlugins.store(true, ordering: .relaxed)
        let big = LargeBlockCache.minimum + (4 << 20)
        let a = try #require(host.allocate(big))
        host.release(a)
        let size = LargeBlockCache.minimum
        let b = try #require(host.allocate(size))
        #expect(b == a)
        Self.expectGuardZoneCatches(host, b, size)
        host.release(b)
    }

    /// Filling a block leaves its guard zone intact; a byte written past it is reported.
    static func expectGuardZoneCatches(_ host: HostState, _ b: UnsafeMutableRawPointer, _ size: Int) {
        memset(b, 1, size)
        #expect(host.brokenHostBlock() == nil)
        (b + size).storeBytes(of: 0, as: UInt8.self) // one byte past the block: its guard zone
        #expect(host.brokenHostBlock() != nil)
    }
}
