import Glibc

/// Guest physical memory starting at guest physical address 0: one anonymous host mapping.
///
/// MAP_NORESERVE so a large guest costs only the pages it touches. Every access is bounds-checked
/// against the mapping and returns an error for a bad address instead of faulting the VMM.
///
/// The mapping starts on a 2 MiB boundary, as QEMU aligns guest RAM: KVM maps a guest page with a
/// 2 MiB nested page table entry only where the host address and the guest physical address agree
/// modulo 2 MiB and the host backs it with a huge page (THP). At mmap's 4 KiB alignment every guest
/// page costs its own nested page fault (an exit), whatever the host's THP setting.
public final class GuestMemory {
    public let size: UInt64
    /// Host address of guest physical address 0 (what KVM_SET_USER_MEMORY_REGION gets).
    public let hostAddress: UnsafeMutableRawPointer
    /// The alignment of `hostAddress`: x86-64's huge page size.
    public static let hostAlignment = 2 << 20

    public init(size: UInt64) throws {
        guard size > 0, size % 4096 == 0, size <= UInt64(Int.max - Self.hostAlignment) else {
            throw VMMError.invalidConfiguration("guest memory size \(size) must be a positive multiple of 4096")
        }
        // Map 2 MiB more than needed and unmap the unaligned head and the tail beyond `size`.
        let mapped = Int(size) + Self.hostAlignment
        let p = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else { throw KVMError("mmap guest memory of \(size) bytes", errno: errno) }
        let head = (Self.hostAlignment - Int(bitPattern: p) % Self.hostAlignment) % Self.hostAlignment
        if head > 0 { munmap(p, head) }
        munmap(p + head + Int(size), mapped - head - Int(size))
        self.size = size
        self.hostAddress = p + head
    }

    deinit { munmap(hostAddress, Int(size)) }

    /// Throws unless [address, address+length) lies inside guest memory (overflow-safe).
    public func checkRange(_ address: UInt64, length: UInt64) throws(VMMError) {
        let (end, overflow) = address.addingReportingOverflow(length)
        guard !overflow, end <= size else {
            throw .guestAddressOutOfRange(address: address, length: length, memorySize: size)
        }
    }

    public func read(at address: UInt64, count: Int) throws(VMMError) -> [UInt8] {
        guard count >= 0 else { throw .guestAddressOutOfRange(address: address, length: 0, memorySize: size) }
        try checkRange(address, length: UInt64(count))
        return Array(UnsafeRawBufferPointer(start: hostAddress + Int(address), count: count))
    }

    public func write<Bytes: Collection>(_ bytes: Bytes, at address: UInt64) throws(VMMError) where Bytes.Element == UInt8 {
        try checkRange(address, length: UInt64(bytes.count))
        // Contiguous bytes (arrays, slices: kernel and initrd images) by memcpy: the generic
        // element-wise copy costs ~0.5 s per boot in a debug build (12x more than the release
        // build, measured; 11 s under the nested-boot test's software CPU).
        let copied: Void? = bytes.withContiguousStorageIfAvailable { source in
            if let base = source.baseAddress, source.count > 0 { memcpy(hostAddress + Int(address), base, source.count) }
        }
        if copied == nil {
            let target = UnsafeMutableRawBufferPointer(start: hostAddress + Int(address), count: bytes.count)
            _ = target.initializeMemory(as: UInt8.self, from: bytes)
        }
    }

    public func fill(_ byte: UInt8, at address: UInt64, count: UInt64) throws(VMMError) {
        try checkRange(address, length: count)
        memset(hostAddress + Int(address), Int32(byte), Int(count))
    }

    /// The host address of [address, address+length) after checking it lies in guest memory, for
    /// I/O straight between guest buffers and files (pread/pwrite) without a copy.
    public func hostPointer(_ address: UInt64, length: UInt64) throws(VMMError) -> UnsafeMutableRawPointer {
        try checkRange(address, length: length)
        return hostAddress + Int(address)
    }

    /// Little-endian integer loads and stores (x86 guests are little-endian; addresses may be unaligned).
    public func load<T: FixedWidthInteger>(_: T.Type, at address: UInt64) throws(VMMError) -> T {
        try checkRange(address, length: UInt64(MemoryLayout<T>.size))
        return T(littleEndian: (hostAddress + Int(address)).loadUnaligned(as: T.self))
    }

    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(VMMError) {
        try checkRange(address, length: UInt64(MemoryLayout<T>.size))
        (hostAddress + Int(address)).storeBytes(of: value.littleEndian, as: T.self)
    }
}
