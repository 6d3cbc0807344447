import Glibc

/// virtio-blk (virtio 1.x §5.2) over a host file: one request queue; reads, writes, flushes and
/// the serial id. Sector numbers are in 512-byte units whatever the file's block size.
///
/// What the driver asks for is checked before the file is touched: a request that reaches past
/// the end of the disk, or a write to a read-only disk, completes with VIRTIO_BLK_S_IOERR (the
/// driver's mistake, the device keeps working); a chain that cannot be a request (no 16-byte
/// header, no writable status byte, data the device would have to write into a buffer the driver
/// made device-readable) is a malformed queue and the transport asks for a reset.
public final class VirtioBlock: VirtioDevice {
    public static let sectorSize: UInt64 = 512
    public static let queueSize: UInt16 = 256
    /// GET_ID answers with at most 20 bytes (VIRTIO_BLK_ID_BYTES), not NUL-terminated if 20.
    public static let idBytes = 20

    /// Request types and statuses (§5.2.6).
    public enum RequestType {
        public static let read: UInt32 = 0       // VIRTIO_BLK_T_IN
        public static let write: UInt32 = 1      // VIRTIO_BLK_T_OUT
        public static let flush: UInt32 = 4      // VIRTIO_BLK_T_FLUSH
        public static let getID: UInt32 = 8      // VIRTIO_BLK_T_GET_ID
    }
    public enum RequestStatus {
        public static let ok: UInt8 = 0
        public static let ioError: UInt8 = 1
        public static let unsupported: UInt8 = 2
    }

    /// Feature bits (§5.2.3).
    public static let featureSegmentMax: UInt64 = 1 << 2   // VIRTIO_BLK_F_SEG_MAX
    public static let featureReadOnly: UInt64 = 1 << 5     // VIRTIO_BLK_F_RO
    public static let featureFlush: UInt64 = 1 << 9        // VIRTIO_BLK_F_FLUSH
    /// Data segments per request (seg_max): the queue minus the header and status descriptors.
    public static let segmentMax = UInt32(queueSize) - 2

    public let path: String
    public let readOnly: Bool
    public let serial: String
    /// Disk size in 512-byte sectors (a partial last sector is not exposed).
    public let capacity: UInt64
    private let fd: Int32

    public let deviceType: UInt32 = 2
    public var offeredFeatures: UInt64 {
        Virtio.featureVersion1 | Self.featureFlush | Self.featureSegmentMax | (readOnly ? Self.featureReadOnly : 0)
    }
    public var queueMaxSizes: [UInt16] { [Self.queueSize] }

    /// Opens `path` (read-only if `readOnly`, so the host file cannot be written at all).
    public init(path: String, readOnly: Bool, serial: String = "") throws {
        guard serial.utf8.count <= Self.idBytes else {
            throw VMMError.invalidConfiguration("block device serial '\(serial)' is longer than \(Self.idBytes) bytes")
        }
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else { throw KVMError("open disk image \(path)", errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw KVMError("fstat disk image \(path)", errno: e)
        }
        self.fd = fd
        self.path = path
        self.readOnly = readOnly
        self.serial = serial
        capacity = UInt64(st.st_size) / Self.sectorSize
    }

    deinit { close(fd) }

    /// capacity (le64), size_max (le32, unused: no VIRTIO_BLK_F_SIZE_MAX), seg_max (le32).
    public var configuration: [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLittleEndian(capacity)
        bytes.appendLittleEndian(UInt32(0))
        bytes.appendLittleEndian(Self.segmentMax)
        return bytes
    }

    public func activate(features: UInt64) {}
    public func reset() {}

    public func processQueue(_ index: Int, queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        try queue.serveAvailable(memory: memory) { chain throws(VirtqueueError) in try serve(chain, memory: memory) }
    }

    /// One request: returns how many bytes went into device-writable buffers (data + status).
    func serve(_ chain: DescriptorChain, memory: GuestMemory) throws(VirtqueueError) -> UInt32 {
        let header: [UInt8]
        do { header = try chain.readAll(memory: memory, limit: 16) } catch {
            throw VirtqueueError("request header unreadable: \(error)")
        }
        guard header.count == 16 else {
            throw VirtqueueError("request header is \(header.count) device-readable bytes, want 16")
        }
        guard let statusBuffer = chain.writable.last, statusBuffer.length >= 1 else {
            throw VirtqueueError("request has no device-writable status byte")
        }
        let reader = LittleEndianReader(bytes: header)
        let type = reader.u32(0), sector = reader.u64(8)

        // Data: device-readable bytes after the header (for a write), device-writable bytes
        // before the status byte (for a read or GET_ID).
        let readableData = Self.ranges(chain.readable, skippingFirst: 16)
        var writableData = chain.writable.map { ($0.address, UInt64($0.length)) }
        writableData[writableData.count - 1].1 -= 1
        writableData.removeAll { $0.1 == 0 }
        let statusAddress = statusBuffer.address + UInt64(statusBuffer.length) - 1

        var status = RequestStatus.ok
        var dataWritten: UInt64 = 0
        switch type {
        case RequestType.read, RequestType.getID:
            guard readableData.isEmpty else {
                throw VirtqueueError("\(type == RequestType.read ? "read" : "GET_ID") request has device-readable data buffers: the device would write into memory the driver marked read-only")
            }
            if type == RequestType.read {
                status = transfer(writableData, sector: sector, memory: memory, write: false)
                if status == RequestStatus.ok { dataWritten = writableData.reduce(0) { $0 + $1.1 } }
            } else {
                let id = Array(serial.utf8) + [UInt8](repeating: 0, count: Self.idBytes - serial.utf8.count)
                var offset = 0
                for (address, length) in writableData where offset < id.count {
                    let n = min(Int(length), id.count - offset)
                    do { try memory.write(id[offset..<offset + n], at: address) } catch {
                        throw VirtqueueError("GET_ID buffer: \(error)")
                    }
                    offset += n
                }
                dataWritten = UInt64(offset)
            }
        case RequestType.write:
            guard writableData.isEmpty else {
                throw VirtqueueError("write request has device-writable data buffers besides the status byte")
            }
            status = readOnly ? RequestStatus.ioError
                : transfer(readableData, sector: sector, memory: memory, write: true)
        case RequestType.flush:
            status = readOnly || fsync(fd) == 0 ? RequestStatus.ok : RequestStatus.ioError
        default:
            status = RequestStatus.unsupported
        }
        do { try memory.store(status, at: statusAddress) } catch {
            throw VirtqueueError("status byte: \(error)")
        }
        // Clamped: 256 buffers of a large guest could add up past 4 GiB, which the field cannot hold.
        return UInt32(clamping: dataWritten + 1)
    }

    /// (address, length) of `buffers` after dropping their first `count` bytes.
    static func ranges(_ buffers: [VirtqueueBuffer], skippingFirst count: UInt64) -> [(UInt64, UInt64)] {
        var skip = count
        var result: [(UInt64, UInt64)] = []
        for b in buffers {
            let length = UInt64(b.length)
            if skip >= length { skip -= length; continue }
            result.append((b.address + skip, length - skip))
            skip = 0
        }
        return result
    }

    /// Reads or writes the file at `sector` through guest buffers, after checking the request is a
    /// whole number of sectors and lies within the disk.
    private func transfer(_ buffers: [(UInt64, UInt64)], sector: UInt64, memory: GuestMemory, write: Bool) -> UInt8 {
        let total = buffers.reduce(UInt64(0)) { $0 + $1.1 }
        guard total % Self.sectorSize == 0 else { return RequestStatus.ioError }
        let (sectorEnd, overflow) = sector.addingReportingOverflow(total / Self.sectorSize)
        guard !overflow, sectorEnd <= capacity else { return RequestStatus.ioError }
        var offset = off_t(sector * Self.sectorSize)
        for (address, length) in buffers {
            // Each buffer was checked against guest memory when the chain was parsed.
            guard let pointer = try? memory.hostPointer(address, length: length) else { return RequestStatus.ioError }
            var done: UInt64 = 0
            while done < length {
                let n = write ? pwrite(fd, pointer + Int(done), Int(length - done), offset)
                              : pread(fd, pointer + Int(done), Int(length - done), offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return RequestStatus.ioError }  // error, or the file shrank
                done += UInt64(n)
                offset += off_t(n)
            }
        }
        return RequestStatus.ok
    }
}
