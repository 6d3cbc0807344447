/// A Linux bzImage (Documentation/arch/x86/boot.rst): a real-mode setup part whose setup header
/// describes the kernel, followed by the protected-mode kernel (the self-decompressing payload).
///
/// The VMM does what a 64-bit boot loader does: it loads the protected-mode kernel at 1 MiB, copies
/// the setup header into the zero page, and enters at load address + 0x200 (startup_64 of the
/// decompressor) in long mode. The setup sectors never run. Everything is checked before a byte is
/// copied, so a file that is not a bootable 64-bit kernel is refused before any guest runs.
public struct BzImage: Equatable, Sendable {
    /// Offsets of setup header fields, in the file and in the zero page alike.
    public enum Field {
        public static let setupSects = 0x1f1
        public static let sysSize = 0x1f4
        public static let bootFlag = 0x1fe
        /// Second byte of the 2-byte jump at 0x200: the header ends at 0x202 + this value.
        public static let jumpOffset = 0x201
        public static let header = 0x202
        public static let version = 0x206
        public static let typeOfLoader = 0x210
        public static let loadFlags = 0x211
        public static let code32Start = 0x214
        public static let kernelAlignment = 0x230
        public static let relocatableKernel = 0x234
        public static let xloadFlags = 0x236
        public static let cmdlineSize = 0x238
        public static let prefAddress = 0x258
        public static let initSize = 0x260
    }

    /// Boot protocol 2.12 added xloadflags, which is how a kernel says it has a 64-bit entry.
    public static let minimumProtocol: UInt16 = 0x020c
    /// xloadflags XLF_KERNEL_64: the kernel has the legacy 64-bit entry point at +0x200.
    public static let xlfKernel64: UInt16 = 0x0001
    /// The 64-bit entry is this far into the protected-mode kernel.
    public static let entryOffset: UInt64 = 0x200
    /// setup_sects 0 means 4, for compatibility with ancient kernels.
    static let defaultSetupSects = 4
    /// The zero page keeps the setup header up to here; later bytes of boot_params are the VMM's.
    static let setupHeaderLimit = 0x290

    /// Where the protected-mode kernel is put: 1 MiB, as every LOADED_HIGH loader does.
    public let loadAddress: UInt64
    public let protocolVersion: UInt16
    /// Where the decompressed kernel will run: pref_address for a fixed kernel; for a relocatable
    /// one the load address rounded up to kernel_alignment, but not below pref_address.
    public let runtimeStart: UInt64
    /// init_size: linear memory the kernel needs from `runtimeStart` before it reads the memory map.
    public let initSize: UInt64
    /// cmdline_size: the longest command line the kernel takes (without the NUL).
    public let commandLineSize: UInt32
    /// The setup header as the kernel wrote it (zero page offsets 0x1f1 to the header's end).
    public let setupHeader: [UInt8]
    private let payload: ArraySlice<UInt8>

    /// 64-bit entry: startup_64 of the decompressor.
    public var entry: UInt64 { loadAddress + Self.entryOffset }
    /// One past the highest byte the kernel uses before it reads the memory map.
    public var end: UInt64 { max(loadAddress + UInt64(payload.count), runtimeStart + initSize) }

    /// True when `image` carries a setup header's boot flag or "HdrS" (what MicroVM calls a bzImage).
    public static func hasSetupHeader(_ image: [UInt8]) -> Bool {
        guard image.count >= Field.header + 4 else { return false }
        let r = LittleEndianReader(bytes: image)
        return r.u16(Field.bootFlag) == ZeroPage.bootFlagValue || r.u32(Field.header) == ZeroPage.headerMagic
    }

    public init(image: [UInt8], memorySize: UInt64,
                loadAddress: UInt64 = BootLayout.highMemoryStart) throws(VMMError) {
        func fail(_ reason: String) -> VMMError { .invalidBzImage(reason) }
        let hex = { (v: UInt64) in "0x" + String(v, radix: 16) }
        guard image.count >= 0x264 else {
            throw fail("\(image.count) bytes is shorter than a setup header (0x264 bytes)")
        }
        let r = LittleEndianReader(bytes: image)
        guard r.u16(Field.bootFlag) == ZeroPage.bootFlagValue, r.u32(Field.header) == ZeroPage.headerMagic else {
            throw fail("not a Linux kernel: no boot flag 0xAA55 at 0x1fe and \"HdrS\" at 0x202")
        }
        let version = r.u16(Field.version)
        guard version >= Self.minimumProtocol else {
            throw fail("boot protocol \(version >> 8).\(version & 0xff) is older than 2.12 (no 64-bit entry)")
        }
        guard image[Field.loadFlags] & ZeroPage.loadedHigh != 0 else {
            throw fail("loadflags has no LOADED_HIGH: a zImage loaded at 0x10000 cannot be booted")
        }
        guard r.u16(Field.xloadFlags) & Self.xlfKernel64 != 0 else {
            throw fail("xloadflags has no XLF_KERNEL_64: the kernel has no 64-bit entry point")
        }
        let sects = image[Field.setupSects] == 0 ? Self.defaultSetupSects : Int(image[Field.setupSects])
        let kernelOffset = (sects + 1) * 512
        let kernelSize = Int(r.u32(Field.sysSize)) * 16
        guard kernelSize > 0 else { throw fail("syssize is 0: no protected-mode kernel") }
        guard kernelOffset + kernelSize <= image.count else {
            throw fail("truncated: setup (\(kernelOffset) bytes) + protected-mode kernel (syssize \(kernelSize) bytes) is more than the \(image.count)-byte file")
        }
        let alignment = UInt64(r.u32(Field.kernelAlignment))
        let relocatable = image[Field.relocatableKernel] != 0
        let preferred = r.u64(Field.prefAddress)
        // The decompressor (startup_64 in arch/x86/boot/compressed/head_64.S) extracts the kernel
        // at the load address rounded up to kernel_alignment, but never below LOAD_PHYSICAL_ADDR,
        // which pref_address holds; a fixed kernel always runs at pref_address.
        let start: UInt64
        if relocatable {
            let a = alignment.nonzeroBitCount == 1 ? alignment : 1
            start = max((loadAddress + a - 1) & ~(a - 1), preferred)
        } else {
            start = preferred == 0 ? loadAddress : preferred
        }
        let initSize = UInt64(r.u32(Field.initSize))
        let needed = max(loadAddress + UInt64(kernelSize), start + initSize)
        guard start >= loadAddress, needed <= memorySize else {
            throw fail("the kernel needs guest memory up to \(hex(needed)) (runs at \(hex(start)), init_size \(hex(initSize))), more than the \(hex(memorySize)) bytes of guest RAM")
        }
        let headerEnd = min(Field.header + Int(image[Field.jumpOffset]), Self.setupHeaderLimit, kernelOffset)
        self.loadAddress = loadAddress
        protocolVersion = version
        runtimeStart = start
        self.initSize = initSize
        commandLineSize = r.u32(Field.cmdlineSize)
        setupHeader = Array(image[Field.setupSects..<max(headerEnd, Field.initSize + 4)])
        payload = image[kernelOffset..<kernelOffset + kernelSize]
    }

    /// Copies the protected-mode kernel to `loadAddress`.
    public func load(into memory: GuestMemory) throws(VMMError) {
        try memory.write(payload, at: loadAddress)
    }
}
