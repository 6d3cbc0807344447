#!/bin/bash
# Run containers through RUNTIME_BIN with a private containerd (own root,
# state, gRPC/ttRPC sockets and config file in a temp dir, CRI disabled; the
# host's /etc/containerd and /run/containerd/containerd.sock are never used)
# and the runc shim v2 (io.containerd.runc.v2) with BinaryName=RUNTIME_BIN.
#
# usage: tests/engines/containerd.sh RUNTIME_BIN
#   env: BH_SNAPSHOTTER (default native), BH_KEEP=1 keeps the temp dir
# Needs: apt-get install containerd busybox-static python3
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
bh_subreaper "$0" "$@"
BH_NAME=containerd

[ $# -eq 1 ] || { echo "usage: $0 RUNTIME_BIN" >&2; exit 2; }
RUNTIME=$(readlink -f "$1")
[ -x "$RUNTIME" ] || bh_fail "runtime $1 is not an executable"
for b in containerd ctr containerd-shim-runc-v2; do
    command -v $b >/dev/null || bh_fail "$b is not installed (apt-get install containerd)"
done
[ -x /bin/busybox ] || bh_fail "/bin/busybox missing (apt-get install busybox-static)"

T=$(mktemp -d /tmp/bulkhead-containerd.XXXXXX)
SOCK=$T/containerd.sock
# the namespace is also the containers' cgroup parent (/NS/ID): private
NS=bulkhead-engines-${T##*.}
IMAGE=docker.io/bulkhead/busybox:test
SNAP=${BH_SNAPSHOTTER:-native}
CTRD_PID=
RUN_CONTAINERD_EXISTED=0
[ -e /run/containerd ] && RUN_CONTAINERD_EXISTED=1

c() { ctr --address "$SOCK" --namespace "$NS" "$@"; }

# pids of the shims this containerd started (their command line names $SOCK)
our_shims() {
    local p
    for p in /proc/[0-9]*; do
        tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -qF -- "-address $SOCK " && echo "${p#/proc/}"
    done
    return 0
}

cleanup() {
    local rc=$?
    set +e
    if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
        local id
        for id in $(c task ls -q 2>/dev/null); do
            c task kill --signal SIGKILL --all "$id" >/dev/null 2>&1
            c task delete --force "$id" >/dev/null 2>&1
        done
        for id in $(c container ls -q 2>/dev/null); do
            c container delete "$id" >/dev/null 2>&1
        done
        c image rm "$IMAGE" >/dev/null 2>&1
        kill -TERM "$CTRD_PID"
        for _ in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$CTRD_PID" 2>/dev/null
        wait "$CTRD_PID" 2>/dev/null
    fi
    local p
    for p in $(our_shims); do kill -KILL "$p" 2>/dev/null; done
    # containerd 1.6 puts shim sockets in /run/containerd/s/<hash of our
    # address> whatever the config says; drop the dirs if we made them.
    if [ "$RUN_CONTAINERD_EXISTED" = 0 ]; then
        rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null
    fi
    bh_rmdir_cgroups "$NS"
    if [ -n "${T:-}" ] && [ -d "$T" ]; then
        bh_umount_below "$T"
        if [ "${BH_KEEP:-0}" = 1 ]; then
            bh_note "kept $T (containerd log: $T/containerd.log)"
        else
            rm -rf "$T"
        fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$T"/{root,state,opt,fifo,runtime-root,tmp}
cat > "$T/config.toml" <<CONF
version = 2
root = "$T/root"
state = "$T/state"
temp = "$T/tmp"
plugin_dir = ""
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
  level = "debug"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/opt"
[plugins."io.containerd.runtime.v2.task"]
  platforms = ["linux/amd64"]
CONF

bh_note "runtime $RUNTIME, temp dir $T"
containerd --config "$T/config.toml" > "$T/containerd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 100); do
    c version >/dev/null 2>&1 && break
    kill -0 "$CTRD_PID" 2>/dev/null || { tail -20 "$T/containerd.log" >&2; bh_fail "containerd exited at start"; }
    sleep 0.1
done
c version >/dev/null 2>&1 || bh_fail "containerd did not answer on $SOCK in 10 s"
bh_note "ok: private containerd (pid $CTRD_PID) answers on $SOCK"

python3 "$HERE/mkimage.py" "$T/image" "$IMAGE" >/dev/null
c images import --snapshotter "$SNAP" --all-platforms "$T/image/image.tar" >/dev/null ||
    bh_fail "ctr images import failed"
bh_expect "image imported" "$IMAGE" "$(c images ls -q)"

RUNOPTS=(--snapshotter "$SNAP" --fifo-dir "$T/fifo" --runc-binary "$RUNTIME" --runc-root "$T/runtime-root")

# 1. run --rm echo hello
out=$(c run --rm "${RUNOPTS[@]}" "$IMAGE" bh-hello echo hello) ||
    bh_fail "ctr run --rm echo hello exited $?"
bh_expect "ctr run --rm IMAGE id echo hello" "hello" "$out"

# 2. exit status
set +e
c run --rm "${RUNOPTS[@]}" "$IMAGE" bh-exit sh -c 'exit 3'
st=$?
set -e
bh_expect "ctr run exit status" "3" "$st"

# a missing executable: ctr fails the start and names the runtime's reason
set +e
err=$(c run --rm "${RUNOPTS[@]}" "$IMAGE" bh-missing /no/such/cmd 2>&1)
st=$?
set -e
case ${err,,} in
    *"no such file or directory"*) bh_note "ok: ctr run of a missing executable fails (exit $st): $err" ;;
    *) bh_fail "ctr run of a missing executable: exit $st, $(printf %q "$err")" ;;
esac

# 3. a terminal (the shim hands the runtime a --console-socket); script(1)
#    gives ctr the terminal it wants on its own stdin.
# (stdin is a FIFO held open here, never at EOF: at the EOF of /dev/null the
# terminal would echo a ^@ first)
mkfifo "$T/stdin"; exec 7<>"$T/stdin"
out=$(script -qec "ctr --address $SOCK --namespace $NS run --rm -t ${RUNOPTS[*]} $IMAGE bh-tty sh -c 'test -t 1 && echo hello-tty'" /dev/null <&7 | tr -d '\r') ||
    bh_fail "ctr run -t exited $?"
exec 7<&-
bh_expect "ctr run -t (terminal)" "hello-tty" "$out"

# 4. detached task, exec, ps, kill, delete
c run -d "${RUNOPTS[@]}" "$IMAGE" bh-detached \
    sh -c 'trap "exit 0" TERM; while :; do sleep 1; done' >/dev/null || bh_fail "ctr run -d failed"
bh_expect "detached task is running" "RUNNING" "$(c task ls | awk '$1 == "bh-detached" { print $3 }')"
out=$(c task exec --fifo-dir "$T/fifo" --exec-id e1 bh-detached echo hello-from-exec) || bh_fail "ctr task exec exited $?"
bh_expect "ctr task exec echo" "hello-from-exec" "$out"
set +e
c task exec --fifo-dir "$T/fifo" --exec-id e2 bh-detached sh -c 'exit 7'
st=$?
set -e
bh_expect "ctr task exec exit status" "7" "$st"
# (ctr may log "resize pty ... cannot resize a stopped container" after the
# output when the exec ends first, with runc too: only the first line counts)
exec 7<>"$T/stdin"
out=$(script -qec "ctr --address $SOCK --namespace $NS task exec --fifo-dir $T/fifo -t --exec-id e3 bh-detached sh -c 'test -t 1 && echo exec-tty'" /dev/null <&7 | tr -d '\r' | head -n 1) ||
    bh_fail "ctr task exec -t exited $?"
exec 7<&-
bh_expect "ctr task exec -t (terminal)" "exec-tty" "$out"
c task pause bh-detached || bh_fail "ctr task pause exited $?"
bh_expect "paused task" "PAUSED" "$(c task ls | awk '$1 == "bh-detached" { print $3 }')"
c task resume bh-detached || bh_fail "ctr task resume exited $?"
bh_expect "resumed task" "RUNNING" "$(c task ls | awk '$1 == "bh-detached" { print $3 }')"
n=$(c task ps bh-detached | tail -n +2 | wc -l) || bh_fail "ctr task ps failed"
[ "$n" -ge 1 ] && bh_note "ok: ctr task ps lists $n process(es)" || bh_fail "ctr task ps listed no process"
c task kill --signal SIGTERM bh-detached || bh_fail "ctr task kill exited $?"
st=
for _ in $(seq 100); do
    st=$(c task ls | awk '$1 == "bh-detached" { print $3 }')
    [ "$st" = STOPPED ] && break
    sleep 0.1
done
bh_expect "task stopped by SIGTERM" "STOPPED" "$st"
c task delete bh-detached >/dev/null || bh_fail "ctr task delete exited $?"
c container delete bh-detached || bh_fail "ctr container delete exited $?"
bh_expect "no containers left" "" "$(c container ls -q)"
bh_expect "no runtime state left" "" "$(ls -A "$T/runtime-root/$NS" 2>/dev/null)"

bh_done
