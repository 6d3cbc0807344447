/// A virtio-mmio device as ACPI describes it to Linux: a "LNRO0005" device whose _CRS holds its
/// register window and its interrupt (what drivers/virtio/virtio_mmio.c binds to).
public struct VirtioMMIODeviceDescription: Equatable, Sendable {
    public var baseAddress: UInt32
    public var windowSize: UInt32
    /// Global system interrupt: an IOAPIC pin.
    public var gsi: UInt32

    public init(baseAddress: UInt32, windowSize: UInt32 = VirtioMMIOTransport.windowSize, gsi: UInt32) {
        self.baseAddress = baseAddress
        self.windowSize = windowSize
        self.gsi = gsi
    }
}

/// An MADT interrupt source override: ISA IRQ `source` arrives on `gsi` with `flags` (MPS INTI).
public struct InterruptSourceOverride: Equatable, Sendable {
    public var source: UInt8
    public var gsi: UInt32
    public var flags: UInt16
    public init(source: UInt8, gsi: UInt32, flags: UInt16 = 0) {
        self.source = source; self.gsi = gsi; self.flags = flags
    }
}

/// The ACPI tables of a microVM, as Firecracker (≥ 1.8) gives them: RSDP → XSDT → {FADT → DSDT, MADT}.
///
/// Placement is Firecracker's: the RSDP at 0xe0000, inside the 0xe0000-0xfffff range Linux scans
/// for "RSD PTR " on a BIOS machine (so the zero page's acpi_rsdp_addr is left 0), and the other
/// tables from 0xa0000, right after the EBDA. Both lie in the 640 KiB-1 MiB hole that the e820 map
/// leaves out of RAM and Linux always reserves, so nothing else is put there and no e820 entry is
/// needed.
public struct ACPITables {
    public static let rsdpAddress: UInt64 = 0xe0000
    public static let tablesAddress: UInt64 = 0xa0000
    /// Room for the tables (Firecracker reserves the same 8 KiB).
    public static let tablesMaxSize = 0x2000
    public static let localAPICAddress: UInt32 = 0xfee0_0000
    public static let ioAPICAddress: UInt32 = 0xfec0_0000
    /// COM1 as every PC has it.
    public static let com1Port: UInt16 = 0x3f8
    public static let com1IRQ: UInt8 = 4
    /// The i8042's keyboard interrupt, ISA IRQ 1.
    public static let i8042IRQ: UInt8 = 1

    public var vcpuCount: Int
    public var virtioDevices: [VirtioMMIODeviceDescription]
    /// None by default: KVM's default routing sends ISA IRQ n to IOAPIC pin n (GSI n), which is
    /// what Linux assumes without overrides, and a hardware-reduced platform has no SCI.
    public var interruptSourceOverrides: [InterruptSourceOverride]

    public init(vcpuCount: Int, virtioDevices: [VirtioMMIODeviceDescription],
                interruptSourceOverrides: [InterruptSourceOverride] = []) {
        precondition((1...255).contains(vcpuCount), "the MADT describes 1-255 xAPIC vCPUs")
        self.vcpuCount = vcpuCount
        self.virtioDevices = virtioDevices
        self.interruptSourceOverrides = interruptSourceOverrides
    }

    // MARK: The tables

    /// DSDT: \_SB with COM1 (PNP0501), the i8042 (PNP0303, as Firecracker's PS2_) and one LNRO0005
    /// device per virtio-mmio transport, named VR00, VR01, ... with _UID equal to its index.
    ///
    /// The legacy devices have to be here with their IRQs: on a hardware-reduced platform Linux has
    /// no legacy PIC, so no Linux IRQ 0-15 exists (nr_legacy_irqs() is 0) and a GSI gets a Linux
    /// IRQ only when ACPI's PNP layer maps a device's _CRS (COM1's GSI 4 becomes IRQ 2x). Without
    /// PS2_, the i8042 driver falls back to request_irq(1) and its probe fails with -EINVAL
    /// ("i8042: probe of i8042 failed with error -22"), and Ctrl-Alt-Del has no driver. The same
    /// happens with i8042.nopnp on the command line, which therefore must not be given.
    public func dsdt() -> ACPITable {
        var devices: [[UInt8]] = [
            AML.device("COM1", [
                AML.name("_HID", AML.eisaID("PNP0501")),
                AML.name("_UID", AML.integer(1)),
                AML.name("_CRS", AML.resourceTemplate([
                    AML.ioPort(base: Self.com1Port, length: 8),
                    AML.irqNoFlags(Self.com1IRQ),
                ])),
            ]),
            AML.device("PS2_", [
                AML.name("_HID", AML.eisaID("PNP0303")),
                AML.name("_CRS", AML.resourceTemplate([
                    AML.ioPort(base: I8042.dataPort, length: 1),
                    AML.ioPort(base: I8042.commandPort, length: 1),
                    AML.irqNoFlags(Self.i8042IRQ),
                ])),
            ]),
        ]
        for (i, d) in virtioDevices.enumerated() {
            devices.append(AML.device(Self.virtioDeviceName(i), [
                AML.name("_HID", AML.string("LNRO0005")),
                AML.name("_UID", AML.integer(UInt64(i))),
                // _CCA 1: DMA is cache-coherent (required by Linux's ACPI DMA setup for the device).
                AML.name("_CCA", AML.integer(1)),
                AML.name("_CRS", AML.resourceTemplate([
                    AML.memory32Fixed(base: d.baseAddress, length: d.windowSize),
                    // Edge: the interrupt arrives through an irqfd, which pulses the IOAPIC pin.
                    AML.extendedInterrupt(d.gsi, edgeTriggered: true),
                ])),
            ]))
        }
        var table = ACPITable(signature: "DSDT", revision: 2, oemTableID: "BHVMDSDT")
        table.append(bytes: AML.scope("\\_SB", devices))
        return table
    }

    /// "VR00", "VR01", ... (hex, so 256 devices fit in four characters).
    public static func virtioDeviceName(_ index: Int) -> String {
        let hex = String(index, radix: 16, uppercase: true)
        return "VR" + String(repeating: "0", count: max(0, 2 - hex.count)) + hex
    }

    /// FADT revision 6 (276 bytes), hardware-reduced: no PM blocks, no SCI, no sleep registers;
    /// power and sleep buttons are not fixed-feature buttons; only X_DSDT points to the DSDT.
    public func fadt(dsdtAddress: UInt64) -> ACPITable {
        var t = ACPITable(signature: "FACP", revision: 6, oemTableID: "BHVMFACP")
        // Everything from FIRMWARE_CTRL to the hypervisor vendor id, zero unless set below.
        t.append(bytes: [UInt8](repeating: 0, count: Self.fadtSize - ACPITable.headerSize))
        t.set(Self.iapcBootArchitecture, at: 109)
        t.set(Self.fadtFlags, at: 112)
        t.set(UInt8(5), at: 131)  // FADT minor version: ACPI 6.5
        t.set(dsdtAddress, at: 140)  // X_DSDT
        t.set(bytes: Array("BULKHEAD".utf8), at: 268)  // hypervisor vendor identity
        return t
    }

    static let fadtSize = 276
    /// FADT flags: PWR_BUTTON (4) and SLP_BUTTON (5) mean "no fixed-feature button";
    /// HW_REDUCED_ACPI (20): no ACPI PM hardware at all, which is what tells Linux not to look
    /// for PM1 registers, the PM timer or an SCI.
    static let fadtFlags: UInt32 = (1 << 4) | (1 << 5) | (1 << 20)
    /// IA-PC boot architecture flags: VGA not present (2), MSI not supported (3), PCIe ASPM
    /// controls off (4), CMOS RTC not present (5) — the microVM has none of them.
    static let iapcBootArchitecture: UInt16 = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5)

    /// MADT: the local APIC address, PC-AT compatible (KVM's irqchip includes the 8259s, which
    /// Linux then masks), one enabled local APIC per vCPU, the IOAPIC with GSIs from 0, overrides.
    public func madt() -> ACPITable {
        var t = ACPITable(signature: "APIC", revision: 6, oemTableID: "BHVMMADT")
        t.append(Self.localAPICAddress)
        t.append(UInt32(1))  // PCAT_COMPAT
        for id in 0..<vcpuCount {
            // Processor Local APIC: type 0, length 8, processor UID, APIC id, flags (1 = enabled).
            t.append(bytes: [0, 8, UInt8(id), UInt8(id)])
            t.append(UInt32(1))
        }
        // I/O APIC: type 1, length 12, id, reserved, address, GSI base.
        t.append(bytes: [1, 12, 0, 0])
        t.append(Self.ioAPICAddress)
        t.append(UInt32(0))
        for o in interruptSourceOverrides {
            // Interrupt Source Override: type 2, length 10, bus 0 (ISA), source, GSI, flags.
            t.append(bytes: [2, 10, 0, o.source])
            t.append(o.gsi)
            t.append(o.flags)
        }
        return t
    }

    /// XSDT: 64-bit pointers to the other tables (the FADT, which leads to the DSDT, and the MADT).
    public func xsdt(entries: [UInt64]) -> ACPITable {
        var t = ACPITable(signature: "XSDT", revision: 1, oemTableID: "BHVMXSDT")
        for e in entries { t.append(e) }
        return t
    }

    /// RSDP revision 2 (36 bytes): signature, checksum of the first 20 bytes, OEM id, revision,
    /// no RSDT, length, the XSDT address and the extended checksum of all 36 bytes.
    public static func rsdp(xsdtAddress: UInt64) -> [UInt8] {
        var b = Array("RSD PTR ".utf8)
        b.append(0)  // checksum
        b += ACPITable.oemID
        b.append(2)
        b.appendLittleEndian(UInt32(0))   // RsdtAddress: none, the XSDT is the root
        b.appendLittleEndian(UInt32(36))  // Length
        b.appendLittleEndian(xsdtAddress)
        b += [0, 0, 0, 0]  // extended checksum, reserved
        b[8] = ACPITable.checksum(of: b[0..<20])
        b[32] = ACPITable.checksum(of: b)
        return b
    }

    // MARK: Placement

    /// The tables laid out from `tablesAddress`: (address, bytes) for the DSDT, FADT, MADT and
    /// XSDT, each 8-byte aligned, then the RSDP at `rsdpAddress`.
    public func layout() throws(VMMError) -> [(name: String, address: UInt64, bytes: [UInt8])] {
        var placed: [(name: String, address: UInt64, bytes: [UInt8])] = []
        var next = Self.tablesAddress
        func place(_ table: ACPITable) -> UInt64 {
            let address = next
            let bytes = table.bytes
            placed.append((table.signature, address, bytes))
            next = (address + UInt64(bytes.count) + 7) & ~7
            return address
        }
        let dsdtAddress = place(dsdt())
        let fadtAddress = place(fadt(dsdtAddress: dsdtAddress))
        let madtAddress = place(madt())
        let xsdtAddress = place(xsdt(entries: [fadtAddress, madtAddress]))
        guard next - Self.tablesAddress <= UInt64(Self.tablesMaxSize) else {
            throw .invalidConfiguration("ACPI tables need \(next - Self.tablesAddress) bytes, more than the \(Self.tablesMaxSize) reserved at 0x\(String(Self.tablesAddress, radix: 16))")
        }
        placed.append(("RSDP", Self.rsdpAddress, Self.rsdp(xsdtAddress: xsdtAddress)))
        return placed
    }

    /// Writes every table into guest memory where `layout` puts it.
    public func write(to memory: GuestMemory) throws(VMMError) {
        for t in try layout() { try memory.write(t.bytes, at: t.address) }
    }
}
