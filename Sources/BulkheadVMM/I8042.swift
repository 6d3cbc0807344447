import Glibc

/// Just enough of the i8042 keyboard controller (ports 0x60 and 0x64) for two things a microVM
/// monitor needs: the reset line (command 0xfe to port 0x64 pulses CPU reset, which is how Linux
/// reboots with reboot=k and how a microVM tells its monitor it is done) and Ctrl-Alt-Del (the
/// monitor puts the key presses in the output buffer and raises IRQ 1, as Firecracker's
/// SendCtrlAltDel does; Linux's keyboard driver turns them into a clean reboot).
///
/// `sendCtrlAltDel` runs on the API thread while the vCPU thread reads the ports, so the buffer
/// is behind a lock.
public final class I8042: PortIODevice, @unchecked Sendable {
    public static let dataPort: UInt16 = 0x60
    public static let commandPort: UInt16 = 0x64
    /// The controller command "pulse output line 0 (CPU reset) low".
    public static let resetCommand: UInt8 = 0xfe
    /// Status bit: the output buffer (port 0x60) holds a byte for the CPU.
    public static let statusOutputFull: UInt8 = 0x01
    /// Scan code set 2 make codes of Ctrl, Alt and Delete (Delete is the extended 0xe0 0x71), in the
    /// order Firecracker sends them.
    public static let ctrlAltDelScanCodes: [UInt8] = [0x14, 0x11, 0xe0, 0x71]

    /// Raised (edge) when bytes are put in the output buffer; GSI 1 on a PC.
    public var interrupt: InterruptLine?
    private var output: [UInt8] = []
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init() { pthread_mutex_init(lock, nil) }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// Queues Ctrl, Alt, Delete for the guest and interrupts it.
    public func sendCtrlAltDel() {
        pthread_mutex_lock(lock)
        output += Self.ctrlAltDelScanCodes
        pthread_mutex_unlock(lock)
        interrupt?.trigger()
    }

    public func read(port: UInt16, size: Int) -> UInt32 {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if port == Self.commandPort {
            // Input buffer always empty, so drivers never wait on us; output full when a key waits.
            return output.isEmpty ? 0 : UInt32(Self.statusOutputFull)
        }
        return output.isEmpty ? 0 : UInt32(output.removeFirst())
    }

    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceRequest {
        if port == Self.commandPort, UInt8(truncatingIfNeeded: value) == Self.resetCommand {
            return .reset
        }
        return .none
    }
}
