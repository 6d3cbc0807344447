import Glibc
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

    /// 16550 THR-empty interrupts, as Linux's 8250 driver probes and uses them: pending when ETBEI
    /// is set (THR is always empty) and after each byte; reading IIR clears it; one edge per newly
    /// pending interrupt.
    @Test func serialTransmitterEmptyInterrupt() {
        let serial = Serial8250()
        let line = CountingInterrupt()
        serial.interrupt = line
        #expect(serial.read(port: 0x3fa, size: 1) & 0x0f == 0x01)  // nothing pending, ETBEI off
        _ = serial.write(port: 0x3f8, size: 1, value: 0x41)
        #expect(line.count == 0)
        _ = serial.write(port: 0x3f9, size: 1, value: 0x02)       // IER: ETBEI
        #expect(line.count == 1)
        #expect(serial.read(port: 0x3fa, size: 1) & 0x0f == 0x02)  // THRE is the source...
        #expect(serial.read(port: 0x3fa, size: 1) & 0x0f == 0x01)  // ...and reading IIR cleared it
        _ = serial.write(port: 0x3f8, size: 1, value: 0x42)
        _ = serial.write(port: 0x3f8, size: 1, value: 0x43)        // still pending: no second edge
        #expect(line.count == 2)
        #expect(serial.read(port: 0x3fa, size: 1) & 0x0f == 0x02)
        _ = serial.write(port: 0x3f9, size: 1, value: 0x00)       // ETBEI off clears it
        _ = serial.write(port: 0x3f8, size: 1, value: 0x44)
        #expect(serial.read(port: 0x3fa, size: 1) & 0x0f == 0x01)
        #expect(line.count == 2)
        #expect(serial.outputText == "ABCD")
    }

    /// Host input: LSR's DR, RBR in order, the received-data interrupt (IIR 0x04, above
    /// THR-empty) on data arriving in an empty FIFO, the 64-byte FIFO, FCR's receiver reset.
    @Test func serialReceivesHostBytes() {
        let serial = Serial8250()
        let line = CountingInterrupt()
        serial.interrupt = line
        #expect(serial.read(port: 0x3fd, size: 1) & 0x01 == 0)      // LSR: no data
        #expect(serial.receive(Array("ab".utf8)) == 2)
        #expect(line.count == 0)                                     // ERBFI off: no interrupt
        _ = serial.write(port: 0x3f9, size: 1, value: 0x03)          // IER: ERBFI | ETBEI
        #expect(line.count == 2)                                     // data waiting, and THR empty
        #expect(serial.read(port: 0x3fa, size: 1) & 0x0f == 0x04)   // received data comes first
        #expect(serial.read(port: 0x3fd, size: 1) & 0x01 == 0x01)
        #expect(serial.read(port: 0x3f8, size: 1) == UInt32(UInt8(ascii: "a")))
        #expect(serial.read(port: 0x3f8, size: 1) == UInt32(UInt8(ascii: "b")))
        #expect(serial.read(port: 0x3fd, size: 1) & 0x01 == 0)
        #expect(serial.read(port: 0x3fa, size: 1) & 0x0f == 0x02)   // then THR-empty
        #expect(serial.receive(Array("c".utf8)) == 1)
        #expect(serial.receive(Array("d".utf8)) == 1)                // FIFO not empty: no new edge
        #expect(line.count == 3)
        #expect(serial.receive([UInt8](repeating: 0x78, count: 100)) == Serial8250.receiveCapacity - 2)
        _ = serial.write(port: 0x3fa, size: 1, value: 0x03)          // FCR: enable, clear receiver
        #expect(serial.read(port: 0x3fd, size: 1) & 0x01 == 0)
        #expect(serial.output.isEmpty)
    }

    @Test func serialLoopbackSendsBytesBackAsInput() {
        let serial = Serial8250()
        _ = serial.write(port: 0x3fc, size: 1, value: 0x10)  // MCR: loopback
        _ = serial.write(port: 0x3f8, size: 1, value: 0x55)
        #expect(serial.read(port: 0x3f8, size: 1) == 0x55)
        #expect(serial.output.isEmpty)
    }

    /// The device event loop's side: a descriptor is polled while the FIFO has room, read without
    /// blocking, and dropped at end of file; a full FIFO wakes the loop once the guest reads.
    @Test func serialInputDescriptor() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let serial = Serial8250()
        serial.input = fds[0]
        var woken = 0
        serial.wakeEventLoop = { woken += 1 }
        serial.serviceHostEvents()                                    // nothing written: no read, no block
        #expect(serial.read(port: 0x3fd, size: 1) & 0x01 == 0)
        let text = [UInt8](repeating: UInt8(ascii: "z"), count: 70)
        #expect(write(fds[1], text, text.count) == 70)
        #expect(serial.hostPollRequests().map(\.fd) == [fds[0]])
        serial.serviceHostEvents()                                    // 64 fit
        #expect(serial.hostPollRequests().isEmpty)                    // full: not polled
        #expect(serial.read(port: 0x3f8, size: 1) == UInt32(UInt8(ascii: "z")))
        #expect(woken == 1)                                           // room again
        serial.serviceHostEvents()                                    // the one byte that fits
        close(fds[1])
        func drain() -> Int {
            var n = 0
            while serial.read(port: 0x3fd, size: 1) & 0x01 != 0 { _ = serial.read(port: 0x3f8, size: 1); n += 1 }
            return n
        }
        #expect(drain() == 64)
        #expect(!serial.hostPollRequests().isEmpty)                   // 5 bytes still in the pipe
        serial.serviceHostEvents()
        #expect(drain() == 5)                                         // 1 + 64 + 5 = all 70
        serial.serviceHostEvents()                                    // end of file
        #expect(serial.hostPollRequests().isEmpty)
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
    }

    final class CountingInterrupt: InterruptLine {
        var count = 0
        func trigger() { count += 1 }
    }

    @Test func i8042ControlRegisterOutputPortAndKeyboardACK() {
        let i8042 = I8042()
        #expect(i8042.read(port: 0x64, size: 1) == 0x10)  // keyboard enabled, nothing to read
        _ = i8042.write(port: 0x64, size: 1, value: 0x20)  // read control register
        #expect(i8042.read(port: 0x64, size: 1) == 0x11)
        #expect(i8042.read(port: 0x60, size: 1) == 0x05)  // POST passed, keyboard interrupt on
        _ = i8042.write(port: 0x64, size: 1, value: 0x60)  // write control register...
        #expect(i8042.read(port: 0x64, size: 1) & 0x08 != 0)
        _ = i8042.write(port: 0x60, size: 1, value: 0x44)  // ...with this value
        _ = i8042.write(port: 0x64, size: 1, value: 0x20)
        #expect(i8042.read(port: 0x60, size: 1) == 0x44)
        _ = i8042.write(port: 0x64, size: 1, value: 0xd1)
        _ = i8042.write(port: 0x60, size: 1, value: 0x3c)
        _ = i8042.write(port: 0x64, size: 1, value: 0xd0)
        #expect(i8042.read(port: 0x60, size: 1) == 0x3c)
        _ = i8042.write(port: 0x60, size: 1, value: 0xf4)  // keyboard command: enable scanning
        #expect(i8042.read(port: 0x60, size: 1) == 0xfa)
        #expect(i8042.read(port: 0x64, size: 1) == 0x10)
    }

    @Test func i8042CtrlAltDelInterruptsOncePerByte() {
        let i8042 = I8042()
        let irq = CountingInterrupt()
        i8042.interrupt = irq
        #expect(i8042.sendCtrlAltDel())
        #expect(irq.count == 1)
        var keys: [UInt32] = []
        while i8042.read(port: 0x64, size: 1) & 1 != 0 { keys.append(i8042.read(port: 0x60, size: 1)) }
        #expect(keys == [0x14, 0x11, 0xe0, 0x71])
        #expect(irq.count == 4)  // the first, then one for each byte still waiting after a read
        // A guest that never reads its keyboard fills the buffer; the monitor is told.
        for _ in 0..<4 { #expect(i8042.sendCtrlAltDel()) }
        #expect(!i8042.sendCtrlAltDel())
        // With the keyboard interrupt disabled in the control register, no interrupt.
        let quiet = I8042()
        let none = CountingInterrupt()
        quiet.interrupt = none
        _ = quiet.write(port: 0x64, size: 1, value: 0x60)
        _ = quiet.write(port: 0x60, size: 1, value: 0x04)
        quiet.sendCtrlAltDel()
        #expect(none.count == 0)
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
