import BulkheadOCI
import Glibc
import Testing
@testable import BulkheadLinux

/// The cgroup v2 create path on a plain directory posing as a cgroup2 mount, so it runs without
/// root and on hosts whose cgroup2 has no controllers. A plain directory does not grow the
/// kernel's control files, which is exactly the "file does not exist" case.
@Suite struct CgroupFakeTreeTests {
    @Test func v2EnablesTheControllerThenRollsBackWhenTheFileIsMissing() throws {
        let root = "/tmp/bulkhead-fake-cgroup2-\(getpid())"
        #expect(mkdir(root, 0o755) == 0)
        defer {
            rmdir(root + "/c1")
            unlink(root + "/cgroup.subtree_control")
            rmdir(root)
        }
        let created = creat(root + "/cgroup.subtree_control", 0o644)
        #expect(created >= 0)
        close(created)

        let hierarchies = CgroupHierarchies(v1: [], v2: CgroupV2Mount(mountPoint: root, controllers: ["hugetlb", "pids"]))
        var cgroup = Cgroup(path: "/c1", hierarchies: hierarchies)
        var resources = Resources()
        resources.hugepageLimits = [.init(pageSize: "2MB", limit: 2 << 20)]
        #expect {
            try cgroup.create(resources: resources)
        } throws: { error in
            let e = error as! CgroupError
            return e.operation == "linux.resources.hugepageLimits[0]"
                && e.message == "this host's hugetlb controller has no hugetlb.2MB.max"
                && e.path == root + "/c1/hugetlb.2MB.max"
        }
        // A plain file keeps the last write: the controller was enabled for the limit, then taken
        // back with the directory, since no child cgroup is left.
        #expect(try CgroupFiles.read(root + "/cgroup.subtree_control") == "-hugetlb",
                "the controller enabled for the failed create is disabled again")
        #expect(access(root + "/c1", F_OK) != 0, "the directory it made is gone")
        #expect(cgroup.createdDirectories.isEmpty)
    }

    @Test func noResourcesEnableNoController() throws {
        let root = "/tmp/bulkhead-fake-cgroup2-plain-\(getpid())"
        #expect(mkdir(root, 0o755) == 0)
        defer {
            rmdir(root + "/a/b")
            rmdir(root + "/a")
            rmdir(root)
        }
        // No cgroup.subtree_control exists: reading it would fail, so this proves it is not touched.
        var cgroup = Cgroup(path: "/a/b", hierarchies: CgroupHierarchies(v1: [], v2: CgroupV2Mount(mountPoint: root, controllers: ["memory"])))
        try cgroup.create(resources: nil)
        #expect(cgroup.createdDirectories == [root + "/a", root + "/a/b"])
        try cgroup.remove()
        #expect(access(root + "/a", F_OK) != 0)
    }
}
