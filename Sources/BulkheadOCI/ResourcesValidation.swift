// Validation of linux.resources: catches values the cgroup files would reject (or silently
// misread) when the container is created, and names the field instead of the cgroup file.

extension Resources {
    func validate(at base: String) throws(ConfigError) {
        for (i, rule) in (devices ?? []).enumerated() {
            if let type = rule.type, !["a", "b", "c"].contains(type) {
                throw ConfigError(field: "\(base).devices[\(i)].type", message: "expected a (all), b (block) or c (char), got \"\(type)\"")
            }
            if let access = rule.access, !access.allSatisfy({ "rwm".contains($0) }) {
                throw ConfigError(field: "\(base).devices[\(i)].access", message: "expected a combination of r, w and m, got \"\(access)\"")
            }
        }
        try memory?.validate(at: "\(base).memory")
        try cpu?.validate(at: "\(base).cpu")
        if let limit = pids?.limit, limit < -1 {
            throw ConfigError(field: "\(base).pids.limit", message: "expected -1 (unlimited), 0 (unset) or a positive number of tasks, got \(limit)")
        }
        try blockIO?.validate(at: "\(base).blockIO")
        for (i, h) in (hugepageLimits ?? []).enumerated() where !Resources.isPageSize(h.pageSize) {
            throw ConfigError(field: "\(base).hugepageLimits[\(i)].pageSize",
                              message: "expected a size with a unit such as \"2MB\", \"1GB\" or \"64KB\", got \"\(h.pageSize)\"")
        }
        for key in (unified ?? [:]).keys.sorted() {
            // Keys are file names in the container's cgroup directory: "<controller>.<file>".
            let parts = key.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count < 2 || parts.contains(where: \.isEmpty) || key.contains("/") {
                throw ConfigError(field: JSONPath.append("\(base).unified", key: key),
                                  message: "expected a cgroup v2 file name such as \"memory.high\"")
            }
        }
    }

    /// Hugepage sizes as the cgroup hugetlb controller names them: a positive integer and a unit.
    static func isPageSize(_ s: String) -> Bool {
        for unit in ["KB", "MB", "GB", "TB", "PB"] where s.hasSuffix(unit) {
            let number = s.dropLast(2)
            return !number.isEmpty && number.allSatisfy(\.isASCIIDigit) && number.contains { $0 != "0" }
        }
        return false
    }

    /// cpuset lists: "0-3,5", "7". Empty means "inherit", which the kernel also accepts.
    static func isCPUList(_ s: String) -> Bool {
        if s.isEmpty { return true }
        for item in s.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count),
                  bounds.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }),
                  let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]), low <= high else {
                return false
            }
        }
        return true
    }
}

extension Resources.Memory {
    func validate(at base: String) throws(ConfigError) {
        let values: [(String, Int64?)] = [
            ("limit", limit), ("reservation", reservation), ("swap", swap), ("kernel", kernel), ("kernelTCP", kernelTCP),
        ]
        for (name, value) in values {
            if let value, value < -1 {
                throw ConfigError(field: "\(base).\(name)", message: "expected -1 (unlimited) or a number of bytes >= 0, got \(value)")
            }
        }
        // swap is memory+swap (cgroup v1 memsw), so it cannot be below the memory limit. 0 and -1
        // mean "unset" and "unlimited".
        if let limit, let swap, limit > 0, swap > 0, swap < limit {
            throw ConfigError(field: "\(base).swap", message: "expected memory+swap >= limit (\(limit)), got \(swap)")
        }
        if let swappiness, swappiness > 100 {
            throw ConfigError(field: "\(base).swappiness", message: "expected 0...100, got \(swappiness)")
        }
    }
}

extension Resources.CPU {
    func validate(at base: String) throws(ConfigError) {
        if quota != nil, let period, period == 0 {
            throw ConfigError(field: "\(base).period", message: "expected a period > 0 microseconds when a quota is set")
        }
        if let cpus, !Resources.isCPUList(cpus) {
            throw ConfigError(field: "\(base).cpus", message: "expected a CPU list such as \"0-3,5\", got \"\(cpus)\"")
        }
        if let mems, !Resources.isCPUList(mems) {
            throw ConfigError(field: "\(base).mems", message: "expected a memory node list such as \"0-1,3\", got \"\(mems)\"")
        }
        if let idle, idle != 0, idle != 1 {
            throw ConfigError(field: "\(base).idle", message: "expected 0 or 1, got \(idle)")
        }
    }
}

extension Resources.BlockIO {
    func validate(at base: String) throws(ConfigError) {
        func check(_ value: UInt16?, _ field: String) throws(ConfigError) {
            if let value, !(10...1000).contains(value) {
                throw ConfigError(field: field, message: "expected a weight 10...1000, got \(value)")
            }
        }
        try check(weight, "\(base).weight")
        try check(leafWeight, "\(base).leafWeight")
        for (i, device) in (weightDevice ?? []).enumerated() {
            try check(device.weight, "\(base).weightDevice[\(i)].weight")
            try check(device.leafWeight, "\(base).weightDevice[\(i)].leafWeight")
        }
    }
}
