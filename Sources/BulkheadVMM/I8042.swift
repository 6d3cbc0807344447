import Glibc

/// The i8042 keyboard controller (ports 0x60 and 0x64), as much of it as a microVM needs — the
/// same subset Firecracker emulates:
/// - the reset line: command 0xfe on port 0x64 pulses CPU reset, which is how Linux reboots with
///   reboot=k and how a microVM tells its monitor it is done;
/// - Ctrl-Alt-Del: the monitor puts the three key presses in the output buffer and raises IRQ 1;
///   Linux's keyboard driver turns them into a clean reboot (SendCtrlAltDel);
/// - what Linux's i8042 driver does at probe time: read and write the control register and the
///   output port, and send commands to the keyboard, which a "dumb" keyboard acknowledges (0xfa).
///
/// `sendCtrlAltDel` runs on the API thread while the vCPU thread reads the ports, so the state is
/// behind a lock.
public final class I8042: PortIODevice, @unchecked Sendable {
    public static let dataPort: UInt16 = 0x60
    public static let commandPort: UInt16 = 0x64

    /// Controller commands, written to port 0x64.
    public enum Command {
        public static let readControl: UInt8 = 0x20
        public static let writeControl: UInt8 = 0x60
        public static let readOutputPort: UInt8 = 0xd0
        public static let writeOutputPort: UInt8 = 0xd1
        /// "Pulse output line 0 (CPU reset) low".
        public static let reset: UInt8 = 0xfe
    }
    public static let resetCommand = Command.reset

    /// Status register bits (port 0x64 reads).
    public static let statusOutputFull: UInt8 = 0x01
    static let statusCommandData: UInt8 = 0x08  // the next port 0x60 write is a command's parameter
    static let statusKeyboardEnabled: UInt8 = 0x10
    /// Control register bits.
    static let controlKeyboardInterrupt: UInt8 = 0x01
    static let controlPOSTPassed: UInt8 = 0x04
    /// What the keyboard answers to any command.
    static let keyboardACK: UInt8 = 0xfa
    /// The controller's output buffer holds this many bytes; a full buffer refuses more keys.
    static let bufferSize = 16

    /// Scan code set 2 make codes of Ctrl, Alt and Delete (Delete is the extended 0xe0 0x71), in the
    /// order Firecracker sends them.
    public static let ctrlAltDelScanCodes: [UInt8] = [0x14, 0x11, 0xe0, 0x71]

    /// Raised (edge) when the guest has a byte to read, if the control register allows it; GSI 1.
    public var interrupt: InterruptLine?
    private var output: [UInt8] = []
    private var status = I8042.statusKeyboardEnabled
    private var control = I8042.controlPOSTPassed | I8042.controlKeyboardInterrupt
    private var outputPort: UInt8 = 0
    private var pendingCommand: UInt8 = 0
    private let lock = ThreadLock()

    public init() {}

    /// Queues Ctrl, Alt, Delete for the guest and interrupts it. False when the output buffer has
    /// no room for the whole sequence (the guest is not reading its keyboard).
    @discardableResult
    public func sendCtrlAltDel() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard output.count + Self.ctrlAltDelScanCodes.count <= Self.bufferSize else { return false }
        for byte in Self.ctrlAltDelScanCodes { push(byte) }
        raiseInterrupt()
        return true
    }

    public func read(port: UInt16, size: Int) -> UInt32 {
        lock.lock()
        defer { lock.unlock() }
        if port == Self.commandPort { return UInt32(status) }
        guard !output.isEmpty else { return 0 }
        let byte = output.removeFirst()
        if output.isEmpty {
            status &= ~Self.statusOutputFull
        } else {
            raiseInterrupt()  // one interrupt per byte: the driver reads one byte per interrupt
        }
        return UInt32(byte)
    }

    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceRequest {
        let byte = UInt8(truncatingIfNeeded: value)
        lock.lock()
        defer { lock.unlock() }
        if port == Self.commandPort {
            switch byte {
            case Command.reset: return .reset
            case Command.readControl: reply(control)
            case Command.readOutputPort: reply(outputPort)
            case Command.writeControl, Command.writeOutputPort:
                output.removeAll()
                status &= ~Self.statusOutputFull
                status |= Self.statusCommandData
                pendingCommand = byte
            default: break
            }
        } else if status & Self.statusCommandData != 0 {
            if pendingCommand == Command.writeControl { control = byte }
            if pendingCommand == Command.writeOutputPort { outputPort = byte }
            status &= ~Self.statusCommandData
        } else {
            // A command for the keyboard itself; a dumb keyboard acknowledges everything.
            reply(Self.keyboardACK)
            raiseInterrupt()
        }
        return .none
    }

    /// Makes `byte` the only thing the guest reads next (answers to commands replace stale keys).
    private func reply(_ byte: UInt8) {
        output.removeAll()
        push(byte)
    }

    private func push(_ byte: UInt8) {
        output.append(byte)
        status |= Self.statusOutputFull
    }

    private func raiseInterrupt() {
        if control & Self.controlKeyboardInterrupt != 0 { interrupt?.trigger() }
    }
}
