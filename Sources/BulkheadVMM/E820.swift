/// One BIOS e820 memory-map entry, as struct boot_e820_entry in the zero page (20 packed bytes).
public struct E820Entry: Equatable, Sendable {
    public enum Kind: UInt32, Sendable {
        case ram = 1
        case reserved = 2
        case acpiReclaimable = 3
        case acpiNVS = 4
    }

    public var address: UInt64
    public var size: UInt64
    public var kind: Kind

    public init(address: UInt64, size: UInt64, kind: Kind) {
        self.address = address
        self.size = size
        self.kind = kind
    }

    /// The memory map the VMM gives a guest with `memorySize` bytes of RAM at guest physical 0:
    /// conventional memory below the EBDA, then everything from 1 MiB up. The 640 KiB-1 MiB hole is
    /// left out so the kernel does not put anything where a PC has ROM (Firecracker does the same).
    public static func memoryMap(memorySize: UInt64) -> [E820Entry] {
        precondition(memorySize > BootLayout.highMemoryStart && memorySize <= BootLayout.mmioGapStart,
                     "guest memory must be larger than 1 MiB and end below the MMIO gap")
        return [
            E820Entry(address: 0, size: BootLayout.lowMemoryEnd, kind: .ram),
            E820Entry(address: BootLayout.highMemoryStart, size: memorySize - BootLayout.highMemoryStart, kind: .ram),
        ]
    }
}
