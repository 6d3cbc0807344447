#!/bin/bash
# Run containers through RUNTIME_BIN with a private podman (own storage,
# runroot, tmp dir, locks, events log and config files in a temp dir; the
# host's /etc/containers and /var/lib/containers are never used).
#
# usage: tests/engines/podman.sh RUNTIME_BIN
#   env: BH_STORAGE_DRIVER (default vfs), BH_KEEP=1 keeps the temp dir,
#        BH_PODMAN_LOG_LEVEL (default warn; debug shows the runtime commands)
# Needs: apt-get install podman conmon busybox-static python3
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
bh_subreaper "$0" "$@"
BH_NAME=podman

[ $# -eq 1 ] || { echo "usage: $0 RUNTIME_BIN" >&2; exit 2; }
RUNTIME=$(readlink -f "$1")
[ -x "$RUNTIME" ] || bh_fail "runtime $1 is not an executable"
command -v podman >/dev/null || bh_fail "podman is not installed (apt-get install podman)"
command -v conmon >/dev/null || bh_fail "conmon is not installed (apt-get install conmon)"
[ -x /bin/busybox ] || bh_fail "/bin/busybox missing (apt-get install busybox-static)"

T=$(mktemp -d /tmp/bulkhead-podman.XXXXXX)
IMAGE=localhost/bulkhead-busybox:test
RTNAME=$(basename "$RUNTIME")
# containers (and conmon, in CGROUP_PARENT/conmon) get a private cgroup
# parent, not podman's shared libpod_parent
CGROUP_PARENT=/bulkhead-engines-${T##*.}
# On a v1 or hybrid host podman's cgroupfs code makes CGROUP_PARENT/conmon in
# every v1 controller it knows, mounted or not: here hugetlb lives in cgroup2
# only, so it mkdirs /sys/fs/cgroup/hugetlb/... (plain directories and a
# "tasks" file on the tmpfs), with runc as well. Note what was there before.
CGROUP_DIRS_BEFORE=$(ls -A /sys/fs/cgroup 2>/dev/null | tr '\n' ' ')

cleanup() {
    local rc=$?
    set +e
    if [ -n "${T:-}" ] && [ -d "$T" ]; then
        if [ -f "$T/containers.conf" ]; then
            pm rm --all --force --time 0 >/dev/null 2>&1
            pm rmi --all --force >/dev/null 2>&1
        fi
        # conmon processes still alive (a failure half-way) are killed by pid.
        bh_kill_pidfiles "$T"/runroot/*-containers/*/userdata/conmon.pid
        bh_umount_below "$T"
        bh_rmdir_cgroups "$CGROUP_PARENT"
        local d
        for d in /sys/fs/cgroup/*/; do
            d=${d%/}
            mountpoint -q "$d" && continue
            rm -rf "${d:?}${CGROUP_PARENT:?}"
            case " $CGROUP_DIRS_BEFORE " in
                *" ${d##*/} "*) ;;
                *) rmdir "$d" 2>/dev/null ;;
            esac
        done
        if [ "${BH_KEEP:-0}" = 1 ]; then
            bh_note "kept $T"
        else
            rm -rf "$T"
        fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$T"/{root,runroot,tmp,net,volumes,runtime-root,bin}
cat > "$T/storage.conf" <<CONF
[storage]
driver = "${BH_STORAGE_DRIVER:-vfs}"
graphroot = "$T/root"
runroot = "$T/runroot"
CONF
cat > "$T/registries.conf" <<CONF
unqualified-search-registries = []
CONF
# containers/image reads $HOME/.config/containers/policy.json before
# /etc/containers/policy.json (import copies the image through it)
mkdir -p "$T/home/.config/containers"
cat > "$T/home/.config/containers/policy.json" <<CONF
{"default": [{"type": "insecureAcceptAnything"}]}
CONF
NOFILE=$(ulimit -Hn); NPROC=$(ulimit -Hu)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
{ [ "$NPROC" = unlimited ] || [ "$NPROC" -gt 32768 ]; } && NPROC=32768
cat > "$T/containers.conf" <<CONF
[containers]
netns = "none"
log_driver = "k8s-file"
# podman asks for nofile=nproc=1048576 by default, and lowers its own nproc
# limit to 32768; a sandbox without CAP_SYS_RESOURCE can't raise a hard limit.
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[network]
network_config_dir = "$T/net"
default_network = "bulkhead-none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
tmp_dir = "$T/tmp"
static_dir = "$T/root/libpod"
volume_path = "$T/volumes"
lock_type = "file"
runtime_supports_json = ["crun", "runc", "$RTNAME"]
CONF
export CONTAINERS_CONF="$T/containers.conf"
export CONTAINERS_STORAGE_CONF="$T/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$T/registries.conf"
export XDG_RUNTIME_DIR="$T/tmp"   # never the host's /run/user or /run/containers
export HOME="$T/home"

# Rootful podman passes no --root to the OCI runtime (runc would use
# /run/runc, Bulkhead /run/bulkhead), and podman 4.3 leaves --runtime-flag out
# of the exit command conmon runs (`podman container cleanup --rm` would
# delete in the default root): a two-line wrapper with the runtime's own name
# adds --root=$T/runtime-root to every call and execs RUNTIME_BIN.
cat > "$T/bin/$RTNAME" <<WRAP
#!/bin/sh
exec "$RUNTIME" --root="$T/runtime-root" "\$@"
WRAP
chmod +x "$T/bin/$RTNAME"

# Every podman call names the private paths explicitly too.
pm() {
    podman --log-level "${BH_PODMAN_LOG_LEVEL:-warn}" \
        --root "$T/root" --runroot "$T/runroot" --tmpdir "$T/tmp" \
        --storage-driver "${BH_STORAGE_DRIVER:-vfs}" \
        --cgroup-manager cgroupfs --events-backend file \
        --network-config-dir "$T/net" \
        --runtime "$T/bin/$RTNAME" "$@"
}

bh_note "runtime $RUNTIME, temp dir $T"
python3 "$HERE/mkimage.py" "$T/image" "$IMAGE" >/dev/null
# podman 4.3 (root) keeps the blob-info cache of image copies in
# /var/lib/containers/cache whatever the storage paths: the import runs in a
# private mount namespace with a tmpfs on /var/lib, so nothing lands there.
unshare --mount --propagation private sh -c \
    'mount -t tmpfs -o mode=755 bulkhead-engines /var/lib && exec "$@"' sh \
    podman --root "$T/root" --runroot "$T/runroot" --tmpdir "$T/tmp" \
    --storage-driver "${BH_STORAGE_DRIVER:-vfs}" --cgroup-manager cgroupfs --events-backend file \
    import --quiet "$T/image/rootfs.tar" "$IMAGE" >/dev/null ||
    bh_fail "podman import of the busybox rootfs failed"
bh_expect "image imported" "$IMAGE" "$(pm images --format '{{.Repository}}:{{.Tag}}')"

# 1. run --rm, output captured through conmon.
out=$(pm run --cgroup-parent "$CGROUP_PARENT" --rm --network none "$IMAGE" echo hello) || bh_fail "podman run --rm echo hello exited $?"
bh_expect "podman run --rm IMAGE echo hello" "hello" "$out"

# 2. exit status of the container process is reported.
set +e
pm run --cgroup-parent "$CGROUP_PARENT" --rm --network none "$IMAGE" sh -c 'exit 3'
st=$?
set -e
bh_expect "podman run exit status" "3" "$st"

# podman turns the runtime's error for a missing executable into 127 (runc
# reports it through its --log json / stderr: "no such file or directory").
set +e
err=$(pm run --cgroup-parent "$CGROUP_PARENT" --rm --network none "$IMAGE" /no/such/cmd 2>&1)
st=$?
set -e
bh_expect "podman run of a missing executable exits 127 ($(printf %q "$err"))" "127" "$st"
# After the failed create podman runs `RUNTIME delete --force ID` for a
# container the runtime never recorded: runc exits 0 there, silently, and
# podman prints only the "Error: ..." line.
case $err in
    *"Removing container"*|*"does not exist"*)
        bh_error "podman printed more than the create error (delete --force of a container that does not exist failed?): $(printf %q "$err")" ;;
esac

# --read-only: podman adds tmpfs mounts on /run, /tmp and /var/tmp with the
# "tmpcopyup" option (runc's extension: copy the image's directory into the
# new tmpfs); --tmpfs DIR gets tmpcopyup by default as well.
set +e
out=$(pm run --cgroup-parent "$CGROUP_PARENT" --rm --network none --read-only "$IMAGE" \
    sh -c 'touch /x 2>/dev/null && echo writable || echo read-only; touch /tmp/y && echo tmp-ok' 2>&1)
set -e
[ "$out" = "$(printf 'read-only\ntmp-ok')" ] && bh_note "ok: podman run --read-only" ||
    bh_error "podman run --read-only: expected read-only/tmp-ok, got $(printf %q "$out")"
set +e
out=$(pm run --cgroup-parent "$CGROUP_PARENT" --rm --network none --tmpfs /etc "$IMAGE" sh -c 'grep -c root /etc/passwd; grep " /etc " /proc/self/mountinfo | grep -c tmpfs' 2>&1)
set -e
[ "$out" = "$(printf '1\n1')" ] && bh_note "ok: podman run --tmpfs /etc keeps the image's /etc/passwd (tmpcopyup)" ||
    bh_error "podman run --tmpfs /etc (tmpcopyup): expected 1/1, got $(printf %q "$out")"

# 3. a terminal (conmon hands the runtime a --console-socket)
out=$(pm run --cgroup-parent "$CGROUP_PARENT" --rm -t --network none "$IMAGE" sh -c 'test -t 1 && echo hello-tty' | tr -d '\r') ||
    bh_fail "podman run -t exited $?"
bh_expect "podman run -t (terminal)" "hello-tty" "$out"

# 4. detached container, exec, stop, rm.
cid=$(pm run --cgroup-parent "$CGROUP_PARENT" -d --name bh-detached --network none "$IMAGE" \
    sh -c 'trap "exit 0" TERM; while :; do sleep 1; done') ||
    bh_fail "podman run -d failed"
bh_expect "detached container is running" "running" "$(pm inspect --format '{{.State.Status}}' bh-detached)"
out=$(pm exec bh-detached echo hello-from-exec) || bh_fail "podman exec exited $?"
bh_expect "podman exec echo" "hello-from-exec" "$out"
out=$(pm exec bh-detached sh -c 'cat /proc/1/cmdline | tr "\0" " "') || bh_fail "podman exec (pid 1) exited $?"
case $out in "sh -c trap"*) bh_note "ok: podman exec sees the container's pid 1" ;; *) bh_fail "podman exec: /proc/1/cmdline is $(printf %q "$out")" ;; esac
set +e
err=$(pm exec bh-detached sh -c 'exit 7' 2>&1)
st=$?
set -e
bh_expect "podman exec exit status ($(printf %q "$err"))" "7" "$st"
out=$(pm exec -t bh-detached sh -c 'test -t 1 && echo exec-tty' | tr -d '\r') ||
    bh_fail "podman exec -t exited $?"
bh_expect "podman exec -t (terminal)" "exec-tty" "$out"
# podman update -> `RUNTIME update --resources FILE ID`; read the limit back
# from the container's memory cgroup (v1 memory controller or cgroup2)
if pm update --memory 64m bh-detached >/dev/null; then
    pid=$(pm inspect --format '{{.State.Pid}}' bh-detached)
    cg=$(awk -F: '$2 == "memory" { print $3 }' "/proc/$pid/cgroup")
    if [ -n "$cg" ]; then
        limit=$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes")
    else
        cg=$(awk -F: '$1 == "0" { print $3 }' "/proc/$pid/cgroup")
        limit=$(cat "/sys/fs/cgroup/unified$cg/memory.max" 2>/dev/null || cat "/sys/fs/cgroup$cg/memory.max")
    fi
    bh_expect "podman update --memory 64m" "67108864" "$limit"
else
    bh_error "podman update --memory 64m failed"
fi
set +e
err=$(pm exec bh-detached /no/such/cmd 2>&1)
st=$?
set -e
bh_expect "podman exec of a missing executable exits 127 ($(printf %q "$err"))" "127" "$st"
pm pause bh-detached >/dev/null || bh_fail "podman pause exited $?"
bh_expect "paused container" "paused" "$(pm inspect --format '{{.State.Status}}' bh-detached)"
pm unpause bh-detached >/dev/null || bh_fail "podman unpause exited $?"
bh_expect "unpaused container" "running" "$(pm inspect --format '{{.State.Status}}' bh-detached)"
out=$(pm ps --format '{{.Names}} {{.Status}}' --filter name=bh-detached) || bh_fail "podman ps failed"
case $out in "bh-detached Up"*) bh_note "ok: podman ps: $out" ;; *) bh_fail "podman ps: got $(printf %q "$out")" ;; esac
out=$(pm stop --time 10 bh-detached) || bh_fail "podman stop exited $?"
bh_expect "podman stop" "bh-detached" "$out"
bh_expect "stopped by SIGTERM (its trap exits 0)" "exited 0" "$(pm inspect --format '{{.State.Status}} {{.State.ExitCode}}' bh-detached)"
out=$(pm rm bh-detached) || bh_fail "podman rm exited $?"
bh_expect "podman rm" "bh-detached" "$out"
bh_expect "podman run -d printed the id" 64 "${#cid}"
bh_expect "no containers left" "" "$(pm ps -a -q)"
bh_expect "no runtime state left" "" "$(ls -A "$T/runtime-root")"

bh_done
