// Validation of a decoded config.json against the runtime spec and what runc enforces, before any
// kernel object is created: a bad config must fail with the field named, not with an errno from a
// mount or a write to cgroupfs halfway through creating the container.
// This file: the top level, process, root, mounts and hooks. Linux-specific rules live in
// LinuxValidation.swift, cgroup resources in ResourcesValidation.swift.

extension Spec {
    /// Throws the first problem found, in document order (top level, process, root, mounts, hooks,
    /// linux). `forCreate` requires `process`, which the spec makes optional only for configs that
    /// are not used to create a container.
    public func validate(forCreate: Bool) throws(ConfigError) {
        try validateVersion()
        if let process { try process.validate(at: "process") } else if forCreate {
            throw ConfigError(field: "process", message: "missing required field: create needs the process to run")
        }
        guard let root else {
            throw ConfigError(field: "root", message: "missing required field: expected {\"path\": ...} naming the root filesystem")
        }
        if root.path.isEmpty {
            throw ConfigError(field: "root.path", message: "expected a non-empty path to the root filesystem (absolute, or relative to the bundle)")
        }
        try validateUTS()
        for (i, mount) in (mounts ?? []).enumerated() { try mount.validate(at: "mounts[\(i)]") }
        if let hooks { try hooks.validate() }
        try linux?.validate(spec: self)
    }

    /// runtime-spec versions are SemVer; every 1.x.y config is one this runtime can read. Suffixes
    /// such as runc's "1.0.2-dev" are allowed.
    private func validateVersion() throws(ConfigError) {
        let core = ociVersion.split(whereSeparator: { $0 == "-" || $0 == "+" }).first ?? ""
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        let numeric = parts.count == 3 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }
        guard numeric, parts[0] == "1", !ociVersion.hasPrefix("-") else {
            throw ConfigError(field: "ociVersion", message: "expected a runtime-spec version 1.x.y, got \"\(ociVersion)\"")
        }
    }

    /// The hostname and domain name are set in the container's own UTS namespace; setting them in a
    /// joined or the host's namespace would change someone else's.
    /// A hostname is set in the container's own UTS namespace, new or joined by path (the spec
    /// allows both; runc asks only for an entry): never in the runtime's.
    private func validateUTS() throws(ConfigError) {
        let ownUTS = linux?.namespaces?.contains { $0.type == "uts" } ?? false
        for (field, value) in [("hostname", hostname), ("domainname", domainname)] {
            if let value, !value.isEmpty, !ownUTS {
                throw ConfigError(field: field, message: "setting it requires a UTS namespace of the container: expected an entry {\"type\": \"uts\"} in linux.namespaces")
            }
        }
    }
}

extension Process {
    /// Resource names setrlimit(2) knows, as the spec spells them.
    public static let rlimitTypes: Set<String> = [
        "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
        "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
        "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
    ]

    func validate(at base: String) throws(ConfigError) {
        guard let args, let program = args.first else {
            throw ConfigError(field: "\(base).args", message: "expected a non-empty array: the program to run and its arguments")
        }
        if program.isEmpty {
            throw ConfigError(field: "\(base).args[0]", message: "expected the program to run, got an empty string")
        }
        if !cwd.hasPrefix("/") {
            throw ConfigError(field: "\(base).cwd", message: "expected an absolute path, got \"\(cwd)\"")
        }
        for (i, entry) in (env ?? []).enumerated() {
            // execve takes NAME=value strings; an entry without a name or '=' is not a variable.
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else {
                throw ConfigError(field: "\(base).env[\(i)]", message: "expected NAME=value, got \"\(entry)\"")
            }
        }
        if let umask = user.umask, umask > 0o777 {
            throw ConfigError(field: "\(base).user.umask", message: "expected permission bits 0...0o777 (0...511), got \(umask)")
        }
        if let oomScoreAdj, !(-1000...1000).contains(oomScoreAdj) {
            throw ConfigError(field: "\(base).oomScoreAdj", message: "expected -1000...1000 (the kernel's range), got \(oomScoreAdj)")
        }
        try validateRlimits(at: base)
        if let ioPriority {
            let classes = ["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"]
            if !classes.contains(ioPriority.class) {
                throw ConfigError(field: "\(base).ioPriority.class", message: "expected one of \(classes.joined(separator: ", ")), got \"\(ioPriority.class)\"")
            }
            if let p = ioPriority.priority, !(0...7).contains(p) {
                throw ConfigError(field: "\(base).ioPriority.priority", message: "expected 0...7, got \(p)")
            }
        }
        if let scheduler {
            let policies = ["SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE"]
            if !policies.contains(scheduler.policy) {
                throw ConfigError(field: "\(base).scheduler.policy", message: "expected one of \(policies.joined(separator: ", ")), got \"\(scheduler.policy)\"")
            }
            if let nice = scheduler.nice, !(-20...19).contains(nice) {
                throw ConfigError(field: "\(base).scheduler.nice", message: "expected -20...19, got \(nice)")
            }
        }
    }

    private func validateRlimits(at base: String) throws(ConfigError) {
        var seen: [String: Int] = [:]
        for (i, rlimit) in (rlimits ?? []).enumerated() {
            let field = "\(base).rlimits[\(i)]"
            guard Process.rlimitTypes.contains(rlimit.type) else {
                throw ConfigError(field: "\(field).type", message: "expected one of \(Process.rlimitTypes.sorted().joined(separator: ", ")), got \"\(rlimit.type)\"")
            }
            if let first = seen[rlimit.type] {
                throw ConfigError(field: "\(field).type", message: "duplicate \(rlimit.type), already set at \(base).rlimits[\(first)]; expected each type once")
            }
            seen[rlimit.type] = i
            if rlimit.soft > rlimit.hard {
                throw ConfigError(field: "\(field).soft", message: "expected soft <= hard, got soft \(rlimit.soft) > hard \(rlimit.hard)")
            }
        }
    }
}

extension Mount {
    /// Filesystems that take no device or directory as source, so a missing `source` is fine.
    static let sourcelessTypes: Set<String> = [
        "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "securityfs", "debugfs",
        "tracefs", "hugetlbfs", "bpf", "fusectl", "configfs", "pstore", "ramfs", "binfmt_misc",
        "overlay", "devtmpfs", "efivarfs", "none",
    ]

    var isBind: Bool {
        type == "bind" || (options ?? []).contains { $0 == "bind" || $0 == "rbind" }
    }

    func validate(at base: String) throws(ConfigError) {
        // Relative destinations are allowed (runc resolves them against "/"), empty ones are not.
        if destination.isEmpty {
            throw ConfigError(field: "\(base).destination", message: "expected a path inside the container (absolute, or relative to /)")
        }
        let source = self.source ?? ""
        if isBind {
            if source.isEmpty {
                throw ConfigError(field: "\(base).source", message: "expected the host path to bind (a bind mount needs a source)")
            }
        } else {
            guard let type, !type.isEmpty else {
                throw ConfigError(field: "\(base).type", message: "expected a filesystem type such as \"tmpfs\", or a \"bind\"/\"rbind\" option")
            }
            if source.isEmpty, !Mount.sourcelessTypes.contains(type) {
                throw ConfigError(field: "\(base).source", message: "expected a source (device or path) for a \"\(type)\" mount")
            }
        }
        // An idmapped mount maps both users and groups; the kernel takes one user namespace for both.
        if (uidMappings == nil) != (gidMappings == nil) {
            let missing = uidMappings == nil ? "uidMappings" : "gidMappings"
            throw ConfigError(field: "\(base).\(missing)", message: "expected both uidMappings and gidMappings on an idmapped mount")
        }
        for (name, mappings) in [("uidMappings", uidMappings), ("gidMappings", gidMappings)] {
            for (j, m) in (mappings ?? []).enumerated() where m.size == 0 {
                throw ConfigError(field: "\(base).\(name)[\(j)].size", message: "expected a non-zero number of IDs")
            }
        }
    }
}

extension Hooks {
    func validate() throws(ConfigError) {
        let stages: [(String, [Hook]?)] = [
            ("prestart", prestart), ("createRuntime", createRuntime), ("createContainer", createContainer),
            ("startContainer", startContainer), ("poststart", poststart), ("poststop", poststop),
        ]
        for (stage, hooks) in stages {
            for (i, hook) in (hooks ?? []).enumerated() {
                // The spec extends execv's path: it MUST be absolute (no PATH lookup).
                if !hook.path.hasPrefix("/") {
                    throw ConfigError(field: "hooks.\(stage)[\(i)].path", message: "expected an absolute path, got \"\(hook.path)\"")
                }
                if let timeout = hook.timeout, timeout <= 0 {
                    throw ConfigError(field: "hooks.\(stage)[\(i)].timeout", message: "expected a number of seconds greater than zero, got \(timeout)")
                }
            }
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
