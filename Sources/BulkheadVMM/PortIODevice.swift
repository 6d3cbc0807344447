/// A device on the x86 I/O port bus. `port` is the absolute port number, `size` 1, 2 or 4 bytes.
public protocol PortIODevice: AnyObject {
    func read(port: UInt16, size: Int) -> UInt32
    func write(port: UInt16, size: Int, value: UInt32) -> DeviceRequest
}

/// What a device asks of the VM after an access.
public enum DeviceRequest: Equatable, Sendable {
    case none
    /// The guest asked for a machine reset (i8042 pulse, for example). Linux reboots this way.
    case reset
}

/// Port ranges to devices. Accesses to ports nobody claims read as all ones and are otherwise
/// ignored, which is what an empty ISA bus does and what Linux probes for.
public final class PortIOBus {
    private var devices: [(ports: ClosedRange<UInt16>, device: PortIODevice)] = []

    public init() {}

    public func register(_ device: PortIODevice, ports: ClosedRange<UInt16>) {
        precondition(!devices.contains { $0.ports.overlaps(ports) }, "port range \(ports) already taken")
        devices.append((ports, device))
    }

    public func claims(_ port: UInt16) -> Bool { devices.contains { $0.ports.contains(port) } }

    public func read(port: UInt16, size: Int) -> UInt32 {
        guard let d = devices.first(where: { $0.ports.contains(port) }) else { return UInt32.max }
        return d.device.read(port: port, size: size)
    }

    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceRequest {
        guard let d = devices.first(where: { $0.ports.contains(port) }) else { return .none }
        return d.device.write(port: port, size: size, value: value)
    }
}
