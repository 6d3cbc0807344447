/// A minimal 16550A-compatible UART (8 ports at 0x3f8 for COM1): enough for a guest to print.
///
/// Output is collected as bytes. There is no input. The transmitter is always empty (LSR
/// THRE|TEMT): a byte written to THR leaves at once, so polling drivers and Linux's early console
/// never wait. With IER's ETBEI bit set, THR-empty is an interrupt (IIR 0x02) on `interrupt`
/// (ISA IRQ 4 for COM1): Linux's tty layer writes a FIFO's worth of bytes and then waits for it, so
/// without it user-space output stalls after 16 bytes (measured: the nested boot of the Debian
/// kernel cut "BULKHEAD-DISK ..." there). As on a 16550, the interrupt is pending from the moment
/// ETBEI is set or a byte is sent, until IIR is read while it is the source or ETBEI is cleared.
/// Registers keep what the guest writes so driver probes (scratch register, LCR, loopback MSR) read
/// back consistent values.
public final class Serial8250: PortIODevice {
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
    static let lsrTransmitterEmpty: UInt8 = 0x60  // THRE | TEMT
    static let iirNoInterrupt: UInt8 = 0x01
    static let mcrLoopback: UInt8 = 0x10

    /// Every byte the guest transmitted, in order.
    public private(set) var output: [UInt8] = []
    /// Called with each transmitted byte (for streaming to a console or log).
    public var onOutput: ((UInt8) -> Void)?
    /// Where THR-empty interrupts go (edge: one `trigger` per newly pending interrupt).
    public var interrupt: InterruptLine?
    /// A THR-empty interrupt is pending (reported by IIR while IER's ETBEI is set).
    private var transmitterInterruptPending = false
    static let ierTransmitterEmpty: UInt8 = 0x02
    static let iirTransmitterEmpty: UInt8 = 0x02

    private var interruptEnable: UInt8 = 0
    private var lineControl: UInt8 = 0x03  // 8N1, what firmware leaves behind
    private var modemControl: UInt8 = 0x08  // OUT2
    private var scratch: UInt8 = 0
    private var divisorLow: UInt8 = 0x0c    // 9600 baud
    private var divisorHigh: UInt8 = 0
    private var fifoControl: UInt8 = 0

    /// First of the UART's 8 ports (0x3f8 for COM1).
    public let basePort: UInt16
    public var ports: ClosedRange<UInt16> { basePort...(basePort + 7) }

    public init(basePort: UInt16 = 0x3f8) { self.basePort = basePort }

    /// The output decoded as UTF-8 (invalid sequences become U+FFFD).
    public var outputText: String { String(decoding: output, as: UTF8.self) }

    public func read(port: UInt16, size: Int) -> UInt32 {
        let offset = port &- basePort
        let dlabSet = lineControl & Self.dlab != 0
        let value: UInt8
        switch offset {
        case Register.data: value = dlabSet ? divisorLow : 0  // no input yet
        case Register.interruptEnable: value = dlabSet ? divisorHigh : interruptEnable
        case Register.interruptId:
            let fifoBits: UInt8 = fifoControl & 1 != 0 ? 0xc0 : 0
            if transmitterInterruptPending && interruptEnable & Self.ierTransmitterEmpty != 0 {
                transmitterInterruptPending = false  // reading IIR clears THRE as the source
                value = Self.iirTransmitterEmpty | fifoBits
            } else {
                value = Self.iirNoInterrupt | fifoBits
            }
        case Register.lineControl: value = lineControl
        case Register.modemControl: value = modemControl
        case Register.lineStatus: value = Self.lsrTransmitterEmpty
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

    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceRequest {
        let offset = port &- basePort
        let byte = UInt8(truncatingIfNeeded: value)
        let dlabSet = lineControl & Self.dlab != 0
        switch offset {
        case Register.data:
            if dlabSet {
                divisorLow = byte
            } else if modemControl & Self.mcrLoopback == 0 {  // loopback output goes nowhere
                output.append(byte)
                onOutput?(byte)
                transmitterEmptied()
            } else {
                transmitterEmptied()
            }
        case Register.interruptEnable:
            if dlabSet { divisorHigh = byte } else {
                let wasEnabled = interruptEnable & Self.ierTransmitterEmpty != 0
                interruptEnable = byte & 0x0f
                if interruptEnable & Self.ierTransmitterEmpty == 0 {
                    transmitterInterruptPending = false
                } else if !wasEnabled {
                    transmitterEmptied()  // THR is empty: enabling the interrupt raises it
                }
            }
        case Register.interruptId: fifoControl = byte
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
