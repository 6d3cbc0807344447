import Testing
@testable import BulkheadVMM

/// A minimal ELF64 x86-64 ET_EXEC image: headers, then each segment's file bytes in order.
func makeELF(entry: UInt64, segments: [(address: UInt64, data: [UInt8], memorySize: UInt64)],
             machine: UInt16 = 62) -> [UInt8] {
    var out = [UInt8]()
    func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    let phoff = 64, dataStart = phoff + 56 * segments.count
    out += [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)  // e_ident
    put(UInt16(2)); put(machine); put(UInt32(1))                                     // e_type, e_machine, e_version
    put(entry); put(UInt64(phoff)); put(UInt64(0))                                   // e_entry, e_phoff, e_shoff
    put(UInt32(0)); put(UInt16(64)); put(UInt16(56)); put(UInt16(segments.count))    // flags, ehsize, phentsize, phnum
    put(UInt16(64)); put(UInt16(0)); put(UInt16(0))                                  // shentsize, shnum, shstrndx
    var offset = dataStart
    for s in segments {
        put(UInt32(1)); put(UInt32(7))                                               // PT_LOAD, RWX
        put(UInt64(offset)); put(s.address); put(s.address)                          // p_offset, p_vaddr, p_paddr
        put(UInt64(s.data.count)); put(s.memorySize); put(UInt64(0x1000))            // p_filesz, p_memsz, p_align
        offset += s.data.count
    }
    for s in segments { out += s.data }
    return out
}

@Suite("ELF64 kernel loader")
struct ELFLoaderTests {
    let memorySize: UInt64 = 4 << 20

    @Test func loadsSegmentsAtPhysicalAddressesAndZeroesBSS() throws {
        let image = makeELF(entry: 0x100004, segments: [
            (0x100000, [0xf4, 0xf4, 0xf4, 0xf4, 0x90], 5),
            (0x200000, [1, 2, 3], 0x1000),
        ])
        let kernel = try ELFKernel(image: image, memorySize: memorySize)
        #expect(kernel.entry == 0x100004)
        #expect(kernel.end == 0x201000)
        let memory = try GuestMemory(size: memorySize)
        try memory.fill(0xaa, at: 0x200000, count: 0x2000)  // what an earlier boot might have left
        try kernel.load(into: memory)
        #expect(try memory.read(at: 0x100000, count: 5) == [0xf4, 0xf4, 0xf4, 0xf4, 0x90])
        #expect(try memory.read(at: 0x200000, count: 3) == [1, 2, 3])
        #expect(try memory.read(at: 0x200003, count: 0xffd).allSatisfy { $0 == 0 })
        #expect(try memory.read(at: 0x201000, count: 1) == [0xaa])
    }

    /// Each malformed image is refused with VMMError.invalidELF whose text contains `reason`.
    @Test(arguments: [
        ([], "shorter than an ELF64 header"),
        (Array("MZ".utf8) + [UInt8](repeating: 0, count: 62), "no ELF magic"),
        ([UInt8](repeating: 0xff, count: 64), "no ELF magic"),
        ([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0] + [UInt8](repeating: 0, count: 56), "not ELFCLASS64"),
    ] as [([UInt8], String)])
    func garbageIsRefused(image: [UInt8], reason: String) {
        expectRefused(image, reason)
    }

    @Test func truncatedImagesAreRefused() {
        let image = makeELF(entry: 0x100000, segments: [(0x100000, [UInt8](repeating: 0x90, count: 100), 100)])
        expectRefused(Array(image[0..<63]), "shorter than an ELF64 header")
        expectRefused(Array(image[0..<100]), "program header table")
        expectRefused(Array(image[0..<(image.count - 1)]), "runs past the end")
    }

    @Test func segmentsMustFitGuestRAM() {
        expectRefused(makeELF(entry: 0x3ff000, segments: [(0x3ff000, [0x90], 0x2000)]), "outside guest RAM")
        expectRefused(makeELF(entry: 0x7000, segments: [(0x7000, [0x90], 1)]), "outside guest RAM")  // over the zero page
        expectRefused(makeELF(entry: 0x100000, segments: [(UInt64.max - 1, [0x90], 0x10)]), "outside guest RAM")
    }

    @Test func inconsistentHeadersAreRefused() {
        expectRefused(makeELF(entry: 0x100000, segments: [(0x100000, [0x90], 1)], machine: 183), "EM_X86_64")
        expectRefused(makeELF(entry: 0x100000, segments: [(0x100000, [0x90, 0x90], 1)]), "p_filesz 2 > p_memsz 1")
        expectRefused(makeELF(entry: 0x300000, segments: [(0x100000, [0x90], 1)]), "entry point")
        expectRefused(makeELF(entry: 0x100000, segments: []), "no program headers")
    }

    @Test func microVMRefusesABadKernelBeforeTouchingKVM() {
        // No /dev/kvm is needed: the image is validated before the VM is created.
        #expect {
            try MicroVM(MicroVMConfiguration(memorySize: 64 << 20, kernel: [0x7f, 0x45, 0x4c], commandLine: ""))
        } throws: { error in
            (error as? VMMError)?.description == "invalid kernel ELF: 3 bytes is shorter than an ELF64 header (64 bytes)"
        }
    }

    func expectRefused(_ image: [UInt8], _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ELFKernel(image: image, memorySize: memorySize)
            Issue.record("image accepted, expected refusal containing \"\(reason)\"", sourceLocation: sourceLocation)
        } catch {
            guard case let .invalidELF(text) = error else {
                Issue.record("wrong error \(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(text.contains(reason), "\"\(text)\" lacks \"\(reason)\"", sourceLocation: sourceLocation)
        }
    }
}
