import BulkheadOCI
import CBulkhead
import Glibc
import Testing
@testable import BulkheadLinux

@Suite struct DeviceFilterProgramTests {
    @Test func rulesAreTriedLastFirstAndEndInDeny() throws {
        let program = try DeviceFilter.program([
            .init(allow: false, access: "rwm"),
            .init(allow: true, type: "c", major: 1, minor: 3, access: "rw"),
        ])
        // Prologue of 6 loads, the allow rule (type, access mask x3, major, minor, r0, exit),
        // then the deny-all rule (r0, exit), which ends the program: nothing after it is reachable.
        #expect(program.count == 6 + 8 + 2)
        // The first rule evaluated is the last one of the list: a char-device check.
        #expect(program[6] & 0xff == 0x55 && program[6] >> 32 == 2)
        // Its verdict is allow; the deny-all rule's is 0.
        #expect(program[12] & 0xff == 0xb7 && program[12] >> 32 == 1)
        #expect(program[14] & 0xff == 0xb7 && program[14] >> 32 == 0)
        // Without a catch-all rule, no match falls through to deny.
        let partial = try DeviceFilter.program([.init(allow: true, type: "c", major: 1, minor: 3, access: "rwm")])
        #expect(partial.suffix(2).first.map { $0 & 0xff == 0xb7 && $0 >> 32 == 0 } == true)
    }

    @Test func badTypeAndAccessAreNamed() {
        do {
            _ = try DeviceFilter.program([.init(allow: true, type: "x")])
            Issue.record("a bad type was accepted")
        } catch {
            #expect(error.operation == "linux.resources.devices[0].type")
        }
        do {
            _ = try DeviceFilter.program([.init(allow: true, type: "c", access: "rwx")])
            Issue.record("a bad access was accepted")
        } catch {
            #expect(error.operation == "linux.resources.devices[0].access")
        }
    }
}

/// The program on a real cgroup v2 directory: this host's cgroup2 mount (hybrid hosts have one
/// too) takes device programs whatever the v1 devices controller does.
@Suite(.serialized) struct DeviceFilterHostTests {
    static var cgroup2: String? {
        (try? CgroupHierarchies.detect())?.v2?.mountPoint
    }

    @Test(.enabled(if: getuid() == 0 && DeviceFilterHostTests.cgroup2 != nil, "needs root and a cgroup2 mount"))
    func aDeniedDeviceCannotBeOpenedInTheCgroup() throws {
        let dir = DeviceFilterHostTests.cgroup2! + "/bulkhead-devfilter-test-\(getpid())"
        #expect(mkdir(dir, 0o755) == 0)
        defer { rmdir(dir) }
        // /dev/null allowed, /dev/zero not: everything else is denied by the rule list.
        try DeviceFilter.attach([.init(allow: false, access: "rwm"),
                                 .init(allow: true, type: "c", major: 1, minor: 3, access: "rw")], to: dir)
        // A child joins the cgroup and tries both; its exit code tells which opens worked.
        let script = "echo $$ > \(dir)/cgroup.procs && cat /dev/null && if head -c 1 /dev/zero >/dev/null 2>&1; then exit 3; else exit 7; fi"
        var pid: pid_t = 0
        let args: [UnsafeMutablePointer<CChar>?] = [String](["/bin/sh", "-c", script]).map { strdup($0) } + [nil]
        defer { for a in args { free(a) } }
        #expect(posix_spawn(&pid, "/bin/sh", nil, nil, args, environ) == 0)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        // 7: /dev/null opened (cat succeeded), /dev/zero refused.
        #expect((status >> 8) & 0xff == 7)
    }
}
