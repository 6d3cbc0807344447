import Testing
@testable import BulkheadVMM

@Suite("Guest memory bounds")
struct GuestMemoryTests {
    @Test func readWriteRoundTrip() throws {
        let memory = try GuestMemory(size: 1 << 20)
        try memory.write([1, 2, 3], at: 0xffffd)
        #expect(try memory.read(at: 0xffffd, count: 3) == [1, 2, 3])
        try memory.store(UInt64(0x1122_3344_5566_7788), at: 0x1001)  // unaligned
        #expect(try memory.load(UInt32.self, at: 0x1001) == 0x5566_7788)
        #expect(try memory.read(at: 0x1001, count: 1) == [0x88])  // little-endian
    }

    @Test func outOfRangeAccessesAreErrorsNotCrashes() throws {
        let memory = try GuestMemory(size: 1 << 20)
        #expect(throws: VMMError.guestAddressOutOfRange(address: 0xfffff, length: 2, memorySize: 1 << 20)) {
            try memory.read(at: 0xfffff, count: 2)
        }
        #expect(throws: VMMError.self) { try memory.read(at: 1 << 20, count: 1) }
        #expect(throws: VMMError.self) { try memory.read(at: UInt64.max, count: 2) }  // address + length overflows
        #expect(throws: VMMError.self) { try memory.write([0], at: 1 << 40) }
        #expect(throws: VMMError.self) { try memory.load(UInt64.self, at: (1 << 20) - 7) }
        #expect(throws: VMMError.self) { try memory.store(UInt16(1), at: UInt64.max) }
        #expect(throws: VMMError.self) { try memory.fill(0, at: 4096, count: UInt64.max) }
        #expect(try memory.read(at: 1 << 20, count: 0) == [])  // an empty range at the end is fine
    }

    /// KVM can back guest memory with 2 MiB nested pages only if host and guest addresses agree
    /// modulo 2 MiB.
    @Test func hostMappingIsHugePageAlignedAndExactlySized() throws {
        for size: UInt64 in [1 << 20, 3 << 20, 256 << 20, (2 << 20) + 4096] {
            let memory = try GuestMemory(size: size)
            #expect(Int(bitPattern: memory.hostAddress) % GuestMemory.hostAlignment == 0, "size \(size)")
            try memory.fill(0xab, at: 0, count: size)  // every byte of the range is mapped
            #expect(try memory.read(at: size - 1, count: 1) == [0xab])
        }
    }

    @Test func sizeMustBePageMultiple() {
        #expect(throws: VMMError.self) { try GuestMemory(size: 4095) }
        #expect(throws: VMMError.self) { try GuestMemory(size: 0) }
    }

    @Test func errorsNameTheRange() {
        let e = VMMError.guestAddressOutOfRange(address: 0x1000, length: 0x10, memorySize: 0x800)
        #expect(e.description == "guest physical range 0x1000+0x10 is outside guest memory of 0x800 bytes")
        #expect(KVMError("KVM_CREATE_VM", errno: 13).description == "KVM_CREATE_VM: Permission denied (errno 13)")
    }
}
