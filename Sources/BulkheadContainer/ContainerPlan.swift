import BulkheadLinux
import BulkheadOCI
import CBulkhead
import Glibc

/// Everything the child must do between clone and execve, decided here in Swift from config.json
/// so that the child (C, see CBulkhead/child.c) only executes it. Building the plan validates the
/// parts of the config that only make sense against this host (devices, bind sources).
public struct ContainerPlan {
    public struct Step: Equatable {
        public var kind: UInt32
        public var source: String?
        public var target: String
        public var fstype: String?
        public var data: String?
        public var flags: UInt = 0
        public var remountFlags: UInt = 0
        public var targetIsFile = false
        public var copyUp = false
        public var mode: UInt32 = 0
        public var device: UInt64 = 0
        public var uid: UInt32 = 0
        public var gid: UInt32 = 0
    }

    public var joinNamespaces: [(type: Int32, path: String)] = []
    public var newUser = false
    public var unshareFlags: Int32 = 0
    public var newCgroup = false
    public var timensOffsets: String?
    /// The root filesystem to build; nil for `exec`, which enters the container's.
    public var rootfs: String?
    public var rootPropagation: UInt = UInt(MS_SLAVE)
    public var rootfsPropagation: UInt = 0
    public var noPivot = false
    /// No mount namespace in config.json: mounts go into the runtime's, the root is a chroot.
    public var hostMountNamespace = false
    public var readonlyRoot = false
    public var steps: [Step] = []
    /// Steps run after pivot_root, in the container's view: readonlyPaths, then maskedPaths (runc's order).
    public var postSteps: [Step] = []
    public var sysctls: [(path: String, value: String)] = []
    public var hostname: String?
    public var domainname: String?
    public var args: [String] = []
    public var env: [String] = []
    public var cwd = "/"
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var groups: [UInt32] = []
    public var umask: Int32 = -1
    public var rlimits: [(resource: Int32, soft: UInt64, hard: UInt64)] = []
    public var oomScoreAdj: Int32?
    public var capabilities: (bounding: UInt64, effective: UInt64, permitted: UInt64, inheritable: UInt64, ambient: UInt64)?
    public var noNewPrivileges = false
    public var terminal = false
    public var consoleSize: (rows: UInt16, cols: UInt16) = (0, 0)
    public var preserveFds: Int32 = 0
    public var userMappings: (uid: [IDMapping], gid: [IDMapping]) = ([], [])
    /// False when the runtime denies setgroups in a new user namespace (a user mapping only its
    /// own gid): the child then keeps the supplementary groups it has.
    public var setGroups = true
    /// The LSM label the program runs with: the file to write and its content.
    public var execLabel: (path: String, value: String)?
    /// Things the host cannot honour but the spec says to skip with a warning (SELinux labels on
    /// a host without SELinux).
    public var warnings: [String] = []
    /// linux.seccomp, compiled; the child loads it last (see CBulkhead/child.c).
    public var seccomp: SeccompFilter?

    /// Options of `create` that are not in config.json.
    public struct Options {
        public var noPivot = false
        public var preserveFds: Int32 = 0
        public init(noPivot: Bool = false, preserveFds: Int32 = 0) {
            self.noPivot = noPivot
            self.preserveFds = preserveFds
        }
    }

    /// The devices every container gets (runc's list), unless the config names the same path.
    static let defaultDevices: [Device] = [
        Device(type: "c", path: "/dev/null", major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/zero", major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/full", major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/random", major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/urandom", major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/tty", major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0),
    ]

    /// Device cgroup rules every container gets after its config's own (runc's list): mknod of
    /// anything, and use of the default devices, ptys and /dev/net/tun.
    public static func deviceRules(for spec: Spec) -> [Resources.DeviceCgroupRule] {
        var rules = spec.linux?.resources?.devices ?? []
        rules += [
            .init(allow: true, type: "c", access: "m"), .init(allow: true, type: "b", access: "m"),
        ]
        rules += defaultDevices.map { .init(allow: true, type: $0.type, major: $0.major, minor: $0.minor, access: "rwm") }
        rules += [
            .init(allow: true, type: "c", major: 136, access: "rwm"),
            .init(allow: true, type: "c", major: 5, minor: 2, access: "rwm"),
            .init(allow: true, type: "c", major: 10, minor: 200, access: "rwm"),
        ]
        // A fifo is no device to the devices cgroup: no rule.
        for device in spec.linux?.devices ?? [] where device.type != "p" {
            let type = device.type == "u" ? "c" : device.type
            rules.append(.init(allow: true, type: type, major: device.major, minor: device.minor, access: "rwm"))
        }
        return rules
    }

    /// Builds the plan. `spec` must already be validated; `cgroup` is where the container lives
    /// (its directories are bind-mounted for a `cgroup` mount entry).
    public init(spec: Spec, bundle: String, options: Options, cgroup: Cgroup?) throws(RuntimeError) {
        guard let process = spec.process, let args = process.args, !args.isEmpty else {
            throw RuntimeError("config.json: process.args: must not be empty")
        }
        guard let root = spec.root else { throw RuntimeError("config.json: root.path: missing") }
        let linux = spec.linux ?? Linux()

        let rootfs = Files.absolute(root.path, relativeTo: bundle)
        guard Files.isDirectory(rootfs) else {
            throw RuntimeError("config.json: root.path: \(rootfs) is not a directory")
        }
        self.rootfs = rootfs
        readonlyRoot = root.readonly ?? false
        noPivot = options.noPivot
        preserveFds = options.preserveFds
        try applyProcess(process, args: args)

        // Namespaces: joined by path, or new.
        var newTypes = Set<String>()
        for ns in linux.namespaces ?? [] {
            guard let flag = NamespaceKind.cloneFlags[ns.type] else {
                throw RuntimeError("config.json: linux.namespaces: unknown type \"\(ns.type)\"")
            }
            if let path = ns.path, !path.isEmpty {
                joinNamespaces.append((flag, path))
            } else {
                newTypes.insert(ns.type)
            }
        }
        // The user namespace is joined first: the others are owned by it.
        let userFlag = NamespaceKind.cloneFlags["user"]!
        joinNamespaces = joinNamespaces.filter { $0.type == userFlag } + joinNamespaces.filter { $0.type != userFlag }
        // Without a mount namespace entry the container shares the runtime's (the spec's rule):
        // its mounts land there, under the rootfs, and delete takes them away.
        hostMountNamespace = !(linux.namespaces ?? []).contains { $0.type == "mount" }
        newUser = newTypes.contains("user")
        newCgroup = newTypes.contains("cgroup")
        for type in newTypes where type != "user" && type != "cgroup" {
            unshareFlags |= NamespaceKind.cloneFlags[type]!
        }
        if newUser {
            userMappings = (linux.uidMappings ?? [], linux.gidMappings ?? [])
            let gids = userMappings.gid
            if getuid() != 0 && gids.count == 1 && gids[0].hostID == getgid() && gids[0].size == 1 {
                setGroups = false
                if !(process.user.additionalGids ?? []).isEmpty {
                    throw RuntimeError("config.json: process.user.additionalGids: a user mapping only its own gid cannot set supplementary groups (setgroups is denied); map a range through newgidmap instead")
                }
            }
        }
        if let offsets = linux.timeOffsets, !offsets.isEmpty {
            timensOffsets = offsets.sorted { $0.key < $1.key }.map { clock, offset in
                "\(clock) \(offset.secs ?? 0) \(offset.nanosecs ?? 0)"
            }.joined(separator: "\n")
        }
        if let h = spec.hostname { hostname = h }
        if let d = spec.domainname { domainname = d }

        if let propagation = linux.rootfsPropagation {
            guard let flag = MountOptions.propagationFlags[propagation] else {
                throw RuntimeError("config.json: linux.rootfsPropagation: unknown value \"\(propagation)\"")
            }
            rootfsPropagation = UInt(flag)
            // Before pivot_root the tree stays slave (or private when asked): pivot_root refuses a
            // shared new root. A shared propagation is given to the new / after the pivot.
            if flag & Int(MS_PRIVATE) != 0 { rootPropagation = UInt(MS_PRIVATE) }
        }

        try addMounts(spec.mounts ?? [], bundle: bundle, cgroup: cgroup, newNetwork: newTypes.contains("network"))
        let devBindMounted = (spec.mounts ?? []).contains {
            Files.absolute($0.destination, relativeTo: "/") == "/dev" && MountOptions($0.options ?? [], type: $0.type).isBind
        }
        if !devBindMounted {
            try addDevices(linux.devices ?? [], inUserNamespace: newUser || !joinNamespaces.filter { $0.type == NamespaceKind.cloneFlags["user"]! }.isEmpty)
        }
        // The working directory exists, as runc makes it.
        steps.append(Step(kind: UInt32(BH_OP_MKDIR.rawValue), target: Files.absolute(cwd, relativeTo: "/"), mode: 0o755))

        for path in linux.readonlyPaths ?? [] {
            postSteps.append(Step(kind: UInt32(BH_OP_READONLY.rawValue), target: Files.absolute(path, relativeTo: "/")))
        }
        for path in linux.maskedPaths ?? [] {
            postSteps.append(Step(kind: UInt32(BH_OP_MASK.rawValue), target: Files.absolute(path, relativeTo: "/")))
        }

        for (key, value) in (linux.sysctl ?? [:]).sorted(by: { $0.key < $1.key }) {
            sysctls.append((key.replacingDots(), value))
        }
        if let config = linux.seccomp {
            do { seccomp = try SeccompFilter(config) } catch { throw RuntimeError("\(error)") }
        }
        if let label = linux.mountLabel, !label.isEmpty {
            if SecurityModules.seLinuxEnabled {
                // The label of the filesystems the runtime creates (runc labels the same ones).
                for i in steps.indices where ["tmpfs", "devpts", "mqueue"].contains(steps[i].fstype ?? "") {
                    steps[i].data = (steps[i].data.map { $0 + "," } ?? "") + "context=\"\(label)\""
                }
            } else {
                warnings.append("SELinux is disabled on this host: linux.mountLabel \"\(label)\" is not applied")
            }
        }
    }

    /// The plan of `exec`: a new process in the namespaces of a running container (`join`, by
    /// /proc/PID/ns paths), with its seccomp filter; no root filesystem to build.
    public init(exec process: Process, join: [(type: Int32, path: String)], seccomp: Seccomp?, preserveFds: Int32) throws(RuntimeError) {
        guard let args = process.args, !args.isEmpty else {
            throw RuntimeError("exec: process.args: must not be empty")
        }
        joinNamespaces = join
        self.preserveFds = preserveFds
        try applyProcess(process, args: args)
        if let seccomp {
            do { self.seccomp = try SeccompFilter(seccomp) } catch { throw RuntimeError("\(error)") }
        }
    }

    /// The process part of config.json, shared by create and exec.
    mutating func applyProcess(_ process: Process, args: [String]) throws(RuntimeError) {
        self.args = args
        env = process.env ?? []
        cwd = process.cwd
        uid = process.user.uid
        gid = process.user.gid
        groups = process.user.additionalGids ?? []
        if let mask = process.user.umask { umask = Int32(mask) }
        oomScoreAdj = process.oomScoreAdj.map { Int32($0) }
        noNewPrivileges = process.noNewPrivileges ?? false
        terminal = process.terminal ?? false
        if let size = process.consoleSize { consoleSize = (UInt16(clamping: size.height), UInt16(clamping: size.width)) }
        for limit in process.rlimits ?? [] {
            guard let number = ResourceLimit.numbers[limit.type] else {
                throw RuntimeError("config.json: process.rlimits: unknown type \"\(limit.type)\"")
            }
            rlimits.append((number, limit.soft, limit.hard))
        }
        if let profile = process.apparmorProfile, !profile.isEmpty {
            guard SecurityModules.appArmorEnabled else {
                throw RuntimeError("config.json: process.apparmorProfile: AppArmor is not enabled on this host, so profile \"\(profile)\" cannot be applied")
            }
            execLabel = SecurityModules.appArmorExec(profile: profile)
        }
        if let label = process.selinuxLabel, !label.isEmpty {
            if SecurityModules.seLinuxEnabled {
                execLabel = SecurityModules.seLinuxExec(label: label)
            } else {
                warnings.append("SELinux is disabled on this host: process.selinuxLabel \"\(label)\" is not applied")
            }
        }
        if let caps = process.capabilities {
            capabilities = (try Self.mask(caps.bounding, "bounding"), try Self.mask(caps.effective, "effective"),
                            try Self.mask(caps.permitted, "permitted"), try Self.mask(caps.inheritable, "inheritable"),
                            try Self.mask(caps.ambient, "ambient"))
        }
    }

    static func mask(_ names: [String]?, _ set: String) throws(RuntimeError) -> UInt64 {
        var mask: UInt64 = 0
        let last = LinuxProcess.lastCapability()
        for name in names ?? [] {
            guard let n = Capability.number(named: name) else {
                throw RuntimeError("config.json: process.capabilities.\(set): unknown capability \"\(name)\"")
            }
            // A capability newer than this kernel cannot be granted; runc skips it the same way.
            if n <= last { mask |= 1 << UInt64(n) }
        }
        return mask
    }

    mutating func addMounts(_ mounts: [Mount], bundle: String, cgroup: Cgroup?, newNetwork: Bool) throws(RuntimeError) {
        for (index, mount) in mounts.enumerated() {
            let field = "config.json: mounts[\(index)]"
            let destination = Files.absolute(mount.destination, relativeTo: "/")
            let options = MountOptions(mount.options ?? [], type: mount.type)
            if mount.type == "cgroup" {
                try addCgroupMount(at: destination, options: options, cgroup: cgroup)
                continue
            }
            if options.isBind || (mount.type == "sysfs" && !newNetwork) {
                // sysfs belongs to the network namespace: without a new one, the host's /sys is bound.
                let source = mount.type == "sysfs" && !options.isBind ? "/sys" : Files.absolute(mount.source ?? "", relativeTo: bundle)
                var st = stat()
                guard stat(source, &st) == 0 else {
                    throw RuntimeError("\(field).source: \(SystemError("stat", path: source))")
                }
                var flags = UInt(MS_BIND)
                if options.isRecursive || mount.type == "sysfs" { flags |= UInt(MS_REC) }
                steps.append(Step(kind: UInt32(BH_OP_MOUNT.rawValue), source: source, target: destination, flags: flags,
                                  remountFlags: options.bindRemountFlags, targetIsFile: (st.st_mode & S_IFMT) != S_IFDIR))
            } else {
                guard let type = mount.type, !type.isEmpty else {
                    throw RuntimeError("\(field).type: required for a mount that is not a bind mount")
                }
                if options.copyUp && type != "tmpfs" {
                    throw RuntimeError("\(field).options: tmpcopyup applies to tmpfs mounts only, not \(type)")
                }
                var step = Step(kind: UInt32(BH_OP_MOUNT.rawValue), source: mount.source ?? type, target: destination,
                                fstype: type, data: options.data.isEmpty ? nil : options.data.joined(separator: ","),
                                flags: options.flags)
                step.copyUp = options.copyUp
                steps.append(step)
            }
            for flag in options.propagation {
                steps.append(Step(kind: UInt32(BH_OP_PROPAGATE.rawValue), target: destination, flags: flag))
            }
        }
    }

    /// A `cgroup` mount shows the container its own cgroups: a tmpfs with each hierarchy's
    /// container directory bound into it (v1 and hybrid hosts), or the cgroup2 directory (v2).
    mutating func addCgroupMount(at destination: String, options: MountOptions, cgroup: Cgroup?) throws(RuntimeError) {
        guard let cgroup else { return }
        let readOnly = options.flags & UInt(MS_RDONLY) != 0
        let bindFlags = UInt(MS_BIND | MS_REC)
        let remount = UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC) | (readOnly ? UInt(MS_RDONLY) : 0)
        if cgroup.hierarchies.layout == .unified, let v2 = cgroup.hierarchies.v2 {
            steps.append(Step(kind: UInt32(BH_OP_MOUNT.rawValue), source: v2.mountPoint + cgroup.path, target: destination,
                              flags: bindFlags, remountFlags: remount))
            return
        }
        steps.append(Step(kind: UInt32(BH_OP_MOUNT.rawValue), source: "tmpfs", target: destination, fstype: "tmpfs",
                          data: "mode=755", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC)))
        for mountPoint in cgroup.hierarchies.allMountPoints {
            let name = String(mountPoint.split(separator: "/").last ?? "")
            steps.append(Step(kind: UInt32(BH_OP_MOUNT.rawValue), source: mountPoint + cgroup.path,
                              target: destination + "/" + name, flags: bindFlags, remountFlags: remount))
        }
        if readOnly {
            steps.append(Step(kind: UInt32(BH_OP_MOUNT.rawValue), target: destination,
                              flags: UInt(MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)))
        }
    }

    mutating func addDevices(_ configured: [Device], inUserNamespace: Bool) throws(RuntimeError) {
        let configuredPaths = Set(configured.map(\.path))
        let all = Self.defaultDevices.filter { !configuredPaths.contains($0.path) } + configured
        for (index, device) in all.enumerated() {
            let field = "config.json: linux.devices[\(index - (all.count - configured.count))]"
            let typeBits: UInt32
            switch device.type {
            case "c", "u": typeBits = UInt32(S_IFCHR)
            case "b": typeBits = UInt32(S_IFBLK)
            case "p": typeBits = UInt32(S_IFIFO)
            default: throw RuntimeError("\(field).type: \"\(device.type)\" is not one of c, b, u, p")
            }
            if inUserNamespace {
                // mknod is not allowed in a user namespace: bind the host's node instead.
                steps.append(Step(kind: UInt32(BH_OP_BIND_DEV.rawValue), source: device.path, target: device.path))
                continue
            }
            let dev = Self.makedev(UInt64(device.major ?? 0), UInt64(device.minor ?? 0))
            steps.append(Step(kind: UInt32(BH_OP_MKNOD.rawValue), target: device.path,
                              mode: typeBits | (device.fileMode ?? 0o666) & 0o7777, device: dev,
                              uid: device.uid ?? 0, gid: device.gid ?? 0))
        }
        let links: [(String, String)] = [
            ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("/proc/self/fd/1", "/dev/stdout"),
            ("/proc/self/fd/2", "/dev/stderr"), ("pts/ptmx", "/dev/ptmx"),
        ] + (Files.exists("/proc/kcore") ? [("/proc/kcore", "/dev/core")] : [])
        for (source, target) in links {
            steps.append(Step(kind: UInt32(BH_OP_SYMLINK.rawValue), source: source, target: target))
        }
    }

    /// glibc's makedev(3) (a macro Swift cannot call).
    static func makedev(_ major: UInt64, _ minor: UInt64) -> UInt64 {
        ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff)
    }

    /// The PATH the child searches argv[0] in: the container's own.
    var pathEnv: String? {
        env.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
    }
}

extension String {
    /// "net.ipv4.ip_forward" -> "net/ipv4/ip_forward", the file under /proc/sys.
    func replacingDots() -> String {
        String(map { $0 == "." ? "/" : $0 })
    }
}
