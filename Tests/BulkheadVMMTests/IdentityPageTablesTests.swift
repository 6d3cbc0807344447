import Testing
@testable import BulkheadVMM

@Suite("Identity page tables, boot GDT and long-mode registers")
struct PageTableTests {
    func entry(_ bytes: [UInt8], _ index: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[index * 8 + $1]) << (8 * UInt64($1)) }
    }

    @Test func firstGiBIsMappedWith2MiBPages() {
        let pages = IdentityPageTables(gibibytes: 1).pages()
        #expect(pages.map(\.address) == [0x9000, 0xa000, 0xb000])
        #expect(pages.allSatisfy { $0.bytes.count == 4096 })
        let pml4 = pages[0].bytes, pdpt = pages[1].bytes, pd = pages[2].bytes
        #expect(entry(pml4, 0) == 0xa000 | 0x3)  // present, writable -> PDPT
        #expect((1..<512).allSatisfy { entry(pml4, $0) == 0 })
        #expect(entry(pdpt, 0) == 0xb000 | 0x3)
        #expect((1..<512).allSatisfy { entry(pdpt, $0) == 0 })
        for i in 0..<512 { #expect(entry(pd, i) == UInt64(i) << 21 | 0x83, "PD entry \(i)") }  // present|writable|PS
    }

    @Test func defaultMapsFourGiBSoTheLAPICIsReachable() {
        let pages = IdentityPageTables().pages()
        #expect(pages.map(\.address) == [0x9000, 0xa000, 0xb000, 0xc000, 0xd000, 0xe000])
        let lastPD = pages[5].bytes
        #expect(entry(lastPD, 511) == (3 << 30) | (511 << 21) | 0x83)  // covers 0xffe00000, the LAPIC page's 2 MiB
        #expect(entry(pages[1].bytes, 3) == 0xe000 | 0x3)
    }

    @Test func gdtMatchesFirecrackers() {
        #expect(BootGDT.entries == [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0x008f_8b00_0000_ffff])
        #expect(BootGDT.bytes.count == 32)
    }

    @Test func segmentsDecodeFromTheGDT() {
        let cs = SegmentRegister(descriptor: BootGDT.code, index: 1)
        #expect(cs.selector == 8 && cs.type == 0xb && cs.present && cs.l && !cs.db && cs.s && cs.g && cs.limit == 0xffff_ffff)
        let ds = SegmentRegister(descriptor: BootGDT.data, index: 2)
        #expect(ds.selector == 16 && ds.type == 0x3 && ds.db && !ds.l && !ds.unusable)
        let tr = SegmentRegister(descriptor: BootGDT.tss, index: 3)
        #expect(tr.selector == 24 && tr.type == 0xb && !tr.s)
        #expect(SegmentRegister(descriptor: 0, index: 0).unusable)
    }

    @Test func longModeControlRegisters() {
        let s = LinuxBoot.longModeSpecialRegisters(SpecialRegisters(.init()))
        #expect(s.cr0 & 0x8000_0001 == 0x8000_0001)  // PG | PE
        #expect(s.cr4 & 0x20 == 0x20)                // PAE
        #expect(s.efer & 0x500 == 0x500)             // LME | LMA
        #expect(s.cr3 == 0x9000)
        #expect(s.gdt == DescriptorTable(base: 0x500, limit: 31))
        #expect(s.cs.selector == 8 && s.ss.selector == 16 && s.tr.selector == 24)
        let r = LinuxBoot.entryRegisters(entry: 0x100000)
        #expect(r.rip == 0x100000 && r.rsi == 0x7000 && r.rflags == 2 && r.rsp == 0x8ff0)
    }
}
