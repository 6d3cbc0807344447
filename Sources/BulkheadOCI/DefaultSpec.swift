// The config that `spec` writes: the same as `runc spec` (runc 1.1), so that bundles and scripts
// written for runc work unchanged. Only ociVersion differs: ours is the version we implement.

extension Spec {
    /// runc's default config.json; with `rootless`, what `runc spec --rootless` writes.
    /// runc maps root in the container to the caller's euid/egid; this module makes no syscalls, so
    /// the caller passes them as `hostUID`/`hostGID` (0 reproduces runc run as root).
    public static func defaultSpec(args: [String] = ["sh"], rootless: Bool = false,
                                   hostUID: UInt32 = 0, hostGID: UInt32 = 0) -> Spec {
        // runc's default: only the capabilities Docker has always granted minus most of them.
        let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        let process = Process(
            terminal: true,
            user: User(uid: 0, gid: 0),
            args: args,
            env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            cwd: "/",
            capabilities: Capabilities(bounding: caps, effective: caps, permitted: caps, ambient: caps),
            rlimits: [Rlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)],
            noNewPrivileges: true
        )
        // Without a user namespace owning the devpts instance, gid=5 (tty) may not be mapped, and
        // sysfs cannot be mounted fresh by an unprivileged user: rootless binds the host's /sys.
        let devptsOptions = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] + (rootless ? [] : ["gid=5"])
        let sys = rootless
            ? Mount(destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"])
            : Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"])
        let mounts = [
            Mount(destination: "/proc", type: "proc", source: "proc"),
            Mount(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Mount(destination: "/dev/pts", type: "devpts", source: "devpts", options: devptsOptions),
            Mount(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            Mount(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            sys,
            Mount(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"]),
        ]
        var linux = Linux()
        if rootless {
            // No network namespace (an unprivileged user could not configure it) and no cgroup
            // resources (an unprivileged user usually cannot write cgroups).
            linux.namespaces = ["pid", "ipc", "uts", "mount", "user"].map { Namespace(type: $0) }
            linux.uidMappings = [IDMapping(containerID: 0, hostID: hostUID, size: 1)]
            linux.gidMappings = [IDMapping(containerID: 0, hostID: hostGID, size: 1)]
        } else {
            linux.namespaces = ["pid", "network", "ipc", "uts", "mount"].map { Namespace(type: $0) }
            var resources = Resources()
            resources.devices = [Resources.DeviceCgroupRule(allow: false, access: "rwm")]
            linux.resources = resources
        }
        linux.maskedPaths = [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
        ]
        linux.readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        return Spec(process: process, root: Root(path: "rootfs", readonly: true), hostname: "runc",
                    mounts: mounts, linux: linux)
    }
}
