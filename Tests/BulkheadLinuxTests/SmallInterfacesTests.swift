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
