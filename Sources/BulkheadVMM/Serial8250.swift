import Glibc

/// A minimal 16550A-compatible UART (8 ports at 0x3f8 for COM1): the guest's console.
///
/// Output: the transmitter is always empty (LSR THRE|TEMT): a byte written to THR leaves at once,
/// so polling drivers and Linux's early console never wait. With IER's ETBEI bit set, THR-empty is
/// an interrupt (IIR 0x02) on `interrupt` (ISA IRQ 4 for COM1): Linux's tty layer writes a FIFO's
/// worth of bytes and then waits for it, so without it user-space output stalls after 16 bytes
/// (measured: the nested boot of the Debian kernel cut "BULKHEAD-DISK ..." there). As on a 16550,
/// the interrupt is pending from the moment ETBEI is set or a byte is sent, until IIR is read while
/// it is the source or ETBEI is cleared.
///
/// Input: bytes from the host (`receive`, or the `input` descriptor, which the device event loop
/// reads while the 64-byte receive FIFO has room, as Firecracker's serial does) wait in the FIFO;
/// LSR's DR bit says so, RBR pops them, and with IER's ERBFI bit set "received data available"
/// (IIR 0x04, above THR-empty) is an interrupt whenever data arrives in an empty FIFO. In loopback
/// (MCR bit 4) transmitted bytes come back as input, as on the chip.
///
/// Registers keep what the guest writes so driver probes (scratch register, LCR, loopback MSR)
/// read back consistent values. vCPU threads and the event loop share the device: its state is
/// behind a lock.
public final class Serial8250: PortIODevice, HostEventSource {
    enum Register {
        static let data: UInt16 = 0        // RBR (read) / THR (write); DLL when LCR.DLAB
        static let interruptEnable: UInt16 = 1  // IER; DLM when LCR.DLAB
        static let interruptId: UInt16 = 2      // IIR (read) / FCR (write)
        static let lineControl: UInt16 = 3
        static let modemControl: UInt16 = 4
        static let lineStatus: UInt16 = 5
        static let modemStatus: UInt16 = 6
        static let scratch: UInt16 = 7
    }

    static let dlab: UInt8 = 0x80
    static let lsrDataReady: UInt8 = 0x01
    static let lsrTransmitterEmpty: UInt8 = 0x60  // THRE | TEMT
    static let iirNoInterrupt: UInt8 = 0x01
    static let iirReceivedData: UInt8 = 0x04
    static let iirTransmitterEmpty: UInt8 = 0x02
    static let ierReceivedData: UInt8 = 0x01
    static let ierTransmitterEmpty: UInt8 = 0x02
    static let fcrClearReceiver: UInt8 = 0x02
    static let mcrLoopback: UInt8 = 0x10
    /// Receive FIFO size (Firecracker's; a 16550's own FIFO is 16 bytes).
    public static let receiveCapacity = 64

    /// Every byte the guest transmitted, in order, while nobody takes them through `onOutput`
    /// (a long-running guest's console must not pile up in the monitor's memory).
    public var output: [UInt8] { lock.locked { transmitted } }
    /// Called with each transmitted byte (for streaming to a console or log), instead of keeping it.
    public var onOutput: ((UInt8) -> Void)?
    /// Where the UART's interrupts go (edge: one `trigger` per newly pending interrupt).
    public var interrupt: InterruptLine?
    /// Host input (bulkhead-vmm's stdin), read by the device event loop; -1 for none. A read of 0
    /// bytes (end of file) or an error ends the input.
    public var input: Int32 = -1
    /// Set by the device event loop: the guest made room in the receive FIFO.
    public var wakeEventLoop: (() -> Void)?

    private var transmitted: [UInt8] = []
    private var received: [UInt8] = []
    private var inputEnded = false
    /// A THR-empty interrupt is pending (reported by IIR while IER's ETBEI is set).
    private var transmitterInterruptPending = false
    private var interruptEnable: UInt8 = 0
    private var lineControl: UInt8 = 0x03  // 8N1, what firmware leaves behind
    private var modemControl: UInt8 = 0x08  // OUT2
    private var scratch: UInt8 = 0
    private var divisorLow: UInt8 = 0x0c    // 9600 baud
    private var divisorHigh: UInt8 = 0
    private var fifoControl: UInt8 = 0
    private let lock = ThreadLock()

    /// First of the UART's 8 ports (0x3f8 for COM1).
    public let basePort: UInt16
    public var ports: ClosedRange<UInt16> { basePort...(basePort + 7) }

    public init(basePort: UInt16 = 0x3f8) {
        self.basePort = basePort
    }



    /// The output decoded as UTF-8 (invalid sequences become U+FFFD).
    public var outputText: String { String(decoding: output, as: UTF8.self) }

    /// Puts host bytes in the receive FIFO; returns how many fitted.
    @discardableResult
    public func receive<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int {
        lock.locked { receiveLocked(bytes) }
    }

    private func receiveLocked<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int {
        let accepted = bytes.prefix(Self.receiveCapacity - received.count)
        guard !accepted.isEmpty else { return 0 }
        let wasEmpty = received.isEmpty
        received += accepted
        if wasEmpty && interruptEnable & Self.ierReceivedData != 0 { interrupt?.trigger() }
        return accepted.count
    }

    // MARK: HostEventSource (the host side of `input`)

    public func hostPollRequests() -> [pollfd] {
        lock.locked {
            guard input >= 0, !inputEnded, received.count < Self.receiveCapacity else { return [] }
            return [pollfd(fd: input, events: Int16(POLLIN), revents: 0)]
        }
    }

    public func serviceHostEvents() {
        lock.locked {
            guard input >= 0, !inputEnded, received.count < Self.receiveCapacity else { return }
            // Only read what poll says is there: stdin may be a blocking terminal or pipe.
            var fd = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
            guard poll(&fd, 1, 0) == 1 else { return }
            var buffer = [UInt8](repeating: 0, count: Self.receiveCapacity - received.count)
            let n = Glibc.read(input, &buffer, buffer.count)
            if n > 0 {
                receiveLocked(buffer[0..<n])
            } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                inputEnded = true
            }
        }
    }

    public func read(port: UInt16, size: Int) -> UInt32 {
        var roomMade = false
        let value = lock.locked { () -> UInt32 in
            let full = received.count == Self.receiveCapacity
            let value = readLocked(port: port)
            roomMade = full && received.count < Self.receiveCapacity
            return value
        }
        if roomMade { wakeEventLoop?() }
        return value
    }

    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceRequest {
        lock.locked { writeLocked(port: port, value: value) }
    }

    private func readLocked(port: UInt16) -> UInt32 {
        let offset = port &- basePort
        let dlabSet = lineControl & Self.dlab != 0
        let value: UInt8
        switch offset {
        case Register.data:
            if dlabSet { value = divisorLow } else { value = received.isEmpty ? 0 : received.removeFirst() }
        case Register.interruptEnable: value = dlabSet ? divisorHigh : interruptEnable
        case Register.interruptId:
            let fifoBits: UInt8 = fifoControl & 1 != 0 ? 0xc0 : 0
            if !received.isEmpty && interruptEnable & Self.ierReceivedData != 0 {
                value = Self.iirReceivedData | fifoBits  // cleared by reading the data, not IIR
            } else if transmitterInterruptPending && interruptEnable & Self.ierTransmitterEmpty != 0 {
                transmitterInterruptPending = false  // reading IIR clears THRE as the source
                value = Self.iirTransmitterEmpty | fifoBits
            } else {
                value = Self.iirNoInterrupt | fifoBits
            }
        case Register.lineControl: value = lineControl
        case Register.modemControl: value = modemControl
        case Register.lineStatus: value = Self.lsrTransmitterEmpty | (received.isEmpty ? 0 : Self.lsrDataReady)
        case Register.modemStatus:
            // In loopback, MCR's DTR/RTS/OUT1/OUT2 appear as DSR/CTS/RI/DCD (the 8250 probe checks
            // this); otherwise report a connected line: DCD, DSR, CTS.
            if modemControl & Self.mcrLoopback != 0 {
                let m = modemControl
                value = ((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) | ((m & 0x08) << 4)
            } else {
                value = 0xb0
            }
        case Register.scratch: value = scratch
        default: value = 0xff
        }
        return UInt32(value)
    }

    private func writeLocked(port: UInt16, value: UInt32) -> DeviceRequest {
        let offset = port &- basePort
        let byte = UInt8(truncatingIfNeeded: value)
        let dlabSet = lineControl & Self.dlab != 0
        switch offset {
        case Register.data:
            if dlabSet {
                divisorLow = byte
            } else if modemControl & Self.mcrLoopback == 0 {
                if let onOutput { onOutput(byte) } else { transmitted.append(byte) }
                transmitterEmptied()
            } else {
                _ = receiveLocked(CollectionOfOne(byte))  // loopback: what is sent is received
                transmitterEmptied()
            }
        case Register.interruptEnable:
            if dlabSet { divisorHigh = byte } else {
                let wasEnabled = interruptEnable & Self.ierTransmitterEmpty != 0
                let receiveWasEnabled = interruptEnable & Self.ierReceivedData != 0
                interruptEnable = byte & 0x0f
                if !receiveWasEnabled && interruptEnable & Self.ierReceivedData != 0 && !received.isEmpty {
                    interrupt?.trigger()  // data was waiting: enabling the interrupt raises it
                }
                if interruptEnable & Self.ierTransmitterEmpty == 0 {
                    transmitterInterruptPending = false
                } else if !wasEnabled {
                    transmitterEmptied()  // THR is empty: enabling the interrupt raises it
                }
            }
        case Register.interruptId:
            fifoControl = byte
            if byte & Self.fcrClearReceiver != 0 { received.removeAll() }
        case Register.lineControl: lineControl = byte
        case Register.modemControl: modemControl = byte & 0x1f
        case Register.scratch: scratch = byte
        default: break  // LSR and MSR are read-only
        }
        return .none
    }

    /// THR became empty: the interrupt becomes pending (one edge when it was not already).
    private func transmitterEmptied() {
        guard interruptEnable & Self.ierTransmitterEmpty != 0, !transmitterInterruptPending else { return }
        transmitterInterruptPending = true
        interrupt?.trigger()
    }
}
