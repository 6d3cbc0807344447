// Validation of the `linux` object: namespaces and what depends on them (ID mappings, time offsets,
// sysctls), devices, propagation, cgroupsPath, seccomp and personality.

extension Linux {
    /// True when the config asks for a namespace of this type, created or joined.
    func hasNamespace(_ type: String) -> Bool {
        (namespaces ?? []).contains { $0.type == type }
    }

    /// True when the container gets a new namespace of this type (listed without a path). An empty
    /// path counts as none: Go engines write "" for "unset".
    func createsNamespace(_ type: String) -> Bool {
        (namespaces ?? []).contains { $0.type == type && ($0.path ?? "").isEmpty }
    }

    static let rootfsPropagations: Set<String> = [
        "shared", "slave", "private", "rshared", "rslave", "rprivate", "unbindable", "runbindable",
    ]

    func validate(spec: Spec) throws(ConfigError) {
        try validateNamespaces()
        try validateIDMappings()
        try validateTimeOffsets()
        try validateSysctl()
        try validateDevices()
        if let p = rootfsPropagation, !p.isEmpty, !Linux.rootfsPropagations.contains(p) {
            throw ConfigError(field: "linux.rootfsPropagation",
                              message: "expected one of \(Linux.rootfsPropagations.sorted().joined(separator: ", ")), got \"\(p)\"")
        }
        // The path is joined to the cgroup mount; ".." would place the container outside it.
        if let path = cgroupsPath, path.split(separator: "/").contains("..") {
            throw ConfigError(field: "linux.cgroupsPath", message: "expected a path without \"..\" components, got \"\(path)\"")
        }
        try resources?.validate(at: "linux.resources")
        try seccomp?.validate(at: "linux.seccomp")
        if let personality, !["LINUX", "LINUX32"].contains(personality.domain) {
            throw ConfigError(field: "linux.personality.domain", message: "expected LINUX or LINUX32, got \"\(personality.domain)\"")
        }
    }

    private func validateNamespaces() throws(ConfigError) {
        var seen: [String: Int] = [:]
        for (i, ns) in (namespaces ?? []).enumerated() {
            guard Namespace.knownTypes.contains(ns.type) else {
                throw ConfigError(field: "linux.namespaces[\(i)].type",
                                  message: "expected one of \(Namespace.knownTypes.joined(separator: ", ")), got \"\(ns.type)\"")
            }
            if let first = seen[ns.type] {
                throw ConfigError(field: "linux.namespaces[\(i)].type",
                                  message: "duplicate namespace \"\(ns.type)\", already at linux.namespaces[\(first)]; expected each type once")
            }
            seen[ns.type] = i
            if let path = ns.path, !path.isEmpty, !path.hasPrefix("/") {
                throw ConfigError(field: "linux.namespaces[\(i)].path",
                                  message: "expected an absolute path to a namespace file such as /proc/1234/ns/\(ns.type), got \"\(path)\"")
            }
        }
    }

    private func validateIDMappings() throws(ConfigError) {
        for (name, mappings) in [("uidMappings", uidMappings), ("gidMappings", gidMappings)] {
            guard let mappings, !mappings.isEmpty else {
                // A new user namespace without mappings has only the overflow ID: nothing can run.
                if createsNamespace("user") {
                    throw ConfigError(field: "linux.\(name)", message: "expected at least one mapping for the new user namespace")
                }
                continue
            }
            if !hasNamespace("user") {
                throw ConfigError(field: "linux.\(name)", message: "ID mappings require a user namespace: expected {\"type\": \"user\"} in linux.namespaces")
            }
            for (j, m) in mappings.enumerated() where m.size == 0 {
                throw ConfigError(field: "linux.\(name)[\(j)].size", message: "expected a non-zero number of IDs")
            }
        }
    }

    private func validateTimeOffsets() throws(ConfigError) {
        guard let timeOffsets, !timeOffsets.isEmpty else { return }
        for key in timeOffsets.keys.sorted() {
            let field = JSONPath.append("linux.timeOffsets", key: key)
            guard key == "monotonic" || key == "boottime" else {
                throw ConfigError(field: field, message: "expected \"monotonic\" or \"boottime\" (the clocks a time namespace offsets)")
            }
            if let ns = timeOffsets[key]?.nanosecs, ns >= 1_000_000_000 {
                throw ConfigError(field: field + ".nanosecs", message: "expected 0...999999999, got \(ns)")
            }
        }
        // Offsets can only be written before the first process enters a new time namespace.
        if !createsNamespace("time") {
            throw ConfigError(field: "linux.timeOffsets", message: "time offsets require a new time namespace: expected {\"type\": \"time\"} without a path in linux.namespaces")
        }
    }

    /// kernel.* sysctls isolated by the IPC namespace (as runc lists them).
    static let ipcSysctls: Set<String> = [
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
        "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
    ]

    private func validateSysctl() throws(ConfigError) {
        for key in (sysctl ?? [:]).keys.sorted() {
            let field = JSONPath.append("linux.sysctl", key: key)
            // The key becomes a path under /proc/sys: no empty components, no "..", no blanks.
            let parts = key.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "." || $0 == "/" })
            guard parts.count >= 2, parts.allSatisfy({ !$0.isEmpty }),
                  !key.contains(where: { $0.isWhitespace || $0 == "\0" }) else {
                throw ConfigError(field: field, message: "expected a dotted sysctl name such as net.ipv4.ip_forward")
            }
            let name = parts.joined(separator: ".")
            if name == "kernel.hostname" || name == "kernel.domainname" {
                let use = name == "kernel.hostname" ? "hostname" : "domainname"
                throw ConfigError(field: field, message: "not allowed: it conflicts with the config's \"\(use)\" field; expected \"\(use)\" instead")
            }
            if name.hasPrefix("net.") {
                // runc accepts a joined network namespace (a Kubernetes pod's) unless it is the
                // host's, which only the runtime can check with a stat; this module has no syscalls.
                if !hasNamespace("network") {
                    throw ConfigError(field: field, message: "net.* sysctls require a network namespace: expected {\"type\": \"network\"} in linux.namespaces")
                }
            } else if Linux.ipcSysctls.contains(name) || name.hasPrefix("fs.mqueue.") {
                if !hasNamespace("ipc") {
                    throw ConfigError(field: field, message: "IPC sysctls require an IPC namespace: expected {\"type\": \"ipc\"} in linux.namespaces")
                }
            } else {
                throw ConfigError(field: field, message: "not namespaced: setting it would change the host; expected net.*, fs.mqueue.* or a kernel IPC sysctl (\(Linux.ipcSysctls.sorted().joined(separator: ", ")))")
            }
        }
    }

    private func validateDevices() throws(ConfigError) {
        for (i, device) in (devices ?? []).enumerated() {
            let base = "linux.devices[\(i)]"
            guard ["c", "b", "u", "p"].contains(device.type) else {
                throw ConfigError(field: "\(base).type", message: "expected c (char), b (block), u (unbuffered char) or p (FIFO), got \"\(device.type)\"")
            }
            if device.type != "p" {
                if device.major == nil {
                    throw ConfigError(field: "\(base).major", message: "expected the device's major number (required for type \(device.type))")
                }
                if device.minor == nil {
                    throw ConfigError(field: "\(base).minor", message: "expected the device's minor number (required for type \(device.type))")
                }
            }
            if !device.path.hasPrefix("/") {
                throw ConfigError(field: "\(base).path", message: "expected an absolute path inside the container, got \"\(device.path)\"")
            }
        }
    }
}

extension Seccomp {
    static let actions: Set<String> = [
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
    ]
    static let operators: Set<String> = [
        "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ]

    func validate(at base: String) throws(ConfigError) {
        let known = Seccomp.actions.sorted().joined(separator: ", ")
        guard Seccomp.actions.contains(defaultAction) else {
            throw ConfigError(field: "\(base).defaultAction", message: "expected one of \(known), got \"\(defaultAction)\"")
        }
        // A notifying default would send every syscall, including the agent's own, to the listener.
        if defaultAction == "SCMP_ACT_NOTIFY" {
            throw ConfigError(field: "\(base).defaultAction", message: "SCMP_ACT_NOTIFY cannot be the default action; expected it on specific syscalls")
        }
        var notifies = false
        for (i, rule) in (syscalls ?? []).enumerated() {
            if rule.names.isEmpty || rule.names.contains("") {
                throw ConfigError(field: "\(base).syscalls[\(i)].names", message: "expected a non-empty list of syscall names")
            }
            guard Seccomp.actions.contains(rule.action) else {
                throw ConfigError(field: "\(base).syscalls[\(i)].action", message: "expected one of \(known), got \"\(rule.action)\"")
            }
            notifies = notifies || rule.action == "SCMP_ACT_NOTIFY"
            for (j, arg) in (rule.args ?? []).enumerated() where !Seccomp.operators.contains(arg.op) {
                throw ConfigError(field: "\(base).syscalls[\(i)].args[\(j)].op",
                                  message: "expected one of \(Seccomp.operators.sorted().joined(separator: ", ")), got \"\(arg.op)\"")
            }
        }
        if notifies, (listenerPath ?? "").isEmpty {
            throw ConfigError(field: "\(base).listenerPath", message: "expected the path of the seccomp agent's socket: SCMP_ACT_NOTIFY is used")
        }
    }
}
