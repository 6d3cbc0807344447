import Glibc

/// The options of an OCI mount entry, split into what mount(2) takes: flags for the mount call,
/// flags that a bind mount only takes on a second remount pass, propagation changes, and the rest
/// as filesystem data ("mode=755,size=65536k").
public struct MountOptions: Equatable, Sendable {
    public var flags: UInt = 0
    public var propagation: [UInt] = []
    public var data: [String] = []
    public var isBind = false
    public var isRecursive = false
    /// runc's tmpcopyup: the new tmpfs starts with what the image had at the mount point.
    public var copyUp = false

    /// Flags mount(2) ignores with MS_BIND; they need MS_REMOUNT|MS_BIND afterwards.
    public var bindRemountFlags: UInt {
        flags & UInt(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)
    }

    /// Option words that set a flag, and those that clear one.
    static let setting: [String: Int] = [
        "bind": Int(MS_BIND), "rbind": Int(MS_BIND | MS_REC), "dirsync": Int(MS_DIRSYNC), "iversion": Int(MS_I_VERSION),
        "lazytime": Int(MS_LAZYTIME), "mand": Int(MS_MANDLOCK), "noatime": Int(MS_NOATIME), "nodev": Int(MS_NODEV),
        "nodiratime": Int(MS_NODIRATIME), "noexec": Int(MS_NOEXEC), "nosuid": Int(MS_NOSUID), "relatime": Int(MS_RELATIME),
        "remount": Int(MS_REMOUNT), "ro": Int(MS_RDONLY), "silent": Int(MS_SILENT), "strictatime": Int(MS_STRICTATIME),
        "sync": Int(MS_SYNCHRONOUS),
    ]
    static let clearing: [String: Int] = [
        "async": Int(MS_SYNCHRONOUS), "atime": Int(MS_NOATIME), "defaults": 0, "dev": Int(MS_NODEV),
        "diratime": Int(MS_NODIRATIME), "exec": Int(MS_NOEXEC), "loud": Int(MS_SILENT), "noiversion": Int(MS_I_VERSION),
        "nolazytime": Int(MS_LAZYTIME), "nomand": Int(MS_MANDLOCK), "norelatime": Int(MS_RELATIME),
        "nostrictatime": Int(MS_STRICTATIME), "rw": Int(MS_RDONLY), "suid": Int(MS_NOSUID),
    ]
    public static let propagationFlags: [String: Int] = [
        "private": Int(MS_PRIVATE), "rprivate": Int(MS_PRIVATE | MS_REC), "shared": Int(MS_SHARED),
        "rshared": Int(MS_SHARED | MS_REC), "slave": Int(MS_SLAVE), "rslave": Int(MS_SLAVE | MS_REC),
        "unbindable": Int(MS_UNBINDABLE), "runbindable": Int(MS_UNBINDABLE | MS_REC),
    ]

    /// Every option word this parser gives a meaning to other than filesystem data (for `features`).
    public static var knownOptions: [String] {
        (Array(setting.keys) + Array(clearing.keys) + Array(propagationFlags.keys) + ["tmpcopyup"]).sorted()
    }

    public init(_ options: [String], type: String?) {
        for option in options {
            if let f = Self.setting[option] {
                flags |= UInt(f)
            } else if let f = Self.clearing[option] {
                flags &= ~UInt(f)
            } else if let f = Self.propagationFlags[option] {
                propagation.append(UInt(f))
            } else if option == "tmpcopyup" {
                copyUp = true
            } else {
                data.append(option)
            }
        }
        if type == "bind" { flags |= UInt(MS_BIND) }
        isBind = flags & UInt(MS_BIND) != 0
        isRecursive = isBind && flags & UInt(MS_REC) != 0
    }
}

/// Namespace types of the runtime spec and their clone flags.
public enum NamespaceKind {
    // <linux/sched.h> values; Glibc's module does not export the CLONE_NEW* macros.
    public static let cloneFlags: [String: Int32] = [
        "user": 0x1000_0000, "pid": 0x2000_0000, "network": 0x4000_0000, "ipc": 0x0800_0000,
        "uts": 0x0400_0000, "mount": 0x0002_0000, "cgroup": 0x0200_0000, "time": 0x0000_0080,
    ]

    /// Every type in the order a process joins them: the user namespace first, since it owns
    /// the others.
    public static let joinOrder = ["user", "mount", "pid", "network", "ipc", "uts", "cgroup", "time"]

    /// The file of a process's namespace of `type`: /proc/PID/ns/<file>.
    public static func procPath(_ type: String, pid: Int32) -> String {
        let file = ["network": "net", "mount": "mnt"][type] ?? type
        return "/proc/\(pid)/ns/\(file)"
    }
}

/// Resource limit names of the runtime spec and their numbers.
public enum ResourceLimit {
    public static let numbers: [String: Int32] = [
        "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
        "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
        "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
        "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
    ]
}
