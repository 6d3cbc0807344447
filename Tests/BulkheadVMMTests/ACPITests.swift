import Glibc
import Testing
@testable import BulkheadVMM

/// Two virtio-mmio devices as MicroVM lays them out, for tables with more than one LNRO0005.
let twoVirtioDevices = [
    VirtioMMIODeviceDescription(baseAddress: 0xd000_0000, gsi: 5),
    VirtioMMIODeviceDescription(baseAddress: 0xd000_1000, gsi: 6),
]

@Suite("AML encoding")
struct AMLTests {
    @Test func packageLengthCountsItselfAndGrowsPastSixtyThreeBytes() {
        #expect(AML.packageLength(0) == [1])
        #expect(AML.packageLength(62) == [63])
        // 63 body bytes + 2 length bytes = 65 = 0x41: lead 0x40 | low nibble 1, then 0x41 >> 4.
        #expect(AML.packageLength(63) == [0x41, 0x04])
        // 0x1000 + 2 = 0x1002 does not fit 12 bits, so 3 bytes: 0x1003.
        #expect(AML.packageLength(0x1000) == [0x83, 0x00, 0x01])
        #expect(AML.packageLength(0x10_0000) == [0xc4, 0x00, 0x00, 0x01])
    }

    @Test func integersUseTheShortestEncoding() {
        #expect(AML.integer(0) == [0x00])
        #expect(AML.integer(1) == [0x01])
        #expect(AML.integer(0x2f) == [0x0a, 0x2f])
        #expect(AML.integer(0x3f8) == [0x0b, 0xf8, 0x03])
        #expect(AML.integer(0xfeb0_2e00) == [0x0c, 0x00, 0x2e, 0xb0, 0xfe])
        #expect(AML.integer(0x1_0000_0000) == [0x0e, 0, 0, 0, 0, 1, 0, 0, 0])
    }

    @Test func namesStringsAndEISAIDs() {
        #expect(AML.nameString("COM1") == Array("COM1".utf8))
        #expect(AML.nameString("\\_SB") == [0x5c] + Array("_SB_".utf8))
        #expect(AML.nameString("\\_SB.VR00") == [0x5c, 0x2e] + Array("_SB_VR00".utf8))
        #expect(AML.string("LNRO0005") == [0x0d] + Array("LNRO0005".utf8) + [0])
        // EISAID("PNP0501") is 0x0105D041, the value in every PC's DSDT.
        #expect(AML.eisaID("PNP0501") == [0x0c, 0x41, 0xd0, 0x05, 0x01])
        #expect(AML.package([AML.integer(5), AML.integer(0)]) == [0x12, 0x05, 0x02, 0x0a, 0x05, 0x00])
    }

    @Test func resourceDescriptorsMatchQEMUsMicroVMBytes() {
        // From /work/shared/lab/microvm/qemu-microvm-acpi/DSDT.bin: Memory32Fixed(ReadWrite,
        // 0xFEB02E00, 0x200) and Interrupt(ResourceConsumer, Level, ActiveHigh, Exclusive) {0x2F}.
        #expect(AML.memory32Fixed(base: 0xfeb0_2e00, length: 0x200)
                == [0x86, 0x09, 0x00, 0x01, 0x00, 0x2e, 0xb0, 0xfe, 0x00, 0x02, 0x00, 0x00])
        #expect(AML.extendedInterrupt(0x2f, edgeTriggered: false) == [0x89, 0x06, 0x00, 0x01, 0x01, 0x2f, 0, 0, 0])
        #expect(AML.ioPort(base: 0x3f8, length: 8, alignment: 0) == [0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08])
        #expect(AML.irqNoFlags(4) == [0x22, 0x10, 0x00])
    }
}

@Suite("ACPI tables")
struct ACPITableTests {
    let tables = ACPITables(vcpuCount: 2, virtioDevices: twoVirtioDevices)

    @Test func everyTableChecksumsToZeroAndRecordsItsLength() throws {
        for t in try tables.layout() where t.name != "RSDP" {
            #expect(ACPITable.checksumIsValid(t.bytes), "\(t.name) checksum")
            let length = LittleEndianReader(bytes: t.bytes).u32(4)
            #expect(Int(length) == t.bytes.count, "\(t.name) length")
            #expect(String(decoding: t.bytes[0..<4], as: UTF8.self) == t.name)
        }
    }

    @Test func rsdpPointsToTheXSDTWhichListsFADTAndMADT() throws {
        let layout = try tables.layout()
        let rsdp = try #require(layout.first { $0.name == "RSDP" })
        #expect(rsdp.address == 0xe0000 && rsdp.address % 16 == 0)
        #expect(Array(rsdp.bytes[0..<8]) == Array("RSD PTR ".utf8))
        #expect(rsdp.bytes.count == 36 && rsdp.bytes[15] == 2)
        #expect(ACPITable.checksumIsValid(rsdp.bytes[0..<20]))
        #expect(ACPITable.checksumIsValid(rsdp.bytes))
        let r = LittleEndianReader(bytes: rsdp.bytes)
        let xsdt = try #require(layout.first { $0.name == "XSDT" })
        #expect(r.u64(24) == xsdt.address)
        let x = LittleEndianReader(bytes: xsdt.bytes)
        let fadt = try #require(layout.first { $0.name == "FACP" })
        let madt = try #require(layout.first { $0.name == "APIC" })
        #expect([x.u64(36), x.u64(44)] == [fadt.address, madt.address])
        let dsdt = try #require(layout.first { $0.name == "DSDT" })
        let f = LittleEndianReader(bytes: fadt.bytes)
        #expect(fadt.bytes.count == 276 && fadt.bytes[8] == 6)
        #expect(f.u64(140) == dsdt.address)
        #expect(f.u32(112) & (1 << 20) != 0, "HW_REDUCED_ACPI")
        // Everything lies in the hole the e820 map leaves out of RAM.
        for t in layout { #expect(t.address >= 0xa0000 && t.address + UInt64(t.bytes.count) <= 0x100000) }
    }

    @Test func writtenIntoGuestMemoryWhereTheLayoutSays() throws {
        let memory = try GuestMemory(size: 2 << 20)
        try tables.write(to: memory)
        for t in try tables.layout() {
            #expect(try memory.read(at: t.address, count: t.bytes.count) == t.bytes)
        }
    }

    @Test func tooManyDevicesForTheReservedRegionIsRefused() {
        let many = (0..<200).map { VirtioMMIODeviceDescription(baseAddress: 0xd000_0000 + UInt32($0) * 0x1000, gsi: 5) }
        #expect(throws: VMMError.self) { try ACPITables(vcpuCount: 1, virtioDevices: many).layout() }
    }
}

/// Disassembles the tables with ACPICA's iasl, the reference implementation Linux's ACPI
/// interpreter comes from: if iasl reads our bytes as the intended ASL, so will Linux.
@Suite("ACPI tables through iasl -d",
       .enabled(if: iaslAvailable, "needs iasl in PATH (Debian package acpica-tools; setup.sh installs it)"))
struct ACPIDisassemblyTests {
    /// Writes each table to NAME.dat, runs `iasl -d`, and returns NAME -> disassembly.
    func disassemble(_ tables: ACPITables) throws -> [String: String] {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        var result: [String: String] = [:]
        for t in try tables.layout() where t.name != "RSDP" {
            let dat = "\(directory)/\(t.name).dat"
            try writeFile(dat, t.bytes)
            try runTool(["iasl", "-d", dat])
            result[t.name] = String(decoding: try readFile("\(directory)/\(t.name).dsl"), as: UTF8.self)
        }
        return result
    }

    @Test func dsdtNamesCOM1TheI8042AndEveryVirtioDeviceWithAddressesAndIRQs() throws {
        let dsl = try #require(try disassemble(ACPITables(vcpuCount: 1, virtioDevices: twoVirtioDevices))["DSDT"])
        let compact = dsl.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(compact.contains("Scope (\\_SB) {"))
        #expect(compact.contains("Device (COM1) { Name (_HID, EisaId (\"PNP0501\")"))
        #expect(compact.contains("IO (Decode16, 0x03F8, // Range Minimum 0x03F8, // Range Maximum 0x01, // Alignment 0x08, // Length )"))
        #expect(compact.contains("IRQNoFlags () {4}"))
        // The i8042 (iasl drops the name's padding) with its ports and IRQ 1, without which Linux maps no GSI for IRQ 1.
        #expect(compact.contains("Device (PS2) { Name (_HID, EisaId (\"PNP0303\")"))
        #expect(compact.contains("IO (Decode16, 0x0060, // Range Minimum 0x0060, // Range Maximum 0x01, // Alignment 0x01, // Length )"))
        #expect(compact.contains("IO (Decode16, 0x0064, // Range Minimum 0x0064, // Range Maximum 0x01, // Alignment 0x01, // Length )"))
        #expect(compact.contains("IRQNoFlags () {1}"))
        for (i, d) in twoVirtioDevices.enumerated() {
            let name = ACPITables.virtioDeviceName(i)
            #expect(compact.contains("Device (\(name)) { Name (_HID, \"LNRO0005\")"), "\(name)")
            #expect(compact.contains("Name (_UID, \(i == 0 ? "Zero" : "One"))"), "\(name) _UID")
            let base = "0x" + String(d.baseAddress, radix: 16, uppercase: true)
            #expect(compact.contains("Memory32Fixed (ReadWrite, \(base), // Address Base 0x00001000, // Address Length )"), "\(name) window")
            let gsi = "0x" + String(repeating: "0", count: 8 - String(d.gsi, radix: 16).count) + String(d.gsi, radix: 16)
            #expect(compact.contains("Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) { \(gsi), }"), "\(name) GSI")
        }
        #expect(!dsl.contains("Error") && !dsl.contains("Unknown"))
    }

    /// The disassembly compiled again by iasl gives back the same AML: our encoder and ACPICA's
    /// compiler agree byte for byte on what this ASL means (the header differs: compiler id).
    @Test func dsdtRoundTripsThroughTheASLCompiler() throws {
        let tables = ACPITables(vcpuCount: 1, virtioDevices: twoVirtioDevices)
        let dsdt = try #require(try tables.layout().first { $0.name == "DSDT" }).bytes
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeFile("\(directory)/dsdt.dat", dsdt)
        try runTool(["iasl", "-d", "\(directory)/dsdt.dat"])
        // -oa: no optimisations, or iasl shortens \_SB to _SB at the root (same meaning).
        try runTool(["iasl", "-oa", "-p", "\(directory)/recompiled", "\(directory)/dsdt.dsl"])
        let recompiled = try readFile("\(directory)/recompiled.aml")
        #expect(recompiled.count == dsdt.count)
        #expect(Array(recompiled.dropFirst(ACPITable.headerSize)) == Array(dsdt.dropFirst(ACPITable.headerSize)))
    }

    @Test func madtAndFadtDecodeAsIntended() throws {
        let dsl = try disassemble(ACPITables(vcpuCount: 2, virtioDevices: twoVirtioDevices,
                                             interruptSourceOverrides: [InterruptSourceOverride(source: 0, gsi: 2)]))
        let madt = try #require(dsl["APIC"])
        #expect(madt.contains("Local Apic Address : FEE00000"))
        #expect(madt.split(separator: "[Processor Local APIC]").count == 3)
        #expect(madt.contains("Local Apic ID : 01"))
        #expect(madt.contains("[I/O APIC]") && madt.contains("Address : FEC00000"))
        #expect(madt.contains("[Interrupt Source Override]") && madt.contains("Interrupt : 00000002"))
        let fadt = try #require(dsl["FACP"])
        #expect(fadt.contains("Revision : 06"))
        #expect(fadt.contains("Hardware Reduced (V5) : 1"))
        // No CMOS RTC: Linux then registers no rtc_cmos device and cmos_init returns at once, with
        // no initcall_blacklist=cmos_init (a microVM that leaves this out pays ~3 s of probing).
        #expect(fadt.contains("CMOS RTC Not Present (V5) : 1"))
        #expect(fadt.contains("Hypervisor ID : 444145484B4C5542"))  // "BULKHEAD" as a little-endian number
    }
}
