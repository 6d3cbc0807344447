import BulkheadOCI
import Glibc

/// Changing a running container's cgroup: freezing (pause/resume), new limits (update), and the
/// numbers `events --stats` reports.
extension Cgroup {
    // MARK: freezer

    /// Freezes every process of the cgroup and waits until the kernel says it is frozen: the v1
    /// freezer controller where it is mounted, else cgroup.freeze of cgroup v2.
    public func freeze() throws(CgroupError) { try setFrozen(true) }

    public func thaw() throws(CgroupError) { try setFrozen(false) }

    public func isFrozen() -> Bool {
        if let dir = freezerDirectory(v1: true) {
            return CgroupFiles.readIfPresent(dir + "/freezer.state")?.hasPrefix("FROZEN") == true
        }
        if let dir = freezerDirectory(v1: false) {
            return CgroupFiles.readIfPresent(dir + "/cgroup.freeze")?.hasPrefix("1") == true
        }
        return false
    }

    private func freezerDirectory(v1: Bool) -> String? {
        if v1 {
            guard hierarchies.version(of: "freezer") == .v1,
                  let mount = hierarchies.mountPoint(of: "freezer", version: .v1) else { return nil }
            return mount + path
        }
        guard let v2 = hierarchies.v2, CgroupFiles.exists(v2.mountPoint + path + "/cgroup.freeze") else { return nil }
        return v2.mountPoint + path
    }

    private func setFrozen(_ frozen: Bool) throws(CgroupError) {
        let operation = frozen ? "pause" : "resume"
        if let dir = freezerDirectory(v1: true) {
            try CgroupFiles.write(dir + "/freezer.state", frozen ? "FROZEN" : "THAWED", operation: operation)
            // FREEZING becomes FROZEN once every task stopped; a task in an uninterruptible sleep
            // can delay it, so ask again a few times, as runc does.
            let wanted = frozen ? "FROZEN" : "THAWED"
            for attempt in 0..<1000 {
                let state = try CgroupFiles.read(dir + "/freezer.state", operation: operation)
                if state.hasPrefix(wanted) { return }
                if frozen && attempt % 25 == 24 {
                    try CgroupFiles.write(dir + "/freezer.state", "FROZEN", operation: operation)
                }
                usleep(1000)
            }
            if frozen { try? CgroupFiles.write(dir + "/freezer.state", "THAWED", operation: operation) }
            throw CgroupError(operation: operation, path: dir, message: "the freezer did not reach \(wanted) within a second")
        }
        if let dir = freezerDirectory(v1: false) {
            try CgroupFiles.write(dir + "/cgroup.freeze", frozen ? "1" : "0", operation: operation)
            for _ in 0..<1000 {
                let events = try CgroupFiles.read(dir + "/cgroup.events", operation: operation)
                if events.contains(frozen ? "frozen 1" : "frozen 0") { return }
                usleep(1000)
            }
            throw CgroupError(operation: operation, path: dir, message: "cgroup.events did not report frozen \(frozen ? 1 : 0) within a second")
        }
        throw CgroupError(operation: operation, path: path, message: "this host has neither a v1 freezer nor cgroup v2's cgroup.freeze")
    }

    // MARK: update

    /// Writes new limits. All of `resources` is mapped and every file checked before the first
    /// write; if the kernel refuses one (a memory limit below the usage, say), the values already
    /// changed are put back, so the container keeps its old limits.
    public func update(resources: Resources) throws(CgroupError) {
        let settings = try CgroupSettings.settings(for: resources, on: hierarchies)
        var files: [(CgroupSetting, String)] = []
        for setting in settings {
            guard let mount = hierarchies.mountPoint(of: setting.controller, version: setting.version) else {
                throw CgroupError(operation: setting.field, message: "this host has no \(setting.controller) cgroup controller")
            }
            let file = mount + path + "/" + setting.file
            guard CgroupFiles.exists(file) else {
                throw CgroupError(operation: setting.field, path: file, message: "this host's \(setting.controller) controller has no \(setting.file)")
            }
            files.append((setting, file))
        }
        var written: [(file: String, old: String, field: String)] = []
        for (setting, file) in files {
            let old = (try? CgroupFiles.read(file, operation: setting.field)) ?? ""
            do {
                try CgroupFiles.write(file, setting.value, operation: setting.field)
            } catch {
                for w in written.reversed() { try? CgroupFiles.write(w.file, Self.restorable(w.old), operation: w.field) }
                throw error
            }
            written.append((file, old, setting.field))
        }
    }

    /// A value as read back, as it can be written again ("max 100000" of cpu.max stays whole;
    /// v1 reads -1 limits as a huge number, which writes back as it is).
    static func restorable(_ value: String) -> String {
        value.split(separator: "\n").first.map(String.init) ?? ""
    }

    // MARK: stats

    /// The numbers of `events --stats`, from whichever hierarchy holds each controller.
    public struct Stats: Sendable, Equatable {
        public var memoryUsage: UInt64?
        public var memoryLimit: UInt64?
        public var memoryMaxUsage: UInt64?
        public var cpuUsageNanoseconds: UInt64?
        public var pidsCurrent: UInt64?
        public var pidsLimit: UInt64?
    }

    public func stats() -> Stats {
        var stats = Stats()
        func read(_ controller: String, v1: String, v2: String) -> UInt64? {
            guard let version = hierarchies.version(of: controller),
                  let mount = hierarchies.mountPoint(of: controller, version: version) else { return nil }
            let text = CgroupFiles.readIfPresent(mount + path + "/" + (version == .v1 ? v1 : v2))
            return text.flatMap { UInt64($0.split(separator: "\n").first ?? "") }
        }
        stats.memoryUsage = read("memory", v1: "memory.usage_in_bytes", v2: "memory.current")
        stats.memoryLimit = read("memory", v1: "memory.limit_in_bytes", v2: "memory.max")
        stats.memoryMaxUsage = read("memory", v1: "memory.max_usage_in_bytes", v2: "memory.peak")
        stats.pidsCurrent = read("pids", v1: "pids.current", v2: "pids.current")
        stats.pidsLimit = read("pids", v1: "pids.max", v2: "pids.max")
        if hierarchies.version(of: "cpuacct") == .v1 {
            stats.cpuUsageNanoseconds = read("cpuacct", v1: "cpuacct.usage", v2: "")
        } else if let v2 = hierarchies.v2,
                  let text = CgroupFiles.readIfPresent(v2.mountPoint + path + "/cpu.stat"),
                  let line = text.split(separator: "\n").first(where: { $0.hasPrefix("usage_usec ") }),
                  let usec = UInt64(line.split(separator: " ").last ?? "") {
            stats.cpuUsageNanoseconds = usec * 1000
        }
        return stats
    }
}
