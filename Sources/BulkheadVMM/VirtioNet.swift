import CBulkhead
import Glibc

/// virtio-net (virtio 1.x §5.1) on a TAP device: queue 0 receives, queue 1 transmits; the MAC
/// address is in the configuration space (VIRTIO_NET_F_MAC). No offloads are offered, so every
/// frame carries a virtio_net_hdr of 12 bytes (VIRTIO_F_VERSION_1: num_buffers is always present)
/// with no checksum or GSO work in it. The TAP is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR
/// and TUNSETVNETHDRSZ 12, so that header goes to and from the kernel unchanged in layout.
///
/// Transmit runs on the vCPU thread when the driver notifies queue 1. Receive runs on the event
/// thread (DeviceEventLoop) when the TAP is readable, and on a notification of queue 0 (new
/// buffers): a frame read while the guest has no receive buffer waits in `pendingFrame`, and the
/// TAP is not polled until the driver adds buffers, so nothing spins and no frame is lost.
///
/// Hostile input: the guest's transmit header is replaced by a zero one (it may not ask the host
/// to do checksum or segmentation work it did not negotiate); a transmit chain with less than a
/// header, with device-writable buffers, or larger than a header plus 65535 bytes is a malformed
/// queue; a receive chain with device-readable buffers is one too. A frame larger than the
/// receive chain is dropped (counted) and the chain returned with length 0.
public final class VirtioNet: VirtioHostEventDevice {
    public static let queueSize: UInt16 = 256
    public static let headerSize = 12
    /// Largest frame moved either way: a 64 KiB packet plus an Ethernet header and VLAN tag.
    public static let maximumFrame = 65535 + 18
    public static let featureMAC: UInt64 = 1 << 5  // VIRTIO_NET_F_MAC
    static let receiveQueue = 0, transmitQueue = 1

    public let deviceType: UInt32 = 1
    public var offeredFeatures: UInt64 { Virtio.featureVersion1 | Self.featureMAC }
    public var queueMaxSizes: [UInt16] { [Self.queueSize, Self.queueSize] }
    public let mac: [UInt8]
    /// The TAP interface's name (as the kernel reports it), or what the caller said the fd is.
    public let interfaceName: String
    public let fd: Int32

    /// Counters for diagnostics and tests.
    public private(set) var framesSent = 0
    public private(set) var framesReceived = 0
    public private(set) var framesDropped = 0

    private var pendingFrame: [UInt8]?
    private var buffer = [UInt8](repeating: 0, count: VirtioNet.headerSize + VirtioNet.maximumFrame)

    /// Opens /dev/net/tun and attaches to TAP `tapName` in the caller's network namespace (it is
    /// created if it does not exist, and removed again when this device closes it, unless it was
    /// made persistent). A TAP that cannot be opened is an error naming it.
    public convenience init(tapName: String, mac: [UInt8]) throws {
        guard !tapName.isEmpty, tapName.utf8.count < Int(IFNAMSIZ), !tapName.contains("/") else {
            throw VMMError.invalidConfiguration("TAP device name '\(tapName)' must be 1 to \(IFNAMSIZ - 1) bytes without '/'")
        }
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw KVMError("open /dev/net/tun for TAP device '\(tapName)'", errno: errno) }
        var name = [CChar](repeating: 0, count: Int(IFNAMSIZ))
        guard bh_tun_set_iff(fd, tapName, BH_IFF_TAP | BH_IFF_NO_PI | BH_IFF_VNET_HDR, &name) == 0 else {
            let e = errno
            close(fd)
            throw KVMError("create TAP device '\(tapName)' (TUNSETIFF)", errno: e)
        }
        try self.init(fd: fd, interfaceName: String(cString: name), mac: mac, isTAP: true)
    }

    /// Takes over `fd`: a TAP opened as above elsewhere (in another network namespace), or, with
    /// `isTAP` false, any datagram socket standing in for one (tests). The device closes it.
    public init(fd: Int32, interfaceName: String, mac: [UInt8], isTAP: Bool) throws {
        guard mac.count == 6 else {
            close(fd)
            throw VMMError.invalidConfiguration("MAC address of '\(interfaceName)' has \(mac.count) bytes, want 6")
        }
        if isTAP, bh_tun_set_vnet_header_size(fd, Int32(Self.headerSize)) != 0 {
            let e = errno
            close(fd)
            throw KVMError("TAP device '\(interfaceName)': TUNSETVNETHDRSZ \(Self.headerSize)", errno: e)
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        self.fd = fd
        self.interfaceName = interfaceName
        self.mac = mac
    }

    deinit { close(fd) }

    /// "aa:bb:cc:dd:ee:ff" → 6 bytes, or nil.
    public static func parseMAC(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for p in parts {
            guard p.count == 2, let b = UInt8(p, radix: 16) else { return nil }
            bytes.append(b)
        }
        return bytes
    }

    /// mac[6]; status and the rest are not offered.
    public var configuration: [UInt8] { mac }

    public func activate(features: UInt64) {}
    public func reset() { pendingFrame = nil }

    public var pollRequests: [pollfd] {
        pendingFrame == nil ? [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)] : []
    }

    public func processQueue(_ index: Int, queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        switch index {
        case Self.transmitQueue: return try transmit(&queue, memory: memory)
        case Self.receiveQueue: return try receive(&queue, memory: memory)
        default: return false
        }
    }

    public func serviceHostEvents(queues: inout [Virtqueue], memory: GuestMemory) throws(VirtqueueError) -> Bool {
        guard queues[Self.receiveQueue].ready else { return false }
        return try receive(&queues[Self.receiveQueue], memory: memory)
    }

    private func transmit(_ queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        try queue.serveAvailable(memory: memory) { chain throws(VirtqueueError) in
            guard chain.writable.isEmpty else {
                throw VirtqueueError("transmit chain has device-writable buffers")
            }
            let total = chain.readable.reduce(0) { $0 + Int($1.length) }
            guard total >= Self.headerSize else {
                throw VirtqueueError("transmit chain of \(total) bytes is shorter than the \(Self.headerSize)-byte virtio_net_hdr")
            }
            guard total <= Self.headerSize + Self.maximumFrame else {
                throw VirtqueueError("transmit chain of \(total) bytes is larger than a header and a \(Self.maximumFrame)-byte frame")
            }
            let frame: [UInt8]
            do { frame = try chain.readAll(memory: memory, limit: total) } catch {
                throw VirtqueueError("transmit buffer: \(error)")
            }
            // No offload was negotiated: the host gets a zero header whatever the guest wrote.
            let packet = [UInt8](repeating: 0, count: Self.headerSize) + frame[Self.headerSize...]
            let n = packet.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n == packet.count { framesSent += 1 } else { framesDropped += 1 }  // a full TAP queue drops, like a NIC
            return 0
        }
    }

    /// Moves frames from the TAP into receive buffers until either runs out.
    private func receive(_ queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        var used = false
        while true {
            if pendingFrame == nil {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { break }  // EAGAIN: nothing more for now
                guard n >= Self.headerSize + 14 else { framesDropped += 1; continue }  // not an Ethernet frame
                pendingFrame = Array(buffer[0..<n])
            }
            guard var frame = pendingFrame, let chain = try queue.popAvailable(memory: memory) else { break }
            pendingFrame = nil
            guard chain.readable.isEmpty else {
                throw VirtqueueError("receive chain has device-readable buffers")
            }
            let capacity = chain.writable.reduce(0) { $0 + Int($1.length) }
            var written = 0
            if frame.count <= capacity {
                // num_buffers (le16 at offset 10) is 1: no VIRTIO_NET_F_MRG_RXBUF.
                frame[10] = 1; frame[11] = 0
                for b in chain.writable where written < frame.count {
                    let n = min(Int(b.length), frame.count - written)
                    do { try memory.write(frame[written..<written + n], at: b.address) } catch {
                        throw VirtqueueError("receive buffer: \(error)")
                    }
                    written += n
                }
                framesReceived += 1
            } else {
                framesDropped += 1
            }
            try queue.pushUsed(head: chain.head, writtenLength: UInt32(written), memory: memory)
            used = true
        }
        return used
    }
}
