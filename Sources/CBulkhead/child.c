// The container child: runs a plan built by the Swift runtime, between clone and execve.
//
// Rules for everything in this file: no allocation, no locks, no stdio, no strerror (it may load
// translations); raw syscalls and stack buffers only. Errors go to the runtime as a bh_msg with the
// errno; the runtime turns them into text.
//
// Two stages, as runc's nsexec: stage 1 joins namespaces by path, creates a user namespace (the
// runtime writes its id maps), unshares the other namespaces and clones stage 2 with CLONE_PARENT
// so the container process is the runtime's child and, with a new pid namespace, its PID 1.
// Stage 2 builds the root filesystem, pivots into it, sets the process up and waits for `start`.

#include "cbulkhead.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <grp.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

// ---- small string helpers (no libc formatting) -----------------------------------------------

static size_t bh_strlcpy(char *dst, const char *src, size_t size) {
    size_t n = 0;
    while (src && src[n]) n++;
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = 0;
    }
    return n;
}

static void bh_strlcat(char *dst, const char *src, size_t size) {
    size_t len = strlen(dst);
    if (len < size) bh_strlcpy(dst + len, src, size - len);
}

static void bh_itoa(long v, char *out) {
    char tmp[24];
    int i = 0, neg = v < 0;
    unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;
    do { tmp[i++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (neg) tmp[i++] = '-';
    int j = 0;
    while (i) out[j++] = tmp[--i];
    out[j] = 0;
}

// ---- talking to the runtime --------------------------------------------------------------------

static int send_msg(int fd, int type, int err, int64_t value, const char *a, const char *b) {
    struct bh_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.err = err;
    m.value = value;
    if (a) bh_strlcpy(m.text, a, sizeof m.text);
    if (b) bh_strlcat(m.text, b, sizeof m.text);
    ssize_t r;
    do { r = send(fd, &m, sizeof m, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof m ? 0 : -1;
}

static int recv_msg(int fd, int want) {
    struct bh_msg m;
    ssize_t r;
    do { r = recv(fd, &m, sizeof m, 0); } while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof m || m.type != want) return -1;
    return 0;
}

// Reports `what` + `detail` with the current errno to the runtime, and exits.
__attribute__((noreturn)) static void fail(const struct bh_plan *p, const char *what, const char *detail) {
    int err = errno;
    char text[900];
    bh_strlcpy(text, what, sizeof text);
    if (detail) {
        bh_strlcat(text, " ", sizeof text);
        bh_strlcat(text, detail, sizeof text);
    }
    send_msg(p->sync_fd, BH_MSG_ERROR, err, 0, text, NULL);
    _exit(1);
}

// ---- paths inside the root ---------------------------------------------------------------------

// Opens `path` inside the tree at `rootfd` as if rootfd were "/": symlinks and ".." cannot lead
// out of it. Returns an O_PATH fd or -1.
static int open_in_root(int rootfd, const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    while (*path == '/') path++;
    if (!*path) path = ".";
    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

// mkdir -p of `path` inside the root; every component resolved within it.
static int mkdir_in_root(int rootfd, const char *path, mode_t mode) {
    char buf[4096];
    if (bh_strlcpy(buf, path, sizeof buf) >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    size_t len = strlen(buf);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char saved = buf[i];
        buf[i] = 0;
        int fd = open_in_root(rootfd, buf, O_PATH);
        if (fd < 0) {
            if (errno != ENOENT) return -1;
            // The parent exists (created in the previous round): create the last component there.
            char *slash = strrchr(buf, '/');
            const char *name = slash ? slash + 1 : buf;
            int parent;
            if (slash && slash != buf) {
                *slash = 0;
                parent = open_in_root(rootfd, buf, O_PATH | O_DIRECTORY);
                *slash = '/';
            } else {
                parent = open_in_root(rootfd, "/", O_PATH | O_DIRECTORY);
            }
            if (parent < 0) return -1;
            int r = mkdirat(parent, name, mode);
            int e = errno;
            close(parent);
            if (r < 0 && e != EEXIST) { errno = e; return -1; }
        } else {
            close(fd);
        }
        buf[i] = saved;
    }
    return 0;
}

// Creates an empty file at `path` (and its parent directories) inside the root, if missing.
static int mkfile_in_root(int rootfd, const char *path) {
    char dir[4096];
    bh_strlcpy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    const char *name = path;
    int parent;
    if (slash) {
        *slash = 0;
        name = path + (slash - dir) + 1;
        if (mkdir_in_root(rootfd, dir[0] ? dir : "/", 0755) < 0) return -1;
        parent = open_in_root(rootfd, dir[0] ? dir : "/", O_PATH | O_DIRECTORY);
    } else {
        parent = open_in_root(rootfd, "/", O_PATH | O_DIRECTORY);
    }
    if (parent < 0) return -1;
    int fd = openat(parent, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    int e = errno;
    close(parent);
    if (fd < 0) {
        // An existing target that is not writable as a file (a device, a symlink) is still a target.
        if (e == EEXIST || e == ELOOP || e == ENXIO || e == EACCES || e == EISDIR) return 0;
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

// "/proc/self/fd/N": mount(2) takes paths, and this one names exactly the resolved target.
static void fd_path(int fd, char *out) {
    bh_strlcpy(out, "/proc/self/fd/", 32);
    bh_itoa(fd, out + 14);
}

// Mount flags a bind remount must repeat: the kernel refuses to clear locked ones.
static unsigned long mount_flags_of(const char *path) {
    struct statvfs s;
    unsigned long f = 0;
    if (statvfs(path, &s) != 0) return 0;
    if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (s.f_flag & ST_NODEV) f |= MS_NODEV;
    if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (s.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (s.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (s.f_flag & ST_RELATIME) f |= MS_RELATIME;
    if (s.f_flag & ST_RDONLY) f |= MS_RDONLY;
    return f;
}

// The child's copy of the process memory is its own: a static buffer needs no allocation.
static char copy_buffer[65536];

// copy_file_range, or read/write where the kernel will not copy across these filesystems.
static int copy_file(int in, int out) {
    for (;;) {
        ssize_t c = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
        if (c == 0) return 0;
        if (c > 0) continue;
        if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return -1;
        break;
    }
    for (;;) {
        ssize_t r = read(in, copy_buffer, sizeof copy_buffer);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return 0;
        for (ssize_t w = 0; w < r;) {
            ssize_t n = write(out, copy_buffer + w, (size_t)(r - w));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return -1;
            w += n;
        }
    }
}

// Copies the tree under directory `from` into directory `to` (both fds), keeping modes, owners
// and symlinks; regular files with copy_file_range. For tmpcopyup, whose source is an image
// directory of moderate depth: deeper than 32 levels is refused rather than recursed into.
static int copy_tree(int from, int to, int depth) {
    if (depth > 32) { errno = ELOOP; return -1; }
    char buf[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, from, buf, sizeof buf);
        if (n < 0) return -1;
        if (n == 0) return 0;
        for (long off = 0; off < n;) {
            struct linux_dirent64 { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; };
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            off += d->reclen;
            if (!strcmp(d->name, ".") || !strcmp(d->name, "..")) continue;
            struct stat st;
            if (fstatat(from, d->name, &st, AT_SYMLINK_NOFOLLOW) < 0) return -1;
            if (S_ISDIR(st.st_mode)) {
                if (mkdirat(to, d->name, st.st_mode & 07777) < 0 && errno != EEXIST) return -1;
                int sub_from = openat(from, d->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                int sub_to = openat(to, d->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub_from < 0 || sub_to < 0) return -1;
                int r = copy_tree(sub_from, sub_to, depth + 1);
                close(sub_from);
                close(sub_to);
                if (r < 0) return -1;
            } else if (S_ISLNK(st.st_mode)) {
                char link[4096];
                ssize_t len = readlinkat(from, d->name, link, sizeof link - 1);
                if (len < 0) return -1;
                link[len] = 0;
                if (symlinkat(link, to, d->name) < 0 && errno != EEXIST) return -1;
            } else if (S_ISREG(st.st_mode)) {
                int in = openat(from, d->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                int out = openat(to, d->name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
                if (in < 0 || out < 0) return -1;
                if (copy_file(in, out) < 0) return -1;
                close(in);
                close(out);
            } else {
                if (mknodat(to, d->name, st.st_mode, st.st_rdev) < 0 && errno != EEXIST) return -1;
            }
            if (fchownat(to, d->name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0) return -1;
            if (!S_ISLNK(st.st_mode) && fchmodat(to, d->name, st.st_mode & 07777, 0) < 0) return -1;
        }
    }
}

// The directory holding `path` inside the root, made if missing, as an O_PATH fd; `name` gets
// the last component of `path`.
static int open_parent_in_root(const struct bh_plan *p, int rootfd, const char *path, const char **name) {
    char dir[4096];
    bh_strlcpy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    *name = path;
    if (slash) { *slash = 0; *name = path + (slash - dir) + 1; }
    const char *parent_path = slash && dir[0] ? dir : "/";
    if (mkdir_in_root(rootfd, parent_path, 0755) < 0) fail(p, "mkdir", parent_path);
    int parent = open_in_root(rootfd, parent_path, O_PATH | O_DIRECTORY);
    if (parent < 0) fail(p, "open", parent_path);
    return parent;
}

static void run_op(const struct bh_plan *p, int rootfd, const struct bh_op *op) {
    char target[32];
    int fd;
    switch (op->kind) {
    case BH_OP_MKDIR:
        if (mkdir_in_root(rootfd, op->target, op->mode) < 0) fail(p, "mkdir", op->target);
        return;
    case BH_OP_SYMLINK: {
        const char *name;
        int parent = open_parent_in_root(p, rootfd, op->target, &name);
        if (symlinkat(op->source, parent, name) < 0 && errno != EEXIST) fail(p, "symlink", op->target);
        close(parent);
        return;
    }
    case BH_OP_MKNOD: {
        const char *name;
        int parent = open_parent_in_root(p, rootfd, op->target, &name);
        // An existing node (from the image) is replaced: its type or number may be wrong.
        unlinkat(parent, name, 0);
        if (mknodat(parent, name, op->mode, (dev_t)op->dev) < 0) fail(p, "mknod", op->target);
        if (fchownat(parent, name, op->uid, op->gid, AT_SYMLINK_NOFOLLOW) < 0) fail(p, "chown", op->target);
        // mknod's mode is filtered by the umask; the spec's fileMode is not.
        fd = openat(parent, name, O_PATH | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) fail(p, "open", op->target);
        fd_path(fd, target);
        if (chmod(target, op->mode & 07777) < 0) fail(p, "chmod", op->target);
        close(fd);
        close(parent);
        return;
    }
    case BH_OP_BIND_DEV:
        if (mkfile_in_root(rootfd, op->target) < 0) fail(p, "create", op->target);
        fd = open_in_root(rootfd, op->target, O_PATH);
        if (fd < 0) fail(p, "open", op->target);
        fd_path(fd, target);
        if (mount(op->source, target, NULL, MS_BIND, NULL) < 0) fail(p, "bind mount", op->target);
        close(fd);
        return;
    case BH_OP_PROPAGATE:
        fd = open_in_root(rootfd, op->target, O_PATH);
        if (fd < 0) fail(p, "open", op->target);
        fd_path(fd, target);
        if (mount(NULL, target, NULL, op->flags, NULL) < 0) fail(p, "set propagation of", op->target);
        close(fd);
        return;
    case BH_OP_MOUNT:
        if (op->target_is_file) {
            if (mkfile_in_root(rootfd, op->target) < 0) fail(p, "create mount point", op->target);
        } else if (mkdir_in_root(rootfd, op->target, 0755) < 0) {
            fail(p, "create mount point", op->target);
        }
        fd = open_in_root(rootfd, op->target, O_PATH);
        if (fd < 0) fail(p, "open mount point", op->target);
        fd_path(fd, target);
        // tmpcopyup: keep a handle on the image's directory, which the mount is about to cover.
        int original = -1;
        if (op->copy_up) {
            original = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (original < 0) fail(p, "open for tmpcopyup", op->target);
        }
        if (mount(op->source, target, op->fstype, op->flags, op->data) < 0) {
            fail(p, "mount", op->target);
        }
        close(fd);
        if (original >= 0) {
            int copy = open_in_root(rootfd, op->target, O_RDONLY | O_DIRECTORY);
            if (copy < 0) fail(p, "open for tmpcopyup", op->target);
            if (copy_tree(original, copy, 0) < 0) fail(p, "tmpcopyup into", op->target);
            close(copy);
            close(original);
        }
        if (op->remount_flags) {
            // A bind mount takes ro, nosuid... only on a second, remounting pass. Re-resolve: the
            // target is now the new mount's root.
            fd = open_in_root(rootfd, op->target, O_PATH);
            if (fd < 0) fail(p, "open mount point", op->target);
            fd_path(fd, target);
            unsigned long flags = MS_REMOUNT | MS_BIND | op->remount_flags | mount_flags_of(target);
            if (!(op->remount_flags & MS_RDONLY)) flags &= ~(unsigned long)MS_RDONLY;
            if (mount(NULL, target, NULL, flags, NULL) < 0) fail(p, "remount", op->target);
            close(fd);
        }
        return;
    case BH_OP_MASK: {
        fd = open_in_root(rootfd, op->target, O_PATH);
        if (fd < 0) {
            if (errno == ENOENT) return;
            fail(p, "open masked path", op->target);
        }
        struct stat st;
        if (fstat(fd, &st) < 0) fail(p, "stat masked path", op->target);
        fd_path(fd, target);
        if (S_ISDIR(st.st_mode)) {
            if (mount("tmpfs", target, "tmpfs", MS_RDONLY, NULL) < 0) fail(p, "mask", op->target);
        } else {
            // The mask must be the null device itself, not whatever the container's /dev/null
            // became (CVE-2025-31133): check the node we are about to bind.
            int null = open("/dev/null", O_PATH | O_CLOEXEC | O_NOFOLLOW);
            struct stat nst;
            if (null < 0 || fstat(null, &nst) < 0) fail(p, "open", "/dev/null");
            if (!S_ISCHR(nst.st_mode) || nst.st_rdev != makedev(1, 3)) {
                errno = EPERM;
                fail(p, "mask: /dev/null is not the null device, refusing to bind it over", op->target);
            }
            char null_path[32];
            fd_path(null, null_path);
            if (mount(null_path, target, NULL, MS_BIND, NULL) < 0) fail(p, "mask", op->target);
            close(null);
        }
        close(fd);
        return;
    }
    case BH_OP_READONLY: {
        fd = open_in_root(rootfd, op->target, O_PATH);
        if (fd < 0) {
            if (errno == ENOENT) return;
            fail(p, "open read-only path", op->target);
        }
        fd_path(fd, target);
        if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) < 0) fail(p, "bind read-only path", op->target);
        close(fd);
        fd = open_in_root(rootfd, op->target, O_PATH);
        if (fd < 0) fail(p, "open read-only path", op->target);
        fd_path(fd, target);
        unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | mount_flags_of(target);
        if (mount(NULL, target, NULL, flags, NULL) < 0) fail(p, "remount read-only", op->target);
        close(fd);
        return;
    }
    }
    errno = EINVAL;
    fail(p, "unknown plan step for", op->target);
}

// ---- the process --------------------------------------------------------------------------------

static int write_file(const char *path, const char *value, size_t len) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t r = write(fd, value, len);
    int e = errno;
    close(fd);
    if (r < 0) { errno = e; return -1; }
    return 0;
}

// Finds argv[0] in the PATH of the container (after pivot_root), as execvp would, and fills `out`.
static int find_executable(const char *name, const char *path_env, char *out, size_t size) {
    if (strchr(name, '/')) {
        bh_strlcpy(out, name, size);
        return access(out, X_OK);
    }
    const char *pth = path_env && *path_env ? path_env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    int last = ENOENT;
    while (*pth) {
        const char *end = strchr(pth, ':');
        size_t n = end ? (size_t)(end - pth) : strlen(pth);
        if (n + strlen(name) + 2 < size) {
            memcpy(out, pth, n);
            out[n] = 0;
            if (n == 0) bh_strlcpy(out, ".", size);
            bh_strlcat(out, "/", size);
            bh_strlcat(out, name, size);
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
                if (access(out, X_OK) == 0) return 0;
                last = EACCES;
            }
        }
        if (!end) break;
        pth = end + 1;
    }
    errno = last;
    return -1;
}

// The final capability sets, after setuid (the bounding set was cut before it).
static int set_capabilities(const struct bh_plan *p) {
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    data[0].effective = (uint32_t)p->cap_effective;
    data[1].effective = (uint32_t)(p->cap_effective >> 32);
    data[0].permitted = (uint32_t)p->cap_permitted;
    data[1].permitted = (uint32_t)(p->cap_permitted >> 32);
    data[0].inheritable = (uint32_t)p->cap_inheritable;
    data[1].inheritable = (uint32_t)(p->cap_inheritable >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0) return -1;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return -1;
    // The kernel only raises an ambient capability that is permitted and inheritable; runc
    // skips the others (runc's default spec lists ambient ones without inheritable), so do we.
    uint64_t ambient = p->cap_ambient & p->cap_permitted & p->cap_inheritable;
    for (int c = 0; c <= p->last_cap; c++) {
        if (ambient & (1ULL << c)) {
            if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0) return -1;
        }
    }
    return 0;
}

// A pty from the container's own devpts; the master goes to the console socket, the slave
// becomes the process's controlling terminal, stdio and /dev/console.
static void setup_terminal(const struct bh_plan *p) {
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) fail(p, "open", "/dev/ptmx");
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) fail(p, "unlock pty", NULL);
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) fail(p, "open pty peer", NULL);
    if (p->console_rows || p->console_cols) {
        struct winsize ws = { .ws_row = p->console_rows, .ws_col = p->console_cols };
        if (ioctl(slave, TIOCSWINSZ, &ws) < 0) fail(p, "set console size", NULL);
    }
    // /dev/console is the container's pty, as a bind mount (runc does the same); an exec'd
    // process gets a pty of its own and leaves /dev/console alone.
    if (p->rootfs) {
        char slave_path[32];
        fd_path(slave, slave_path);
        int cfd = open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (cfd >= 0) close(cfd);
        if (mount(slave_path, "/dev/console", NULL, MS_BIND, NULL) < 0) fail(p, "bind mount", "/dev/console");
    }
    if (bh_send_fd(p->console_fd, master, "/dev/ptmx") < 0) fail(p, "send the pty master to the console socket", NULL);
    close(master);
    close(p->console_fd);
    if (setsid() < 0) fail(p, "setsid", NULL);
    if (ioctl(slave, TIOCSCTTY, 0) < 0) fail(p, "set controlling terminal", NULL);
    for (int i = 0; i < 3; i++) {
        if (dup2(slave, i) < 0) fail(p, "dup2 pty", NULL);
    }
    if (slave > 2) close(slave);
}

// ---- seccomp ------------------------------------------------------------------------------------

_Static_assert(sizeof(struct bh_sock_filter) == sizeof(struct sock_filter), "struct sock_filter layout");

// After `start` the runtime no longer reads sync_fd: the workload's stderr is the only place left
// to say why the container did not run.
__attribute__((noreturn)) static void fail_after_start(const char *what) {
    int err = errno;
    char text[256], n[24];
    bh_strlcpy(text, "bulkhead-runtime: container init: ", sizeof text);
    bh_strlcat(text, what, sizeof text);
    bh_strlcat(text, ": errno ", sizeof text);
    bh_itoa(err, n);
    bh_strlcat(text, n, sizeof text);
    bh_strlcat(text, "\n", sizeof text);
    ssize_t r = write(2, text, strlen(text));
    (void)r;
    _exit(1);
}

// Loads the filter. With a listener, sends the notify fd to the seccomp agent with the
// containerProcessState JSON (runtime-spec "seccomp notify"); the agent needs the container's
// pid as the host sees it, which only stage 1 knows: it writes it into `pid_fd`.
// Returns 0, or -1 with errno and *what set. Every syscall after the load (sendmsg, close,
// execve) goes through the filter: the profile must allow them, as with runc.
static int load_seccomp(const struct bh_plan *p, int pid_fd, const char **what) {
    char pid_text[24] = "0";
    if (p->seccomp_listener_fd >= 0) {
        pid_t pid = 0;
        ssize_t r;
        do { r = read(pid_fd, &pid, sizeof pid); } while (r < 0 && errno == EINTR);
        if (r != (ssize_t)sizeof pid) { *what = "read the container pid from stage 1"; if (r >= 0) errno = EPIPE; return -1; }
        bh_itoa(pid, pid_text);
    }
    if (pid_fd >= 0) close(pid_fd);
    struct sock_fprog prog = { .len = (unsigned short)p->seccomp_len, .filter = (struct sock_filter *)p->seccomp_filter };
    int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, &prog);
    if (listener < 0) { *what = "load the seccomp filter (seccomp SECCOMP_SET_MODE_FILTER)"; return -1; }
    if (p->seccomp_listener_fd < 0) return 0;

    size_t pid_len = strlen(pid_text);
    struct iovec iov[5] = {
        { (void *)p->seccomp_state[0], strlen(p->seccomp_state[0]) }, { pid_text, pid_len },
        { (void *)p->seccomp_state[1], strlen(p->seccomp_state[1]) }, { pid_text, pid_len },
        { (void *)p->seccomp_state[2], strlen(p->seccomp_state[2]) },
    };
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 5, .msg_control = control, .msg_controllen = sizeof control };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &listener, sizeof(int));
    ssize_t r;
    do { r = sendmsg(p->seccomp_listener_fd, &msg, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    if (r < 0) { *what = "send the seccomp notify fd to linux.seccomp.listenerPath"; return -1; }
    // The workload must not hold its own notify fd, nor the agent's socket.
    close(listener);
    close(p->seccomp_listener_fd);
    return 0;
}

__attribute__((noreturn)) static void stage2(const struct bh_plan *p, int pid_fd) {
    char buf[4096];

    if (p->new_cgroup && unshare(CLONE_NEWCGROUP) < 0) fail(p, "unshare", "cgroup namespace");

    if (p->oom_score_adj_set) {
        char v[24];
        bh_itoa(p->oom_score_adj, v);
        if (write_file("/proc/self/oom_score_adj", v, strlen(v)) < 0) fail(p, "write", "/proc/self/oom_score_adj");
    }
    for (int i = 0; i < p->nrlimits; i++) {
        struct rlimit rl = { (rlim_t)p->rlimits[i].soft, (rlim_t)p->rlimits[i].hard };
        if (setrlimit(p->rlimits[i].resource, &rl) < 0) {
            char n[24];
            bh_itoa(p->rlimits[i].resource, n);
            fail(p, "setrlimit resource", n);
        }
    }

    // The root filesystem, in the mount namespace stage 1 unshared.
    if (p->rootfs) {
        if (p->root_propagation && !p->host_mount_ns && mount(NULL, "/", NULL, MS_REC | p->root_propagation, NULL) < 0) {
            fail(p, "set propagation of", "/");
        }
        // pivot_root needs the new root to be a mount point.
        if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) fail(p, "bind mount rootfs", p->rootfs);
        int rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) fail(p, "open rootfs", p->rootfs);
        for (int i = 0; i < p->nops; i++) run_op(p, rootfd, &p->ops[i]);

        if (p->create_hooks) {
            // prestart, createRuntime and createContainer hooks run now: mounts done, root not
            // yet pivoted, so createContainer (in our mount namespace) sees host paths.
            if (send_msg(p->sync_fd, BH_MSG_HOOKS, 0, 0, NULL, NULL) < 0) _exit(1);
            if (recv_msg(p->sync_fd, BH_MSG_HOOKS_DONE) < 0) _exit(1);
        }
        if (p->host_mount_ns) {
            // Neither pivot_root nor MS_MOVE: either would change the runtime's own namespace.
            if (chdir(p->rootfs) < 0) fail(p, "chdir", p->rootfs);
            if (chroot(".") < 0) fail(p, "chroot", p->rootfs);
        } else if (p->no_pivot) {
            if (chdir(p->rootfs) < 0) fail(p, "chdir", p->rootfs);
            if (mount(p->rootfs, "/", NULL, MS_MOVE, NULL) < 0) fail(p, "move rootfs to /", NULL);
            if (chroot(".") < 0) fail(p, "chroot", p->rootfs);
        } else {
            // pivot_root(".", "."), then detach the old root stacked beneath: no directory needed
            // inside the rootfs, and nothing of the host stays reachable.
            if (fchdir(rootfd) < 0) fail(p, "chdir", p->rootfs);
            if (syscall(SYS_pivot_root, ".", ".") < 0) fail(p, "pivot_root", p->rootfs);
            if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) fail(p, "make old root slave", NULL);
            if (umount2(".", MNT_DETACH) < 0) fail(p, "unmount old root", NULL);
        }
        if (chdir("/") < 0) fail(p, "chdir", "/");
        close(rootfd);

        if (p->terminal) setup_terminal(p);
        for (int i = 0; i < p->nsysctls; i++) {
            bh_strlcpy(buf, "/proc/sys/", sizeof buf);
            bh_strlcat(buf, p->sysctls[i].path, sizeof buf);
            if (write_file(buf, p->sysctls[i].value, strlen(p->sysctls[i].value)) < 0) fail(p, "write sysctl", buf);
        }
        if (p->npost_ops) {
            int newroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (newroot < 0) fail(p, "open", "/");
            for (int i = 0; i < p->npost_ops; i++) run_op(p, newroot, &p->post_ops[i]);
            close(newroot);
        }
        if (p->readonly_root) {
            unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | mount_flags_of("/");
            if (mount(NULL, "/", NULL, flags, NULL) < 0) fail(p, "remount / read-only", NULL);
        }
        if (p->rootfs_propagation && mount(NULL, "/", NULL, p->rootfs_propagation, NULL) < 0) {
            fail(p, "set rootfs propagation", NULL);
        }
    } else if (p->terminal) {
        setup_terminal(p);
    }

    // A session keyring of its own, so the container cannot read the host session's keys.
    if (p->new_keyring && syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) < 0 && errno != ENOSYS) {
        fail(p, "join a new session keyring", NULL);
    }
    if (p->hostname && sethostname(p->hostname, strlen(p->hostname)) < 0) fail(p, "sethostname", p->hostname);
    if (p->domainname && setdomainname(p->domainname, strlen(p->domainname)) < 0) fail(p, "setdomainname", p->domainname);

    if (p->cwd && chdir(p->cwd) < 0) fail(p, "chdir to cwd", p->cwd);
    char exe[4096];
    if (find_executable(p->argv[0], p->path_env, exe, sizeof exe) < 0) {
        // runc's wording, which engines match to report exit status 127.
        char what[1024];
        bh_strlcpy(what, "exec: \"", sizeof what);
        bh_strlcat(what, p->argv[0], sizeof what);
        bh_strlcat(what, strchr(p->argv[0], '/') ? "\": stat " : "\": executable file not found in $PATH", sizeof what);
        if (strchr(p->argv[0], '/')) bh_strlcat(what, p->argv[0], sizeof what);
        fail(p, what, NULL);
    }

    if (p->exec_label_path && write_file(p->exec_label_path, p->exec_label, strlen(p->exec_label)) < 0) {
        fail(p, "set the security label at", p->exec_label_path);
    }

    // Credentials: groups and gid while still privileged; keep capabilities across setuid so the
    // configured sets can be applied after it.
    if (p->set_groups && setgroups((size_t)p->ngroups, (const gid_t *)p->groups) < 0) fail(p, "setgroups", NULL);
    if (p->set_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) fail(p, "keep capabilities", NULL);
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which setuid or the configured
    // capability sets may take away: load it now, while the child is still fully privileged.
    const char *what = NULL;
    if (p->seccomp_filter && !p->no_new_privs && load_seccomp(p, pid_fd, &what) < 0) fail(p, what, NULL);
    if (p->set_caps) {
        // Bounding set while CAP_SETPCAP is still held.
        for (int c = 0; c <= p->last_cap; c++) {
            if (!(p->cap_bounding & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) {
                fail(p, "drop capability from bounding set", NULL);
            }
        }
    }
    if (setresgid(p->gid, p->gid, p->gid) < 0) fail(p, "setgid", NULL);
    if (setresuid(p->uid, p->uid, p->uid) < 0) fail(p, "setuid", NULL);
    if (p->set_caps && set_capabilities(p) < 0) fail(p, "set capabilities", NULL);
    if (p->umask >= 0) umask((mode_t)p->umask);
    if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(p, "set no_new_privs", NULL);

    if (send_msg(p->sync_fd, BH_MSG_READY, 0, 0, NULL, NULL) < 0) _exit(1);
    close(p->sync_fd);

    // Wait for `start`: it opens the fifo for reading, which completes this open.
    if (p->fifo_dirfd >= 0) {
        int fifo = openat(p->fifo_dirfd, p->fifo_name, O_WRONLY | O_CLOEXEC);
        if (fifo < 0) _exit(1);
        if (write(fifo, "0", 1) != 1) _exit(1);
        close(fifo);
        close(p->fifo_dirfd);
    }

    // Only stdio and the preserved fds cross into the workload.
    for (int fd = 3; fd < 3 + p->preserve_fds; fd++) bh_set_cloexec(fd, 0);
    syscall(SYS_close_range, 3 + p->preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    // With no_new_privs the filter is the very last step: nothing of the runtime's own work has
    // to get past it, only execve (and, with a listener, sendmsg and close).
    if (p->seccomp_filter && p->no_new_privs && load_seccomp(p, pid_fd, &what) < 0) fail_after_start(what);
    if (p->exec_shim_fd >= 0) {
        // Through execve of /proc/self/fd/N, which a seccomp profile allows whenever it lets the
        // program start at all; execveat where the container has no /proc.
        p->shim_argv[0] = "bulkhead-exec";
        p->shim_argv[1] = exe;
        char shim_path[32];
        fd_path(p->exec_shim_fd, shim_path);
        execve(shim_path, (char *const *)p->shim_argv, (char *const *)p->envp);
        if (errno == ENOENT) {
            syscall(SYS_execveat, p->exec_shim_fd, "", (char *const *)p->shim_argv, (char *const *)p->envp, AT_EMPTY_PATH);
        }
    }
    execve(exe, (char *const *)p->argv, (char *const *)p->envp);
    _exit(127);
}

// Closes every descriptor the child inherited but does not use: the runtime's own files (a
// state-directory lock held open here would block `start` forever) must not reach the container.
static void close_unneeded_fds(const struct bh_plan *p) {
    int keep[16];
    int n = 0;
    keep[n++] = p->sync_fd;
    if (p->fifo_dirfd >= 0) keep[n++] = p->fifo_dirfd;
    if (p->console_fd >= 0) keep[n++] = p->console_fd;
    if (p->seccomp_listener_fd >= 0) keep[n++] = p->seccomp_listener_fd;
    if (p->exec_shim_fd >= 0) keep[n++] = p->exec_shim_fd;
    for (int i = 0; i < p->njoin && n < 16; i++) keep[n++] = p->join_fds[i];
    // Insertion sort: a handful of entries.
    for (int i = 1; i < n; i++) {
        int v = keep[i], j = i - 1;
        while (j >= 0 && keep[j] > v) { keep[j + 1] = keep[j]; j--; }
        keep[j + 1] = v;
    }
    unsigned int from = 3 + (unsigned int)p->preserve_fds;
    for (int i = 0; i < n; i++) {
        if (keep[i] < 0 || (unsigned int)keep[i] < from) continue;
        if ((unsigned int)keep[i] > from) syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0);
        from = (unsigned int)keep[i] + 1;
    }
    syscall(SYS_close_range, from, ~0U, 0);
}

__attribute__((noreturn)) static void stage1(const struct bh_plan *p) {
    close_unneeded_fds(p);
    // Non-dumpable until execve (which resets it): processes already in the container (an `exec`
    // joins them) cannot open /proc/PID/exe of this copy of the runtime to overwrite the
    // runtime's binary (CVE-2019-5736), nor read its memory or descriptors.
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    // The runtime puts us in our cgroup first: everything we create inherits it.
    if (recv_msg(p->sync_fd, BH_MSG_GO) < 0) _exit(1);
    // Become our own process: the signal handlers are cleared by clone, the mask is not.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

    for (int i = 0; i < p->njoin; i++) {
        if (setns(p->join_fds[i], p->join_types[i]) < 0) {
            char n[24];
            bh_itoa(p->join_types[i], n);
            fail(p, "setns: join namespace of type", n);
        }
        close(p->join_fds[i]);
        if (p->join_types[i] == CLONE_NEWUSER && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {
            fail(p, "become root in the joined user namespace", NULL);
        }
    }
    if (p->new_user) {
        if (unshare(CLONE_NEWUSER) < 0) fail(p, "unshare", "user namespace");
        // Writing the id maps of another process needs a dumpable target (a user's /proc/PID files
        // belong to root while it is not).
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        if (send_msg(p->sync_fd, BH_MSG_USERMAP, 0, 0, NULL, NULL) < 0) _exit(1);
        if (recv_msg(p->sync_fd, BH_MSG_USERMAP_DONE) < 0) _exit(1);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) fail(p, "become root in the new user namespace", NULL);
    }
    if (p->unshare_flags && unshare(p->unshare_flags) < 0) fail(p, "unshare namespaces", NULL);
    if (p->timens_offsets &&
        write_file("/proc/self/timens_offsets", p->timens_offsets, strlen(p->timens_offsets)) < 0) {
        fail(p, "write", "/proc/self/timens_offsets");
    }

    // The seccomp agent is told the container's pid as the runtime sees it: only this stage
    // knows it (in a new pid namespace the process itself is 1).
    int pid_pipe[2] = { -1, -1 };
    if (p->seccomp_listener_fd >= 0 && pipe2(pid_pipe, O_CLOEXEC) < 0) fail(p, "pipe", NULL);

    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_PARENT;
    pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) fail(p, "clone the container process", NULL);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
        if (pid_pipe[1] >= 0) close(pid_pipe[1]);
        stage2(p, pid_pipe[0]);
    }
    if (pid_pipe[1] >= 0) {
        close(pid_pipe[0]);
        ssize_t w = write(pid_pipe[1], &pid, sizeof pid);
        (void)w;
        close(pid_pipe[1]);
    }
    send_msg(p->sync_fd, BH_MSG_PID, 0, pid, NULL, NULL);
    _exit(0);
}

pid_t bh_spawn_container(const struct bh_plan *plan) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_CLEAR_SIGHAND;
    args.exit_signal = SIGCHLD;
    pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) stage1(plan);
    return pid;
}

pid_t bh_spawn_in_namespaces(const int *ns_fds, const int *ns_types, int n, const char *path,
                             char *const argv[], char *const envp[], int stdin_fd) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_CLEAR_SIGHAND;
    args.exit_signal = SIGCHLD;
    pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
    if (pid != 0) return pid;

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    int joined_pid = 0;
    for (int i = 0; i < n; i++) {
        if (setns(ns_fds[i], ns_types[i]) < 0) _exit(126);
        if (ns_types[i] == CLONE_NEWPID) joined_pid = 1;
    }
    // Only stdin crosses: a write end of the stdin pipe left open here would keep the program
    // from ever seeing end of input.
    if (stdin_fd >= 0 && dup2(stdin_fd, 0) < 0) _exit(126);
    syscall(SYS_close_range, 3, ~0U, 0);
    if (joined_pid) {
        // setns(pid) applies to children only: the program runs in a child; we pass on its status.
        memset(&args, 0, sizeof args);
        args.exit_signal = SIGCHLD;
        pid_t child = (pid_t)syscall(SYS_clone3, &args, sizeof args);
        if (child < 0) _exit(126);
        if (child > 0) {
            int status;
            while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
            if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
            _exit(WEXITSTATUS(status));
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    }
    execve(path, argv, envp);
    _exit(127);
}

// ---- syscalls Swift cannot call directly --------------------------------------------------------

int bh_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int bh_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }

int bh_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

int bh_close_range_cloexec(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC);
}

int bh_set_cloexec(int fd, int on) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFD, on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC));
}

int bh_fcntl_getfl(int fd) { return fcntl(fd, F_GETFL); }

int bh_fcntl_setfl(int fd, int flags) { return fcntl(fd, F_SETFL, flags); }

int bh_send_fd(int sock, int fd, const char *name) {
    char data[256];
    size_t len = bh_strlcpy(data, name ? name : "", sizeof data);
    if (len >= sizeof data) len = sizeof data - 1;
    struct iovec iov = { .iov_base = data, .iov_len = len ? len : 1 };
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    ssize_t r;
    do { r = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

int bh_recv_fd(int sock) {
    char data[256];
    struct iovec iov = { .iov_base = data, .iov_len = sizeof data };
    char control[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    ssize_t r;
    do { r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (!cm || cm->cmsg_type != SCM_RIGHTS) { errno = EBADMSG; return -1; }
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    return fd;
}

int bh_tiocgwinsz(int fd, uint16_t *rows, uint16_t *cols) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) < 0) return -1;
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return 0;
}

int bh_tiocswinsz(int fd, uint16_t rows, uint16_t cols) {
    struct winsize ws = { .ws_row = rows, .ws_col = cols };
    return ioctl(fd, TIOCSWINSZ, &ws);
}

int bh_flock(int fd, int op) { return flock(fd, op); }

int bh_memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

// As runc and libseccomp probe: the kernel checks the flags before it reads the program, so a
// NULL program fails with EFAULT when the flags are accepted and EINVAL when they are not.
int bh_seccomp_flags_supported(unsigned int flags) {
    errno = 0;
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL);
    return r < 0 && errno == EFAULT ? 1 : 0;
}

int bh_seccomp_load_thread_filter(const void *program, int count, unsigned int flags) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    struct sock_fprog prog = { .len = (unsigned short)count, .filter = (struct sock_filter *)program };
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0 ? -1 : 0;
}

static void catchable(sigset_t *set) {
    sigfillset(set);
    // Signals that report a fault of this process must stay deliverable; KILL and STOP cannot be caught.
    int keep[] = { SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) sigdelset(set, keep[i]);
}

int bh_block_catchable_signals(void) {
    sigset_t set;
    catchable(&set);
    return sigprocmask(SIG_BLOCK, &set, NULL);
}

int bh_unblock_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    return sigprocmask(SIG_SETMASK, &set, NULL);
}

int bh_signalfd_all_catchable(void) {
    sigset_t set;
    catchable(&set);
    return signalfd(-1, &set, SFD_CLOEXEC);
}

int bh_read_signal(int fd) {
    struct signalfd_siginfo info;
    ssize_t r;
    do { r = read(fd, &info, sizeof info); } while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof info ? (int)info.ssi_signo : -1;
}

int bh_bpf_attach_device_filter(int cgroup_fd, const void *insns, int count, char *log, unsigned int log_size) {
    union bpf_attr load;
    memset(&load, 0, sizeof load);
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = (uint64_t)(uintptr_t)insns;
    load.insn_cnt = (uint32_t)count;
    load.license = (uint64_t)(uintptr_t)"Apache";
    if (log && log_size) {
        log[0] = 0;
        load.log_buf = (uint64_t)(uintptr_t)log;
        load.log_size = log_size;
        load.log_level = 1;
    }
    int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
    if (prog < 0) return -1;
    union bpf_attr attach;
    memset(&attach, 0, sizeof attach);
    attach.target_fd = (uint32_t)cgroup_fd;
    attach.attach_bpf_fd = (uint32_t)prog;
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = BPF_F_ALLOW_MULTI;
    if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) < 0) {
        int e = errno;
        close(prog);
        errno = e;
        return -1;
    }
    return prog;
}
