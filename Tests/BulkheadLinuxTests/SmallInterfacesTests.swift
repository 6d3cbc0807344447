import Glibc
import Testing
@testable import BulkheadLinux

@Suite struct SignalsTests {
    @Test func namesWithAndWithoutSIGAndNumbers() {
        #expect(Signals.parse("KILL") == 9)
        #expect(Signals.parse("SIGKILL") == 9)
        #expect(Signals.parse("sigterm") == 15)
        #expect(Signals.parse("15") == 15)
        #expect(Signals.parse("SIGRTMIN+2") == 36)
        #expect(Signals.parse("RTMAX") == 64)
    }

    @Test func unknownNamesAndNumbersOutOfRange() {
        #expect(Signals.parse("BOGUS") == nil)
        #expect(Signals.parse("0") == nil)
        #expect(Signals.parse("65") == nil)
        #expect(Signals.parse("RTMIN+40") == nil)
    }
}

@Suite struct MountOptionsTests {
    @Test func flagsPropagationAndData() {
        let o = MountOptions(["nosuid", "noexec", "rprivate", "mode=755", "size=65536k", "ro"], type: "tmpfs")
        #expect(o.flags == UInt(MS_NOSUID | MS_NOEXEC | MS_RDONLY))
        #expect(o.propagation == [UInt(MS_PRIVATE | MS_REC)])
        #expect(o.data == ["mode=755", "size=65536k"])
        #expect(!o.isBind)
    }

    @Test func clearingOptionsUndoEarlierOnes() {
        let o = MountOptions(["ro", "nosuid", "rw", "suid"], type: "tmpfs")
        #expect(o.flags == 0)
    }

    @Test func bindMountsTakeTheirFlagsOnARemount() {
        let o = MountOptions(["rbind", "ro", "nodev"], type: "none")
        #expect(o.isBind && o.isRecursive)
        #expect(o.bindRemountFlags == UInt(MS_RDONLY | MS_NODEV))
        let typed = MountOptions([], type: "bind")
        #expect(typed.isBind && !typed.isRecursive)
    }
}

@Suite struct TimestampTests {
    @Test func rfc3339WithNanoseconds() {
        #expect(Timestamp.format(seconds: 0, nanoseconds: 0) == "1970-01-01T00:00:00.000000000Z")
        #expect(Timestamp.format(seconds: 951_782_400, nanoseconds: 5) == "2000-02-29T00:00:00.000000005Z")
        #expect(Timestamp.format(seconds: 1_796_428_799, nanoseconds: 123_456_789) == "2026-12-04T23:59:59.123456789Z")
    }
}

@Suite struct FilesTests {
    @Test func absolutePathsAreFoldedLexically() {
        #expect(Files.absolute("rootfs", relativeTo: "/b") == "/b/rootfs")
        #expect(Files.absolute("../x/./y", relativeTo: "/b/c") == "/b/x/y")
        #expect(Files.absolute("/abs//p/", relativeTo: "/ignored") == "/abs/p")
        #expect(Files.absolute("../../..", relativeTo: "/a") == "/")
    }

    @Test func atomicWriteReplacesTheWholeFile() throws {
        let dir = "/tmp/bulkhead-files-test-\(getpid())"
        try Files.makeDirectories(dir + "/a/b")
        defer { try? Files.removeTree(dir) }
        try Files.writeAtomically(dir + "/a/b/f", Array("first".utf8))
        try Files.writeAtomically(dir + "/a/b/f", Array("2".utf8))
        #expect(try Files.readString(dir + "/a/b/f") == "2")
        #expect(!Files.exists(dir + "/a/b/f.tmp"))
        #expect(try Files.list(dir + "/a/b") == ["f"])
    }

    /// Regular files are read at their size, files that report none (/proc, pipes) grow from a
    /// page, and a file that grew since fstat is read to its end.
    @Test func readAllReadsEveryKindOfFileToItsEnd() throws {
        let dir = "/tmp/bulkhead-readall-test-\(getpid())"
        try Files.makeDirectories(dir)
        defer { try? Files.removeTree(dir) }
        let big = (0..<(3 << 20) + 7).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Files.writeAtomically(dir + "/big", big)
        #expect(try Files.readBytes(dir + "/big") == big)
        try Files.writeAtomically(dir + "/empty", [])
        #expect(try Files.readBytes(dir + "/empty") == [])
        let maps = try Files.readString("/proc/self/maps")  // size 0 in fstat
        #expect(maps.hasSuffix("\n") && maps.contains("[stack]"))
        // A pipe: fstat says 0; the data is more than the first page.
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let text = Array(String(repeating: "0123456789", count: 1000).utf8)
        try Files.writeAll(fds[1], text, path: "pipe")  // fits the pipe's buffer
        close(fds[1])
        defer { close(fds[0]) }
        #expect(try Files.readAll(fds[0], path: "pipe") == text)
    }

    @Test func readingAMissingFileNamesIt() {
        do {
            _ = try Files.readBytes("/nonexistent/bulkhead")
            Issue.record("read of a missing file succeeded")
        } catch {
            #expect(error.errno == ENOENT)
            #expect(error.description == "open /nonexistent/bulkhead: No such file or directory")
        }
    }
}

@Suite struct LinuxProcessTests {
    @Test func ownStartTimeAndState() throws {
        let me = try #require(LinuxProcess.stat(getpid()))
        #expect(me.state == "R" || me.state == "S")
        #expect(LinuxProcess.isRunning(getpid(), startTime: me.startTime))
        #expect(!LinuxProcess.isRunning(getpid(), startTime: me.startTime + 1))
    }

    @Test func signallingARecycledPidIsRefused() throws {
        let me = try #require(LinuxProcess.stat(getpid()))
        #expect(throws: SystemError.self) { try LinuxProcess.signal(getpid(), startTime: me.startTime + 1, 0) }
    }
}
