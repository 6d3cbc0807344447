import Glibc

/// AppArmor and SELinux as this host has them, and how a program gets a label: a write to
/// /proc/self/attr/.../exec before execve, which the kernel applies at the exec.
public enum SecurityModules {
    public static var appArmorEnabled: Bool {
        (try? Files.readString("/sys/module/apparmor/parameters/enabled"))?.hasPrefix("Y") == true
    }

    public static var seLinuxEnabled: Bool {
        Files.exists("/sys/fs/selinux/enforce")
    }

    /// The file that takes an AppArmor profile for the next exec (the per-LSM directory on
    /// kernels that stack LSMs, else the shared one), and its content.
    public static func appArmorExec(profile: String) -> (path: String, value: String) {
        let path = Files.exists("/proc/self/attr/apparmor/exec") ? "/proc/self/attr/apparmor/exec" : "/proc/self/attr/exec"
        return (path, "exec " + profile)
    }

    public static func seLinuxExec(label: String) -> (path: String, value: String) {
        ("/proc/self/attr/exec", label)
    }
}
