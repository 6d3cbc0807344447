import Glibc

/// A small HTTP/1.1 server on a Unix stream socket, for the Firecracker API. One thread, a poll
/// loop over the listening socket and the open connections: a client that sends half a request and
/// stalls, or vanishes, holds only its own buffer, never the server. A half request left idle for
/// `partialRequestTimeout` is dropped, and when all connection slots are taken the least recently
/// active connection makes room. Requests on one connection are answered in order (keep-alive);
/// anything that is not HTTP gets a 400 and the connection is closed. Responses are small (a few
/// KiB at most), so they are written with blocking sends.
public final class UnixSocketHTTPServer {
    public let path: String
    private let listenFD: Int32
    /// More connections than this are refused at accept (closed at once).
    public static let maxConnections = 32
    /// Seconds a connection may sit on an incomplete request.
    public static let partialRequestTimeout: Int = 30

    /// Binds and listens on `path`; an existing socket file there is an error, as in Firecracker
    /// (the caller removes stale sockets deliberately, not by accident).
    public init(path: String) throws(FirecrackerError) {
        self.path = path
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw FirecrackerError("API socket path \(path) is empty or longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FirecrackerError("socket: \(String(cString: strerror(errno)))") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let e = errno
            close(fd)
            throw FirecrackerError("Failed to bind and listen on the API socket \(path): \(String(cString: strerror(e)))")
        }
        listenFD = fd
    }

    deinit {
        close(listenFD)
        unlink(path)
    }

    private struct Connection {
        let fd: Int32
        var buffer: [UInt8] = []
        /// CLOCK_MONOTONIC seconds of the last bytes received (or of the accept).
        var lastActive: Int
        /// "100 Continue" was sent for the request being received.
        var continued = false
    }

    private static func seconds() -> Int {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t.tv_sec
    }

    /// Serves forever, calling `handle` for each request on this thread.
    public func serve(_ handle: (HTTPRequest) -> HTTPResponse) -> Never {
        var connections: [Connection] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
            fds += connections.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            // Wake once a second while some connection holds a partial request, to time it out.
            let timeout: Int32 = connections.contains { !$0.buffer.isEmpty } ? 1000 : -1
            if poll(&fds, nfds_t(fds.count), timeout) < 0 { continue }  // EINTR
            let now = Self.seconds()
            var closed: Set<Int32> = []
            for (i, p) in fds.enumerated().dropFirst() where p.revents != 0 {
                var connection = connections[i - 1]
                let n = read(connection.fd, &chunk, chunk.count)
                if n <= 0 {
                    closed.insert(connection.fd)
                    continue
                }
                connection.buffer += chunk[0..<n]
                connection.lastActive = now
                if !answer(&connection, handle) { closed.insert(connection.fd) }
                connections[i - 1] = connection
            }
            for c in connections where !c.buffer.isEmpty && now - c.lastActive > Self.partialRequestTimeout {
                closed.insert(c.fd)
            }
            for fd in closed { close(fd) }
            connections.removeAll { closed.contains($0.fd) }
            if fds[0].revents & Int16(POLLIN) != 0 {
                // accept4 is a GNU extension Glibc's module does not export; set FD_CLOEXEC after.
                let fd = accept(listenFD, nil, nil)
                if fd >= 0 {
                    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                    if connections.count >= Self.maxConnections,
                       let oldest = connections.indices.min(by: { connections[$0].lastActive < connections[$1].lastActive }) {
                        close(connections[oldest].fd)
                        connections.remove(at: oldest)
                    }
                    connections.append(Connection(fd: fd, lastActive: now))
                }
            }
        }
    }

    /// Answers every complete request in the buffer; false when the connection must be closed.
    private func answer(_ connection: inout Connection, _ handle: (HTTPRequest) -> HTTPResponse) -> Bool {
        while true {
            switch HTTPRequest.parse(connection.buffer) {
            case .incomplete:
                return true
            case .expectsContinue:
                if !connection.continued {
                    connection.continued = true
                    return sendBytes(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8), to: connection.fd)
                }
                return true
            case let .invalid(reason):
                send(HTTPResponse.fault(reason), keepAlive: false, to: connection.fd)
                return false
            case let .request(request, consumed):
                connection.buffer.removeFirst(consumed)
                connection.continued = false
                let response = handle(request)
                guard send(response, keepAlive: request.keepAlive, to: connection.fd), request.keepAlive else { return false }
            }
        }
    }

    /// Writes the whole response; MSG_NOSIGNAL so a client that went away is an error, not SIGPIPE.
    @discardableResult
    private func send(_ response: HTTPResponse, keepAlive: Bool, to fd: Int32) -> Bool {
        sendBytes(response.serialized(keepAlive: keepAlive), to: fd)
    }

    private func sendBytes(_ bytes: [UInt8], to fd: Int32) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }
}
