import Testing
@testable import BulkheadVMM

@Suite("Zero page and e820 layout")
struct ZeroPageTests {
    func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
    func u32(_ b: [UInt8], _ at: Int) -> UInt32 { UInt32(u16(b, at)) | UInt32(u16(b, at + 2)) << 16 }
    func u64(_ b: [UInt8], _ at: Int) -> UInt64 { UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32 }

    @Test func memoryMapOf256MiBHasLowAndHighRAM() {
        let map = E820Entry.memoryMap(memorySize: 256 << 20)
        #expect(map == [
            E820Entry(address: 0, size: 0x9fc00, kind: .ram),
            E820Entry(address: 0x10_0000, size: (256 << 20) - 0x10_0000, kind: .ram),
        ])
    }

    @Test func fieldsSitAtBootProtocolOffsets() throws {
        let e820 = E820Entry.memoryMap(memorySize: 256 << 20)
        let page = try ZeroPage(e820: e820, commandLineAddress: 0x20000, commandLineSize: 2048,
                                ramdisk: (address: 0x0f00_0000, size: 0x12_3456)).bytes
        #expect(page.count == 4096)
        #expect(u16(page, 0x1fe) == 0xaa55)                        // boot_flag
        #expect(Array(page[0x202..<0x206]) == Array("HdrS".utf8))  // header magic
        #expect(u16(page, 0x206) == 0x020f)                        // version 2.15
        #expect(page[0x210] == 0xff)                               // type_of_loader: undefined
        #expect(page[0x211] & 0x01 == 0x01)                        // loadflags LOADED_HIGH
        #expect(u32(page, 0x228) == 0x20000)                       // cmd_line_ptr
        #expect(u32(page, 0x0c8) == 0)                             // ext_cmd_line_ptr
        #expect(u32(page, 0x238) == 2048)                          // cmdline_size
        #expect(u32(page, 0x218) == 0x0f00_0000)                   // ramdisk_image
        #expect(u32(page, 0x21c) == 0x12_3456)                     // ramdisk_size
        #expect(page[0x1e8] == 2)                                  // e820_entries
        // e820_table: 20-byte packed entries {u64 addr, u64 size, u32 type}.
        #expect(u64(page, 0x2d0) == 0 && u64(page, 0x2d8) == 0x9fc00 && u32(page, 0x2e0) == 1)
        #expect(u64(page, 0x2e4) == 0x10_0000 && u64(page, 0x2ec) == (256 << 20) - 0x10_0000 && u32(page, 0x2f4) == 1)
        #expect(page[0x2f8..<0x2f8 + 20].allSatisfy { $0 == 0 })   // nothing after the last entry
    }

    @Test func setupHeaderStartsAt0x1f1AndOnlyKnownFieldsAreSet() throws {
        let page = try ZeroPage(e820: [], commandLineAddress: 0x20000, commandLineSize: 2048).bytes
        #expect(ZeroPage.Offset.setupHeader == 0x1f1)
        #expect(page[0x1f1] == 0)  // setup_sects: no real-mode setup code for a direct 64-bit boot
        #expect(u32(page, 0x218) == 0 && u32(page, 0x21c) == 0)  // no initrd given
        let setFields: Set<Int> = Set([0x1fe, 0x1ff] + Array(0x202..<0x208) + [0x210, 0x211]
            + Array(0x228..<0x22c) + Array(0x230..<0x234) + Array(0x238..<0x23c))
        for (i, b) in page.enumerated() where !setFields.contains(i) { #expect(b == 0, "byte 0x\(String(i, radix: 16))") }
    }

    @Test func commandLineAbove4GiBUsesTheExtField() throws {
        let page = try ZeroPage(e820: [], commandLineAddress: 0x1_2345_6000, commandLineSize: 2048).bytes
        #expect(u32(page, 0x228) == 0x2345_6000 && u32(page, 0x0c8) == 1)
    }

    @Test func moreThan128E820EntriesAreRefused() {
        let many = Array(repeating: E820Entry(address: 0, size: 4096, kind: .reserved), count: 129)
        #expect(throws: VMMError.self) { try ZeroPage(e820: many, commandLineAddress: 0, commandLineSize: 0) }
    }

    @Test func bootStructuresLandInGuestMemory() throws {
        let memory = try GuestMemory(size: 16 << 20)
        let e820 = E820Entry.memoryMap(memorySize: memory.size)
        try LinuxBoot.writeBootStructures(memory: memory, commandLine: "console=ttyS0 bulkhead=1", e820: e820)
        let cmdline = try memory.read(at: BootLayout.commandLineAddress, count: 25)
        #expect(cmdline == Array("console=ttyS0 bulkhead=1".utf8) + [0])
        #expect(try memory.load(UInt32.self, at: BootLayout.zeroPageAddress + 0x228) == UInt32(BootLayout.commandLineAddress))
        #expect(try memory.load(UInt8.self, at: BootLayout.zeroPageAddress + 0x1e8) == 2)
        #expect(try memory.load(UInt64.self, at: BootLayout.gdtAddress + 8) == BootGDT.code)
    }

    @Test func overlongOrNULCommandLinesAreRefused() throws {
        let memory = try GuestMemory(size: 16 << 20)
        let e820 = E820Entry.memoryMap(memorySize: memory.size)
        #expect(throws: VMMError.self) {
            try LinuxBoot.writeBootStructures(memory: memory, commandLine: String(repeating: "x", count: 2048), e820: e820)
        }
        #expect(throws: VMMError.self) {
            try LinuxBoot.writeBootStructures(memory: memory, commandLine: "a\u{0}b", e820: e820)
        }
    }
}
