import CPly
import Foundation
import Testing
@testable import Ply

/// The host's `alloc` on a batch lane's thread (LaneBlockCache): blocks from 1 MB up to LargeBlockCache's
/// minimum are mapped, and up to `perThread` per thread kept once freed, for that thread's next requests
/// (glibc's arenas for threads other than the main one unmapped and faulted them in again every forward).
@Suite struct LaneBlockCacheTests {
    static func state() -> HostState { HostState(seed: 1, threads: 1, logHandler: { _, _ in }) }

    /// Runs `body` with the calling thread marked as carrying a lane, as BatchLanes does.
    static func inLane<T>(_ body: () throws -> T) rethrows -> T {
        cply_lane_set(1)
        defer { cply_lane_set(0) }
        return try body()
    }

    @Test func aLanesFreedBlockServesItsNextRequest() throws {
        let host = Self.state()
        try Self.inLane {
            let a = try #require(host.allocate(4 << 20))
            a.storeBytes(of: 0x1a9e, as: Int.self)
            host.release(a)
            #expect(host.laneBlocks.keptCount == 1)
            #expect(host.liveAllocations.load(ordering: .relaxed) == 0 && host.liveBytes.load(ordering: .relaxed) == 0)
            // a smaller request takes the kept mapping, its pages already there
            let b = try #require(host.allocate(3 << 20))
            #expect(b == a && b.load(as: Int.self) == 0x1a9e, "not the kept mapping: a fresh one reads zero")
            // while it is taken, a larger request maps its own
            let c = try #require(host.allocate(6 << 20))
            #expect(c != b)
            host.release(b)
            host.release(c)
            // the smallest kept block that covers a request: the 4 MB one for 2 MB
            let d = try #require(host.allocate(2 << 20))
            #expect(d == a)
            host.release(d)
            #expect(host.laneBlocks.keptCount == 2)
        }
    }

    @Test func aThreadKeepsAtMostPerThreadBlocksTheLargest() throws {
        let host = Self.state()
        try Self.inLane {
            let n = LaneBlockCache.perThread + 2
            let blocks = try (0..<n).map { i in try #require(host.allocate((2 + i) << 20)) }
            for b in blocks { host.release(b) }
            #expect(host.laneBlocks.keptCount == LaneBlockCache.perThread)
            // the two smallest went: a 2 MB request takes the smallest kept, the third block (4 MB)
            let s = try #require(host.allocate(2 << 20))
            #expect(s == blocks[2])
            host.release(s)
        }
        #expect(host.liveAllocations.load(ordering: .relaxed) == 0)
    }

    @Test func outsideALaneAndZeroedBlocksDoNotTakeIt() throws {
        let host = Self.state()
        let a = try #require(host.allocate(4 << 20)) // not in a lane: glibc's
        host.release(a)
        #expect(host.laneBlocks.keptCount == 0)
        try Self.inLane {
            let b = try #require(host.allocate(4 << 20))
            memset(b, 0xff, 4 << 20)
            host.release(b)
            // alloc_zeroed reads zero: never the kept block's contents
            let z = try #require(host.allocate(4 << 20, zeroed: true))
            #expect(z != b)
            let bytes = UnsafeBufferPointer(start: z.assumingMemoryBound(to: UInt8.self), count: 4 << 20)
            #expect(bytes.allSatisfy { $0 == 0 })
            host.release(z)
            // blocks below the minimum stay glibc's
            let small = try #require(host.allocate(LaneBlockCache.minimum / 2))
            host.release(small)
            #expect(host.laneBlocks.keptCount == 1)
        }
    }

    @Test func guardZonesHoldOnAReusedLaneBlock() throws {
        let host = Self.state()
        host.checkPlugins.store(true, ordering: .relaxed)
        try Self.inLane {
            let a = try #require(host.allocate(5 << 20))
            host.release(a)
            let size = 3 << 20
            let b = try #require(host.allocate(size))
            #expect(b == a)
            LargeBlockCacheTests.expectGuardZoneCatches(host, b, size)
            host.release(b)
        }
    }
}
