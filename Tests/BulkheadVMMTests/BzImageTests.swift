import Glibc
import Testing
@testable import BulkheadVMM

/// A synthetic bzImage: `setupSects` + 1 sectors of setup holding a setup header, then `payload`
/// padded to 16 bytes (syssize counts 16-byte paragraphs, as arch/x86/boot/tools/build.c pads).
struct SyntheticBzImage {
    var payload: [UInt8] = [0xf4]
    var setupSects: UInt8 = 1
    var version: UInt16 = 0x020f
    var loadFlags: UInt8 = 0x01
    var xloadFlags: UInt16 = 0x0001
    var relocatable: UInt8 = 0
    var kernelAlignment: UInt32 = 0x20_0000
    var prefAddress: UInt64 = 0x10_0000
    var initSize: UInt32? = nil
    var cmdlineSize: UInt32 = 2047
    var magic: UInt32 = 0x5372_6448
    var bootFlag: UInt16 = 0xaa55

    var bytes: [UInt8] {
        let sects = setupSects == 0 ? 4 : Int(setupSects)
        var paddedPayload = payload
        while paddedPayload.count % 16 != 0 { paddedPayload.append(0) }
        var out = [UInt8](repeating: 0, count: (sects + 1) * 512)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { out[at + i] = b } }
        }
        out[0x1f1] = setupSects
        put(UInt32(paddedPayload.count / 16), 0x1f4)
        put(bootFlag, 0x1fe)
        out[0x200] = 0xeb; out[0x201] = 0x66  // jmp to 0x268: the header ends there
        put(magic, 0x202)
        put(version, 0x206)
        out[0x211] = loadFlags
        put(UInt32(0x10_0000), 0x214)
        put(kernelAlignment, 0x230)
        out[0x234] = relocatable
        put(xloadFlags, 0x236)
        put(cmdlineSize, 0x238)
        put(prefAddress, 0x258)
        put(initSize ?? UInt32((paddedPayload.count + 0xfff) & ~0xfff), 0x260)
        return out + paddedPayload
    }
}

@Suite("bzImage loader")
struct BzImageTests {
    let memorySize: UInt64 = 16 << 20

    @Test func wellFormedImageLoadsAtOneMiBWithTheEntryAt0x200() throws {
        var image = SyntheticBzImage()
        image.payload = [UInt8](repeating: 0x90, count: 0x300)
        let kernel = try BzImage(image: image.bytes, memorySize: memorySize)
        #expect(kernel.loadAddress == 0x10_0000)
        #expect(kernel.entry == 0x10_0200)
        #expect(kernel.protocolVersion == 0x020f)
        #expect(kernel.end == 0x10_1000)  // init_size rounded to a page
        let memory = try GuestMemory(size: memorySize)
        try kernel.load(into: memory)
        #expect(try memory.read(at: 0x10_0000, count: 0x300) == [UInt8](repeating: 0x90, count: 0x300))
        #expect(try memory.read(at: 0x10_0300, count: 1) == [0])
        // The detector of MicroVM picks the bzImage path.
        #expect(try KernelImage(image: image.bytes, memorySize: memorySize).entry == 0x10_0200)
    }

    @Test func setupSectsZeroMeansFour() throws {
        var image = SyntheticBzImage()
        image.setupSects = 0
        image.payload = [0xaa, 0xbb]
        let kernel = try BzImage(image: image.bytes, memorySize: memorySize)
        let memory = try GuestMemory(size: memorySize)
        try kernel.load(into: memory)
        #expect(try memory.read(at: 0x10_0000, count: 2) == [0xaa, 0xbb])
    }

    @Test func shortImageWithABootFlagIsRefusedAsShort() {
        var image = [UInt8](repeating: 0, count: 0x210)
        image[0x1fe] = 0x55; image[0x1ff] = 0xaa
        #expect(throws: VMMError.invalidBzImage("528 bytes is shorter than a setup header (0x264 bytes)")) {
            try KernelImage(image: image, memorySize: memorySize)
        }
    }

    @Test func relocatableKernelRunsAtTheAlignedLoadAddress() throws {
        var image = SyntheticBzImage()
        image.relocatable = 1
        image.kernelAlignment = 0x100_0000
        image.prefAddress = 0x100_0000
        image.initSize = 0x10_0000
        let kernel = try BzImage(image: image.bytes, memorySize: 32 << 20)
        #expect(kernel.runtimeStart == 0x100_0000)
        #expect(kernel.end == 0x110_0000)
        // 16 MiB of RAM is not enough for a kernel that runs at 16 MiB.
        #expect(throws: VMMError.self) { try BzImage(image: image.bytes, memorySize: 0x100_0000) }
    }

    @Test func relocatableKernelNeverRunsBelowPrefAddress() throws {
        var image = SyntheticBzImage()
        image.relocatable = 1
        image.kernelAlignment = 0x20_0000
        image.prefAddress = 0x100_0000
        image.initSize = 0x10_0000
        #expect(try BzImage(image: image.bytes, memorySize: 32 << 20).runtimeStart == 0x100_0000)
    }

    /// A real distribution kernel: $BULKHEAD_TEST_BZIMAGE, else the Debian cloud kernel the nested
    /// boot fetches (nestedPrerequisites): its header parses, and the check of init_size against
    /// RAM is right.
    static let realBzImage: String? = getenv("BULKHEAD_TEST_BZIMAGE").map { String(cString: $0) }
        ?? nestedPrerequisites.kernel?.vmlinuz

    @Test(.enabled(if: realBzImage != nil, "needs a bzImage: BULKHEAD_TEST_BZIMAGE, or the nested boot's cached kernel"))
    func realKernelHeaderParses() throws {
        let image = try readFile(Self.realBzImage!)
        let kernel = try BzImage(image: image, memorySize: 512 << 20)
        #expect(kernel.protocolVersion >= 0x020c)
        #expect(kernel.entry == 0x10_0200)
        #expect(kernel.runtimeStart >= 0x100_0000)
        #expect(throws: VMMError.self) { try BzImage(image: image, memorySize: 16 << 20) }
    }

    @Test func zeroPageGetsTheKernelsHeaderAndTheLoaderFields() throws {
        var image = SyntheticBzImage()
        image.cmdlineSize = 4095
        let kernel = try BzImage(image: image.bytes, memorySize: memorySize)
        let page = try ZeroPage(e820: E820Entry.memoryMap(memorySize: memorySize), commandLineAddress: 0x20000,
                                commandLineSize: 2048, setupHeader: kernel.setupHeader).bytes
        let r = LittleEndianReader(bytes: page)
        #expect(r.u32(0x202) == 0x5372_6448)
        #expect(r.u16(0x1fe) == 0xaa55)
        #expect(r.u16(0x206) == 0x020f)  // the kernel's version, not the VMM's
        #expect(r.u32(0x238) == 4095)  // cmdline_size is the kernel's
        #expect(page[0x210] == 0xff)  // type_of_loader: undefined
        #expect(page[0x211] & 0x01 == 0x01)  // LOADED_HIGH
        #expect(r.u32(0x214) == 0x10_0000)  // code32_start
        #expect(r.u32(0x228) == 0x20000)  // cmd_line_ptr
        #expect(page[0x1e8] == 2)  // e820 entries after the header copy
    }

    /// Each malformed image is refused with VMMError.invalidBzImage whose text contains `reason`.
    @Test(arguments: [String](["no magic", "bad magic", "zeroes", "MZ", "protocol 2.11", "no LOADED_HIGH",
                               "no XLF_KERNEL_64", "truncated", "init_size too big"]))
    func malformedImagesAreRefused(_ name: String) {
        let (image, reason) = Self.malformed[name]!
        #expect {
            try KernelImage(image: image, memorySize: memorySize)
        } throws: { error in
            guard case let .invalidBzImage(text)? = error as? VMMError else { return false }
            return text.contains(reason)
        }
    }

    static let malformed: [String: ([UInt8], String)] = Dictionary(uniqueKeysWithValues: zip(
        ["no magic", "bad magic", "zeroes", "MZ", "protocol 2.11", "no LOADED_HIGH", "no XLF_KERNEL_64", "truncated",
         "init_size too big"], [
        ({ var i = SyntheticBzImage(); i.magic = 0; i.bootFlag = 0; return i.bytes }(), "not a Linux kernel"),
        ({ var i = SyntheticBzImage(); i.magic = 0x1234; return i.bytes }(), "not a Linux kernel"),
        ([UInt8](repeating: 0, count: 4096), "not a Linux kernel"),
        (Array("MZ".utf8) + [UInt8](repeating: 0, count: 100), "not a Linux kernel"),
        ({ var i = SyntheticBzImage(); i.version = 0x020b; return i.bytes }(), "older than 2.12"),
        ({ var i = SyntheticBzImage(); i.loadFlags = 0; return i.bytes }(), "LOADED_HIGH"),
        ({ var i = SyntheticBzImage(); i.xloadFlags = 0; return i.bytes }(), "XLF_KERNEL_64"),
        ({ let b = SyntheticBzImage(payload: [UInt8](repeating: 1, count: 4096)).bytes; return Array(b[0..<(b.count - 100)]) }(),
         "truncated"),
        ({ var i = SyntheticBzImage(); i.initSize = 64 << 20; return i.bytes }(), "more than the 0x1000000 bytes of guest RAM"),
    ]))
}

/// The boot test guest wrapped in a synthetic bzImage boots through the bzImage path: setup header
/// parsed, protected-mode kernel at 1 MiB, entry at +0x200, header copied into the zero page.
@Suite("Boot a bzImage on /dev/kvm",
       .enabled(if: kvmAvailable, "needs read-write /dev/kvm (CI runs as root with KVM)"),
       .enabled(if: gccAvailable, "needs gcc, ld and objcopy in PATH to build the freestanding test guest"))
struct BzImageBootTests {
    @Test func bootGuestInABzImagePrintsAndResets() throws {
        let memorySize: UInt64 = 64 << 20
        var image = SyntheticBzImage()
        image.payload = try buildFlatGuest("boot_guest.c")
        image.initSize = UInt32((image.payload.count + 0xffff) & ~0xffff)  // room for .bss and the stack
        let vm = try MicroVM(MicroVMConfiguration(memorySize: memorySize, kernel: image.bytes,
                                                  commandLine: "console=ttyS0 bzimage=1"))
        guard case .bzImage = vm.kernel else { Issue.record("not loaded as a bzImage"); return }
        #expect(vm.kernel.entry == 0x10_0200)
        #expect(try vm.run(timeoutSeconds: 60) == .reset)
        #expect(vm.serial.outputText == "E820 n=2 ram=\(0x9fc00 + memorySize - 0x100000)\nCMDLINE console=ttyS0 bzimage=1\n")
        // The kernel's header is in the zero page, with the loader's fields over it.
        let page = try vm.memory.read(at: BootLayout.zeroPageAddress, count: 4096)
        #expect(page[0x210] == 0xff)
        #expect(LittleEndianReader(bytes: page).u32(0x202) == 0x5372_6448)
    }

    @Test func commandLineLongerThanTheKernelTakesIsRefused() throws {
        var image = SyntheticBzImage()
        image.cmdlineSize = 8
        #expect(throws: VMMError.self) {
            try MicroVM(MicroVMConfiguration(memorySize: 16 << 20, kernel: image.bytes, commandLine: "console=ttyS0"))
        }
    }
}
