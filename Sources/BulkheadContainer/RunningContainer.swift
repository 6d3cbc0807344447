import BulkheadLinux
import BulkheadOCI
import Glibc

/// Operations on a container that runs: pause, resume, new limits, statistics.
extension ContainerRuntime {
    public func pause(_ id: String) throws(RuntimeError) {
        let (lock, record, status) = try locked(id)
        defer { withExtendedLifetime(lock) {} }
        guard status == .running else { throw RuntimeError("cannot pause container \"\(id)\": it is \(status.rawValue), not running") }
        do { try requiredCgroup(of: record, for: "pause").freeze() } catch { throw RuntimeError("pause: \(error)") }
    }

    public func resume(_ id: String) throws(RuntimeError) {
        let (lock, record, status) = try locked(id)
        defer { withExtendedLifetime(lock) {} }
        guard status == .paused else { throw RuntimeError("cannot resume container \"\(id)\": it is \(status.rawValue), not paused") }
        do { try requiredCgroup(of: record, for: "resume").thaw() } catch { throw RuntimeError("resume: \(error)") }
    }

    /// New cgroup limits for a created, running or paused container; on any error it keeps the
    /// limits it had.
    public func update(_ id: String, resources: Resources) throws(RuntimeError) {
        let (lock, record, status) = try locked(id)
        defer { withExtendedLifetime(lock) {} }
        guard status != .stopped else { throw RuntimeError("cannot update container \"\(id)\": it is stopped") }
        do { try requiredCgroup(of: record, for: "update").update(resources: resources) } catch { throw RuntimeError("update: \(error)") }
    }

    public func stats(_ id: String) throws(RuntimeError) -> Cgroup.Stats {
        try StateStore.validate(id: id)
        let (record, status) = try current(id)
        guard let record, status != .stopped else { throw RuntimeError("container \"\(id)\" is not running") }
        return try requiredCgroup(of: record, for: "events").stats()
    }

    private func locked(_ id: String) throws(RuntimeError) -> (ContainerLock, ContainerRecord, ContainerStatus) {
        let lock = try store.lock(id)
        let (record, status) = try current(id)
        guard let record else { throw RuntimeError("container \"\(id)\" is still being created") }
        return (lock, record, status)
    }
}
