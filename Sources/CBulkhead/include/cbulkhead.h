// CBulkhead: what Swift must not or cannot do.
//  - The container child: the code that runs between clone and execve. The runtime is a
//    multithreaded Swift process; a raw clone of it must not run Swift code (allocator locks held
//    by other threads deadlock the child), so the child executes a plan Swift prepared in advance,
//    in C, without allocating.
//  - Kernel constants that are function-like macros or variadic calls Swift cannot import.
#pragma once

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

// ---- The container plan -------------------------------------------------------------------------

// One step of building the root filesystem, executed in the child's new mount namespace before
// pivot_root. Paths named `target` are inside the rootfs and resolved there without following
// symlinks out of it (openat2 RESOLVE_IN_ROOT); `source` of a bind mount is a host path.
enum bh_op_kind {
    BH_OP_MOUNT = 1,   // mount(source, target, fstype, flags, data); then remount when flags need it
    BH_OP_MKDIR = 2,   // mkdir -p target (mode in `mode`)
    BH_OP_MKNOD = 3,   // device node at target: mode (type|perm), dev, uid, gid
    BH_OP_BIND_DEV = 4,// bind the host device `source` onto a file created at target (user namespaces)
    BH_OP_SYMLINK = 5, // symlink(source, target)
    BH_OP_PROPAGATE = 6, // mount(NULL, target, NULL, flags, NULL): propagation change
    // After pivot_root, inside the container's own view:
    BH_OP_MASK = 7,    // maskedPaths: /dev/null over a file, an empty read-only tmpfs over a directory
    BH_OP_READONLY = 8,// readonlyPaths: a read-only bind mount of the path onto itself
};

struct bh_op {
    uint32_t kind;
    uint32_t mode;          // file mode for MKDIR/MKNOD
    uint64_t flags;         // MS_* flags for MOUNT/PROPAGATE
    uint64_t dev;           // makedev(major, minor) for MKNOD
    uint32_t uid, gid;      // owner for MKNOD
    uint32_t remount_flags; // MS_* for a second MS_REMOUNT|MS_BIND pass (bind mounts with ro, nosuid...)
    uint32_t target_is_file;// bind mount of a non-directory: create a file, not a directory
    uint32_t copy_up;       // tmpcopyup (runc's option): copy what the image had at target into the new mount
    const char *source;
    const char *target;
    const char *fstype;
    const char *data;
};

struct bh_rlimit {
    int resource;
    uint64_t soft, hard;
};

// A sysctl to write after pivot_root, through the container's own /proc/sys.
struct bh_sysctl {
    const char *path;       // relative to /proc/sys, e.g. "net/ipv4/ip_forward"
    const char *value;
};

// One BPF instruction: the layout of the kernel's struct sock_filter (<linux/filter.h>), which is
// what a seccomp filter is made of.
struct bh_sock_filter {
    uint16_t code;
    uint8_t jt;
    uint8_t jf;
    uint32_t k;
};

struct bh_plan {
    // Stage 1 (namespaces). It joins, unshares, then clones the container process (stage 2).
    int sync_fd;                    // SOCK_SEQPACKET to the runtime; messages are struct bh_msg
    int join_fds[8];                // namespaces to join (user first), opened by the runtime
    int join_types[8];              // CLONE_NEW* of each
    int njoin;
    int new_user;                   // create a user namespace; the runtime writes its id maps
    int unshare_flags;              // other CLONE_NEW* to create in stage 1 (not user, not cgroup)
    int new_cgroup;                 // stage 2 unshares CLONE_NEWCGROUP once placed in its cgroup
    const char *timens_offsets;     // written to /proc/self/timens_offsets, or NULL

    // Stage 2: the root filesystem.
    const char *rootfs;             // absolute host path
    uint64_t root_propagation;      // MS_* applied recursively to / before anything (default MS_SLAVE)
    uint64_t rootfs_propagation;    // applied to the new / after pivot_root, or 0
    int no_pivot;                   // chroot instead of pivot_root (--no-pivot)
    int host_mount_ns;              // config.json has no mount namespace: the mounts are made in the
                                    // runtime's (the runtime removes them at delete), root by chroot
    int readonly_root;
    const struct bh_op *ops;
    int nops;
    const struct bh_op *post_ops;   // MASK/READONLY steps, run after pivot_root and the sysctls
    int npost_ops;
    const struct bh_sysctl *sysctls;
    int nsysctls;
    const char *hostname;           // NULL: leave
    const char *domainname;

    // Stage 2: the process.
    const char *const *argv;
    const char *const *envp;
    const char *path_env;           // the PATH to search argv[0] in (inside the container)
    const char *cwd;
    uint32_t uid, gid;
    const uint32_t *groups;
    int ngroups;
    int set_groups;                 // 0 when setgroups is denied (user namespace without mapping rights)
    int umask;                      // -1: leave
    const struct bh_rlimit *rlimits;
    int nrlimits;
    int oom_score_adj_set;
    int oom_score_adj;
    int set_caps;                   // apply the five sets below
    uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
    int last_cap;                   // highest capability number the kernel knows
    int no_new_privs;
    int terminal;                   // make a pty; send its master through console_fd
    int console_fd;                 // a connected unix socket, or -1
    uint16_t console_rows, console_cols;
    int preserve_fds;               // fds 3 .. 3+n-1 stay open in the container
    int fifo_dirfd;                 // the state directory; stage 2 blocks opening exec.fifo in it
    const char *fifo_name;
    int new_keyring;                // join a new session keyring (runc's default; --no-new-keyring)
    int create_hooks;               // stop before pivot_root until the runtime ran the create hooks
    // The LSM label of the program: written to `exec_label_path` (AppArmor's or SELinux's
    // /proc/self/attr/.../exec) so that it applies at execve. NULL: none.
    const char *exec_label_path;
    const char *exec_label;
    // A sealed memfd holding the exec shim (exec_shim.c), or -1: the program is exec'd through it
    // with `shim_argv`, which has two free slots (the shim's argv[0] and the program's path)
    // before the program's argv.
    int exec_shim_fd;
    const char **shim_argv;

    // Stage 2: seccomp. The runtime compiled linux.seccomp to BPF with libseccomp; the child only
    // loads it with seccomp(2): right before execve with no_new_privs, else before it changes
    // credentials (loading a filter needs no_new_privs or CAP_SYS_ADMIN, as in runc).
    const struct bh_sock_filter *seccomp_filter; // NULL: no filter
    int seccomp_len;                // instructions (the kernel takes at most 4096)
    unsigned int seccomp_flags;     // SECCOMP_FILTER_FLAG_* (NEW_LISTENER when SCMP_ACT_NOTIFY is used)
    int seccomp_listener_fd;        // connected to linux.seccomp.listenerPath, or -1: receives the
                                    // notify fd (SCM_RIGHTS) with the containerProcessState JSON
    const char *seccomp_state[3];   // that JSON, split where the container's pid goes (twice)
};

// Messages between the runtime and the child on plan.sync_fd.
enum bh_msg_type {
    BH_MSG_GO = 1,          // runtime -> stage 1: you are in your cgroup, go on
    BH_MSG_USERMAP = 2,     // stage 1 -> runtime: write my uid_map/gid_map now
    BH_MSG_USERMAP_DONE = 3,// runtime -> stage 1
    BH_MSG_PID = 4,         // stage 1 -> runtime: the container process is `value`
    BH_MSG_READY = 5,       // stage 2 -> runtime: built, waiting for start
    BH_MSG_ERROR = 6,       // child -> runtime: `text` failed with errno `err`
    BH_MSG_HOOKS = 7,       // stage 2 -> runtime: mounts done, before pivot_root: run the create hooks
    BH_MSG_HOOKS_DONE = 8,  // runtime -> stage 2
};

struct bh_msg {
    int32_t type;
    int32_t err;
    int64_t value;
    char text[1024];
};

// Clones stage 1, which runs `plan` and never returns. Returns its pid, or -1 with errno.
pid_t bh_spawn_container(const struct bh_plan *plan);

// A sealed memfd with the exec shim (see exec_shim.c), or -1 with errno (ENOSYS off x86-64).
int bh_exec_shim_fd(void);

// Runs `path` in the namespaces `ns_fds` (of a container: user first), with `stdin_fd` as stdin.
// With a pid namespace among them, an intermediate process joins and forks, so the program runs
// inside it; the returned pid's exit status is the program's. Returns the pid, or -1 with errno.
pid_t bh_spawn_in_namespaces(const int *ns_fds, const int *ns_types, int n, const char *path,
                             char *const argv[], char *const envp[], int stdin_fd);

// ---- Syscalls and constants Swift cannot call or import ----------------------------------------

int bh_pidfd_open(pid_t pid);
int bh_pidfd_send_signal(int pidfd, int sig);
int bh_set_child_subreaper(void);
int bh_close_range_cloexec(unsigned int first);
int bh_set_cloexec(int fd, int on);
int bh_send_fd(int sock, int fd, const char *name);
int bh_recv_fd(int sock);
int bh_tiocgwinsz(int fd, uint16_t *rows, uint16_t *cols);
int bh_tiocswinsz(int fd, uint16_t rows, uint16_t cols);
int bh_fcntl_setfl(int fd, int flags);
int bh_fcntl_getfl(int fd);
int bh_flock(int fd, int op);
// A signalfd for `mask` (close-on-exec), and the number of the next signal read from it (-1 on error).
int bh_signalfd_all_catchable(void);
int bh_read_signal(int fd);
// Blocks every catchable signal (they are read from a signalfd instead) / restores the mask.
int bh_block_catchable_signals(void);
int bh_unblock_signals(void);

// seccomp: a close-on-exec memfd (libseccomp exports a filter into a descriptor), and whether this
// kernel takes SECCOMP_SET_MODE_FILTER with `flags` (1 yes, 0 no).
int bh_memfd(const char *name);
int bh_seccomp_flags_supported(unsigned int flags);
// Sets PR_SET_NO_NEW_PRIVS and loads `count` struct bh_sock_filter on the calling thread only
// (SECCOMP_SET_MODE_FILTER with `flags`, TSYNC not set: the other threads keep their own filters).
// 0, or -1 with errno.
int bh_seccomp_load_thread_filter(const void *program, int count, unsigned int flags);

// cgroup v2 device control: loads a BPF_PROG_TYPE_CGROUP_DEVICE program (`insns`: `count`
// struct bpf_insn, 8 bytes each) and attaches it to the cgroup directory `cgroup_fd` with
// BPF_F_ALLOW_MULTI. Returns the program fd, or -1 with errno (the verifier's log in `log`).
int bh_bpf_attach_device_filter(int cgroup_fd, const void *insns, int count, char *log, unsigned int log_size);

// Constants the Glibc module does not export without _GNU_SOURCE.
#define BH_O_PATH 010000000

// mallopt is in <malloc.h>, which the Glibc module does not export. One arena for all threads
// (bulkhead-vmm: its threads allocate little after start-up, and each extra arena kept about
// 40 KiB of the monitor's memory resident, measured).
#include <malloc.h>
static inline int bh_malloc_single_arena(void) { return mallopt(M_ARENA_MAX, 1); }
#include "cbulkhead_kvm.h"
#include "cbulkhead_devices.h"
