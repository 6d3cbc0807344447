import BulkheadOCI
import Glibc
import Testing
@testable import BulkheadLinux

/// Creates real cgroups on this host, whatever its layout, under /bulkhead-test-<pid>-<name>, and
/// removes them even when a test fails. Serialized: the tests share the hierarchies' roots.
@Suite(.serialized, .enabled(if: getuid() == 0, "creates cgroups on this host, which needs root"))
struct CgroupHostTests {
    let hierarchies: CgroupHierarchies

    init() throws { hierarchies = try CgroupHierarchies.detect() }

    func testPath(_ name: String) -> String { "/bulkhead-test-\(getpid())-\(name)" }

    /// rmdir whatever is left of `path` and its parents in every hierarchy, deepest first. Only
    /// for the test's own /bulkhead-test-<pid>-… paths; never reaches a hierarchy root.
    func cleanUp(_ path: String) {
        let components = path.split(separator: "/")
        for mount in hierarchies.allMountPoints {
            for depth in stride(from: components.count, through: 1, by: -1) {
                rmdir(mount + "/" + components[0..<depth].joined(separator: "/"))
            }
        }
    }

    func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    func anyLeft(_ path: String) -> [String] {
        hierarchies.allMountPoints.map { $0 + path }.filter(exists)
    }

    func trimmed(_ text: String) -> String {
        String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }

    /// Starts /bin/sleep 30 as a child of the test process.
    func spawnSleep() throws -> pid_t {
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("30"), nil]
        defer { argv.forEach { free($0) } }
        let rc = posix_spawn(&pid, "/bin/sleep", nil, nil, &argv, environ)
        try #require(rc == 0, "posix_spawn: \(String(cString: strerror(rc)))")
        return pid
    }

    @Test func limitsAreWrittenAndReadBack() throws {
        let path = testPath("apply")
        var resources = Resources(memory: .init(limit: 64 << 20),
                                  cpu: .init(quota: 50_000, period: 100_000, cpus: "0", mems: "0"),
                                  pids: .init(limit: 10))
        let hugetlb = exists("/sys/kernel/mm/hugepages/hugepages-2048kB") && hierarchies.version(of: "hugetlb") != nil
        if hugetlb { resources.hugepageLimits = [.init(pageSize: "2MB", limit: 4 << 20)] }

        // On cgroup2 the hugetlb limit needs "+hugetlb" in the root's subtree_control (this host
        // has it off). Put the root back as found once the test's cgroup is gone.
        let rootSubtree = hierarchies.v2.map { $0.mountPoint + "/cgroup.subtree_control" }
        let hugetlbWasOn = rootSubtree.flatMap { try? CgroupFiles.read($0) }?.split(separator: " ")
            .contains { $0.hasPrefix("hugetlb") } ?? true
        defer {
            if hugetlb, hierarchies.version(of: "hugetlb") == .v2, !hugetlbWasOn, let rootSubtree {
                try? CgroupFiles.write(rootSubtree, "-hugetlb", operation: "test: restore subtree_control")
            }
        }
        var cgroup = Cgroup(path: path, hierarchies: hierarchies)
        defer { cleanUp(path) }

        try cgroup.create(resources: resources)
        #expect(anyLeft(path).count == hierarchies.allMountPoints.count, "a directory in every hierarchy")
        for setting in try CgroupSettings.settings(for: resources, on: hierarchies) {
            #expect(trimmed(try cgroup.read(setting.file)) == setting.value, "\(setting)")
        }
        // The same values, named by layout, so a mapping mistake cannot hide behind the loop above.
        let memoryFile = hierarchies.version(of: "memory") == .v1 ? "memory.limit_in_bytes" : "memory.max"
        #expect(trimmed(try cgroup.read(memoryFile)) == "67108864")
        #expect(trimmed(try cgroup.read("pids.max")) == "10")
        #expect(trimmed(try cgroup.read("cpuset.cpus")) == "0")
        if hierarchies.version(of: "cpu") == .v1 {
            #expect(trimmed(try cgroup.read("cpu.cfs_quota_us")) == "50000")
            #expect(trimmed(try cgroup.read("cpu.cfs_period_us")) == "100000")
        } else {
            #expect(trimmed(try cgroup.read("cpu.max")) == "50000 100000")
        }
        if hugetlb {
            let file = hierarchies.version(of: "hugetlb") == .v1 ? "hugetlb.2MB.limit_in_bytes" : "hugetlb.2MB.max"
            #expect(trimmed(try cgroup.read(file)) == "4194304")
        }
        try cgroup.remove()
        #expect(anyLeft(path).isEmpty)
    }

    @Test func processJoinsIsListedKilledAndTheCgroupRemoved() throws {
        let path = testPath("procs")
        var cgroup = Cgroup(path: path, hierarchies: hierarchies)
        defer { cleanUp(path) }
        try cgroup.create(resources: Resources(pids: .init(limit: 10)))

        let pid = try spawnSleep()
        var reaped = false
        defer {
            if !reaped {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
            }
        }
        try cgroup.addProcess(pid)
        #expect(try cgroup.pids() == [pid])
        for directory in cgroup.directories {
            let listed = try CgroupFiles.read(directory + "/cgroup.procs").split(separator: "\n")
            #expect(listed == ["\(pid)"], "\(directory)")
        }

        try cgroup.killAll(signal: SIGKILL)
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        reaped = true
        #expect(status & 0x7f == SIGKILL, "the child died of SIGKILL")

        try cgroup.remove()
        #expect(anyLeft(path).isEmpty)
        #expect(cgroup.createdDirectories.allSatisfy { !exists($0) })
    }

    @Test func failedApplyLeavesNothing() throws {
        let path = testPath("invalid/cpuset")
        var cgroup = Cgroup(path: path, hierarchies: hierarchies)
        defer { cleanUp(path) }
        #expect {
            try cgroup.create(resources: Resources(cpu: .init(cpus: "99999")))
        } throws: { error in
            let e = error as! CgroupError
            return e.operation == "linux.resources.cpu.cpus" && e.errno != nil && e.path?.hasSuffix("/cpuset.cpus") == true
        }
        #expect(anyLeft(path).isEmpty)
        #expect(anyLeft(testPath("invalid")).isEmpty, "the parent it made is gone too")
        #expect(cgroup.createdDirectories.isEmpty)
    }

    @Test(.enabled(if: (try? CgroupHierarchies.detect())?.mountPoint(of: "blkio", version: .v1)
            .map { access($0 + "/blkio.weight", F_OK) != 0 } ?? false,
                   "needs a v1 blkio controller without blkio.weight (BFQ disabled), as on this host"))
    func missingFileNamesTheSpecFieldAndLeavesNothing() throws {
        let path = testPath("bfq")
        var cgroup = Cgroup(path: path, hierarchies: hierarchies)
        defer { cleanUp(path) }
        var resources = Resources(pids: .init(limit: 5))
        resources.blockIO = Resources.BlockIO()
        resources.blockIO?.weight = 500
        #expect {
            try cgroup.create(resources: resources)
        } throws: { error in
            (error as! CgroupError).description.hasPrefix(
                "linux.resources.blockIO.weight: this host's blkio controller has no blkio.weight (BFQ disabled)")
        }
        #expect(anyLeft(path).isEmpty)
    }

    @Test func createdParentsGoWithTheLeaf() throws {
        let path = testPath("nested") + "/a/b"
        var cgroup = Cgroup(path: path, hierarchies: hierarchies)
        defer { cleanUp(path) }
        try cgroup.create(resources: nil)
        #expect(cgroup.createdDirectories.count == 3 * hierarchies.allMountPoints.count)
        try cgroup.remove()
        #expect(anyLeft(testPath("nested")).isEmpty)
    }

    @Test func sharedParentStaysWhileInUse() throws {
        let parent = testPath("shared")
        var one = Cgroup(path: parent + "/one", hierarchies: hierarchies)
        var two = Cgroup(path: parent + "/two", hierarchies: hierarchies)
        defer {
            cleanUp(parent + "/one")
            cleanUp(parent + "/two")
        }
        try one.create(resources: nil)
        try two.create(resources: nil)
        #expect(two.createdDirectories.allSatisfy { $0.hasSuffix("/two") }, "two found the parent made by one")
        try one.remove()
        #expect(anyLeft(parent).count == hierarchies.allMountPoints.count, "the parent still holds two")
        #expect(anyLeft(parent + "/one").isEmpty)
        try two.remove()
        #expect(anyLeft(parent + "/two").isEmpty)
        #expect(anyLeft(parent).count == hierarchies.allMountPoints.count, "two did not make the parent, so it stays")
    }
}
