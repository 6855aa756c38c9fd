import Foundation
import Synchronization

/// The host's `alloc` blocks of at least `minimum` bytes (not `alloc_zeroed`'s): each its own anonymous
/// mapping, and the last one given back kept mapped for the next request it covers.
///
/// A frozen layer gives its scratch back after every forward (conv.c's `release_scratch`) so that the next
/// layer can take the same memory. glibc's malloc serves that from its heap once a block has been freed,
/// but only for blocks under its largest mapping threshold (32 MB on 64-bit Linux): larger ones it maps for
/// every call and unmaps at every free, so each forward faults their pages in again and the kernel zeroes
/// them. At batch 16 a stem's NCHW output before its reorder is 51 MB (ResNet's 64 x 112 x 112 planes):
/// 12,544 page faults a forward. Keeping the block mapped between the free and the next alloc: ResNet-50,
/// batch 16, 1 thread, AMD EPYC Zen 5, alternating processes, 1.034x (6 rounds, 1.001-1.073).
///
/// One block is kept, the larger of the last two given back, so what is held beyond the layers' own blocks
/// is at most the largest block one layer took; a request it covers takes it whatever its size.
final class LargeBlockCache: Sendable {
    /// Blocks from this size on (header and guard room included) are mapped here: glibc's
    /// `DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit systems.
    static let minimum = 32 << 20

    private let kept = Mutex<(address: UInt, size: Int)?>(nil)

    /// A mapping of at least `size` bytes and its length: the kept one when it is large enough, else a new one
    /// (the kept one unmapped first, so that the two are never held at once); nil when none can be mapped.
    func take(_ size: Int) -> (block: UnsafeMutableRawPointer, size: Int)? {
        let old: (address: UInt, size: Int)? = kept.withLock { slot in
            defer { slot = nil }
            return slot
        }
        if let old, old.size >= size, let block = UnsafeMutableRawPointer(bitPattern: old.address) {
            return (block, old.size)
        }
        if let old, let block = UnsafeMutableRawPointer(bitPattern: old.address) { munmap(block, old.size) }
        return Self.map(size)
    }

    /// A new private anonymous mapping of `size` bytes rounded up to whole pages, and its length; nil when
    /// none can be mapped.
    static func map(_ size: Int) -> (block: UnsafeMutableRawPointer, size: Int)? {
        let length = (size + 4095) & ~4095
        let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { return nil }
        return (p, length)
    }

    /// Takes back a mapping from `take`: it is kept unless the kept one is larger, and the other unmapped.
    func give(_ block: UnsafeMutableRawPointer, size: Int) {
        let unmap: (address: UInt, size: Int)? = kept.withLock { slot in
            let given = (address: UInt(bitPattern: block), size: size)
            guard let current = slot else {
                slot = given
                return nil
            }
            if current.size >= size { return given }
            slot = given
            return current
        }
        if let unmap, let p = UnsafeMutableRawPointer(bitPattern: unmap.address) { munmap(p, unmap.size) }
    }

    deinit {
        if let slot = kept.withLock({ $0 }), let p = UnsafeMutableRawPointer(bitPattern: slot.address) {
            munmap(p, slot.size)
        }
    }
}
