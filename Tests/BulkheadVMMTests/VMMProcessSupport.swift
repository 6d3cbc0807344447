import Glibc

/// bulkhead-vmm next to the test bundle (`swift build --build-tests` builds it there), or
/// $BULKHEAD_VMM. Run by path: the test target must not depend on the executable (its
/// -static-executable flag would be applied to the test binary, which cannot link statically).
let vmmBinary: String = {
    if let env = getenv("BULKHEAD_VMM") { return String(cString: env) }
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return "bulkhead-vmm" }
    let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    var directory = String(exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)])
    // Some layouts run the bundle from inside <name>.xctest/ directories.
    while !directory.isEmpty, access(directory + "/bulkhead-vmm", X_OK) != 0, directory.contains(".xctest") {
        directory = String(directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)])
    }
    return directory + "/bulkhead-vmm"
}()
let vmmBinaryAvailable = access(vmmBinary, X_OK) == 0

/// A running bulkhead-vmm with stdout and stderr in files of a temporary directory.
final class VMMProcess {
    let directory: String
    let pid: pid_t
    var socketPath: String { directory + "/api.sock" }
    private(set) var exitStatus: Int32?

    /// Starts `bulkhead-vmm arguments...`; "SOCK" in an argument stands for `socketPath`.
    /// `prefix` (for example `ip netns exec NAME`) runs the VMM through another program.
    /// Its stdin (the guest's console input) is `stdin`.
    convenience init(_ arguments: [String], directory: String, prefix: [String] = [], stdin: String = "/dev/null") throws {
        let argv = prefix + [vmmBinary] + arguments.map { $0 == "SOCK" ? directory + "/api.sock" : $0 }
        try self.init(program: prefix.first.flatMap(findInPath) ?? vmmBinary, argv, directory: directory, stdin: stdin)
    }

    /// Starts `program` with `argv` (argv[0] included), stdin from the file `stdin`.
    init(program: String, _ argv: [String], directory: String, stdin: String = "/dev/null") throws {
        self.directory = directory
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, directory + "/stdout", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, directory + "/stderr", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, program, &actions, nil, cArgs, environ)
        guard spawned == 0 else { throw ToolFailure(description: "posix_spawn \(program): errno \(spawned)") }
        self.pid = pid
    }

    var stdout: String { (try? readFile(directory + "/stdout")).map { String(decoding: $0, as: UTF8.self) } ?? "" }
    var stderr: String { (try? readFile(directory + "/stderr")).map { String(decoding: $0, as: UTF8.self) } ?? "" }

    /// Waits up to `seconds` for the process to exit; kills it (SIGKILL) if it does not.
    /// Returns the exit status, or nil if it had to be killed or died of a signal.
    @discardableResult
    func wait(seconds: Double) -> Int32? {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        var waited = 0.0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if waited >= seconds {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return nil
            }
            usleep(20_000)
            waited += 0.02
        }
        guard status & 0x7f == 0 else { return nil }  // killed by a signal
        exitStatus = (status >> 8) & 0xff
        return exitStatus
    }

    /// Waits until the API socket exists (the server binds it before serving).
    func waitForSocket(seconds: Double = 10) -> Bool {
        var waited = 0.0
        while access(socketPath, F_OK) != 0 {
            if waited >= seconds { return false }
            usleep(10_000)
            waited += 0.01
        }
        return true
    }

    deinit { if exitStatus == nil { wait(seconds: 0) } }
}

/// A reply of the API: status code and body.
struct APIResponse {
    var status: Int
    var body: String
}

/// A tiny HTTP/1.1 client on a Unix socket: one connection, requests answered in order.
final class APIClient {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else {
            close(fd)
            throw ToolFailure(description: "connect \(path): errno \(errno)")
        }
        // A hung server fails the test instead of hanging it.
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func sendRaw(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    func request(_ method: String, _ path: String, _ body: String? = nil) throws -> APIResponse {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
        if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)" } else { text += "\r\n" }
        sendRaw(Array(text.utf8))
        return try readResponse()
    }

    /// Reads one response: headers, then Content-Length bytes of body.
    func readResponse() throws -> APIResponse {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        func fill() throws {
            let n = recv(fd, &chunk, chunk.count, 0)
            guard n > 0 else { throw ToolFailure(description: "connection closed or timed out (errno \(errno))") }
            buffer += chunk[0..<n]
        }
        let terminator: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int?
        while headerEnd == nil {
            try fill()
            headerEnd = (0...max(0, buffer.count - 4)).first { buffer.count >= $0 + 4 && Array(buffer[$0..<$0 + 4]) == terminator }
        }
        let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        let length = lines.dropFirst().compactMap { line -> Int? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
            return Int(parts[1].trimmingCharacters())
        }.first ?? 0
        while buffer.count < headerEnd! + 4 + length { try fill() }
        return APIResponse(status: status, body: String(decoding: buffer[(headerEnd! + 4)..<(headerEnd! + 4 + length)], as: UTF8.self))
    }
}

extension Substring {
    func trimmingCharacters() -> String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
