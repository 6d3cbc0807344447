import Glibc

/// Firecracker's boot-timer pseudo device (`--boot-timer`): the guest writes the byte 123 at
/// offset 0 of this MMIO page when it has booted, and the monitor logs the time since
/// InstanceStart. It sits where current Firecracker puts it on x86-64, 0xc000_0000, the first page
/// of the 32-bit MMIO gap, below our virtio-mmio windows at 0xd000_0000 (older Firecracker put
/// it at 0xd000_0000 itself, where our first virtio device is).
public final class BootTimer: MMIODevice, @unchecked Sendable {
    public static let address: UInt64 = 0xc000_0000
    public static let length: UInt64 = 0x1000
    /// MAGIC_VALUE_SIGNAL_GUEST_BOOT_COMPLETE.
    public static let magicValue: UInt8 = 123

    private let start: timespec
    private let report: (String) -> Void
    /// Microseconds from InstanceStart to the guest's write, once it happened.
    public private(set) var bootTimeMicroseconds: Int64?

    /// `start` is when InstanceStart was received (CLOCK_MONOTONIC); `report` gets the log line.
    public init(start: timespec, report: @escaping (String) -> Void) {
        self.start = start
        self.report = report
    }

    public static func now() -> timespec {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t
    }

    public func read(offset: UInt64, size: Int) -> UInt64 { 0 }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        // Like Firecracker: only single-byte writes of the magic value at offset 0 count.
        guard offset == 0, size == 1, UInt8(truncatingIfNeeded: value) == Self.magicValue else { return }
        let t = Self.now()
        let micros = Int64(t.tv_sec - start.tv_sec) * 1_000_000 + Int64(t.tv_nsec - start.tv_nsec) / 1000
        bootTimeMicroseconds = micros
        report("Guest-boot-time = \(micros) us \(micros / 1000) ms")
    }
}
