import BulkheadOCI
import Glibc

/// One container's cgroup: the same path below every hierarchy root of the host (each v1
/// mount, and the cgroup2 mount when there is one).
public struct Cgroup: Sendable, Equatable {
    /// Absolute path below each hierarchy root, e.g. "/bulkhead/<id>".
    public let path: String
    public let hierarchies: CgroupHierarchies
    /// Directories that create(resources:) made, parents before children. A runtime that removes
    /// the cgroup from another process (runc's delete) keeps this list in its state and passes it
    /// back to init(path:hierarchies:createdDirectories:), so shared parents it did not make stay.
    public private(set) var createdDirectories: [String]
    /// "+controller" writes this cgroup made to cgroup.subtree_control files, as "directory controller":
    /// remove() takes each back once no child cgroup is left under that directory, so a host's
    /// cgroup2 root does not keep a controller enabled for containers long gone.
    public private(set) var enabledControllers: [String] = []

    public init(path: String, hierarchies: CgroupHierarchies, createdDirectories: [String] = [],
                enabledControllers: [String] = []) {
        self.enabledControllers = enabledControllers
        self.path = path
        self.hierarchies = hierarchies
        self.createdDirectories = createdDirectories
    }

    /// The cgroup of a container from its spec's linux.cgroupsPath (see CgroupPath.resolve).
    public init(cgroupsPath: String?, containerID: String, hierarchies: CgroupHierarchies) throws(CgroupError) {
        self.init(path: try CgroupPath.resolve(cgroupsPath: cgroupsPath, containerID: containerID),
                  hierarchies: hierarchies)
    }

    /// The container's directory in every hierarchy: each v1 mount, then cgroup2.
    public var directories: [String] { hierarchies.allMountPoints.map { $0 + path } }

    /// The container's directory that holds `controller`'s files, or nil when the host lacks it.
    public func directory(of controller: String) -> String? {
        if controller == "cgroup" { return directories.last }
        // v1 calls block I/O "blkio" and v2 calls it "io"; either name finds it.
        let names = controller == "blkio" || controller == "io" ? ["blkio", "io"] : [controller]
        for name in names {
            if let version = hierarchies.version(of: name), let mount = hierarchies.mountPoint(of: name, version: version) {
                return mount + path
            }
        }
        return nil
    }

    // MARK: create

    /// Makes the directories in every hierarchy and writes the limits of `resources`. On any
    /// failure, removes every directory it made before throwing: nothing is left half-made.
    public mutating func create(resources: Resources?) throws(CgroupError) {
        // Map first: a spec the host cannot honour fails before anything is touched.
        let settings = try resources.map { (r) throws(CgroupError) in try CgroupSettings.settings(for: r, on: hierarchies) } ?? []
        createdDirectories = []
        enabledControllers = []
        do {
            for hierarchy in hierarchies.v1 {
                try makeDirectories(root: hierarchy.mountPoint, fillCpuset: hierarchy.controllers.contains("cpuset"),
                                    enable: [], settings: settings)
            }
            if let v2 = hierarchies.v2 {
                try makeDirectories(root: v2.mountPoint, fillCpuset: false,
                                    enable: CgroupSettings.v2Controllers(of: settings), settings: settings)
            }
            for setting in settings { try write(setting) }
            // cgroup v2 has no devices controller: the rules become an eBPF program.
            if let rules = resources?.devices, !rules.isEmpty, hierarchies.version(of: "devices") == nil,
               let v2 = hierarchies.v2 {
                try DeviceFilter.attach(rules, to: v2.mountPoint + path)
            }
        } catch {
            removeCreatedDirectories()
            disableEnabledControllers()
            createdDirectories = []
            enabledControllers = []
            throw error
        }
    }

    /// Creates root + path one level at a time, recording what it made. On cgroup v2 it enables
    /// `enable` in each ancestor's cgroup.subtree_control, the only way a child gets those files.
    private mutating func makeDirectories(root: String, fillCpuset: Bool, enable: [String],
                                          settings: [CgroupSetting]) throws(CgroupError) {
        var current = root
        for component in path.split(separator: "/") {
            if !enable.isEmpty { try enableControllers(enable, in: current, settings: settings) }
            let parent = current
            current += "/" + component
            if mkdir(current, 0o755) == 0 {
                createdDirectories.append(current)
            } else if errno != EEXIST {
                throw CgroupError(operation: "mkdir", path: current, errno: errno, message: "cannot create the cgroup")
            }
            // v1 refuses tasks in a cpuset cgroup whose cpus or mems are empty, and a new one
            // starts empty: inherit the parent's, as runc does.
            if fillCpuset {
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let own = try CgroupFiles.read(current + "/" + file, operation: "cpuset")
                    if own.allSatisfy(\.isWhitespace) {
                        let inherited = try CgroupFiles.read(parent + "/" + file, operation: "cpuset")
                        try CgroupFiles.write(current + "/" + file, trimmed(inherited), operation: "cpuset: copy \(file) from parent")
                    }
                }
            }
        }
    }

    private mutating func enableControllers(_ controllers: [String], in directory: String,
                                            settings: [CgroupSetting]) throws(CgroupError) {
        let file = directory + "/cgroup.subtree_control"
        let enabled = try CgroupFiles.read(file, operation: "cgroup.subtree_control").split(whereSeparator: \.isWhitespace)
        for controller in controllers where !enabled.contains(Substring(controller)) {
            let field = settings.first { $0.version == .v2 && $0.controller == controller }?.field ?? "enable \(controller)"
            try CgroupFiles.write(file, "+" + controller, operation: "\(field): enable the \(controller) controller")
            enabledControllers.append(directory + " " + controller)
        }
    }

    private func write(_ setting: CgroupSetting) throws(CgroupError) {
        guard let mount = hierarchies.mountPoint(of: setting.controller, version: setting.version) else {
            throw CgroupError(operation: setting.field, message: "this host has no \(setting.controller) cgroup controller")
        }
        let file = mount + path + "/" + setting.file
        // A missing file means the kernel lacks the feature; say which, rather than ENOENT.
        guard CgroupFiles.exists(file) else {
            throw CgroupError(operation: setting.field, path: file,
                              message: "this host's \(setting.controller) controller has no \(setting.file)" + Self.hint(for: setting.file))
        }
        try CgroupFiles.write(file, setting.value, operation: setting.field)
    }

    private static func hint(for file: String) -> String {
        switch file {
        case "blkio.weight", "blkio.weight_device", "blkio.leaf_weight", "blkio.leaf_weight_device", "io.weight":
            return " (BFQ disabled)"
        case "memory.memsw.limit_in_bytes", "memory.swap.max":
            return " (swap accounting disabled)"
        default:
            return ""
        }
    }

    // MARK: processes

    /// Moves `pid` into the container's cgroup in every hierarchy.
    public func addProcess(_ pid: pid_t) throws(CgroupError) {
        for directory in directories {
            try CgroupFiles.write(directory + "/cgroup.procs", String(pid), operation: "add process \(pid)")
        }
    }

    /// Every process in the cgroup, in any hierarchy (sorted, without repeats).
    public func pids() throws(CgroupError) -> [pid_t] {
        var all = Set<pid_t>()
        for directory in directories where CgroupFiles.exists(directory) {
            let text = try CgroupFiles.read(directory + "/cgroup.procs", operation: "list processes")
            for line in text.split(separator: "\n") {
                if let pid = pid_t(line.trimmingPrefix(" ")) { all.insert(pid) }
            }
        }
        return all.sorted()
    }

    /// Sends `signal` to every process of the cgroup. Processes that exit meanwhile are skipped.
    public func killAll(signal: Int32) throws(CgroupError) {
        for pid in try pids() where kill(pid, signal) != 0 && errno != ESRCH {
            throw CgroupError(operation: "kill \(pid) with signal \(signal)", path: path, errno: errno,
                              message: "cannot signal a process of the cgroup")
        }
    }

    // MARK: remove

    /// Removes the container's directory in every hierarchy, then the parents that create made
    /// if they are empty. Waits briefly while killed tasks leave (rmdir says EBUSY meanwhile).
    public func remove() throws(CgroupError) {
        var firstError: CgroupError?
        for directory in directories {
            if let error = Self.removeDirectory(directory, waitWhileBusy: true), firstError == nil { firstError = error }
        }
        removeCreatedDirectories()
        disableEnabledControllers()
        if let firstError { throw firstError }
    }

    /// Deepest first: "-controller" where this cgroup enabled it and no child cgroup remains.
    private func disableEnabledControllers() {
        for entry in enabledControllers.reversed() {
            guard let space = entry.lastIndex(of: " ") else { continue }
            let directory = String(entry[..<space]), controller = String(entry[entry.index(after: space)...])
            let children = ((try? Files.list(directory)) ?? []).filter { Files.isDirectory(directory + "/" + $0) }
            if children.isEmpty {
                try? CgroupFiles.write(directory + "/cgroup.subtree_control", "-" + controller, operation: "disable \(controller)")
            }
        }
    }

    /// Deepest first; a parent that still holds another container's cgroup stays.
    private func removeCreatedDirectories() {
        for directory in createdDirectories.reversed() {
            _ = Self.removeDirectory(directory, waitWhileBusy: directories.contains(directory))
        }
    }

    private static func removeDirectory(_ directory: String, waitWhileBusy: Bool) -> CgroupError? {
        var attempts = 0
        while rmdir(directory) != 0 {
            let code = errno
            if code == ENOENT { return nil }
            if code == EBUSY && waitWhileBusy && attempts < 200 {
                attempts += 1
                usleep(10_000)
                continue
            }
            return CgroupError(operation: "remove cgroup", path: directory, errno: code, message: "cannot remove")
        }
        return nil
    }

    // MARK: reading

    /// The content of one of the container's cgroup files, e.g. "memory.max" or "pids.max".
    /// The file's prefix picks the hierarchy; "cgroup.*" files are read from cgroup2 when present.
    public func read(_ file: String) throws(CgroupError) -> String {
        let controller = String(file.prefix { $0 != "." })
        guard let directory = directory(of: controller) else {
            throw CgroupError(operation: "read \(file)", message: "this host has no \(controller) cgroup controller")
        }
        return try CgroupFiles.read(directory + "/" + file, operation: "read \(file)")
    }
}

private func trimmed(_ text: String) -> String {
    String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
}
