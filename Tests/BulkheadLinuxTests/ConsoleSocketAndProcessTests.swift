// The pieces --console-socket is made of (unix sockets by path, descriptor passing with
// SCM_RIGHTS) and LinuxProcess on processes that exited. No root needed.

import CBulkhead
import Glibc
import Testing
@testable import BulkheadLinux

/// A fresh directory under /tmp, removed by `remove()`.
private func temporaryDirectory() throws -> String {
    var template = Array("/tmp/bh-linux-test-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw SystemError("mkdtemp") }
    return String(cString: made)
}

@Suite struct UnixSocketTests {
    @Test func aDescriptorSentOverAConsoleSocketArrivesWorkingAndCloseOnExec() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/console.sock"
        defer { unlink(path); rmdir(directory) }
        let listener = try UnixSocket.listen(path)
        defer { close(listener) }
        let client = try UnixSocket.connect(path)
        defer { close(client) }
        let server = accept(listener, nil, nil)
        try #require(server >= 0)
        defer { close(server) }

        var pipeFds: [Int32] = [0, 0]
        try #require(pipe(&pipeFds) == 0)
        defer { close(pipeFds[0]) }
        #expect(bh_send_fd(client, pipeFds[1], "/dev/ptmx") == 0)
        close(pipeFds[1])
        let received = bh_recv_fd(server)
        try #require(received >= 0, "bh_recv_fd: errno \(errno)")
        defer { close(received) }
        #expect(fcntl(received, F_GETFD) & FD_CLOEXEC != 0, "a received descriptor must not leak into children")

        let message = Array("through the socket".utf8)
        #expect(write(received, message, message.count) == message.count)
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(pipeFds[0], &buffer, buffer.count)
        #expect(n == message.count)
        #expect(Array(buffer.prefix(max(n, 0))) == message)
    }

    @Test func aMessageWithoutADescriptorIsAnError() throws {
        var pair: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        let text = Array("no fd".utf8)
        #expect(write(pair[0], text, text.count) == text.count)
        #expect(bh_recv_fd(pair[1]) == -1)
    }

    @Test func connectingToNothingNamesThePath() throws {
        let directory = try temporaryDirectory()
        defer { rmdir(directory) }
        let path = directory + "/nobody-listens.sock"
        #expect {
            try UnixSocket.connect(path)
        } throws: { error in
            guard let error = error as? SystemError else { return false }
            return error.path == path && error.errno == ENOENT
        }
    }

    @Test func aPathTooLongForSunPathIsRefused() {
        let path = "/tmp/" + String(repeating: "x", count: 200)
        #expect {
            try UnixSocket.connect(path)
        } throws: { error in
            (error as? SystemError)?.errno == ENAMETOOLONG
        }
    }
}

@Suite struct ExitedProcessTests {
    /// Spawns /bin/sleep with `seconds` (stdio on /dev/null).
    private func spawnSleep(_ seconds: String) throws -> pid_t {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in 0...2 { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0) }
        let strings: [String] = ["/bin/sleep", seconds]
        let argv: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let rc = posix_spawn(&pid, "/bin/sleep", &actions, nil, argv, environ)
        if rc != 0 { throw SystemError("posix_spawn", path: "/bin/sleep", errno: rc) }
        return pid
    }

    @Test func aZombieHasExitedAndWaitForExitSaysSo() throws {
        let pid = try spawnSleep("0")
        var status: Int32 = 0
        defer { _ = waitpid(pid, &status, 0) }
        let start = try #require(LinuxProcess.stat(pid)).startTime
        // Wait (without reaping) until it is a zombie.
        var info = siginfo_t()
        #expect(waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == 0)
        #expect(LinuxProcess.stat(pid)?.state == "Z")
        #expect(!LinuxProcess.isRunning(pid, startTime: start), "a zombie is not running")
        #expect(LinuxProcess.waitForExit(pid, startTime: start, timeoutMs: 5000))
        #expect(throws: SystemError.self) { try LinuxProcess.signal(pid, startTime: start, SIGTERM) }
    }

    @Test func waitForExitTimesOutOnALiveProcessAndSeesItsDeath() throws {
        let pid = try spawnSleep("30")
        var status: Int32 = 0
        defer { kill(pid, SIGKILL); _ = waitpid(pid, &status, 0) }
        let start = try #require(LinuxProcess.stat(pid)).startTime
        #expect(LinuxProcess.isRunning(pid, startTime: start))
        #expect(!LinuxProcess.waitForExit(pid, startTime: start, timeoutMs: 20), "the process is alive: waiting must time out")
        try LinuxProcess.signal(pid, startTime: start, SIGKILL)
        #expect(LinuxProcess.waitForExit(pid, startTime: start, timeoutMs: 10_000))
        #expect(!LinuxProcess.isRunning(pid, startTime: start))
    }

    @Test func aReapedPidIsNotRunning() throws {
        let pid = try spawnSleep("0")
        let start = try #require(LinuxProcess.stat(pid)).startTime
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        #expect(!LinuxProcess.isRunning(pid, startTime: start))
        #expect(LinuxProcess.waitForExit(pid, startTime: start, timeoutMs: 1000))
    }
}
