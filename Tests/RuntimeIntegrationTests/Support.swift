// Support for the runtime's integration tests: spawning bulkhead-runtime (posix_spawn), bundles
// with a busybox rootfs, and cleanup that runs even when a test fails.
//
// Children are waited for by pid (never waitpid(-1)): the test bundle runs other suites in
// parallel, and a wildcard wait would steal their children. The test process is a child
// subreaper, so container processes orphaned by `create` come to it; each sandbox reaps the
// container pids it learned, by pid.

import BulkheadOCI
import CBulkhead
import FoundationEssentials
import Glibc
import Testing

/// Why these tests may not run.
let isRoot = getuid() == 0
let busyboxPath = "/bin/busybox"
let haveBusybox = access(busyboxPath, X_OK) == 0

/// Orphans of the runtime (container processes after `create` exits) are reparented to us.
let becameSubreaper: Bool = bh_set_child_subreaper() == 0

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - The runtime binary

/// bulkhead-runtime next to the test bundle (<scratch>/debug/), or $BULKHEAD_RUNTIME.
let runtimeBinary: String = {
    if let env = getenv("BULKHEAD_RUNTIME") { return String(cString: env) }
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return "bulkhead-runtime" }
    let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    var directory = String(exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)])
    // `swift test` may run the bundle from inside <name>.xctest/ directories on some layouts.
    while !directory.isEmpty, access(directory + "/bulkhead-runtime", X_OK) != 0, directory.contains(".xctest") {
        directory = String(directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)])
    }
    return directory + "/bulkhead-runtime"
}()
let haveRuntime = access(runtimeBinary, X_OK) == 0

// MARK: - Files

func readText(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    if fd < 0 { throw TestError("open \(path): errno \(errno)") }
    defer { close(fd) }
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { throw TestError("write \(path): errno \(errno)") }
        offset += n
    }
    fchmod(fd, mode)
}

func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
    try writeFile(path, Array(text.utf8), mode: mode)
}

func exists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}

func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
    if mkdir(path, mode) != 0 && errno != EEXIST { throw TestError("mkdir \(path): errno \(errno)") }
    chmod(path, mode)
}

/// Lines of `text`, whitespace-trimmed, without empty ones (and without the \r a pty adds).
func lines(_ text: String) -> [String] {
    text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
        .map { String($0).trimming(" \t\r") }
        .filter { !$0.isEmpty }
}

extension String {
    /// Trims the Unicode scalars of `set` from both ends ("\r\n" is one Character, so scalars).
    func trimming(_ set: String) -> String {
        let scalars = Set(set.unicodeScalars)
        var s = Substring(self).unicodeScalars
        while let c = s.first, scalars.contains(c) { s.removeFirst() }
        while let c = s.last, scalars.contains(c) { s.removeLast() }
        return String(s)
    }
    var trimmed: String { trimming(" \t\r\n") }
}

// MARK: - Processes

/// A wait status as a shell reports it: the exit code, or 128 + the signal.
func shellStatus(_ status: Int32) -> Int32 {
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

/// A descriptor that is not close-on-exec only in the spawned child: `from` is dup2'ed to `to`.
struct FdMapping {
    var from: Int32
    var to: Int32
}

/// Spawns `argv` (argv[0] is a path) with stdin /dev/null (or `stdin`), stdout/stderr on the given
/// descriptors and `extra` descriptors mapped. Every other descriptor of ours is close-on-exec.
func spawnProcess(_ argv: [String], stdin: Int32? = nil, stdout: Int32, stderr: Int32, extra: [FdMapping] = []) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let stdin {
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
    } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    for mapping in extra {
        precondition(mapping.from != mapping.to, "dup2 onto itself would keep close-on-exec")
        posix_spawn_file_actions_adddup2(&actions, mapping.from, mapping.to)
    }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var all = sigset_t()
    sigfillset(&all)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

    var pid: pid_t = 0
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    let rc = spawnRegistered(&pid) { posix_spawn(&$0, argv[0], &actions, &attributes, cArgs, environ) }
    if rc != 0 { throw TestError("posix_spawn \(argv[0]): errno \(rc)") }
    return pid
}

/// Runs `spawn` (a posix_spawn that sets the pid) so that the orphan reaper, which runs while
/// other suites work in parallel, never reaps the child: its test waits for it.
func spawnRegistered(_ pid: inout pid_t, _ spawn: (inout pid_t) -> Int32) -> Int32 {
    spawnedLock.withLock {
        let rc = spawn(&pid)
        if rc == 0 { spawnedPids.insert(pid) }
        return rc
    }
}

/// Children the tests spawned themselves: each is waited for by the test that spawned it, so the
/// orphan reaper (which runs while other suites work in parallel) must leave them alone.
nonisolated(unsafe) private var spawnedPids: Set<pid_t> = []
private let spawnedLock = NSLockish()

func isSpawnedByTest(_ pid: pid_t) -> Bool {
    spawnedLock.withLock { spawnedPids.contains(pid) }
}

/// Waits for our child `pid` without blocking a cooperative thread; kills it after `timeout`.
func waitAsync(_ pid: pid_t, timeout: Duration = .seconds(60)) async throws -> Int32 {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    var status: Int32 = 0
    while true {
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { return shellStatus(status) }
        if r < 0 && errno != EINTR { throw TestError("waitpid \(pid): errno \(errno)") }
        if clock.now > deadline {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            throw TestError("process \(pid) did not exit within \(timeout); killed")
        }
        try await Task.sleep(for: .milliseconds(3))
    }
}

/// Blocking wait, for cleanup code (defer cannot await).
func waitBlocking(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        if errno != EINTR { return -1 }
    }
    return shellStatus(status)
}

/// Reaps `pid` if it is (or becomes within `timeoutMs`) a zombie child of ours; returns at once if
/// it is not our child.
func reapIfChild(_ pid: pid_t, timeoutMs: Int = 2000) {
    guard pid > 0 else { return }
    var waited = 0
    while true {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid || (r < 0 && errno == ECHILD) { return }
        if r < 0 && errno != EINTR { return }
        if waited >= timeoutMs { return }
        usleep(10_000)
        waited += 10
    }
}

/// The result of one runtime command.
struct CommandResult: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String
    var argv: [String]
    /// Where stdout went: a container started by this command writes its output there too.
    var stdoutPath: String? = nil

    var description: String {
        "`\(argv.joined(separator: " "))` exited \(status)\n--- stdout:\n\(stdout)--- stderr:\n\(stderr)"
    }
}

/// /proc/<pid>/stat state, or nil if there is no such process.
func processState(_ pid: pid_t) -> Character? {
    guard let text = readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
    return text[text.index(after: close)...].split(separator: " ").first?.first
}

/// True while `pid` exists and has not exited (zombies have exited).
func isAlive(_ pid: pid_t) -> Bool {
    guard let state = processState(pid) else { return false }
    return state != "Z" && state != "X"
}

/// Pids of every process whose parent is `parent`.
func children(of parent: pid_t) -> [pid_t] {
    var result: [pid_t] = []
    guard let dir = opendir("/proc") else { return [] }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let pid = pid_t(name), let text = readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { continue }
        let fields = text[text.index(after: close)...].split(separator: " ")
        if fields.count > 1, pid_t(fields[1]) == parent { result.append(pid) }
    }
    return result
}

/// Zombie children of ours that the runtime cloned (comm still bulkhead-runtime's: they died
/// before exec) and that were orphaned to us, the subreaper. Returns their pids after reaping.
@discardableResult
func reapRuntimeZombies() -> [pid_t] {
    let zombies = children(of: getpid()).filter {
        processState($0) == "Z" && processName($0).hasPrefix("bulkhead-run") && !isSpawnedByTest($0)
    }
    for pid in zombies { reapIfChild(pid, timeoutMs: 0) }
    return zombies
}

/// Live processes with an open descriptor, cwd or root under `prefix`.
func processesHolding(_ prefix: String) -> [pid_t] {
    var result: [pid_t] = []
    for name in directoryEntries("/proc") {
        guard let pid = pid_t(name) else { continue }
        var links = ["/proc/\(pid)/cwd", "/proc/\(pid)/root"]
        links += directoryEntries("/proc/\(pid)/fd").map { "/proc/\(pid)/fd/\($0)" }
        for link in links {
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = readlink(link, &buffer, buffer.count - 1)
            guard n > 0 else { continue }
            let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix(prefix + "/") || target == prefix {
                result.append(pid)
                break
            }
        }
    }
    return result
}

func parentPid(_ pid: pid_t) -> pid_t {
    guard let text = readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return 0 }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return fields.count > 1 ? pid_t(fields[1]) ?? 0 : 0
}

/// Names in a directory, without . and ..
func directoryEntries(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var result: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { result.append(name) }
    }
    return result.sorted()
}

func processName(_ pid: pid_t) -> String {
    (readText("/proc/\(pid)/comm") ?? "").trimmed
}

// MARK: - cgroups

/// Every directory under /sys/fs/cgroup: the v1 hierarchies and the cgroup2 mount.
let cgroupHierarchies: [String] = {
    var result: [String] = []
    guard let dir = opendir("/sys/fs/cgroup") else { return [] }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name.hasPrefix(".") { continue }
        let path = "/sys/fs/cgroup/" + name
        var st = stat()
        // Skip symlinks such as cpu,cpuacct -> cpu.
        if lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { result.append(path) }
    }
    return result.sorted()
}()

/// The cgroup directories named `relative` (e.g. "bulkhead/<id>") that exist in any hierarchy.
func existingCgroups(_ relative: String) -> [String] {
    cgroupHierarchies.map { $0 + "/" + relative }.filter { exists($0) }
}

// MARK: - Sandbox: temporary directories, bundles, containers, and their cleanup

/// A bundle: config.json and a busybox rootfs.
struct Bundle {
    var path: String
    var rootfs: String { path + "/rootfs" }
    var config: String { path + "/config.json" }
}

/// Applets linked in every rootfs.
let busyboxApplets = [
    "sh", "echo", "cat", "hostname", "id", "sleep", "ls", "mount", "true", "false", "touch", "readlink", "seq",
    "tty", "kill", "wc", "grep", "test", "[", "ps", "stat", "env", "mkdir", "rm", "head", "tr", "pwd", "uname",
]

/// One test's temporary world: a directory under /var/tmp with the state root, bundles and output
/// files, the containers it made and their pids. `cleanup()` deletes every container (--force),
/// reaps their processes and removes the directory; call it from `defer`.
final class Sandbox: @unchecked Sendable {
    let directory: String
    let root: String
    private let lock = NSLockish()
    private var ids: [String] = []
    private var containerPids: [pid_t] = []
    private var cgroupPaths: [String] = []
    private var counter = 0

    init(_ label: String) throws {
        _ = becameSubreaper
        var template = Array("/var/tmp/bh-it-\(label)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestError("mkdtemp: errno \(errno)") }
        directory = String(cString: made)
        // Containers with a user namespace run as an unmapped-to-root uid: they must traverse this.
        chmod(directory, 0o755)
        root = directory + "/state"
        try makeDirectory(root, mode: 0o711)
    }

    /// A container id unique on this host, remembered for cleanup.
    func newID(_ label: String) -> String {
        lock.withLock {
            counter += 1
            let id = "bhit-\(label)-\(getpid())-\(counter)-\(UInt32.random(in: 0..<UInt32.max))"
            ids.append(id)
            return id
        }
    }

    /// Remembers a cgroup path (relative to the hierarchy roots) that cleanup must find removed.
    func track(cgroup path: String) {
        lock.withLock { cgroupPaths.append(path) }
    }

    /// Remembers a container process to reap after it stops.
    func track(pid: pid_t) {
        lock.withLock { containerPids.append(pid) }
    }

    /// A bundle with a busybox rootfs and the runtime's default config.json (written by
    /// `bulkhead-runtime spec`), with terminal false and `args`, then changed by `configure`.
    func makeBundle(_ name: String = "bundle", args: [String], configure: (inout Spec) throws -> Void = { _ in }) throws -> Bundle {
        let bundle = Bundle(path: directory + "/" + name)
        try makeDirectory(bundle.path)
        try makeDirectory(bundle.rootfs)
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "mnt"] { try makeDirectory(bundle.rootfs + "/" + d) }
        guard let busybox = readBytes(busyboxPath) else { throw TestError("cannot read \(busyboxPath)") }
        try writeFile(bundle.rootfs + "/bin/busybox", busybox, mode: 0o755)
        for applet in busyboxApplets {
            if symlink("busybox", bundle.rootfs + "/bin/" + applet) != 0 && errno != EEXIST {
                throw TestError("symlink \(applet): errno \(errno)")
            }
        }
        try writeFile(bundle.rootfs + "/etc/passwd", "root:x:0:0:root:/:/bin/sh\n")
        try writeFile(bundle.rootfs + "/etc/group", "root:x:0:\ntty:x:5:\n")

        let spec = try runSync(["spec", "--bundle", bundle.path], globalRoot: false)
        guard spec.status == 0 else { throw TestError("spec failed: \(spec)") }
        guard let text = readText(bundle.config) else { throw TestError("spec wrote no \(bundle.config)") }
        var config = try JSONDecoder().decode(Spec.self, from: Data(text.utf8))
        config.process?.terminal = false
        config.process?.args = args
        try configure(&config)
        try writeSpec(config, to: bundle)
        return bundle
    }

    func writeSpec(_ spec: Spec, to bundle: Bundle) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeFile(bundle.config, Array(try encoder.encode(spec)))
    }

    /// A fresh output file in the sandbox, opened for writing (close-on-exec).
    func outputFile(_ name: String) throws -> (path: String, fd: Int32) {
        let path = lock.withLock { counter += 1; return directory + "/\(name)-\(counter).out" }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0o644)
        if fd < 0 { throw TestError("open \(path): errno \(errno)") }
        return (path, fd)
    }

    func runtimeArgv(_ args: [String], globalRoot: Bool = true, log: (path: String, format: String)? = nil) -> [String] {
        var argv = [runtimeBinary]
        if globalRoot { argv += ["--root", root] }
        if let log { argv += ["--log", log.path, "--log-format", log.format] }
        return argv + args
    }

    /// Runs `bulkhead-runtime [--root R] args` and waits; stdout and stderr are captured through
    /// files (the container inherits them, and so writes its output there too).
    func run(_ args: [String], log: (path: String, format: String)? = nil, stdin: Int32? = nil,
             extra: [FdMapping] = [], timeout: Duration = .seconds(60)) async throws -> CommandResult {
        let running = try start(args, log: log, stdin: stdin, extra: extra)
        let status = try await waitAsync(running.pid, timeout: timeout)
        return running.finish(status)
    }

    /// Spawns `bulkhead-runtime [--root R] args` without waiting.
    func start(_ args: [String], log: (path: String, format: String)? = nil, stdin: Int32? = nil,
               extra: [FdMapping] = []) throws -> RunningCommand {
        try spawn(runtimeArgv(args, log: log), stdin: stdin, extra: extra)
    }

    /// Spawns any `argv` without waiting, stdout and stderr in fresh output files of the sandbox
    /// (given to `owner` first, for a command that runs as another user).
    func spawn(_ argv: [String], stdin: Int32? = nil, extra: [FdMapping] = [], owner: uid_t? = nil) throws -> RunningCommand {
        let out = try outputFile("stdout")
        let err = try outputFile("stderr")
        defer { close(out.fd); close(err.fd) }
        if let owner {
            fchown(out.fd, owner, gid_t(owner))
            fchown(err.fd, owner, gid_t(owner))
        }
        let pid = try spawnProcess(argv, stdin: stdin, stdout: out.fd, stderr: err.fd, extra: extra)
        return RunningCommand(pid: pid, argv: argv, stdoutPath: out.path, stderrPath: err.path)
    }

    /// Blocking variant for setup and cleanup.
    func runSync(_ args: [String], globalRoot: Bool = true) throws -> CommandResult {
        let running = try spawn(runtimeArgv(args, globalRoot: globalRoot))
        return running.finish(waitBlocking(running.pid))
    }

    /// The container's state, decoded, or nil when `state` fails.
    func state(_ id: String) async throws -> (ContainerStateJSON?, CommandResult) {
        let result = try await run(["state", id])
        guard result.status == 0 else { return (nil, result) }
        let state = try? JSONDecoder().decode(ContainerStateJSON.self, from: Data(result.stdout.utf8))
        if let state, state.pid > 0 { track(pid: state.pid) }
        return (state, result)
    }

    /// Polls `state` until the status is `status` (or `timeout`); returns the last state.
    func waitForStatus(_ id: String, _ status: String, timeout: Duration = .seconds(20)) async throws -> ContainerStateJSON? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last: ContainerStateJSON?
        while clock.now < deadline {
            last = try await state(id).0
            if last?.status == status { return last }
            try await Task.sleep(for: .milliseconds(20))
        }
        return last
    }

    /// Deletes every container this sandbox named (with --force), reaps their processes and
    /// removes the directory. Never throws: it runs in `defer`.
    func cleanup() {
        let (ids, pids) = lock.withLock { (self.ids, self.containerPids) }
        for id in ids where exists(root + "/" + id) {
            if let result = try? runSync(["delete", "--force", id]), result.status != 0 {
                print("cleanup: \(result)")
            }
        }
        for pid in pids { reapIfChild(pid, timeoutMs: 1000) }
        reapRuntimeZombies()

        // Nothing the runtime made may outlive `delete --force`: no process holding files in
        // this sandbox, no cgroup. Report, then remove them (we made them) so the host stays clean.
        let leaked = processesHolding(directory).filter { $0 != getpid() && isAlive($0) }
        if !leaked.isEmpty {
            let described = leaked.map { "\($0) (\(processName($0)), parent \(parentPid($0)))" }
            Issue.record("processes left running after delete --force: \(described)")
            for pid in leaked { kill(pid, SIGKILL) }
            for pid in leaked { reapIfChild(pid, timeoutMs: 1000) }
        }
        let cgroups = lock.withLock { self.cgroupPaths } + ids.map { "bulkhead/\($0)" }
        for path in cgroups {
            let left = existingCgroups(path)
            if left.isEmpty { continue }
            Issue.record("cgroups left after delete --force: \(left)")
            for dir in left { rmdir(dir) }
        }
        let rm = ["/bin/rm", "-rf", "--one-file-system", directory]
        let devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(devnull) }
        if let pid = try? spawnProcess(rm, stdout: devnull, stderr: devnull) { _ = waitBlocking(pid) }
    }
}

/// A runtime command still running.
struct RunningCommand {
    var pid: pid_t
    var argv: [String]
    var stdoutPath: String
    var stderrPath: String

    var stdout: String { readText(stdoutPath) ?? "" }
    var stderr: String { readText(stderrPath) ?? "" }

    func finish(_ status: Int32) -> CommandResult {
        CommandResult(status: status, stdout: stdout, stderr: stderr, argv: argv, stdoutPath: stdoutPath)
    }

    func wait(timeout: Duration = .seconds(60)) async throws -> CommandResult {
        finish(try await waitAsync(pid, timeout: timeout))
    }
}

/// `state` output as the runtime spec defines it (decoded independently of the runtime's types).
struct ContainerStateJSON: Decodable, Sendable {
    var ociVersion: String
    var id: String
    var pid: Int32
    var status: String
    var bundle: String
    var rootfs: String?
    var created: String?
    var owner: String?
    var annotations: [String: String]?
}

func readBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return bytes
}

/// A pthread mutex (no Foundation NSLock here; Synchronization.Mutex needs a noncopyable owner).
final class NSLockish: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

/// A pipe whose ends are close-on-exec and above the standard descriptors (so mapping one onto
/// fd 3 in a child never is a dup2 onto itself).
func makePipe() throws -> (read: Int32, write: Int32) {
    var fds: [Int32] = [0, 0]
    // pipe2 is not exported without _GNU_SOURCE: the originals live only until lifted.
    if pipe(&fds) != 0 { throw TestError("pipe: errno \(errno)") }
    func lift(_ fd: Int32) -> Int32 {
        let moved = fcntl(fd, F_DUPFD_CLOEXEC, 10)
        close(fd)
        return moved
    }
    return (lift(fds[0]), lift(fds[1]))
}

/// Reads what is available on `fd` until EOF/EIO or `timeout`, stopping early once `until`
/// returns true for the text read so far.
func readUntil(_ fd: Int32, timeout: Duration = .seconds(20), until: (String) -> Bool = { _ in false }) async throws -> String {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while clock.now < deadline {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, 0)
        if r > 0 {
            let n = read(fd, &chunk, chunk.count)
            if n > 0 {
                bytes += chunk[0..<n]
                if until(String(decoding: bytes, as: UTF8.self)) { break }
                continue
            }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            break  // EOF, or EIO on a pty master whose slave closed
        }
        try await Task.sleep(for: .milliseconds(5))
    }
    return String(decoding: bytes, as: UTF8.self)
}
