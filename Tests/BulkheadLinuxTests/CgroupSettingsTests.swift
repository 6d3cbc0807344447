import BulkheadOCI
import FoundationEssentials
import Testing
@testable import BulkheadLinux

/// The spec → file mapping, on fixtures of all three layouts (no root, no files touched).
@Suite struct CgroupSettingsTests {
    typealias Row = (CgroupVersion, String, String, String)

    func rows(_ resources: Resources, _ hierarchies: CgroupHierarchies) throws -> [Row] {
        try CgroupSettings.settings(for: resources, on: hierarchies).map { ($0.version, $0.controller, $0.file, $0.value) }
    }

    func same(_ a: [Row], _ b: [Row]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 && $0.2 == $1.2 && $0.3 == $1.3 }
    }

    /// Some spec types have no public memberwise init; build them from the spec's JSON.
    func resources(json: String) throws -> Resources {
        try JSONDecoder().decode(Resources.self, from: Data(json.utf8))
    }

    var typical: Resources {
        var r = Resources(memory: .init(limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20),
                          cpu: .init(shares: 1024, quota: 50_000, period: 100_000, cpus: "0-1", mems: "0"),
                          pids: .init(limit: 10))
        r.hugepageLimits = [.init(pageSize: "2MB", limit: 4 << 20)]
        return r
    }

    @Test func legacyMapping() throws {
        let got = try rows(typical, CgroupFixtures.legacy())
        #expect(same(got, [
            (.v1, "memory", "memory.limit_in_bytes", "67108864"),
            (.v1, "memory", "memory.soft_limit_in_bytes", "33554432"),
            (.v1, "memory", "memory.memsw.limit_in_bytes", "134217728"),
            (.v1, "cpu", "cpu.shares", "1024"),
            (.v1, "cpu", "cpu.cfs_period_us", "100000"),
            (.v1, "cpu", "cpu.cfs_quota_us", "50000"),
            (.v1, "cpuset", "cpuset.cpus", "0-1"),
            (.v1, "cpuset", "cpuset.mems", "0"),
            (.v1, "pids", "pids.max", "10"),
            (.v1, "hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
        ]), "\(got)")
    }

    @Test func unifiedMapping() throws {
        let got = try rows(typical, CgroupFixtures.unified())
        #expect(same(got, [
            (.v2, "memory", "memory.max", "67108864"),
            (.v2, "memory", "memory.low", "33554432"),
            (.v2, "memory", "memory.swap.max", "67108864"),  // swap 128 MiB - limit 64 MiB
            (.v2, "cpu", "cpu.weight", "39"),  // 1 + (1022 * 9999) / 262142
            (.v2, "cpu", "cpu.max", "50000 100000"),
            (.v2, "cpuset", "cpuset.cpus", "0-1"),
            (.v2, "cpuset", "cpuset.mems", "0"),
            (.v2, "pids", "pids.max", "10"),
            (.v2, "hugetlb", "hugetlb.2MB.max", "4194304"),
        ]), "\(got)")
    }

    @Test func hybridPutsHugetlbOnCgroup2AndTheRestOnV1() throws {
        let settings = try CgroupSettings.settings(for: typical, on: CgroupFixtures.hybrid())
        #expect(settings.filter { $0.version == .v2 }.map(\.file) == ["hugetlb.2MB.max"])
        #expect(settings.first { $0.controller == "memory" }?.file == "memory.limit_in_bytes")
        #expect(CgroupSettings.v2Controllers(of: settings) == ["hugetlb"])
        #expect(settings.last?.field == "linux.resources.hugepageLimits[0]")
    }

    @Test func unlimitedValues() throws {
        let r = Resources(memory: .init(limit: -1, reservation: -1, swap: -1), cpu: .init(quota: -1, period: 100_000),
                          pids: .init(limit: 0))
        #expect(same(try rows(r, CgroupFixtures.legacy()), [
            (.v1, "memory", "memory.limit_in_bytes", "-1"),
            (.v1, "memory", "memory.soft_limit_in_bytes", "-1"),
            (.v1, "memory", "memory.memsw.limit_in_bytes", "-1"),
            (.v1, "cpu", "cpu.cfs_period_us", "100000"),
            (.v1, "cpu", "cpu.cfs_quota_us", "-1"),
            (.v1, "pids", "pids.max", "max"),
        ]))
        #expect(same(try rows(r, CgroupFixtures.unified()), [
            (.v2, "memory", "memory.max", "max"),
            (.v2, "memory", "memory.low", "max"),
            (.v2, "memory", "memory.swap.max", "max"),
            (.v2, "cpu", "cpu.max", "max 100000"),
            (.v2, "pids", "pids.max", "max"),
        ]))
        #expect(same(try rows(Resources(cpu: .init(quota: 20_000)), CgroupFixtures.unified()),
                     [(.v2, "cpu", "cpu.max", "20000")]))
        // 0 is "unset" for quota and period.
        #expect(try rows(Resources(cpu: .init(quota: 0, period: 0)), CgroupFixtures.unified()).isEmpty)
        #expect(try rows(Resources(cpu: .init(quota: 0, period: 0)), CgroupFixtures.legacy()).isEmpty)
    }

    @Test func swapRules() throws {
        let unified = try CgroupFixtures.unified()
        // memory unlimited and swap unset: swap unlimited too (runc's rule).
        #expect(same(try rows(Resources(memory: .init(limit: -1, swap: 0)), unified), [
            (.v2, "memory", "memory.max", "max"), (.v2, "memory", "memory.swap.max", "max"),
        ]))
        #expect {
            try CgroupSettings.settings(for: Resources(memory: .init(swap: 1 << 30)), on: unified)
        } throws: { ($0 as! CgroupError).operation == "linux.resources.memory.swap" }
        #expect {
            try CgroupSettings.settings(for: Resources(memory: .init(limit: 2 << 20, swap: 1 << 20)), on: CgroupFixtures.legacy())
        } throws: { ($0 as! CgroupError).message.contains("below memory.limit") }
    }

    @Test func v1OnlyMemoryKnobs() throws {
        var memory = Resources.Memory(limit: 1 << 30)
        memory.swappiness = 60
        memory.disableOOMKiller = true
        let legacy = try rows(Resources(memory: memory), CgroupFixtures.legacy())
        #expect(legacy.map(\.2) == ["memory.limit_in_bytes", "memory.swappiness", "memory.oom_control"])
        #expect(legacy.map(\.3) == ["1073741824", "60", "1"])
        // cgroup v2 has neither; ignored as runc does.
        #expect(try rows(Resources(memory: memory), CgroupFixtures.unified()).map(\.2) == ["memory.max"])
    }

    @Test func cpuWeightConversion() {
        #expect(CgroupSettings.cpuWeight(shares: 2) == 1)
        #expect(CgroupSettings.cpuWeight(shares: 1024) == 39)
        #expect(CgroupSettings.cpuWeight(shares: 262_144) == 10_000)
        #expect(CgroupSettings.ioWeight(blkioWeight: 10) == 1)
        #expect(CgroupSettings.ioWeight(blkioWeight: 1000) == 10_000)
    }

    @Test func blockIOOnV1AndV2() throws {
        let r = try resources(json: """
        {"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
          "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
          "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
          "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
          "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]}}
        """)
        #expect(same(try rows(r, CgroupFixtures.legacy()), [
            (.v1, "blkio", "blkio.weight", "500"),
            (.v1, "blkio", "blkio.weight_device", "8:0 300"),
            (.v1, "blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
            (.v1, "blkio", "blkio.throttle.write_bps_device", "8:0 2097152"),
            (.v1, "blkio", "blkio.throttle.read_iops_device", "8:16 100"),
            (.v1, "blkio", "blkio.throttle.write_iops_device", "8:0 200"),
        ]))
        #expect(same(try rows(r, CgroupFixtures.unified()), [
            (.v2, "io", "io.weight", "default 4950"),
            (.v2, "io", "io.weight", "8:0 2930"),
            (.v2, "io", "io.max", "8:0 rbps=1048576 wbps=2097152 wiops=200"),
            (.v2, "io", "io.max", "8:16 riops=100"),
        ]))
    }

    @Test func missingControllerNamesTheField() throws {
        // This host's cgroup2 has only hugetlb; a v2 host without io has no block I/O control.
        let noIO = try CgroupHierarchies.detect(mountinfo: CgroupFixtures.unifiedMountinfo, readFile: { _ in "memory pids" })
        var r = Resources()
        r.blockIO = Resources.BlockIO()
        r.blockIO?.weight = 100
        #expect {
            try CgroupSettings.settings(for: r, on: noIO)
        } throws: { ($0 as! CgroupError).operation == "linux.resources.blockIO.weight" }
        #expect {
            try CgroupSettings.settings(for: Resources(pids: .init(limit: 5)), on: CgroupHierarchies(v1: [], v2: nil))
        } throws: { ($0 as! CgroupError).description == "linux.resources.pids.limit: this host has no pids cgroup controller" }
    }

    @Test func unifiedMapIsForCgroup2Only() throws {
        var r = Resources()
        r.unified = ["memory.high": "1G", "cgroup.max.depth": "3"]
        #expect(same(try rows(r, CgroupFixtures.unified()), [
            (.v2, "cgroup", "cgroup.max.depth", "3"), (.v2, "memory", "memory.high", "1G"),
        ]))
        #expect {
            try CgroupSettings.settings(for: r, on: CgroupFixtures.legacy())
        } throws: { ($0 as! CgroupError).operation == "linux.resources.unified" }
        // On this hybrid host memory is bound to v1, so cgroup2 cannot take memory.high.
        #expect {
            try CgroupSettings.settings(for: r, on: CgroupFixtures.hybrid())
        } throws: { ($0 as! CgroupError).description.contains("bound to cgroup v1") }
        r.unified = ["../../etc": "x"]
        #expect(throws: CgroupError.self) { try CgroupSettings.settings(for: r, on: CgroupFixtures.unified()) }
    }

    @Test func v1DeviceRules() throws {
        let r = try resources(json: """
        {"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                     {"allow": true, "type": "c", "major": 136, "access": "rwm"}]}
        """)
        #expect(same(try rows(r, CgroupFixtures.legacy()), [
            (.v1, "devices", "devices.deny", "a *:* rwm"),
            (.v1, "devices", "devices.allow", "c 1:3 rw"),
            (.v1, "devices", "devices.allow", "c 136:* rwm"),
        ]))
        // cgroup v2 enforces devices with an eBPF program, not files.
        #expect(try rows(r, CgroupFixtures.unified()).isEmpty)
    }

    @Test func realtimeIsV1Only() throws {
        var cpu = Resources.CPU()
        cpu.realtimeRuntime = 950_000
        cpu.realtimePeriod = 1_000_000
        #expect(try rows(Resources(cpu: cpu), CgroupFixtures.legacy()).map(\.2) == ["cpu.rt_period_us", "cpu.rt_runtime_us"])
        #expect(throws: CgroupError.self) { try CgroupSettings.settings(for: Resources(cpu: cpu), on: CgroupFixtures.unified()) }
    }
}
