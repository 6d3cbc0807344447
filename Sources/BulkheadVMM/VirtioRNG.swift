import CBulkhead
import Glibc

/// virtio-rng, the entropy device (virtio 1.x §5.4; Firecracker's `entropy`): one request queue
/// whose chains are device-writable buffers that the device fills from getrandom(2).
///
/// A chain with a device-readable buffer is not a request this device can serve (it would have
/// to write memory the driver made read-only): the queue is malformed and the transport asks for
/// a reset. At most `maximumRequestBytes` are filled per chain — the used length tells the driver
/// how many — so a driver cannot make the VMM spend unbounded time in one exit.
public final class VirtioRNG: VirtioDevice {
    public static let queueSize: UInt16 = 256
    /// Bytes filled per chain at most (Linux asks for 64 bytes or a page at a time).
    public static let maximumRequestBytes: UInt32 = 64 * 1024

    public let deviceType: UInt32 = 4
    public var offeredFeatures: UInt64 { Virtio.featureVersion1 }
    public var queueMaxSizes: [UInt16] { [Self.queueSize] }
    /// virtio-rng has no configuration space.
    public var configuration: [UInt8] { [] }
    /// Bytes handed to the driver since the VM started (diagnostics and tests).
    public private(set) var bytesProvided: UInt64 = 0

    public init() {}

    public func activate(features: UInt64) {}
    public func reset() {}

    public func processQueue(_ index: Int, queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        try queue.serveAvailable(memory: memory) { chain throws(VirtqueueError) in
            guard chain.readable.isEmpty else {
                throw VirtqueueError("entropy request has device-readable buffers: the device only writes")
            }
            var written: UInt32 = 0
            for buffer in chain.writable where written < Self.maximumRequestBytes {
                let length = min(buffer.length, Self.maximumRequestBytes - written)
                // The buffer was checked against guest memory when the chain was parsed.
                guard length > 0, let pointer = try? memory.hostPointer(buffer.address, length: UInt64(length)) else { continue }
                try Self.fill(pointer, count: Int(length))
                written += length
            }
            bytesProvided += UInt64(written)
            return written
        }
    }

    /// getrandom(2) until `count` bytes are filled (it returns at most 32 MiB - 1 per call and may
    /// be interrupted by a signal). The urandom pool is initialised long before a VM boots.
    static func fill(_ pointer: UnsafeMutableRawPointer, count: Int) throws(VirtqueueError) {
        var done = 0
        while done < count {
            let n = getrandom(pointer + done, count - done, 0)
            if n < 0 {
                if errno == EINTR { continue }
                throw VirtqueueError("getrandom: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}
