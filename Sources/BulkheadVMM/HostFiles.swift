import BulkheadLinux
import Glibc

/// A failed step on the host (file, directory or helper program) outside the VM itself, with the
/// operation and, for system calls, errno.
public struct HostError: Error, CustomStringConvertible, Equatable {
    public let description: String

    public init(_ message: String) { description = message }

    public init(_ operation: String, errno code: Int32) {
        description = "\(operation): \(String(cString: strerror(code))) (errno \(code))"
    }
}

/// The whole file (Files.readBytes, with this module's error type).
func readWholeFile(_ path: String) throws(HostError) -> [UInt8] {
    do {
        return try Files.readBytes(path)
    } catch {
        throw HostError("\(error.operation) \(path)", errno: error.errno)
    }
}

/// Creates or truncates `path` and writes `bytes`.
func writeWholeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(HostError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw HostError("open \(path)", errno: errno) }
    defer { close(fd) }
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw HostError("write \(path)", errno: errno) }
        done += n
    }
}

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
}

/// mkdir -p.
func makeDirectories(_ path: String) throws(HostError) {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        prefix += "/" + part
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw HostError("mkdir \(prefix)", errno: errno) }
    }
}

/// Names in a directory (without "." and ".."), sorted.
func directoryEntries(_ path: String) throws(HostError) -> [String] {
    guard let dir = opendir(path) else { throw HostError("opendir \(path)", errno: errno) }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// Every regular file under `root`, as paths relative to it, sorted.
func filesUnder(_ root: String, relative: String = "") throws(HostError) -> [String] {
    var result: [String] = []
    let base = relative.isEmpty ? root : root + "/" + relative
    for name in try directoryEntries(base) {
        let rel = relative.isEmpty ? name : relative + "/" + name
        var st = stat()
        guard lstat(root + "/" + rel, &st) == 0 else { continue }
        if st.st_mode & S_IFMT == S_IFDIR { result += try filesUnder(root, relative: rel) }
        else if st.st_mode & S_IFMT == S_IFREG { result.append(rel) }
    }
    return result
}

/// Runs a program (looked up in PATH) with stdin from /dev/null; returns its exit status and
/// standard output. Standard error goes to ours, so the tool's own message reaches the user.
func runProgram(_ argv: [String], captureOutput: Bool = true) throws(HostError) -> (status: Int32, output: String) {
    var pipeFDs: [Int32] = [-1, -1]
    if captureOutput { guard pipe(&pipeFDs) == 0 else { throw HostError("pipe", errno: errno) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    if captureOutput {
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
    }
    else { posix_spawn_file_actions_adddup2(&actions, 2, 1) }
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawnp(&pid, argv[0], &actions, nil, cArgs, environ)
    if captureOutput { close(pipeFDs[1]) }
    _ = captureOutput ? fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC) : 0
    guard spawned == 0 else {
        if captureOutput { close(pipeFDs[0]) }
        throw HostError("cannot run \(argv[0]): \(String(cString: strerror(spawned)))")
    }
    var output: [UInt8] = []
    if captureOutput {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(pipeFDs[0], &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output += chunk[0..<n]
        }
        close(pipeFDs[0])
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (code, String(decoding: output, as: UTF8.self))
}

/// Runs a program and fails unless it exits 0.
@discardableResult
func runChecked(_ argv: [String], captureOutput: Bool = true) throws(HostError) -> String {
    let (status, output) = try runProgram(argv, captureOutput: captureOutput)
    guard status == 0 else { throw HostError("\(argv.joined(separator: " ")) exited with status \(status)") }
    return output
}
