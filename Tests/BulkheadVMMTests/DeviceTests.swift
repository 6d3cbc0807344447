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
