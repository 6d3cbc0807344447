import BulkheadOCI

/// One write into a container's cgroup: `value` into `file` of the directory of `controller`
/// in cgroup `version`. `field` is the spec field it comes from, for error messages.
public struct CgroupSetting: Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var controller: String
    public var version: CgroupVersion
    public var file: String
    public var value: String

    public init(field: String, controller: String, version: CgroupVersion, file: String, value: String) {
        self.field = field
        self.controller = controller
        self.version = version
        self.file = file
        self.value = value
    }

    public var description: String { "\(version) \(controller) \(file)=\"\(value)\" (\(field))" }
}

/// The pure mapping of linux.resources to cgroup files, for v1 and v2. It touches no file: it
/// looks only at which version serves each controller, so tests run it on fixtures. Whether a
/// file exists (e.g. blkio.weight needs BFQ) is checked when writing.
public enum CgroupSettings {
    /// The writes for `resources`, in the order they must happen. Throws, naming the spec field,
    /// when the host lacks a controller or a value cannot be expressed.
    public static func settings(for resources: Resources, on hierarchies: CgroupHierarchies) throws(CgroupError) -> [CgroupSetting] {
        var out: [CgroupSetting] = []

        /// The version serving `controller`, or an error naming `field` when the host lacks it.
        func version(_ controller: String, _ field: String) throws(CgroupError) -> CgroupVersion {
            guard let version = hierarchies.version(of: controller) else {
                throw CgroupError(operation: field, message: "this host has no \(controller) cgroup controller")
            }
            return version
        }
        func add(_ field: String, _ controller: String, _ version: CgroupVersion, _ file: String, _ value: String) {
            out.append(CgroupSetting(field: "linux.resources." + field, controller: controller, version: version,
                                     file: file, value: value))
        }
        func fail(_ field: String, _ message: String) -> CgroupError {
            CgroupError(operation: "linux.resources." + field, message: message)
        }

        if let memory = resources.memory {
            try mapMemory(memory, version: { (f) throws(CgroupError) in try version("memory", "linux.resources.memory." + f) },
                          add: { add("memory." + $0, "memory", $1, $2, $3) }, fail: { fail("memory." + $0, $1) })
        }
        if let cpu = resources.cpu {
            try mapCPU(cpu, version: { (c, f) throws(CgroupError) in try version(c, "linux.resources.cpu." + f) },
                       add: { add("cpu." + $0, $1, $2, $3, $4) }, fail: { fail("cpu." + $0, $1) })
        }
        if let pids = resources.pids {
            let v = try version("pids", "linux.resources.pids.limit")
            add("pids.limit", "pids", v, "pids.max", pids.limit <= 0 ? "max" : String(pids.limit))
        }
        for (index, hugepage) in (resources.hugepageLimits ?? []).enumerated() {
            let field = "hugepageLimits[\(index)]"
            let size = hugepage.pageSize
            guard !size.isEmpty, !size.contains("/"), !size.contains(".") else {
                throw fail(field + ".pageSize", "\"\(size)\" is not a page size like \"2MB\"")
            }
            let v = try version("hugetlb", "linux.resources." + field)
            add(field, "hugetlb", v, v == .v1 ? "hugetlb.\(size).limit_in_bytes" : "hugetlb.\(size).max", String(hugepage.limit))
        }
        if let blockIO = resources.blockIO {
            try mapBlockIO(blockIO, hierarchies: hierarchies, add: { add("blockIO." + $0, $1, $2, $3, $4) },
                           fail: { fail("blockIO." + $0, $1) })
        }
        if let rules = resources.devices, !rules.isEmpty, hierarchies.version(of: "devices") == .v1 {
            // v1 only: on cgroup v2 the device policy is an eBPF program attached to the cgroup,
            // which is the container engine's job, not a file to write.
            for (index, rule) in rules.enumerated() {
                add("devices[\(index)]", "devices", .v1, rule.allow ? "devices.allow" : "devices.deny",
                    try deviceRule(rule, field: "linux.resources.devices[\(index)]"))
            }
        }
        if let network = resources.network {
            if let classID = network.classID {
                add("network.classID", "net_cls", try version("net_cls", "linux.resources.network.classID"),
                    "net_cls.classid", String(classID))
            }
            for (index, priority) in (network.priorities ?? []).enumerated() {
                let field = "network.priorities[\(index)]"
                add(field, "net_prio", try version("net_prio", "linux.resources." + field), "net_prio.ifpriomap",
                    "\(priority.name) \(priority.priority)")
            }
        }
        if let unified = resources.unified, !unified.isEmpty {
            guard let v2 = hierarchies.v2 else {
                throw fail("unified", "this host has no cgroup v2 hierarchy; unified keys apply to cgroup v2 only")
            }
            for key in unified.keys.sorted() {
                let field = "unified[\"\(key)\"]"
                guard let dot = key.firstIndex(of: "."), dot != key.startIndex, !key.contains("/") else {
                    throw fail(field, "\"\(key)\" is not a cgroup v2 file name like \"memory.high\"")
                }
                let controller = String(key[..<dot])
                if controller != "cgroup" && !v2.controllers.contains(controller) {
                    throw fail(field, "this host's cgroup v2 hierarchy has no \(controller) controller" +
                               (hierarchies.version(of: controller) == .v1 ? " (it is bound to cgroup v1 here)" : ""))
                }
                add(field, controller, .v2, key, unified[key]!)
            }
        }
        return out
    }

    /// The v2 controllers a set of writes needs enabled in the ancestors' cgroup.subtree_control.
    public static func v2Controllers(of settings: [CgroupSetting]) -> [String] {
        var controllers: [String] = []
        for setting in settings where setting.version == .v2 && setting.controller != "cgroup" {
            if !controllers.contains(setting.controller) { controllers.append(setting.controller) }
        }
        return controllers
    }

    static func mapMemory(
        _ memory: Resources.Memory,
        version: (String) throws(CgroupError) -> CgroupVersion,
        add: (String, CgroupVersion, String, String) -> Void,
        fail: (String, String) -> CgroupError
    ) throws(CgroupError) {
        if let limit = memory.limit {
            let v = try version("limit")
            add("limit", v, v == .v1 ? "memory.limit_in_bytes" : "memory.max", bytes(limit, v))
        }
        if let reservation = memory.reservation {
            let v = try version("reservation")
            add("reservation", v, v == .v1 ? "memory.soft_limit_in_bytes" : "memory.low", bytes(reservation, v))
        }
        if let swap = memory.swap {
            let v = try version("swap")
            let limit = memory.limit ?? 0
            switch v {
            case .v1:
                // v1's memsw is the limit of memory + swap, as the spec's swap is.
                if swap > 0 && limit > 0 && swap < limit {
                    throw fail("swap", "\(swap) is below memory.limit \(limit); swap is the limit of memory + swap")
                }
                add("swap", v, "memory.memsw.limit_in_bytes", bytes(swap, v))
            case .v2:
                // v2's memory.swap.max is swap alone: spec swap (memory + swap) minus the limit,
                // with runc's special cases so engines see the same behaviour.
                if limit == -1 && swap == 0 {
                    add("swap", v, "memory.swap.max", "max")
                } else if swap == -1 {
                    add("swap", v, "memory.swap.max", "max")
                } else if swap == 0 {
                    break  // 0 means unset
                } else if limit <= 0 {
                    throw fail("swap", "a swap limit needs memory.limit on cgroup v2 (memory.swap.max = swap - limit)")
                } else if swap < limit {
                    throw fail("swap", "\(swap) is below memory.limit \(limit); swap is the limit of memory + swap")
                } else {
                    add("swap", v, "memory.swap.max", String(swap - limit))
                }
            }
        }
        // v2 has no swappiness or OOM-killer switch; runc ignores both there, and so do we.
        if let swappiness = memory.swappiness, try version("swappiness") == .v1 {
            if swappiness > 100 { throw fail("swappiness", "\(swappiness) is above 100") }
            add("swappiness", .v1, "memory.swappiness", String(swappiness))
        }
        if memory.disableOOMKiller == true, try version("disableOOMKiller") == .v1 {
            add("disableOOMKiller", .v1, "memory.oom_control", "1")
        }
        // kernel and kernelTCP are deprecated by the spec and refused by kernels since 5.16: ignored.
    }

    /// Bytes for a memory file: -1 (unlimited) is "-1" on v1 and "max" on v2.
    static func bytes(_ value: Int64, _ version: CgroupVersion) -> String {
        value == -1 && version == .v2 ? "max" : String(value)
    }

    /// cpu.shares (2…262144) to cpu.weight (1…10000), the conversion runc and crun use.
    public static func cpuWeight(shares: UInt64) -> UInt64 {
        let clamped = min(max(shares, 2), 262_144)
        return 1 + ((clamped - 2) * 9999) / 262_142
    }

    /// blkio.weight (10…1000) to io.weight (1…10000), as runc converts.
    public static func ioWeight(blkioWeight: UInt16) -> UInt64 {
        let clamped = UInt64(min(max(blkioWeight, 10), 1000))
        return 1 + (clamped - 10) * 9999 / 990
    }

    static func mapCPU(
        _ cpu: Resources.CPU,
        version: (String, String) throws(CgroupError) -> CgroupVersion,
        add: (String, String, CgroupVersion, String, String) -> Void,
        fail: (String, String) -> CgroupError
    ) throws(CgroupError) {
        if let shares = cpu.shares, shares != 0 {
            let v = try version("cpu", "shares")
            add("shares", "cpu", v, v == .v1 ? "cpu.shares" : "cpu.weight",
                String(v == .v1 ? shares : cpuWeight(shares: shares)))
        }
        // 0 means unset for both, as in runc: a 0 period is invalid and a 0 quota would throttle all.
        let quota = cpu.quota == 0 ? nil : cpu.quota
        let period = cpu.period == 0 ? nil : cpu.period
        if quota != nil || period != nil {
            let field = quota != nil ? "quota" : "period"
            let v = try version("cpu", field)
            switch v {
            case .v1:
                // The period first: the kernel checks a quota against the current period.
                if let period { add("period", "cpu", v, "cpu.cfs_period_us", String(period)) }
                if let quota { add("quota", "cpu", v, "cpu.cfs_quota_us", quota < 0 ? "-1" : String(quota)) }
            case .v2:
                // cpu.max is "$QUOTA $PERIOD"; the quota alone leaves the period as it is.
                let quotaText = quota.map { $0 < 0 ? "max" : String($0) } ?? "max"
                add(field, "cpu", v, "cpu.max", period.map { "\(quotaText) \($0)" } ?? quotaText)
            }
        }
        if let burst = cpu.burst {
            let v = try version("cpu", "burst")
            add("burst", "cpu", v, v == .v1 ? "cpu.cfs_burst_us" : "cpu.max.burst", String(burst))
        }
        if cpu.realtimeRuntime != nil || cpu.realtimePeriod != nil {
            let field = cpu.realtimePeriod != nil ? "realtimePeriod" : "realtimeRuntime"
            guard try version("cpu", field) == .v1 else {
                throw fail(field, "cgroup v2 has no real-time CPU bandwidth control")
            }
            if let period = cpu.realtimePeriod { add("realtimePeriod", "cpu", .v1, "cpu.rt_period_us", String(period)) }
            if let runtime = cpu.realtimeRuntime { add("realtimeRuntime", "cpu", .v1, "cpu.rt_runtime_us", String(runtime)) }
        }
        if let idle = cpu.idle {
            add("idle", "cpu", try version("cpu", "idle"), "cpu.idle", String(idle))
        }
        if let cpus = cpu.cpus, !cpus.isEmpty {
            add("cpus", "cpuset", try version("cpuset", "cpus"), "cpuset.cpus", cpus)
        }
        if let mems = cpu.mems, !mems.isEmpty {
            add("mems", "cpuset", try version("cpuset", "mems"), "cpuset.mems", mems)
        }
    }

    static func mapBlockIO(
        _ blockIO: Resources.BlockIO,
        hierarchies: CgroupHierarchies,
        add: (String, String, CgroupVersion, String, String) -> Void,
        fail: (String, String) -> CgroupError
    ) throws(CgroupError) {
        // v1 calls the controller blkio, v2 calls it io.
        let version: CgroupVersion
        if hierarchies.version(of: "blkio") == .v1 { version = .v1 }
        else if hierarchies.version(of: "io") == .v2 { version = .v2 }
        else {
            let field = blockIO.weight != nil ? "weight" : "throttle"
            throw fail(field, "this host has neither a blkio (v1) nor an io (v2) cgroup controller")
        }
        let controller = version == .v1 ? "blkio" : "io"
        func device(_ major: Int64, _ minor: Int64, _ field: String) throws(CgroupError) -> String {
            guard major >= 0, minor >= 0 else { throw fail(field, "device \(major):\(minor) is not a device number") }
            return "\(major):\(minor)"
        }

        if let weight = blockIO.weight {
            add("weight", controller, version, version == .v1 ? "blkio.weight" : "io.weight",
                version == .v1 ? String(weight) : "default \(ioWeight(blkioWeight: weight))")
        }
        if let leafWeight = blockIO.leafWeight {
            guard version == .v1 else { throw fail("leafWeight", "cgroup v2 has no leaf weight") }
            add("leafWeight", controller, version, "blkio.leaf_weight", String(leafWeight))
        }
        for (index, entry) in (blockIO.weightDevice ?? []).enumerated() {
            let field = "weightDevice[\(index)]"
            let dev = try device(entry.major, entry.minor, field)
            if let weight = entry.weight {
                add(field, controller, version, version == .v1 ? "blkio.weight_device" : "io.weight",
                    version == .v1 ? "\(dev) \(weight)" : "\(dev) \(ioWeight(blkioWeight: weight))")
            }
            if let leafWeight = entry.leafWeight {
                guard version == .v1 else { throw fail(field + ".leafWeight", "cgroup v2 has no leaf weight") }
                add(field, controller, version, "blkio.leaf_weight_device", "\(dev) \(leafWeight)")
            }
        }
        let throttles: [(String, [Resources.ThrottleDevice]?, String, String)] = [
            ("throttleReadBpsDevice", blockIO.throttleReadBpsDevice, "blkio.throttle.read_bps_device", "rbps"),
            ("throttleWriteBpsDevice", blockIO.throttleWriteBpsDevice, "blkio.throttle.write_bps_device", "wbps"),
            ("throttleReadIOPSDevice", blockIO.throttleReadIOPSDevice, "blkio.throttle.read_iops_device", "riops"),
            ("throttleWriteIOPSDevice", blockIO.throttleWriteIOPSDevice, "blkio.throttle.write_iops_device", "wiops"),
        ]
        if version == .v1 {
            for (name, devices, file, _) in throttles {
                for (index, entry) in (devices ?? []).enumerated() {
                    let field = "\(name)[\(index)]"
                    add(field, controller, version, file, "\(try device(entry.major, entry.minor, field)) \(entry.rate)")
                }
            }
        } else {
            // io.max takes one line per device with every limit of that device.
            var order: [String] = []
            var limits: [String: [String]] = [:]
            var fields: [String: String] = [:]
            for (name, devices, _, key) in throttles {
                for (index, entry) in (devices ?? []).enumerated() {
                    let dev = try device(entry.major, entry.minor, "\(name)[\(index)]")
                    if limits[dev] == nil { order.append(dev); fields[dev] = "\(name)[\(index)]" }
                    limits[dev, default: []].append("\(key)=\(entry.rate)")
                }
            }
            for dev in order {
                add(fields[dev]!, controller, version, "io.max", "\(dev) " + limits[dev]!.joined(separator: " "))
            }
        }
    }

    /// A v1 devices.allow/deny line: "type major:minor access", "*" for any number.
    static func deviceRule(_ rule: Resources.DeviceCgroupRule, field: String) throws(CgroupError) -> String {
        let type = rule.type ?? "a"
        guard ["a", "b", "c"].contains(type) else {
            throw CgroupError(operation: field + ".type", message: "\"\(type)\" is not a, b or c")
        }
        let access = rule.access ?? "rwm"
        guard !access.isEmpty, access.allSatisfy({ "rwm".contains($0) }) else {
            throw CgroupError(operation: field + ".access", message: "\"\(access)\" is not a combination of r, w and m")
        }
        let major = rule.major.map { $0 < 0 ? "*" : String($0) } ?? "*"
        let minor = rule.minor.map { $0 < 0 ? "*" : String($0) } ?? "*"
        return "\(type) \(major):\(minor) \(access)"
    }
}
