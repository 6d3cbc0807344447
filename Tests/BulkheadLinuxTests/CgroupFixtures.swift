@testable import BulkheadLinux

/// Mount tables of the three layouts, as /proc/self/mountinfo prints them.
enum CgroupFixtures {
    /// A pure cgroup v2 host (Debian 12, Fedora, Ubuntu 22.04 and later).
    static let unifiedMountinfo = """
    22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
    26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
    28 22 0:25 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:11 - bpf bpf rw,mode=700

    """
    static let unifiedControllers = "cpuset cpu io memory hugetlb pids rdma misc\n"

    /// A pure v1 host (CentOS 7): co-mounted cpu,cpuacct and net_cls,net_prio, a named systemd
    /// hierarchy with extra options, and the memory hierarchy bind-mounted a second time.
    static let legacyMountinfo = """
    25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
    26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
    28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpuacct,cpu
    29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
    30 25 0:27 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpuset
    31 25 0:28 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,blkio
    32 25 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
    33 25 0:30 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,hugetlb
    34 25 0:31 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,net_cls,net_prio
    35 25 0:32 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,devices
    36 25 0:33 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,freezer
    37 25 0:34 / /sys/fs/cgroup/perf_event rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,perf_event
    90 60 0:26 / /mnt/memory\\040copy rw,relatime - cgroup cgroup rw,memory

    """

    /// This machine: v1 controllers (cpu and cpuacct apart), and a cgroup2 mount at
    /// /sys/fs/cgroup/unified holding only hugetlb.
    static let hybridMountinfo = """
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
    33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
    34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
    37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
    38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
    39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw

    """
    static let hybridControllers = "hugetlb\n"

    static func files(_ map: [String: String]) -> (String) -> String? { { map[$0] } }

    static func unified() throws -> CgroupHierarchies {
        try CgroupHierarchies.detect(mountinfo: unifiedMountinfo,
                                     readFile: files(["/sys/fs/cgroup/cgroup.controllers": unifiedControllers]))
    }

    static func legacy() throws -> CgroupHierarchies {
        try CgroupHierarchies.detect(mountinfo: legacyMountinfo, readFile: files([:]))
    }

    static func hybrid() throws -> CgroupHierarchies {
        try CgroupHierarchies.detect(mountinfo: hybridMountinfo,
                                     readFile: files(["/sys/fs/cgroup/unified/cgroup.controllers": hybridControllers]))
    }
}
