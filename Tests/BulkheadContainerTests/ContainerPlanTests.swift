import BulkheadLinux
import BulkheadOCI
import CBulkhead
import Glibc
import Testing
@testable import BulkheadContainer

/// A bundle directory with an empty rootfs: the plan checks that the rootfs exists.
struct TemporaryBundle: ~Copyable {
    let path: String
    init() throws {
        path = "/tmp/bulkhead-plan-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Files.makeDirectories(path + "/rootfs")
    }
    deinit { try? Files.removeTree(path) }
}

func spec(_ edit: (inout Spec) -> Void = { _ in }) -> Spec {
    var s = Spec.defaultSpec(args: ["/bin/true"])
    s.process?.terminal = false
    edit(&s)
    return s
}

func plan(_ s: Spec, bundle: borrowing TemporaryBundle, cgroup: Cgroup? = nil) throws(RuntimeError) -> ContainerPlan {
    try ContainerPlan(spec: s, bundle: bundle.path, options: .init(), cgroup: cgroup)
}

@Suite struct ContainerPlanTests {
    @Test func namespacesAreCreatedOrJoinedUserFirst() throws {
        let b = try TemporaryBundle()
        let p = try plan(spec { s in
            s.linux?.namespaces = [
                Namespace(type: "network", path: "/proc/1/ns/net"), Namespace(type: "mount"),
                Namespace(type: "user", path: "/proc/1/ns/user"), Namespace(type: "pid"), Namespace(type: "cgroup"),
            ]
        }, bundle: b)
        #expect(p.joinNamespaces.map(\.path) == ["/proc/1/ns/user", "/proc/1/ns/net"])
        #expect(p.unshareFlags == NamespaceKind.cloneFlags["mount"]! | NamespaceKind.cloneFlags["pid"]!)
        #expect(p.newCgroup)
        #expect(!p.newUser)
    }

    @Test func withoutAMountNamespaceTheMountsGoIntoTheRuntimes() throws {
        let b = try TemporaryBundle()
        let shared = try plan(spec { $0.linux?.namespaces = [Namespace(type: "pid")] }, bundle: b)
        #expect(shared.hostMountNamespace)
        #expect(shared.unshareFlags & NamespaceKind.cloneFlags["mount"]! == 0)
        let own = try plan(spec(), bundle: b)
        #expect(!own.hostMountNamespace)
    }

    @Test func mountsBecomeSteps() throws {
        let b = try TemporaryBundle()
        try Files.makeDirectories(b.path + "/data")
        let p = try plan(spec { s in
            s.mounts = [
                Mount(destination: "/proc", type: "proc", source: "proc"),
                Mount(destination: "data", type: "bind", source: "data", options: ["rbind", "ro", "rprivate"]),
            ]
        }, bundle: b)
        let proc = try #require(p.steps.first { $0.target == "/proc" })
        #expect(proc.kind == UInt32(BH_OP_MOUNT.rawValue) && proc.fstype == "proc" && proc.source == "proc")
        let bind = try #require(p.steps.first { $0.target == "/data" && $0.kind == UInt32(BH_OP_MOUNT.rawValue) })
        #expect(bind.source == b.path + "/data")
        #expect(bind.flags == UInt(MS_BIND | MS_REC))
        #expect(bind.remountFlags == UInt(MS_RDONLY))
        #expect(!bind.targetIsFile)
        #expect(p.steps.contains { $0.target == "/data" && $0.kind == UInt32(BH_OP_PROPAGATE.rawValue) && $0.flags == UInt(MS_PRIVATE | MS_REC) })
    }

    @Test func aMissingBindSourceNamesTheMount() throws {
        let b = try TemporaryBundle()
        do {
            _ = try plan(spec { $0.mounts = [Mount(destination: "/x", type: "bind", source: "/nonexistent/src", options: ["bind"])] }, bundle: b)
            Issue.record("a missing bind source was accepted")
        } catch {
            #expect(error.description.contains("mounts[0].source"))
            #expect(error.description.contains("/nonexistent/src"))
        }
    }

    @Test func sysfsWithoutANetworkNamespaceIsTheHostsBound() throws {
        let b = try TemporaryBundle()
        let p = try plan(spec { s in
            s.linux?.namespaces?.removeAll { $0.type == "network" }
            s.mounts = [Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["ro"])]
        }, bundle: b)
        let sys = try #require(p.steps.first { $0.target == "/sys" })
        #expect(sys.source == "/sys" && sys.flags == UInt(MS_BIND | MS_REC) && sys.remountFlags == UInt(MS_RDONLY))
    }

    @Test func defaultDevicesSymlinksAndUserNamespaceBinds() throws {
        let b = try TemporaryBundle()
        let p = try plan(spec(), bundle: b)
        let nodes = p.steps.filter { $0.kind == UInt32(BH_OP_MKNOD.rawValue) }.map(\.target)
        #expect(nodes == ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"])
        let null = try #require(p.steps.first { $0.target == "/dev/null" })
        #expect(null.mode == UInt32(S_IFCHR) | 0o666 && null.device == ContainerPlan.makedev(1, 3))
        #expect(p.steps.contains { $0.kind == UInt32(BH_OP_SYMLINK.rawValue) && $0.target == "/dev/fd" && $0.source == "/proc/self/fd" })

        let userns = try plan(spec { s in
            s.linux?.namespaces?.append(Namespace(type: "user"))
            s.linux?.uidMappings = [IDMapping(containerID: 0, hostID: 100_000, size: 65536)]
            s.linux?.gidMappings = [IDMapping(containerID: 0, hostID: 100_000, size: 65536)]
        }, bundle: b)
        #expect(userns.steps.filter { $0.kind == UInt32(BH_OP_MKNOD.rawValue) }.isEmpty)
        #expect(userns.steps.contains { $0.kind == UInt32(BH_OP_BIND_DEV.rawValue) && $0.source == "/dev/null" })
        #expect(userns.userMappings.uid.first?.hostID == 100_000)
    }

    @Test func aConfiguredDeviceReplacesTheDefaultAtItsPath() throws {
        let b = try TemporaryBundle()
        let p = try plan(spec { $0.linux?.devices = [Device(type: "c", path: "/dev/null", major: 1, minor: 5, fileMode: 0o600)] }, bundle: b)
        let nulls = p.steps.filter { $0.target == "/dev/null" }
        #expect(nulls.count == 1 && nulls[0].device == ContainerPlan.makedev(1, 5) && nulls[0].mode & 0o777 == 0o600)
    }

    @Test func deviceCgroupRulesKeepTheConfigFirstThenRuncsDefaults() {
        let rules = ContainerPlan.deviceRules(for: spec())
        #expect(rules.first == Resources.DeviceCgroupRule(allow: false, access: "rwm"))
        #expect(rules.contains(Resources.DeviceCgroupRule(allow: true, type: "c", major: 1, minor: 3, access: "rwm")))
        #expect(rules.contains(Resources.DeviceCgroupRule(allow: true, type: "c", major: 136, access: "rwm")))
    }

    @Test func capabilitiesRlimitsAndSysctls() throws {
        let b = try TemporaryBundle()
        let p = try plan(spec { s in
            s.process?.capabilities = Capabilities(bounding: ["CAP_KILL", "CAP_CHOWN"], effective: ["CAP_KILL"])
            s.process?.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: 2048, soft: 1024)]
            s.linux?.sysctl = ["net.ipv4.ip_forward": "1"]
        }, bundle: b)
        #expect(p.capabilities?.bounding == (1 << 5) | (1 << 0))
        #expect(p.capabilities?.effective == 1 << 5)
        #expect(p.rlimits.first?.resource == 7 && p.rlimits.first?.soft == 1024 && p.rlimits.first?.hard == 2048)
        #expect(p.sysctls.first?.path == "net/ipv4/ip_forward")
    }

    @Test func unknownCapabilityIsNamedWithItsSet() throws {
        let b = try TemporaryBundle()
        do {
            _ = try plan(spec { $0.process?.capabilities = Capabilities(permitted: ["CAP_BOGUS"]) }, bundle: b)
            Issue.record("an unknown capability was accepted")
        } catch {
            #expect(error.description == "config.json: process.capabilities.permitted: unknown capability \"CAP_BOGUS\"")
        }
    }

    @Test func cgroupMountOnAHybridHostBindsEveryHierarchy() throws {
        let b = try TemporaryBundle()
        let hierarchies = CgroupHierarchies(
            v1: [CgroupV1Hierarchy(mountPoint: "/sys/fs/cgroup/memory", controllers: ["memory"]),
                 CgroupV1Hierarchy(mountPoint: "/sys/fs/cgroup/pids", controllers: ["pids"])],
            v2: CgroupV2Mount(mountPoint: "/sys/fs/cgroup/unified", controllers: ["hugetlb"]))
        let cgroup = Cgroup(path: "/bulkhead/c1", hierarchies: hierarchies)
        let p = try plan(spec { $0.mounts = [Mount(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["ro"])] },
                         bundle: b, cgroup: cgroup)
        let binds = p.steps.filter { $0.target.hasPrefix("/sys/fs/cgroup/") }
        #expect(binds.map(\.source) == ["/sys/fs/cgroup/memory/bulkhead/c1", "/sys/fs/cgroup/pids/bulkhead/c1", "/sys/fs/cgroup/unified/bulkhead/c1"])
        #expect(binds.allSatisfy { $0.remountFlags & UInt(MS_RDONLY) != 0 })
        #expect(p.steps.contains { $0.target == "/sys/fs/cgroup" && $0.fstype == "tmpfs" })
    }

    @Test func timeNamespaceOffsets() throws {
        let b = try TemporaryBundle()
        let p = try plan(spec { s in
            s.linux?.namespaces?.append(Namespace(type: "time"))
            s.linux?.timeOffsets = ["monotonic": TimeOffset(secs: 86400, nanosecs: 0), "boottime": TimeOffset(secs: 7, nanosecs: 5)]
        }, bundle: b)
        #expect(p.timensOffsets == "boottime 7 5\nmonotonic 86400 0")
        #expect(p.unshareFlags & 0x80 != 0)
    }
}

@Suite struct StateStoreTests {
    @Test func idsArePathComponents() {
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            #expect(throws: RuntimeError.self) { try StateStore.validate(id: bad) }
        }
        for good in ["a", "abc-1.2_x+y", String(repeating: "f", count: 64)] {
            #expect(throws: Never.self) { try StateStore.validate(id: good) }
        }
    }

    @Test func reserveIsExclusiveAndTheRecordRoundTrips() throws {
        let root = "/tmp/bulkhead-store-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? Files.removeTree(root) }
        let store = StateStore(root: root)
        let lock = try store.reserve("c1")
        do {
            _ = try store.reserve("c1")
            Issue.record("an id was reserved twice")
        } catch {
            #expect(error.description == "container with id \"c1\" already exists")
        }
        #expect(try store.read("c1") == nil)
        let runtime = ContainerRuntime(root: root)
        #expect(try runtime.state("c1").status == .creating)
        let record = ContainerRecord(id: "c1", bundle: "/b", rootfs: "/b/rootfs", pid: getpid(),
                                     startTime: LinuxProcess.stat(getpid())!.startTime, created: Timestamp.now(),
                                     owner: "root", annotations: ["a": "b"],
                                     cgroup: CgroupRecord(path: "/bulkhead/c1", createdDirectories: []))
        try store.write(record)
        let back = try #require(try store.read("c1"))
        #expect(back.pid == record.pid && back.startTime == record.startTime && back.annotations == ["a": "b"])
        withExtendedLifetime(lock) {}
        #expect(store.ids() == ["c1"])
    }

    @Test func statusFollowsTheProcessAndTheFifo() throws {
        let root = "/tmp/bulkhead-status-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? Files.removeTree(root) }
        let runtime = ContainerRuntime(root: root)
        let store = runtime.store
        _ = try store.reserve("live")
        let me = LinuxProcess.stat(getpid())!
        var record = ContainerRecord(id: "live", bundle: "/b", rootfs: "/r", pid: getpid(), startTime: me.startTime,
                                     created: "", owner: "root", annotations: nil,
                                     cgroup: CgroupRecord(path: "/bulkhead/live", createdDirectories: []))
        try store.write(record)
        #expect(mkfifo(store.fifoPath("live"), 0o600) == 0)
        #expect(try runtime.state("live").status == .created)
        unlink(store.fifoPath("live"))
        #expect(try runtime.state("live").status == .running)
        // The same pid with another start time is another process: this container stopped.
        record.startTime += 1
        try store.write(record)
        let stopped = try runtime.state("live")
        #expect(stopped.status == .stopped && stopped.pid == 0)
        #expect(throws: RuntimeError.self) { try runtime.start("live") }
        #expect(throws: RuntimeError.self) { try runtime.kill("live", signal: SIGTERM) }
    }
}
