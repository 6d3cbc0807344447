/// Loads an ELF64 x86-64 executable (a vmlinux, or a test guest) into guest memory: every PT_LOAD
/// segment at its physical address (p_paddr, as Linux's vmlinux and Firecracker expect), the bytes
/// past p_filesz zeroed. The whole image is validated before a byte is copied, so a truncated or
/// garbage file is refused with a reason and never half-loaded.
public struct ELFKernel: Equatable, Sendable {
    public struct Segment: Equatable, Sendable {
        public var fileOffset: UInt64
        public var physicalAddress: UInt64
        public var fileSize: UInt64
        public var memorySize: UInt64
    }

    /// e_entry: for vmlinux the physical address of startup_64 (its linker script says ENTRY(phys_startup_64)).
    public let entry: UInt64
    public let segments: [Segment]
    private let image: [UInt8]

    /// One past the highest byte any segment occupies.
    public var end: UInt64 { segments.map { $0.physicalAddress + $0.memorySize }.max() ?? 0 }

    static let headerSize = 64
    static let programHeaderSize = 56
    static let ptLoad: UInt32 = 1

    /// Parses and validates `image`. `minimumAddress`/`memorySize` bound where segments may land.
    public init(image: [UInt8], memorySize: UInt64,
                minimumAddress: UInt64 = BootLayout.highMemoryStart) throws(VMMError) {
        func fail(_ reason: String) -> VMMError { .invalidELF(reason) }
        guard image.count >= Self.headerSize else {
            throw fail("\(image.count) bytes is shorter than an ELF64 header (64 bytes)")
        }
        guard image[0] == 0x7f, image[1] == 0x45, image[2] == 0x4c, image[3] == 0x46 else {
            throw fail("no ELF magic (\\x7fELF) at offset 0")
        }
        guard image[4] == 2 else { throw fail("EI_CLASS \(image[4]) is not ELFCLASS64") }
        guard image[5] == 1 else { throw fail("EI_DATA \(image[5]) is not little-endian") }
        let reader = LittleEndianReader(bytes: image)
        let type = reader.u16(16), machine = reader.u16(18)
        guard type == 2 else { throw fail("e_type \(type) is not ET_EXEC") }
        guard machine == 62 else { throw fail("e_machine \(machine) is not EM_X86_64 (62)") }
        let entry = reader.u64(24), phoff = reader.u64(32)
        let phentsize = Int(reader.u16(54)), phnum = Int(reader.u16(56))
        guard phentsize == Self.programHeaderSize else {
            throw fail("e_phentsize \(phentsize), want \(Self.programHeaderSize)")
        }
        guard phnum > 0 else { throw fail("no program headers") }
        let (tableEnd, overflow) = phoff.addingReportingOverflow(UInt64(phnum * phentsize))
        guard !overflow, tableEnd <= UInt64(image.count) else {
            throw fail("program header table (offset \(phoff), \(phnum) entries) runs past the end of the \(image.count)-byte file")
        }

        var segments: [Segment] = []
        for i in 0..<phnum {
            let at = Int(phoff) + i * phentsize
            guard reader.u32(at) == Self.ptLoad else { continue }
            let s = Segment(fileOffset: reader.u64(at + 8), physicalAddress: reader.u64(at + 24),
                            fileSize: reader.u64(at + 32), memorySize: reader.u64(at + 40))
            let (fileEnd, o1) = s.fileOffset.addingReportingOverflow(s.fileSize)
            guard !o1, fileEnd <= UInt64(image.count) else {
                throw fail("PT_LOAD segment \(i) (offset \(s.fileOffset), \(s.fileSize) bytes) runs past the end of the \(image.count)-byte file")
            }
            guard s.fileSize <= s.memorySize else {
                throw fail("PT_LOAD segment \(i) has p_filesz \(s.fileSize) > p_memsz \(s.memorySize)")
            }
            let (memEnd, o2) = s.physicalAddress.addingReportingOverflow(s.memorySize)
            guard !o2, s.physicalAddress >= minimumAddress, memEnd <= memorySize else {
                throw fail("PT_LOAD segment \(i) at physical 0x\(String(s.physicalAddress, radix: 16)) (+0x\(String(s.memorySize, radix: 16))) is outside guest RAM 0x\(String(minimumAddress, radix: 16))-0x\(String(memorySize, radix: 16))")
            }
            segments.append(s)
        }
        guard !segments.isEmpty else { throw fail("no PT_LOAD segments") }
        guard segments.contains(where: { entry >= $0.physicalAddress && entry < $0.physicalAddress + $0.memorySize }) else {
            throw fail("entry point 0x\(String(entry, radix: 16)) is not inside any PT_LOAD segment")
        }
        self.entry = entry
        self.segments = segments
        self.image = image
    }

    /// Copies every segment into guest memory and zeroes its tail (.bss).
    public func load(into memory: GuestMemory) throws(VMMError) {
        for s in segments {
            let start = Int(s.fileOffset)
            try memory.write(image[start..<start + Int(s.fileSize)], at: s.physicalAddress)
            try memory.fill(0, at: s.physicalAddress + s.fileSize, count: s.memorySize - s.fileSize)
        }
    }
}

/// Little-endian field reads from a byte array; callers check bounds first.
struct LittleEndianReader {
    let bytes: [UInt8]
    func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }
    func u64(_ at: Int) -> UInt64 { UInt64(u32(at)) | UInt64(u32(at + 4)) << 32 }
}
