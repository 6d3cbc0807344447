// What `features` prints: the runtime-spec's features document (features.md, runtime-spec 1.2),
// which engines read to learn what this runtime supports before they write a config.
// Every field but the version range is optional: absent means "unknown", not "unsupported".

public struct Features: Codable, Sendable, Equatable {
    public var ociVersionMin: String
    public var ociVersionMax: String
    public var hooks: [String]?
    public var mountOptions: [String]?
    public var linux: Linux?
    public var annotations: [String: String]?
    /// Annotations that may change the container's security when set by an untrusted user.
    public var potentiallyUnsafeConfigAnnotations: [String]?

    public init(ociVersionMin: String = "1.0.0", ociVersionMax: String = Spec.version, hooks: [String]? = nil,
                mountOptions: [String]? = nil, linux: Linux? = nil, annotations: [String: String]? = nil,
                potentiallyUnsafeConfigAnnotations: [String]? = nil) {
        self.ociVersionMin = ociVersionMin
        self.ociVersionMax = ociVersionMax
        self.hooks = hooks
        self.mountOptions = mountOptions
        self.linux = linux
        self.annotations = annotations
        self.potentiallyUnsafeConfigAnnotations = potentiallyUnsafeConfigAnnotations
    }

    public struct Linux: Codable, Sendable, Equatable {
        public var namespaces: [String]?
        public var capabilities: [String]?
        public var cgroup: Cgroup?
        public var seccomp: Seccomp?
        public var apparmor: Toggle?
        public var selinux: Toggle?
        public var intelRdt: Toggle?
        public var mountExtensions: MountExtensions?

        public init(namespaces: [String]? = nil, capabilities: [String]? = nil, cgroup: Cgroup? = nil,
                    seccomp: Seccomp? = nil, apparmor: Toggle? = nil, selinux: Toggle? = nil,
                    intelRdt: Toggle? = nil, mountExtensions: MountExtensions? = nil) {
            self.namespaces = namespaces
            self.capabilities = capabilities
            self.cgroup = cgroup
            self.seccomp = seccomp
            self.apparmor = apparmor
            self.selinux = selinux
            self.intelRdt = intelRdt
            self.mountExtensions = mountExtensions
        }
    }

    public struct Cgroup: Codable, Sendable, Equatable {
        public var v1: Bool?
        public var v2: Bool?
        public var systemd: Bool?
        public var systemdUser: Bool?
        public var rdma: Bool?

        public init(v1: Bool? = nil, v2: Bool? = nil, systemd: Bool? = nil, systemdUser: Bool? = nil, rdma: Bool? = nil) {
            self.v1 = v1
            self.v2 = v2
            self.systemd = systemd
            self.systemdUser = systemdUser
            self.rdma = rdma
        }
    }

    public struct Seccomp: Codable, Sendable, Equatable {
        public var enabled: Bool?
        public var actions: [String]?
        public var operators: [String]?
        public var archs: [String]?
        public var knownFlags: [String]?
        public var supportedFlags: [String]?

        public init(enabled: Bool? = nil, actions: [String]? = nil, operators: [String]? = nil,
                    archs: [String]? = nil, knownFlags: [String]? = nil, supportedFlags: [String]? = nil) {
            self.enabled = enabled
            self.actions = actions
            self.operators = operators
            self.archs = archs
            self.knownFlags = knownFlags
            self.supportedFlags = supportedFlags
        }
    }

    /// The `{"enabled": bool}` objects (apparmor, selinux, intelRdt, idmap).
    public struct Toggle: Codable, Sendable, Equatable {
        public var enabled: Bool?

        public init(enabled: Bool? = nil) { self.enabled = enabled }
    }

    public struct MountExtensions: Codable, Sendable, Equatable {
        public var idmap: Toggle?

        public init(idmap: Toggle? = nil) { self.idmap = idmap }
    }
}
