import Testing
@testable import BulkheadLinux

@Suite struct CgroupHierarchiesTests {
    @Test func unifiedHost() throws {
        let h = try CgroupFixtures.unified()
        #expect(h.layout == .unified)
        #expect(h.v1.isEmpty)
        #expect(h.v2 == CgroupV2Mount(mountPoint: "/sys/fs/cgroup",
                                      controllers: ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"]))
        #expect(h.version(of: "memory") == .v2)
        #expect(h.version(of: "blkio") == nil)
        #expect(h.mountPoint(of: "pids", version: .v2) == "/sys/fs/cgroup")
        #expect(h.allMountPoints == ["/sys/fs/cgroup"])
    }

    @Test func legacyHost() throws {
        let h = try CgroupFixtures.legacy()
        #expect(h.layout == .legacy)
        #expect(h.v2 == nil)
        #expect(h.v1.map(\.mountPoint) == [
            "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpuset",
            "/sys/fs/cgroup/blkio", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/hugetlb", "/sys/fs/cgroup/net_cls,net_prio",
            "/sys/fs/cgroup/devices", "/sys/fs/cgroup/freezer", "/sys/fs/cgroup/perf_event",
        ], "the second mount of the memory hierarchy is skipped")
        #expect(h.v1[0].controllers == ["name=systemd"], "xattr and release_agent= are options, not controllers")
        #expect(h.v1[1].controllers == ["cpuacct", "cpu"])
        #expect(h.mountPoint(of: "cpu", version: .v1) == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(h.mountPoint(of: "net_prio", version: .v1) == "/sys/fs/cgroup/net_cls,net_prio")
        #expect(h.version(of: "io") == nil)
    }

    @Test func hybridHostLikeThisOne() throws {
        let h = try CgroupFixtures.hybrid()
        #expect(h.layout == .hybrid)
        #expect(h.v1.count == 9)
        #expect(h.v1.last == CgroupV1Hierarchy(mountPoint: "/sys/fs/cgroup/systemd", controllers: ["name=systemd"]))
        #expect(h.v2 == CgroupV2Mount(mountPoint: "/sys/fs/cgroup/unified", controllers: ["hugetlb"]))
        #expect(h.version(of: "memory") == .v1)
        #expect(h.version(of: "hugetlb") == .v2)
        #expect(h.mountPoint(of: "cpu", version: .v1) == "/sys/fs/cgroup/cpu")
        #expect(h.mountPoint(of: "cpuacct", version: .v1) == "/sys/fs/cgroup/cpuacct")
        #expect(h.allMountPoints.last == "/sys/fs/cgroup/unified")
    }

    @Test func namedHierarchyBesideCgroup2IsStillUnified() throws {
        let text = CgroupFixtures.unifiedMountinfo +
            "40 26 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
        let h = try CgroupHierarchies.detect(mountinfo: text, readFile: { _ in "memory pids\n" })
        #expect(h.layout == .unified)
        #expect(h.v1.map(\.controllers) == [["name=systemd"]])
    }

    @Test func noCgroupsIsAnError() {
        #expect(throws: CgroupError.self) {
            try CgroupHierarchies.detect(mountinfo: "22 28 0:21 / /sys rw - sysfs sysfs rw\n", readFile: { _ in nil })
        }
    }

    @Test func mountinfoParsing() {
        let entries = CgroupHierarchies.parseMountInfo(CgroupFixtures.legacyMountinfo + "garbage line\n")
        #expect(entries.count == 13)
        #expect(entries.last?.mountPoint == "/mnt/memory copy", "octal escapes are decoded")
        #expect(entries[1].fsType == "cgroup")
        #expect(entries[1].superOptions.last == "name=systemd")
        // No optional fields at all, and several of them.
        let few = CgroupHierarchies.parseMountInfo("1 0 0:1 / /a rw - cgroup2 none rw\n2 0 0:2 / /b rw shared:1 master:2 - cgroup x rw,pids\n")
        #expect(few.map(\.fsType) == ["cgroup2", "cgroup"])
        #expect(few[1].superOptions == ["rw", "pids"])
    }

    @Test func detectsThisHost() throws {
        // Whatever this host is, detection must find at least one hierarchy and agree with itself.
        let h = try CgroupHierarchies.detect()
        #expect(!h.allMountPoints.isEmpty)
        if h.layout != .unified { #expect(!h.v1.isEmpty) }
    }
}

@Suite struct CgroupPathTests {
    @Test func defaultPathUsesTheContainerID() throws {
        #expect(try CgroupPath.resolve(cgroupsPath: nil, containerID: "web1") == "/bulkhead/web1")
        #expect(try CgroupPath.resolve(cgroupsPath: "", containerID: "web1") == "/bulkhead/web1")
    }

    @Test func absoluteAndRelativePaths() throws {
        #expect(try CgroupPath.resolve(cgroupsPath: "/machine/pod1/c1", containerID: "x") == "/machine/pod1/c1")
        #expect(try CgroupPath.resolve(cgroupsPath: "pod1/c1", containerID: "x") == "/pod1/c1")
        #expect(try CgroupPath.resolve(cgroupsPath: "//a/./b/", containerID: "x") == "/a/b")
        #expect(try CgroupPath.resolve(cgroupsPath: "/a:b", containerID: "x") == "/a:b")
    }

    @Test(arguments: ["../escape", "/a/../../b", "..", "/a/.."])
    func dotDotIsRejected(path: String) {
        #expect {
            try CgroupPath.resolve(cgroupsPath: path, containerID: "x")
        } throws: { error in
            let e = error as! CgroupError
            return e.operation == "linux.cgroupsPath" && e.message.contains("..")
        }
    }

    @Test func systemdSyntaxIsRejectedClearly() {
        #expect {
            try CgroupPath.resolve(cgroupsPath: "system.slice:bulkhead:c1", containerID: "c1")
        } throws: { error in
            (error as! CgroupError).description.contains("systemd cgroup driver is not supported")
        }
    }

    @Test func rootAndBadIDsAreRejected() {
        #expect(throws: CgroupError.self) { try CgroupPath.resolve(cgroupsPath: "/", containerID: "x") }
        #expect(throws: CgroupError.self) { try CgroupPath.resolve(cgroupsPath: nil, containerID: "a/b") }
        #expect(throws: CgroupError.self) { try CgroupPath.resolve(cgroupsPath: nil, containerID: "..") }
    }

    @Test func directoriesInEveryHierarchy() throws {
        let cgroup = try Cgroup(cgroupsPath: nil, containerID: "c1", hierarchies: CgroupFixtures.hybrid())
        #expect(cgroup.directories.first == "/sys/fs/cgroup/cpu/bulkhead/c1")
        #expect(cgroup.directories.last == "/sys/fs/cgroup/unified/bulkhead/c1")
        #expect(cgroup.directories.count == 10)
        #expect(cgroup.directory(of: "hugetlb") == "/sys/fs/cgroup/unified/bulkhead/c1")
        #expect(cgroup.directory(of: "io") == "/sys/fs/cgroup/blkio/bulkhead/c1")
        #expect(cgroup.directory(of: "net_cls") == nil)
    }
}
