import CBulkhead

/// A malformed virtqueue: what the driver put in guest memory breaks the split-ring rules. The
/// device that meets one stops using the queue and asks for a reset (DEVICE_NEEDS_RESET).
public struct VirtqueueError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One buffer of a descriptor chain: guest physical range, and whether the device may write it.
public struct VirtqueueBuffer: Equatable, Sendable {
    public var address: UInt64
    public var length: UInt32
    public var deviceWritable: Bool
}

/// A request the driver made available: the head descriptor's index and the buffers of its chain,
/// device-readable ones first, every one checked to lie inside guest memory.
public struct DescriptorChain: Equatable, Sendable {
    public var head: UInt16
    public var buffers: [VirtqueueBuffer]

    public var readable: [VirtqueueBuffer] { buffers.filter { !$0.deviceWritable } }
    public var writable: [VirtqueueBuffer] { buffers.filter(\.deviceWritable) }
}

/// A split virtqueue (virtio 1.x §2.7): descriptor table, available ring and used ring in guest
/// memory, at the addresses the driver programmed through the transport.
///
/// Nothing the driver wrote is trusted: ring areas and every buffer are checked against guest
/// memory, descriptor indices against the queue size, chains are at most `size` descriptors long
/// (so a loop ends as an error, not a hang), device-writable buffers must follow the readable
/// ones, and indirect descriptors (not offered) are refused. Memory is read through GuestMemory,
/// whose accesses are bounds-checked, so a hostile driver can make the queue fail but never make
/// the VMM read or write outside the guest.
public struct Virtqueue {
    /// Descriptor flags.
    static let next: UInt16 = 1
    static let write: UInt16 = 2
    static let indirect: UInt16 = 4
    static let descriptorSize: UInt64 = 16

    /// Size the driver chose (QueueNum): a power of two, at most the device's maximum.
    public var size: UInt16 = 0
    public var descriptorTable: UInt64 = 0
    public var availableRing: UInt64 = 0
    public var usedRing: UInt64 = 0
    public var ready = false
    /// The next available-ring entry the device will take (free-running, wraps at 2^16).
    public private(set) var nextAvailable: UInt16 = 0
    /// The next used-ring index the device will publish.
    public private(set) var nextUsed: UInt16 = 0

    public init() {}

    /// Forgets everything (device reset, or QueueReady written 0).
    public mutating func reset() { self = Virtqueue() }

    /// Checks the three areas lie in guest memory with the alignment the spec demands; called when
    /// the driver sets QueueReady, so a bad layout is caught before the first notification.
    public func validate(memory: GuestMemory) throws(VirtqueueError) {
        guard size > 0, size & (size - 1) == 0 else {
            throw VirtqueueError("queue size \(size) is not a power of two")
        }
        let n = UInt64(size)
        let areas: [(String, UInt64, UInt64, UInt64)] = [
            ("descriptor table", descriptorTable, Self.descriptorSize * n, 16),
            ("available ring", availableRing, 6 + 2 * n, 2),
            ("used ring", usedRing, 6 + 8 * n, 4),
        ]
        for (name, address, length, alignment) in areas {
            guard address % alignment == 0 else {
                throw VirtqueueError("\(name) at 0x\(String(address, radix: 16)) is not \(alignment)-byte aligned")
            }
            do { try memory.checkRange(address, length: length) } catch {
                throw VirtqueueError("\(name) at 0x\(String(address, radix: 16)) (\(length) bytes) is outside guest memory")
            }
        }
    }

    /// The next chain the driver made available, or nil when there is none. Throws if the ring
    /// or the chain is malformed; the entry is consumed either way.
    public mutating func popAvailable(memory: GuestMemory) throws(VirtqueueError) -> DescriptorChain? {
        let availableIndex = try load(UInt16.self, at: availableRing + 2, memory, "available ring index")
        let pending = availableIndex &- nextAvailable
        guard pending != 0 else { return nil }
        // Ring entries and descriptors are read only after the index that made them available.
        bh_fence_acquire()
        guard pending <= size else {
            throw VirtqueueError("available index \(availableIndex) is \(pending) entries ahead of the device, more than the queue size \(size)")
        }
        let slot = UInt64(nextAvailable % size)
        let head = try load(UInt16.self, at: availableRing + 4 + 2 * slot, memory, "available ring entry")
        nextAvailable &+= 1
        return try chain(from: head, memory: memory)
    }

    /// Follows a chain from `head`, checking every descriptor.
    func chain(from head: UInt16, memory: GuestMemory) throws(VirtqueueError) -> DescriptorChain {
        var buffers: [VirtqueueBuffer] = []
        var index = head
        while true {
            guard index < size else {
                throw VirtqueueError("descriptor index \(index) is outside the queue of \(size)")
            }
            // A chain can use each descriptor once: more than `size` links means a loop.
            guard buffers.count < Int(size) else {
                throw VirtqueueError("descriptor chain from \(head) is longer than the queue size \(size) (a loop)")
            }
            let at = descriptorTable + Self.descriptorSize * UInt64(index)
            let address = try load(UInt64.self, at: at, memory, "descriptor \(index)")
            let length = try load(UInt32.self, at: at + 8, memory, "descriptor \(index)")
            let flags = try load(UInt16.self, at: at + 12, memory, "descriptor \(index)")
            let next = try load(UInt16.self, at: at + 14, memory, "descriptor \(index)")
            guard flags & Self.indirect == 0 else {
                throw VirtqueueError("descriptor \(index) is indirect, a feature the device did not offer")
            }
            do { try memory.checkRange(address, length: UInt64(length)) } catch {
                throw VirtqueueError("descriptor \(index) buffer 0x\(String(address, radix: 16)) (\(length) bytes) is outside guest memory")
            }
            let writable = flags & Self.write != 0
            if !writable, buffers.last?.deviceWritable == true {
                throw VirtqueueError("descriptor \(index) is device-readable but follows a device-writable one")
            }
            buffers.append(VirtqueueBuffer(address: address, length: length, deviceWritable: writable))
            guard flags & Self.next != 0 else { break }
            index = next
        }
        return DescriptorChain(head: head, buffers: buffers)
    }

    /// Serves every chain the driver made available, at most `size` of them (the ring holds no
    /// more; popAvailable refuses more): `serve` handles one and returns how many bytes it wrote
    /// into its device-writable buffers, and the chain goes back to the used ring. Returns whether
    /// any chain was used. A malformed chain or a throwing `serve` stops at once.
    public mutating func serveAvailable(memory: GuestMemory,
                                        _ serve: (DescriptorChain) throws(VirtqueueError) -> UInt32) throws(VirtqueueError) -> Bool {
        var used = false
        for _ in 0..<Int(size) {
            guard let chain = try popAvailable(memory: memory) else { break }
            let written = try serve(chain)
            try pushUsed(head: chain.head, writtenLength: written, memory: memory)
            used = true
        }
        return used
    }

    /// Returns a chain to the driver: used element {head, bytes written} and the used index.
    public mutating func pushUsed(head: UInt16, writtenLength: UInt32, memory: GuestMemory) throws(VirtqueueError) {
        let slot = UInt64(nextUsed % size)
        let element = usedRing + 4 + 8 * slot
        try store(UInt32(head), at: element, memory, "used ring element")
        try store(writtenLength, at: element + 4, memory, "used ring element")
        // The element must be visible before the index that publishes it (a driver on another
        // vCPU may be polling the index).
        bh_fence_release()
        nextUsed &+= 1
        try store(nextUsed, at: usedRing + 2, memory, "used ring index")
    }

    private func load<T: FixedWidthInteger>(_: T.Type, at address: UInt64, _ memory: GuestMemory, _ what: String) throws(VirtqueueError) -> T {
        do { return try memory.load(T.self, at: address) } catch {
            throw VirtqueueError("\(what) at 0x\(String(address, radix: 16)) is outside guest memory")
        }
    }

    private func store<T: FixedWidthInteger>(_ value: T, at address: UInt64, _ memory: GuestMemory, _ what: String) throws(VirtqueueError) {
        do { try memory.store(value, at: address) } catch {
            throw VirtqueueError("\(what) at 0x\(String(address, radix: 16)) is outside guest memory")
        }
    }
}

extension DescriptorChain {
    /// Copies the device-readable bytes of the chain, in order, up to `limit`.
    func readAll(memory: GuestMemory, limit: Int) throws(VMMError) -> [UInt8] {
        var bytes: [UInt8] = []
        for b in readable {
            if bytes.count >= limit { break }
            bytes += try memory.read(at: b.address, count: min(Int(b.length), limit - bytes.count))
        }
        return bytes
    }
}
