import CBulkhead
import Glibc

/// virtio-vsock (virtio 1.x §5.10) with Firecracker's host side: stream sockets between the
/// guest and Unix sockets on the host.
///
/// - Host to guest: a client connects to the Unix socket at `udsPath` and writes
///   `CONNECT <port>\n`; the device sends the guest a REQUEST from the host (CID 2) to that port
///   and, when the guest answers RESPONSE, writes `OK <host port>\n` to the client; from then on
///   the client's bytes are the stream. A RST (nobody listens) closes the client.
/// - Guest to host: a REQUEST to host port P connects to the Unix socket `<udsPath>_P`; RESPONSE
///   if that works, RST if not.
///
/// Queues: 0 receive (device to guest), 1 transmit, 2 events (never used: no migration). Packets
/// are a 44-byte little-endian virtio_vsock_hdr then `len` payload bytes. Credit (§5.10.6.3):
/// every packet to the guest carries this side's buf_alloc and fwd_cnt (bytes written to the
/// host socket); the device sends the guest no more than the guest's advertised free space, and
/// a guest that sends more than the device's space is reset (RST).
///
/// Host sockets are served by the event thread (DeviceEventLoop); guest packets on the vCPU
/// thread when the driver notifies the transmit queue; both under the transport's lock. Replies
/// wait in `control` until the guest has receive buffers, and the event thread delivers them.
///
/// Hostile input: a transmit chain with device-writable buffers, shorter than the header, or
/// whose `len` exceeds its payload or 64 KiB is a malformed queue; a receive chain with
/// device-readable buffers or too small for a header is too. A packet with the wrong CIDs is
/// dropped; an unknown type or operation, or data for no connection, gets RST.
public final class VirtioVsock: VirtioHostEventDevice {
    public static let queueSize: UInt16 = 256
    public static let headerSize = 44
    public static let hostCID: UInt64 = 2
    public static let maximumPayload = 64 * 1024
    /// This side's receive space per connection (bytes from the guest not yet written to the host socket).
    public static let bufferAllocation: UInt32 = 256 * 1024
    static let receiveQueue = 0, transmitQueue = 1
    /// Unix clients that have connected but not finished their CONNECT line.
    static let maximumPendingClients = 64

    public enum Op {
        public static let request: UInt16 = 1, response: UInt16 = 2, rst: UInt16 = 3, shutdown: UInt16 = 4
        public static let rw: UInt16 = 5, creditUpdate: UInt16 = 6, creditRequest: UInt16 = 7
    }
    public static let typeStream: UInt16 = 1

    /// One packet header, host byte order.
    public struct Header: Equatable, Sendable {
        public var srcCID: UInt64 = 0, dstCID: UInt64 = 0
        public var srcPort: UInt32 = 0, dstPort: UInt32 = 0
        public var len: UInt32 = 0
        public var type: UInt16 = VirtioVsock.typeStream
        public var op: UInt16 = 0
        public var flags: UInt32 = 0
        public var bufAlloc: UInt32 = 0
        public var fwdCnt: UInt32 = 0

        public init() {}

        init(_ b: [UInt8]) {
            let r = LittleEndianReader(bytes: b)
            srcCID = r.u64(0); dstCID = r.u64(8); srcPort = r.u32(16); dstPort = r.u32(20); len = r.u32(24)
            type = r.u16(28); op = r.u16(30)
            flags = r.u32(32); bufAlloc = r.u32(36); fwdCnt = r.u32(40)
        }

        var bytes: [UInt8] {
            var b: [UInt8] = []
            b.appendLittleEndian(srcCID); b.appendLittleEndian(dstCID)
            b.appendLittleEndian(srcPort); b.appendLittleEndian(dstPort); b.appendLittleEndian(len)
            b.appendLittleEndian(type); b.appendLittleEndian(op)
            b.appendLittleEndian(flags); b.appendLittleEndian(bufAlloc); b.appendLittleEndian(fwdCnt)
            return b
        }
    }

    /// A stream between guest port and host port, backed by a Unix socket.
    final class Connection {
        let hostPort: UInt32, guestPort: UInt32
        let fd: Int32
        /// Host-initiated, waiting for the guest's RESPONSE.
        var awaitingResponse: Bool
        /// Bytes from the guest not yet written to the socket.
        var toHost: [UInt8] = []
        /// Bytes read from the socket not yet sent to the guest.
        var toGuest: [UInt8] = []
        var forwarded: UInt32 = 0      // fwd_cnt: bytes written to the socket
        var sentToGuest: UInt32 = 0    // tx_cnt
        var peerBufAlloc: UInt32 = 0, peerFwdCnt: UInt32 = 0
        var hostEOF = false
        var lastAdvertisedFwdCnt: UInt32 = 0
        /// SHUTDOWN flags the guest sent (1: it receives no more, 2: it sends no more); acted on
        /// once its bytes still waiting for the socket are written.
        var guestShutdown: UInt32 = 0

        init(hostPort: UInt32, guestPort: UInt32, fd: Int32, awaitingResponse: Bool) {
            self.hostPort = hostPort; self.guestPort = guestPort; self.fd = fd; self.awaitingResponse = awaitingResponse
        }

        /// Free space the guest advertised.
        var peerCredit: Int { max(0, Int(peerBufAlloc) - Int(sentToGuest &- peerFwdCnt)) }
    }

    /// A Unix client that has not finished its CONNECT line.
    struct PendingClient { var fd: Int32; var line: [UInt8] }

    public let deviceType: UInt32 = 19
    public var offeredFeatures: UInt64 { Virtio.featureVersion1 }
    public var queueMaxSizes: [UInt16] { [Self.queueSize, Self.queueSize, Self.queueSize] }
    public let guestCID: UInt64
    public let udsPath: String
    private let listener: Int32
    private var clients: [PendingClient] = []
    private var connections: [Connection] = []
    /// Packets for the guest that carry no stream data (RESPONSE, RST, REQUEST, CREDIT_UPDATE, SHUTDOWN).
    private var control: [Header] = []
    private var nextHostPort: UInt32 = 1 << 30
    /// Packets from the guest dropped for wrong CIDs (diagnostics and tests).
    public private(set) var droppedPackets = 0

    /// Listens on `udsPath` (which must not exist yet). CIDs 0-2 and 0xffffffff are reserved.
    public init(guestCID: UInt64, udsPath: String) throws {
        guard guestCID > 2, guestCID < 0xffff_ffff else {
            throw VMMError.invalidConfiguration("vsock guest_cid \(guestCID) is reserved (want 3 to 2^32-2)")
        }
        guard udsPath.utf8.count + 12 < MemoryLayout.size(ofValue: sockaddr_un().sun_path), !udsPath.isEmpty else {
            throw VMMError.invalidConfiguration("vsock uds_path '\(udsPath)' is empty or too long for a Unix socket (with room for _<port>)")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw KVMError("socket for vsock uds_path '\(udsPath)'", errno: errno) }
        guard Self.withAddress(udsPath, { bind(fd, $0, $1) }) == 0, listen(fd, 64) == 0 else {
            let e = errno
            close(fd)
            throw KVMError("listen on vsock uds_path '\(udsPath)'", errno: e)
        }
        listener = fd
        self.guestCID = guestCID
        self.udsPath = udsPath
    }

    deinit {
        for c in clients { close(c.fd) }
        for c in connections { close(c.fd) }
        close(listener)
        unlink(udsPath)
    }

    static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// guest_cid (le64).
    public var configuration: [UInt8] {
        var b: [UInt8] = []
        b.appendLittleEndian(guestCID)
        return b
    }

    public func activate(features: UInt64) {}

    /// A reset drops every stream (the guest forgot them).
    public func reset() {
        for c in connections { close(c.fd) }
        connections = []
        control = []
    }

    public var pollRequests: [pollfd] {
        // A full set of half-open clients stops accepting (else the listener would stay ready and spin).
        var fds = clients.count < Self.maximumPendingClients ? [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)] : []
        for c in clients { fds.append(pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0)) }
        for c in connections where !c.awaitingResponse {
            var events: Int16 = 0
            if c.toGuest.isEmpty, !c.hostEOF, c.peerCredit > 0 { events |= Int16(POLLIN) }
            if !c.toHost.isEmpty { events |= Int16(POLLOUT) }
            if events != 0 { fds.append(pollfd(fd: c.fd, events: events, revents: 0)) }
        }
        return fds
    }

    // MARK: Guest packets (transmit queue)

    public func processQueue(_ index: Int, queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        guard index == Self.transmitQueue else { return false }  // rx buffers are used by the event thread
        return try queue.serveAvailable(memory: memory) { chain throws(VirtqueueError) in
            guard chain.writable.isEmpty else { throw VirtqueueError("transmit chain has device-writable buffers") }
            let total = chain.readable.reduce(0) { $0 + Int($1.length) }
            guard total >= Self.headerSize else {
                throw VirtqueueError("transmit chain of \(total) bytes is shorter than the \(Self.headerSize)-byte header")
            }
            let bytes: [UInt8]
            do { bytes = try chain.readAll(memory: memory, limit: min(total, Self.headerSize + Self.maximumPayload)) } catch {
                throw VirtqueueError("transmit buffer: \(error)")
            }
            let header = Header(Array(bytes[0..<Self.headerSize]))
            guard Int(header.len) <= Self.maximumPayload, Int(header.len) <= total - Self.headerSize else {
                throw VirtqueueError("packet len \(header.len) exceeds its \(total - Self.headerSize) payload bytes or \(Self.maximumPayload)")
            }
            handle(header, payload: bytes[Self.headerSize..<Self.headerSize + Int(header.len)])
            return 0
        }
    }

    private func connection(_ h: Header) -> Connection? {
        connections.first { $0.hostPort == h.dstPort && $0.guestPort == h.srcPort }
    }

    private func reply(_ op: UInt16, hostPort: UInt32, guestPort: UInt32, flags: UInt32 = 0, connection: Connection? = nil) {
        var h = Header()
        h.srcCID = Self.hostCID; h.dstCID = guestCID
        h.srcPort = hostPort; h.dstPort = guestPort
        h.op = op; h.flags = flags
        h.bufAlloc = Self.bufferAllocation
        if let c = connection { h.fwdCnt = c.forwarded; c.lastAdvertisedFwdCnt = c.forwarded }
        control.append(h)
    }

    private func remove(_ c: Connection) {
        close(c.fd)
        connections.removeAll { $0 === c }
    }

    func handle(_ h: Header, payload: ArraySlice<UInt8>) {
        guard h.srcCID == guestCID, h.dstCID == Self.hostCID else { droppedPackets += 1; return }
        guard h.type == Self.typeStream else {
            if h.op != Op.rst { reply(Op.rst, hostPort: h.dstPort, guestPort: h.srcPort) }
            return
        }
        let c = connection(h)
        if let c { c.peerBufAlloc = h.bufAlloc; c.peerFwdCnt = h.fwdCnt }
        switch h.op {
        case Op.request:
            guard c == nil else { return reply(Op.rst, hostPort: h.dstPort, guestPort: h.srcPort) }
            // Non-blocking: a listener with a full backlog is a refusal (EAGAIN), not a stalled vCPU.
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0, Self.withAddress("\(udsPath)_\(h.dstPort)", { connect(fd, $0, $1) }) == 0 else {
                if fd >= 0 { close(fd) }
                return reply(Op.rst, hostPort: h.dstPort, guestPort: h.srcPort)
            }
            let new = Connection(hostPort: h.dstPort, guestPort: h.srcPort, fd: fd, awaitingResponse: false)
            new.peerBufAlloc = h.bufAlloc; new.peerFwdCnt = h.fwdCnt
            connections.append(new)
            reply(Op.response, hostPort: h.dstPort, guestPort: h.srcPort, connection: new)
        case Op.response:
            guard let c, c.awaitingResponse else { return reply(Op.rst, hostPort: h.dstPort, guestPort: h.srcPort) }
            c.awaitingResponse = false
            let ok = Array("OK \(c.hostPort)\n".utf8)
            if ok.withUnsafeBytes({ send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) != ok.count {
                remove(c)
                reply(Op.rst, hostPort: h.dstPort, guestPort: h.srcPort)
            }
        case Op.rst:
            if let c { remove(c) }
        case Op.shutdown:
            guard let c else { return }
            c.guestShutdown |= h.flags & 3
            flush(c)
        case Op.rw:
            guard let c, !c.awaitingResponse else { return reply(Op.rst, hostPort: h.dstPort, guestPort: h.srcPort) }
            guard c.toHost.count + payload.count <= Int(Self.bufferAllocation) else {
                // More than the credit this side gave: the guest broke the protocol.
                remove(c)
                return reply(Op.rst, hostPort: h.dstPort, guestPort: h.srcPort)
            }
            c.toHost += payload
            flush(c)
        case Op.creditUpdate:
            break  // peer credit recorded above; the event thread may now send more
        case Op.creditRequest:
            guard let c else { return reply(Op.rst, hostPort: h.dstPort, guestPort: h.srcPort) }
            reply(Op.creditUpdate, hostPort: c.hostPort, guestPort: c.guestPort, connection: c)
        default:
            reply(Op.rst, hostPort: h.dstPort, guestPort: h.srcPort)
        }
    }

    /// Writes what the socket takes of the guest's bytes; tells the guest about freed space once
    /// half the buffer has been forwarded since it last heard.
    private func flush(_ c: Connection) {
        while !c.toHost.isEmpty {
            let n = c.toHost.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n <= 0 {
                if n < 0, errno == EAGAIN || errno == EINTR { break }
                // The host side is gone: reset the stream.
                remove(c)
                reply(Op.rst, hostPort: c.hostPort, guestPort: c.guestPort)
                return
            }
            c.toHost.removeFirst(n)
            c.forwarded &+= UInt32(n)
        }
        if c.toHost.isEmpty, c.guestShutdown & 2 != 0 {
            if c.guestShutdown == 3 {
                // The guest will neither send nor receive, and its bytes are out: the stream is over.
                remove(c)
                reply(Op.rst, hostPort: c.hostPort, guestPort: c.guestPort)
                return
            }
            shutdown(c.fd, Int32(SHUT_WR))
        }
        if c.forwarded &- c.lastAdvertisedFwdCnt >= Self.bufferAllocation / 2 {
            reply(Op.creditUpdate, hostPort: c.hostPort, guestPort: c.guestPort, connection: c)
        }
    }

    // MARK: Host sockets (event thread)

    public func serviceHostEvents(queues: inout [Virtqueue], memory: GuestMemory) throws(VirtqueueError) -> Bool {
        acceptClients()
        readConnectLines()
        for c in connections where !c.awaitingResponse {
            if !c.toHost.isEmpty { flush(c) }
            // flush may have ended the stream (and closed its socket).
            if connections.contains(where: { $0 === c }) { readFromHost(c) }
        }
        guard queues[Self.receiveQueue].ready else { return false }
        return try deliver(&queues[Self.receiveQueue], memory: memory)
    }

    private func acceptClients() {
        while clients.count < Self.maximumPendingClients {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            clients.append(PendingClient(fd: fd, line: []))
        }
    }

    /// `CONNECT <port>\n` from each new client: a REQUEST to the guest, or the client is closed.
    private func readConnectLines() {
        var keep: [PendingClient] = []
        for var client in clients {
            var byte: UInt8 = 0
            var done = false, failed = false
            // Byte by byte, so nothing after the newline (the stream) is consumed here.
            while !done && !failed {
                let n = recv(client.fd, &byte, 1, 0)
                if n < 0 && (errno == EAGAIN || errno == EINTR) { break }
                if n <= 0 { failed = true; break }
                if byte == 10 { done = true } else { client.line.append(byte) }
                if client.line.count > 32 { failed = true }
            }
            if failed { close(client.fd); continue }
            guard done else { keep.append(client); continue }
            let text = String(decoding: client.line, as: UTF8.self)
            let parts = text.split(separator: " ")
            guard parts.count == 2, parts[0] == "CONNECT", let port = UInt32(parts[1]) else {
                close(client.fd)
                continue
            }
            var hostPort = nextHostPort
            while connections.contains(where: { $0.hostPort == hostPort }) { hostPort &+= 1 }
            nextHostPort = hostPort &+ 1
            let c = Connection(hostPort: hostPort, guestPort: port, fd: client.fd, awaitingResponse: true)
            connections.append(c)
            var h = Header()
            h.srcCID = Self.hostCID; h.dstCID = guestCID; h.srcPort = hostPort; h.dstPort = port
            h.op = Op.request; h.bufAlloc = Self.bufferAllocation
            control.append(h)
        }
        clients = keep
    }

    /// Reads what the guest has room for (and one receive packet holds) into `toGuest`.
    private func readFromHost(_ c: Connection) {
        guard c.toGuest.isEmpty, !c.hostEOF else { return }
        let room = min(c.peerCredit, 4096)
        guard room > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: room)
        let n = buffer.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n > 0 {
            c.toGuest = Array(buffer[0..<n])
        } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
            // The host client is done: tell the guest neither side will send more.
            c.hostEOF = true
            reply(Op.shutdown, hostPort: c.hostPort, guestPort: c.guestPort, flags: 3, connection: c)
        }
    }

    /// Control packets first, then stream data, into receive chains while there are any.
    private func deliver(_ queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool {
        var used = false
        while true {
            var header: Header
            var payload: [UInt8] = []
            var source: Connection?
            if let h = control.first {
                header = h
            } else if let c = connections.first(where: { !$0.toGuest.isEmpty }) {
                header = Header()
                header.srcCID = Self.hostCID; header.dstCID = guestCID
                header.srcPort = c.hostPort; header.dstPort = c.guestPort
                header.op = Op.rw; header.bufAlloc = Self.bufferAllocation
                source = c
            } else {
                break
            }
            guard let chain = try queue.popAvailable(memory: memory) else { break }
            guard chain.readable.isEmpty else { throw VirtqueueError("receive chain has device-readable buffers") }
            let capacity = chain.writable.reduce(0) { $0 + Int($1.length) }
            guard capacity >= Self.headerSize else {
                throw VirtqueueError("receive chain of \(capacity) bytes cannot hold the \(Self.headerSize)-byte header")
            }
            if let c = source {
                let n = min(capacity - Self.headerSize, c.toGuest.count)
                payload = Array(c.toGuest[0..<n])
                c.toGuest.removeFirst(n)
                c.sentToGuest &+= UInt32(n)
                header.fwdCnt = c.forwarded
                c.lastAdvertisedFwdCnt = c.forwarded
            } else {
                control.removeFirst()
            }
            header.len = UInt32(payload.count)
            let packet = header.bytes + payload
            var written = 0
            for b in chain.writable where written < packet.count {
                let n = min(Int(b.length), packet.count - written)
                do { try memory.write(packet[written..<written + n], at: b.address) } catch {
                    throw VirtqueueError("receive buffer: \(error)")
                }
                written += n
            }
            try queue.pushUsed(head: chain.head, writtenLength: UInt32(written), memory: memory)
            used = true
        }
        return used
    }
}
