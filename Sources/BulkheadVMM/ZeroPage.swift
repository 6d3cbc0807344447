/// The zero page (struct boot_params of the Linux x86 boot protocol, Documentation/arch/x86/boot.rst
/// and zero-page.rst), built as 4096 bytes. Only the fields a 64-bit direct boot needs are set;
/// everything else stays zero, which the kernel reads as "not provided".
public struct ZeroPage {
    /// Byte offsets inside struct boot_params.
    public enum Offset {
        public static let extRamdiskImage = 0x0c0
        public static let extRamdiskSize = 0x0c4
        public static let extCmdLinePtr = 0x0c8
        public static let e820Entries = 0x1e8
        /// The setup header (struct setup_header) starts here, inside boot_params.
        public static let setupHeader = 0x1f1
        public static let bootFlag = 0x1fe
        public static let header = 0x202
        public static let version = 0x206
        public static let typeOfLoader = 0x210
        public static let loadFlags = 0x211
        public static let code32Start = 0x214
        public static let ramdiskImage = 0x218
        public static let ramdiskSize = 0x21c
        public static let cmdLinePtr = 0x228
        public static let kernelAlignment = 0x230
        public static let cmdlineSize = 0x238
        public static let e820Table = 0x2d0
    }

    public static let size = 4096
    /// The zero page holds at most 128 e820 entries (E820_MAX_ENTRIES_ZEROPAGE).
    public static let maxE820Entries = 128
    public static let e820EntrySize = 20
    public static let bootFlagValue: UInt16 = 0xaa55
    /// "HdrS", the setup header's magic.
    public static let headerMagic: UInt32 = 0x5372_6448
    /// Boot protocol 2.15 (ext_* fields, 64-bit entry).
    public static let protocolVersion: UInt16 = 0x020f
    /// type_of_loader 0xff: "undefined" boot loader, the value for loaders without an assigned id.
    public static let loaderUndefined: UInt8 = 0xff
    /// loadflags LOADED_HIGH: the protected-mode kernel is at 1 MiB or above.
    public static let loadedHigh: UInt8 = 0x01

    public private(set) var bytes = [UInt8](repeating: 0, count: ZeroPage.size)

    /// A zero page for a kernel loaded by this VMM: memory map, command line, optional initrd.
    ///
    /// `setupHeader` is a bzImage's own header (from offset 0x1f1): it is copied as the kernel wrote
    /// it, so its version, alignment and cmdline_size stay the kernel's, and only the fields a boot
    /// loader owns (type_of_loader, code32_start, command line, initrd) are written over it.
    /// Without one (an ELF vmlinux) the VMM fills in a header of its own.
    public init(e820: [E820Entry], commandLineAddress: UInt64, commandLineSize: UInt32,
                ramdisk: (address: UInt64, size: UInt64)? = nil,
                setupHeader: [UInt8]? = nil, kernelLoadAddress: UInt64 = BootLayout.highMemoryStart) throws(VMMError) {
        guard e820.count <= ZeroPage.maxE820Entries else {
            throw .invalidConfiguration("\(e820.count) e820 entries, the zero page holds \(ZeroPage.maxE820Entries)")
        }
        if let setupHeader {
            guard Offset.setupHeader + setupHeader.count <= Offset.e820Table else {
                throw .invalidConfiguration("setup header of \(setupHeader.count) bytes overlaps the e820 table")
            }
            bytes.replaceSubrange(Offset.setupHeader..<Offset.setupHeader + setupHeader.count, with: setupHeader)
            put(UInt32(truncatingIfNeeded: kernelLoadAddress), at: Offset.code32Start)
        } else {
            put(ZeroPage.bootFlagValue, at: Offset.bootFlag)
            put(ZeroPage.headerMagic, at: Offset.header)
            put(ZeroPage.protocolVersion, at: Offset.version)
            bytes[Offset.loadFlags] = ZeroPage.loadedHigh
            // Linux relocates itself to this alignment; 16 MiB is its default CONFIG_PHYSICAL_ALIGN.
            put(UInt32(0x100_0000), at: Offset.kernelAlignment)
            put(commandLineSize, at: Offset.cmdlineSize)
        }
        bytes[Offset.typeOfLoader] = ZeroPage.loaderUndefined

        // Addresses above 4 GiB go in the ext_* high halves (boot protocol 2.12+).
        put(UInt32(truncatingIfNeeded: commandLineAddress), at: Offset.cmdLinePtr)
        put(UInt32(truncatingIfNeeded: commandLineAddress >> 32), at: Offset.extCmdLinePtr)
        if let ramdisk {
            put(UInt32(truncatingIfNeeded: ramdisk.address), at: Offset.ramdiskImage)
            put(UInt32(truncatingIfNeeded: ramdisk.size), at: Offset.ramdiskSize)
            put(UInt32(truncatingIfNeeded: ramdisk.address >> 32), at: Offset.extRamdiskImage)
            put(UInt32(truncatingIfNeeded: ramdisk.size >> 32), at: Offset.extRamdiskSize)
        }

        bytes[Offset.e820Entries] = UInt8(e820.count)
        for (i, entry) in e820.enumerated() {
            let at = Offset.e820Table + i * ZeroPage.e820EntrySize
            put(entry.address, at: at)
            put(entry.size, at: at + 8)
            put(entry.kind.rawValue, at: at + 16)
        }
    }

    private mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, b) in raw.enumerated() { bytes[offset + i] = b }
        }
    }
}
