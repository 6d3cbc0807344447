/// A device on the guest physical address bus, reached through KVM_EXIT_MMIO. `offset` is from the
/// start of the device's window; `size` is 1, 2, 4 or 8 bytes.
public protocol MMIODevice: AnyObject {
    func read(offset: UInt64, size: Int) -> UInt64
    func write(offset: UInt64, size: Int, value: UInt64)
}

/// Address windows to devices. Accesses no window claims are the run loop's to answer (all ones).
public final class MMIOBus {
    private var windows: [(range: Range<UInt64>, device: MMIODevice)] = []

    public init() {}

    /// Claims [base, base+length) for `device`; windows never overlap.
    public func register(_ device: MMIODevice, base: UInt64, length: UInt64) throws(VMMError) {
        let (end, overflow) = base.addingReportingOverflow(length)
        guard !overflow, length > 0 else {
            throw .invalidConfiguration("MMIO window at 0x\(String(base, radix: 16)) of \(length) bytes is empty or wraps")
        }
        let range = base..<end
        if let taken = windows.first(where: { $0.range.overlaps(range) }) {
            throw .invalidConfiguration("MMIO window 0x\(String(base, radix: 16))+0x\(String(length, radix: 16)) overlaps the one at 0x\(String(taken.range.lowerBound, radix: 16))")
        }
        windows.append((range, device))
    }

    /// The device whose window holds the whole access, and the offset into that window.
    private func find(_ address: UInt64, size: Int) -> (MMIODevice, UInt64)? {
        guard let w = windows.first(where: { $0.range.contains(address) }),
              address + UInt64(size) <= w.range.upperBound else { return nil }
        return (w.device, address - w.range.lowerBound)
    }

    public func claims(_ address: UInt64, size: Int) -> Bool { find(address, size: size) != nil }

    /// The value read, or nil when no device claims the access.
    public func read(address: UInt64, size: Int) -> UInt64? {
        guard let (device, offset) = find(address, size: size) else { return nil }
        return device.read(offset: offset, size: size)
    }

    /// False when no device claims the access.
    @discardableResult
    public func write(address: UInt64, size: Int, value: UInt64) -> Bool {
        guard let (device, offset) = find(address, size: size) else { return false }
        device.write(offset: offset, size: size, value: value)
        return true
    }
}
