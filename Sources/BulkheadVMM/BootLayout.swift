/// Where the VMM puts boot structures in guest physical memory. Firecracker's layout, so guests and
/// tools that know Firecracker find things where they expect them.
public enum BootLayout {
    /// GDT (4 entries) and, after it, an empty IDT: interrupts stay off until the kernel loads its own.
    public static let gdtAddress: UInt64 = 0x500
    public static let idtAddress: UInt64 = 0x520
    /// Initial stack pointer: below the zero page's neighbours, in the low 64 KiB that Linux never uses early.
    public static let bootStackPointer: UInt64 = 0x8ff0
    /// struct boot_params ("zero page"); RSI points here at the 64-bit entry.
    public static let zeroPageAddress: UInt64 = 0x7000
    /// PML4, PDPT and page directories of the identity map.
    public static let pml4Address: UInt64 = 0x9000
    public static let pdptAddress: UInt64 = 0xa000
    public static let pageDirectoriesAddress: UInt64 = 0xb000
    /// Kernel command line, NUL-terminated.
    public static let commandLineAddress: UInt64 = 0x20000
    /// Longest command line accepted (Linux's COMMAND_LINE_SIZE on x86 is 2048 including the NUL).
    public static let commandLineMaxSize: UInt64 = 2048
    /// End of conventional memory: 0x9fc00-0x100000 is EBDA, VGA and BIOS ROM on a PC, not RAM.
    public static let lowMemoryEnd: UInt64 = 0x9fc00
    /// Where RAM above 1 MiB starts; the kernel is loaded at or above it.
    public static let highMemoryStart: UInt64 = 0x10_0000
    /// Start of the 32-bit MMIO hole (LAPIC, IOAPIC, virtio-mmio devices); RAM stays below it.
    public static let mmioGapStart: UInt64 = 0xc000_0000
    /// virtio-mmio windows, one page each from here (Firecracker's MMIO_MEM_START).
    public static let virtioMMIOStart: UInt64 = 0xd000_0000
    /// GSIs of virtio-mmio devices: IOAPIC pins 5-23, above the ISA devices that matter
    /// (timer 0, keyboard 1, COM1 4), as Firecracker allocates them.
    public static let virtioGSIs: ClosedRange<UInt32> = 5...23
}
