import BulkheadLinux
import BulkheadOCI
import CBulkhead
import FoundationEssentials
import Glibc

/// What the runtime keeps about one container in `<root>/<id>/state.json`. Written once, when
/// `create` succeeds; the status is derived from the live process and the exec fifo, never stored,
/// so a crash cannot leave a stale status behind.
public struct ContainerRecord: Codable, Sendable {
    public var id: String
    public var bundle: String
    public var rootfs: String
    public var pid: Int32
    /// The init process's start time (clock ticks since boot): pid + start time name it for good.
    public var startTime: UInt64
    public var created: String
    public var owner: String
    public var annotations: [String: String]?
    public var cgroup: CgroupRecord
    /// Hooks that run after create (startContainer, poststart, poststop), and the namespace types
    /// startContainer hooks join: config.json may change after create.
    public var hooks: Hooks?
    public var namespaces: [String]?
    /// The container had no mount namespace: its mounts under the rootfs are in the runtime's,
    /// and delete detaches them.
    public var hostMounts: Bool?
}

/// The state directory (`--root`): one directory per container, each locked while a command
/// works on it, so commands on one container are serialized and on different ones run in parallel.
public struct StateStore: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    /// runc's default is /run/runc; ours /run/bulkhead, or $XDG_RUNTIME_DIR/bulkhead for a user.
    public static func defaultRoot() -> String {
        if getuid() != 0, let xdg = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !xdg.isEmpty {
            return xdg + "/bulkhead"
        }
        return "/run/bulkhead"
    }

    public func directory(_ id: String) -> String { root + "/" + id }
    public func statePath(_ id: String) -> String { directory(id) + "/state.json" }
    public func fifoPath(_ id: String) -> String { directory(id) + "/exec.fifo" }

    /// Container ids are path components: letters, digits and `_+-.`, as runc allows.
    public static func validate(id: String) throws(RuntimeError) {
        let allowed = id.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2b || c == 0x2d || c == 0x2e
        }
        if id.isEmpty || id == "." || id == ".." || !allowed || id.utf8.count > 1024 {
            throw RuntimeError("invalid container id \"\(id)\": expected letters, digits, '_', '+', '-' and '.'")
        }
    }

    /// Makes the container's directory, locked; fails if the id is taken.
    public func reserve(_ id: String) throws(RuntimeError) -> ContainerLock {
        try Self.validate(id: id)
        do {
            try Files.makeDirectories(root, mode: 0o711)
        } catch {
            throw RuntimeError("cannot create state root \(root): \(error)")
        }
        if mkdir(directory(id), 0o711) != 0 {
            if errno == EEXIST { throw RuntimeError("container with id \"\(id)\" already exists") }
            throw RuntimeError("cannot create state directory: \(SystemError("mkdir", path: directory(id)))")
        }
        guard let lock = ContainerLock(directory(id)) else {
            let error = SystemError("lock", path: directory(id))
            rmdir(directory(id))
            throw RuntimeError("\(error)")
        }
        return lock
    }

    /// Locks an existing container's directory.
    public func lock(_ id: String) throws(RuntimeError) -> ContainerLock {
        try Self.validate(id: id)
        guard let lock = ContainerLock(directory(id)) else {
            throw RuntimeError("container \"\(id)\" does not exist")
        }
        // It may have been deleted while we waited for the lock.
        if !Files.exists(directory(id)) {
            throw RuntimeError("container \"\(id)\" does not exist")
        }
        return lock
    }

    public func write(_ record: ContainerRecord) throws(RuntimeError) {
        let encoder = JSONEncoder()
        do {
            let data = try encoder.encode(record)
            try Files.writeAtomically(statePath(record.id), Array(data))
        } catch {
            throw RuntimeError("cannot write state of \(record.id): \(error)")
        }
    }

    /// The record, or nil while the container is still being created.
    public func read(_ id: String) throws(RuntimeError) -> ContainerRecord? {
        let bytes: [UInt8]
        do {
            bytes = try Files.readBytes(statePath(id))
        } catch {
            if error.errno == ENOENT { return nil }
            throw RuntimeError("cannot read state of \(id): \(error)")
        }
        do {
            return try FastJSON.decode(ContainerRecord.self, from: bytes)
        } catch {
            throw RuntimeError("state of \(id) at \(statePath(id)) is corrupt: \(error)")
        }
    }

    public func ids() -> [String] {
        ((try? Files.list(root)) ?? []).filter { Files.isDirectory(directory($0)) }.sorted()
    }

    public func remove(_ id: String) throws(RuntimeError) {
        do {
            try Files.removeTree(directory(id))
        } catch {
            throw RuntimeError("cannot remove state directory: \(error)")
        }
    }
}

/// An exclusive flock on a container's state directory, released on deinit.
public final class ContainerLock {
    public let fd: Int32

    init?(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { return nil }
        if retryingEINTR({ bh_flock(fd, LOCK_EX) }) != 0 {
            close(fd)
            return nil
        }
        self.fd = fd
    }

    deinit { close(fd) }
}
