/// The guest kernel in either format the VMM boots: an ELF64 vmlinux (or test guest), or a
/// bzImage. Told apart by content: a setup header's boot flag or "HdrS" means bzImage, the ELF
/// magic (or a truncated piece of it) means ELF, and anything else is not a kernel.
public enum KernelImage: Equatable, Sendable {
    case elf(ELFKernel)
    case bzImage(BzImage)

    public init(image: [UInt8], memorySize: UInt64) throws(VMMError) {
        let elfMagic: [UInt8] = [0x7f, 0x45, 0x4c, 0x46]
        if BzImage.hasSetupHeader(image) {
            self = .bzImage(try BzImage(image: image, memorySize: memorySize))
        } else if !image.isEmpty, image.prefix(4).elementsEqual(elfMagic.prefix(min(4, image.count))) {
            self = .elf(try ELFKernel(image: image, memorySize: memorySize))
        } else {
            throw .invalidBzImage(
                "not a Linux kernel: no ELF magic (\\x7fELF) at 0, no boot flag 0xAA55 at 0x1fe or \"HdrS\" at 0x202")
        }
    }

    /// Guest physical address of the 64-bit entry point.
    public var entry: UInt64 {
        switch self {
        case let .elf(k): k.entry
        case let .bzImage(k): k.entry
        }
    }

    /// One past the highest byte the kernel occupies early on; an initrd must go above it.
    public var end: UInt64 {
        switch self {
        case let .elf(k): k.end
        case let .bzImage(k): k.end
        }
    }

    /// The kernel's setup header for the zero page (bzImage only; an ELF has none).
    public var setupHeader: [UInt8]? {
        if case let .bzImage(k) = self { return k.setupHeader }
        return nil
    }

    public func load(into memory: GuestMemory) throws(VMMError) {
        switch self {
        case let .elf(k): try k.load(into: memory)
        case let .bzImage(k): try k.load(into: memory)
        }
    }
}
