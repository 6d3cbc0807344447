/// Identity-mapped x86-64 page tables for the 64-bit boot entry: one PML4 entry, one PDPT, and one
/// page directory of 2 MiB pages per GiB. Linux's 64-bit entry requires the kernel, zero page and
/// command line to be identity-mapped; it builds its own tables right after.
public struct IdentityPageTables {
    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    static let pageSize: UInt64 = 1 << 7  // PS: a PD entry maps a 2 MiB page

    public let pml4Address: UInt64
    public let pdptAddress: UInt64
    public let pageDirectoriesAddress: UInt64
    /// How many GiB are mapped (1-512); 4 GiB reaches the LAPIC and IOAPIC below 4 GiB.
    public let gibibytes: Int

    public init(pml4Address: UInt64 = BootLayout.pml4Address, pdptAddress: UInt64 = BootLayout.pdptAddress,
                pageDirectoriesAddress: UInt64 = BootLayout.pageDirectoriesAddress, gibibytes: Int = 4) {
        precondition((1...512).contains(gibibytes))
        self.pml4Address = pml4Address
        self.pdptAddress = pdptAddress
        self.pageDirectoriesAddress = pageDirectoriesAddress
        self.gibibytes = gibibytes
    }

    /// The three levels as (guest physical address, 4 KiB page of little-endian entries).
    public func pages() -> [(address: UInt64, bytes: [UInt8])] {
        var pml4 = [UInt64](repeating: 0, count: 512)
        pml4[0] = pdptAddress | Self.present | Self.writable
        var pdpt = [UInt64](repeating: 0, count: 512)
        var result: [(UInt64, [UInt8])] = []
        for g in 0..<gibibytes {
            let pdAddress = pageDirectoriesAddress + UInt64(g) * 4096
            pdpt[g] = pdAddress | Self.present | Self.writable
            let pd = (0..<512).map { i in
                (UInt64(g) << 30) | (UInt64(i) << 21) | Self.present | Self.writable | Self.pageSize
            }
            result.append((pdAddress, Self.littleEndianBytes(pd)))
        }
        return [(pml4Address, Self.littleEndianBytes(pml4)), (pdptAddress, Self.littleEndianBytes(pdpt))] + result
    }

    public func write(to memory: GuestMemory) throws(VMMError) {
        for page in pages() { try memory.write(page.bytes, at: page.address) }
    }

    static func littleEndianBytes(_ entries: [UInt64]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * 8)
        for e in entries { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: e >> (8 * UInt64(i)))) } }
        return bytes
    }
}
