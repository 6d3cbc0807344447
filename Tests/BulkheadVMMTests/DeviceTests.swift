import Testing
@testable import BulkheadVMM

@Suite("Legacy devices on the port bus")
struct DeviceTests {
    @Test func serialCollectsTransmittedBytesAndIsAlwaysReady() {
        let serial = Serial8250()
        let bus = PortIOBus()
        bus.register(serial, ports: serial.ports)
        #expect(bus.read(port: 0x3fd, size: 1) & 0x60 == 0x60)  // LSR: THR empty, transmitter empty
        for b in "hi\n".utf8 { _ = bus.write(port: 0x3f8, size: 1, value: UInt32(b)) }
        #expect(serial.outputText == "hi\n")
    }

    @Test func serialDivisorLatchAndScratchDoNotPrint() {
        let serial = Serial8250()
        _ = serial.write(port: 0x3fb, size: 1, value: 0x83)  // LCR: DLAB
        _ = serial.write(port: 0x3f8, size: 1, value: 0x01)  // DLL, not THR
        #expect(serial.read(port: 0x3f8, size: 1) == 0x01)
        _ = serial.write(port: 0x3fb, size: 1, value: 0x03)
        _ = serial.write(port: 0x3ff, size: 1, value: 0x5a)
        #expect(serial.read(port: 0x3ff, size: 1) == 0x5a)
        #expect(serial.output.isEmpty)
    }

    @Test func i8042ResetCommandRequestsReset() {
        let i8042 = I8042()
        let bus = PortIOBus()
        bus.register(i8042, ports: 0x60...0x60)
        bus.register(i8042, ports: 0x64...0x64)
        #expect(bus.write(port: 0x64, size: 1, value: 0xaa) == .none)
        #expect(bus.write(port: 0x60, size: 1, value: 0xfe) == .none)  // data port: not a command
        #expect(bus.write(port: 0x64, size: 1, value: 0xfe) == .reset)
        #expect(bus.read(port: 0x64, size: 1) == 0)
    }

    @Test func unclaimedPortsReadAllOnes() {
        let bus = PortIOBus()
        #expect(bus.read(port: 0x80, size: 1) == UInt32.max)
        #expect(bus.write(port: 0x80, size: 1, value: 1) == .none)
        #expect(!bus.claims(0x80))
    }
}

/// Records MMIO accesses.
final class RecordingMMIODevice: MMIODevice {
    var writes: [(offset: UInt64, size: Int, value: UInt64)] = []
    func read(offset: UInt64, size: Int) -> UInt64 { 0x1000 + offset }
    func write(offset: UInt64, size: Int, value: UInt64) { writes.append((offset, size, value)) }
}

@Suite("MMIO bus")
struct MMIOBusTests {
    @Test func dispatchesByAddressWithOffsetsIntoTheWindow() throws {
        let bus = MMIOBus()
        let a = RecordingMMIODevice(), b = RecordingMMIODevice()
        try bus.register(a, base: 0xd000_0000, length: 0x1000)
        try bus.register(b, base: 0xd000_1000, length: 0x1000)
        #expect(bus.read(address: 0xd000_0070, size: 4) == 0x1070)
        #expect(bus.read(address: 0xd000_1004, size: 4) == 0x1004)
        #expect(bus.write(address: 0xd000_1050, size: 4, value: 3))
        #expect(b.writes.count == 1 && b.writes[0].offset == 0x50 && b.writes[0].value == 3 && a.writes.isEmpty)
    }

    @Test func unclaimedAndStraddlingAccessesAreNotDelivered() throws {
        let bus = MMIOBus()
        let a = RecordingMMIODevice()
        try bus.register(a, base: 0xd000_0000, length: 0x1000)
        #expect(bus.read(address: 0xcfff_fffc, size: 4) == nil)
        #expect(bus.read(address: 0xd000_0ffe, size: 4) == nil)  // crosses the end of the window
        #expect(!bus.write(address: 0xe000_0000, size: 4, value: 1))
        #expect(a.writes.isEmpty)
    }

    @Test func overlappingWindowsAreRefused() throws {
        let bus = MMIOBus()
        try bus.register(RecordingMMIODevice(), base: 0xd000_0000, length: 0x1000)
        #expect(throws: VMMError.self) { try bus.register(RecordingMMIODevice(), base: 0xd000_0800, length: 0x1000) }
        #expect(throws: VMMError.self) { try bus.register(RecordingMMIODevice(), base: UInt64.max - 10, length: 0x1000) }
    }
}
