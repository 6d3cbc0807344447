/// Just enough of the i8042 keyboard controller (ports 0x60 and 0x64) for the reset line: writing
/// command 0xfe to port 0x64 pulses CPU reset, which is how Linux reboots on a PC without ACPI
/// reset (reboot=k) and how a microVM tells its monitor it is done (Firecracker does the same).
public final class I8042: PortIODevice {
    public static let dataPort: UInt16 = 0x60
    public static let commandPort: UInt16 = 0x64
    /// The controller command "pulse output line 0 (CPU reset) low".
    public static let resetCommand: UInt8 = 0xfe

    public init() {}

    public func read(port: UInt16, size: Int) -> UInt32 {
        // Status 0: output buffer empty, input buffer empty, so drivers never wait on us; no data.
        0
    }

    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceRequest {
        if port == Self.commandPort, UInt8(truncatingIfNeeded: value) == Self.resetCommand {
            return .reset
        }
        return .none
    }
}
