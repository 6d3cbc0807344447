#!/usr/bin/env bash
# bench/lifecycle.sh [-n N] [-w W] [-o FILE] [RUNTIME_BIN | NAME=RUNTIME_BIN ...]
#
# Interleaved lifecycle benchmark of OCI runtimes with runc's command line (bulkhead-runtime, runc, crun, ...).
# For i in 1..N, for each runtime (order rotated every iteration so that machine noise hits all alike):
#   lifecycle:  create --bundle B --pid-file F ID; start ID; wait until the container process has exited; delete ID
#   run:        run --bundle B ID   (foreground)
# on a busybox bundle running /bin/true, built here in a temp dir under /var/tmp, with a private --root per runtime.
#
# Measured per operation:
#   wall time: bash $EPOCHREALTIME around the operation;
#   CPU time (user+sys) of EVERY process involved: the runtime processes and the container process, which a detached
#   `create` leaves orphaned.  All runtime commands are spawned by a small python3 helper that is a child subreaper
#   (prctl PR_SET_CHILD_SUBREAPER): orphans re-parent to it, it reaps every descendant with wait4() and sums
#   ru_utime+ru_stime (microsecond resolution; a child's rusage includes the descendants it reaped itself).
#   CPU of orphans reaped during a lifecycle (the container process of that lifecycle) is added to that lifecycle.
#
# Defaults: N=20, W=2 warm-up iterations (not recorded); runtimes: <repo>/.build/release/bulkhead-runtime if built,
# plus runc and crun if installed.  NAME=BIN labels a runtime (e.g. bulkhead-old=/tmp/old/bulkhead-runtime).
# -o FILE keeps the raw samples (TSV).  Env: BUSYBOX=/bin/busybox, RUNTIME_LOG=0 to not pass --log/--log-format json.
# Requires: root, bash >= 5, python3 >= 3.9, a statically linked busybox (apt: busybox-static), runc or crun for `spec`.
# Output: a table of medians/p90, then `RESULT runtime=NAME lifecycle_wall_ms=.. lifecycle_cpu_ms=.. run_wall_ms=..
# run_cpu_ms=..` per runtime and `RATIO A/B ...` lines against crun and runc.  Any failed operation prints the
# runtime's stderr (and log) and exits non-zero.  Everything created (containers, state roots, temp dir) is removed
# at exit, also on failure or interruption.
set -euo pipefail

usage() { # exit status
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
  exit "$1"
}

N=20
WARMUP=2
RAW_OUT=
while getopts ':n:w:o:h' opt; do
  case $opt in
    n) N=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    o) RAW_OUT=$OPTARG ;;
    h) usage 0 ;;
    *) echo "bad option: -$OPTARG" >&2; usage 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "-n must be a positive integer" >&2; exit 2; }
[[ $WARMUP =~ ^[0-9]+$ ]] || { echo "-w must be a non-negative integer" >&2; exit 2; }
(( BASH_VERSINFO[0] >= 5 )) || { echo "bash >= 5 is needed (EPOCHREALTIME)" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "must run as root (the runtimes create namespaces, cgroups, mounts)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 2; }
python3 -c 'import os, sys; sys.exit(0 if hasattr(os, "pidfd_open") and hasattr(os, "posix_spawn") else 1)' \
  || { echo "python3 >= 3.9 is needed (os.pidfd_open, os.posix_spawn)" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---- runtimes ---------------------------------------------------------------------------------------------------
RT_NAME=() RT_BIN=()
add_runtime() { # NAME-or-empty BIN
  local name=$1 bin=$2 path
  if [[ $bin == */* ]]; then path=$bin; else path=$(command -v "$bin" 2>/dev/null || true); fi
  [[ -n $path && -f $path && -x $path ]] || { echo "runtime not found or not executable: $bin" >&2; exit 2; }
  path=$(readlink -f "$path")
  if [[ -z $name ]]; then
    name=$(basename "$bin")
    [[ $name == bulkhead-runtime ]] && name=bulkhead
  fi
  local n=$name k=2 x
  while :; do
    for x in "${RT_NAME[@]}"; do [[ $x == "$n" ]] && { n=$name-$k; k=$((k + 1)); continue 2; }; done
    break
  done
  [[ $n =~ ^[A-Za-z0-9._+-]+$ ]] || { echo "bad runtime name: $n" >&2; exit 2; }
  [[ $path != *[$'\t\n']* ]] || { echo "runtime path contains a tab or newline: $path" >&2; exit 2; }
  RT_NAME+=("$n") RT_BIN+=("$path")
}
if (( $# )); then
  for a in "$@"; do
    if [[ $a == *=* && ${a%%=*} != */* ]]; then add_runtime "${a%%=*}" "${a#*=}"; else add_runtime "" "$a"; fi
  done
else
  [[ -x $REPO/.build/release/bulkhead-runtime ]] && add_runtime bulkhead "$REPO/.build/release/bulkhead-runtime"
  command -v runc >/dev/null 2>&1 && add_runtime "" runc
  command -v crun >/dev/null 2>&1 && add_runtime "" crun
  (( ${#RT_NAME[@]} )) || { echo "no runtime given and none found (.build/release/bulkhead-runtime, runc, crun)" >&2; exit 2; }
fi
NRT=${#RT_NAME[@]}

for k in "${!RT_BIN[@]}"; do
  if [[ $(basename "${RT_BIN[k]}") == crun* ]]; then
    c=/sys/fs/cgroup/unified/cgroup.controllers
    if [[ -r $c && -n $(tr -d '[:space:]' < "$c") ]]; then
      echo "warning: the cgroup2 mount at /sys/fs/cgroup/unified has controllers ($(cat "$c")); crun refuses such" \
           "'hybrid' hosts. Move them to cgroup v1 hierarchies first, e.g. for hugetlb:" \
           "mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb" >&2
    fi
  fi
done

# ---- work dir and cleanup -----------------------------------------------------------------------------------------
WORK=$(mktemp -d /var/tmp/bulkhead-bench.XXXXXX)
[[ $WORK != *[$'\t\n']* ]] || { rmdir "$WORK"; echo "bad temp dir name" >&2; exit 2; }
PREFIX="bhbench-$$"        # container ids (cgroup names are global: keep them unique per run)
LIVE=()                    # per runtime: id of a container that may exist
RQ_PID= RQ_OUT=

rt_cmd() { # k -> RT_ARGV: the runtime with its global flags
  RT_ARGV=("${RT_BIN[$1]}" --root "$WORK/root-${RT_NAME[$1]}")
  [[ ${RUNTIME_LOG:-1} == 0 ]] || RT_ARGV+=(--log "$WORK/log-${RT_NAME[$1]}.json" --log-format json)
}

mounts_under() { # mount points at or below $1, deepest first
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r
}

cleanup() {
  local rc=$? k m i
  trap - EXIT INT TERM
  set +e
  for k in "${!LIVE[@]}"; do
    [[ -n ${LIVE[k]} ]] || continue
    rt_cmd "$k"
    "${RT_ARGV[@]}" kill "${LIVE[k]}" KILL </dev/null >/dev/null 2>&1
    "${RT_ARGV[@]}" delete --force "${LIVE[k]}" </dev/null >/dev/null 2>&1 \
      || echo "warning: could not delete container ${LIVE[k]} of ${RT_NAME[k]}" >&2
  done
  if [[ -n $RQ_OUT ]]; then
    # EOF on its input: the helper kills and reaps whatever is still parented to it (and says so), then exits
    exec {RQ_OUT}>&-
    wait "$RQ_PID" 2>/dev/null
  fi
  if [[ -d $WORK ]]; then
    for i in 1 2 3; do
      m=$(mounts_under "$WORK")
      [[ -z $m ]] && break
      while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done <<< "$m"
    done
    if [[ -n $(mounts_under "$WORK") ]]; then
      echo "warning: mounts remain under $WORK; not removing it" >&2
    else
      rm -rf --one-file-system "$WORK"
    fi
  fi
  echo "load at end:  $(uptime)" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "load at start: $(uptime)" >&2

# ---- bundle -------------------------------------------------------------------------------------------------------
BUSYBOX=${BUSYBOX:-/bin/busybox}
[[ -x $BUSYBOX ]] || { echo "no busybox at $BUSYBOX (apt-get install busybox-static)" >&2; exit 1; }
if LC_ALL=C ldd "$BUSYBOX" 2>&1 | grep -q '=>'; then
  echo "$BUSYBOX is dynamically linked; a statically linked busybox is needed (busybox-static)" >&2; exit 1
fi
B=$WORK/bundle
R=$B/rootfs
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,etc,root,run,var/tmp}
chmod 1777 "$R/tmp" "$R/var/tmp"
install -m 0755 "$BUSYBOX" "$R/bin/busybox"
while read -r p; do
  case $p in bin/busybox | linuxrc | "") continue ;; esac
  mkdir -p "$R/${p%/*}"
  ln -sfn /bin/busybox "$R/$p"
done < <("$R/bin/busybox" --list-full)
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
[[ -L $R/bin/true ]] || { echo "busybox has no 'true' applet" >&2; exit 1; }
if command -v runc >/dev/null 2>&1; then
  runc spec --bundle "$B"
elif command -v crun >/dev/null 2>&1; then
  echo "note: runc not installed; config.json from 'crun spec'" >&2
  (cd "$B" && crun spec)
else
  echo "runc (or crun) is needed to generate config.json ('runc spec')" >&2; exit 1
fi
python3 - "$B/config.json" <<'PY'
import json, sys
p = sys.argv[1]
with open(p) as f:
    c = json.load(f)
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
with open(p, "w") as f:
    json.dump(c, f, indent=2)
PY

# ---- the subreaper helper -----------------------------------------------------------------------------------------
# Protocol: one request per line, fields separated by tabs; one reply line per request.
#   run ERRFILE ARGV...   -> "ok RC CPU_US WALL_US"  spawn ARGV (stdin/stdout /dev/null, stderr ERRFILE), wait for it;
#                            CPU_US = user+sys of it and of the descendants it reaped itself.
#   waitexit PID TIMEOUT  -> "ok" | "timeout"        wait until PID has exited (reaping it if it is our child).
#   collect               -> "ok CPU_US COUNT LIVE"  CPU of the other descendants (orphans) reaped since last collect;
#                            LIVE=1 if some descendant is still alive (nothing should be, between operations).
# At EOF: kills (SIGKILL) and reaps any process still parented to it, with a warning.
cat > "$WORK/reaper.py" <<'PY'
import ctypes, os, select, signal, sys, time

PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("reaper: prctl(PR_SET_CHILD_SUBREAPER): " + os.strerror(ctypes.get_errno()))
# Ctrl-C hits the whole process group: survive it, so that the script's cleanup can still use us
signal.signal(signal.SIGINT, signal.SIG_IGN)

orphan_us = 0
orphan_n = 0
reaped = set()          # orphans reaped since the last collect

def cpu_us(ru):
    return round((ru.ru_utime + ru.ru_stime) * 1e6)

def record(pid, ru):
    global orphan_us, orphan_n
    reaped.add(pid)
    orphan_us += cpu_us(ru)
    orphan_n += 1

def reap_nohang():
    """Reap every exited child; return the number of live children left (0 or 1 meaning 'some')."""
    while True:
        try:
            pid, _, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
        if pid == 0:
            return 1
        record(pid, ru)

def reply(s):
    os.write(1, (s + "\n").encode())

def do_run(errfile, argv):
    fa = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
          (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
          (os.POSIX_SPAWN_OPEN, 2, errfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    t0 = time.monotonic_ns()
    try:
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa,
                             setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT), setsigmask=())
    except OSError as e:
        with open(errfile, "a") as f:
            f.write("cannot execute %s: %s\n" % (argv[0], e))
        reply("ok 127 0 0")
        return
    while True:
        p, st, ru = os.wait4(-1, 0)
        if p == pid:
            break
        record(p, ru)
    t1 = time.monotonic_ns()
    reply("ok %d %d %d" % (os.waitstatus_to_exitcode(st), cpu_us(ru), (t1 - t0) // 1000))

def do_waitexit(pid, timeout):
    if pid in reaped:
        return reply("ok")
    reap_nohang()
    if pid in reaped:
        return reply("ok")
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return reply("ok")          # gone, reaped by its own parent (one of ours: counted when that one is reaped)
    try:
        r, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    if not r:
        return reply("timeout")
    try:
        p, _, ru = os.wait4(pid, 0)
        record(p, ru)
    except ChildProcessError:
        pass                        # not our child: its parent reaps it
    reply("ok")

def shutdown():
    me = str(os.getpid())
    for _ in range(50):
        reap_nohang()
        kids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    s = f.read()
            except OSError:
                continue
            if s[s.rindex(")") + 2:].split()[1] == me:
                kids.append(int(d))
        if not kids:
            return
        for k in kids:
            try:
                with open("/proc/%d/cmdline" % k, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
            except OSError:
                cmd = "?"
            sys.stderr.write("warning: leftover process %d (%s); killing it\n" % (k, cmd))
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)

for line in sys.stdin.buffer:
    f = line.decode().rstrip("\n").split("\t")
    if f[0] == "run":
        do_run(f[1], f[2:])
    elif f[0] == "waitexit":
        do_waitexit(int(f[1]), float(f[2]))
    elif f[0] == "collect":
        live = reap_nohang()
        reply("ok %d %d %d" % (orphan_us, orphan_n, live))
        orphan_us = orphan_n = 0
        reaped.clear()
    else:
        reply("error unknown request " + f[0])
shutdown()
PY

coproc REAPER { exec python3 "$WORK/reaper.py"; }
RQ_PID=$REAPER_PID RQ_OUT=${REAPER[1]} RQ_IN=${REAPER[0]}   # bash unsets these when the coprocess ends: keep copies

rq() { # send one request (args joined by tabs), read the reply into RS (status) and RA (fields)
  local IFS=$'\t'
  printf '%s\n' "$*" >&"$RQ_OUT" || { echo "the measuring helper died" >&2; exit 1; }
  IFS=' ' read -r RS RA1 RA2 RA3 <&"$RQ_IN" || { echo "the measuring helper died" >&2; exit 1; }
}

fail_op() { # k what errfile
  local k=$1 what=$2 errf=$3 logf="$WORK/log-${RT_NAME[$1]}.json"
  echo "FAILED: ${RT_NAME[k]} $what" >&2
  echo "--- stderr of ${RT_NAME[k]} ($errf):" >&2
  cat "$errf" >&2 2>/dev/null || true
  if [[ -s $logf ]]; then echo "--- last lines of its --log ($logf):" >&2; tail -n 20 "$logf" >&2; fi
  exit 1
}

op() { # k ARGS... : one runtime command; sets OW (wall us, bash clock), OC (cpu us), OP (wall us, helper clock)
  local k=$1 t0 t1; shift
  local errf=$WORK/stderr-${RT_NAME[k]}
  rt_cmd "$k"
  t0=${EPOCHREALTIME/./}
  rq run "$errf" "${RT_ARGV[@]}" "$@"
  t1=${EPOCHREALTIME/./}
  [[ $RS == ok ]] || { echo "measuring helper: $RS $RA1 $RA2 $RA3" >&2; exit 1; }
  (( RA1 == 0 )) || fail_op "$k" "'$*' (exit status $RA1)" "$errf"
  OW=$((t1 - t0)) OC=$RA2 OP=$RA3
  OVH_SUM=$((OVH_SUM + OW - OP)) OVH_N=$((OVH_N + 1))
}
OVH_SUM=0 OVH_N=0

# Between operations no descendant should exist any more: say so loudly if one does.  Its CPU, when it finally
# exits, cannot be attributed reliably (it goes to whatever operation is running then, or is reported here).
LEAK=0
live_warning() { # what (after a collect)
  if (( RA3 && !LEAK )); then
    echo "warning: a process started by $1 (or earlier) is still alive after it (leaked by the runtime?);" \
         "CPU figures may be off until it exits" >&2
  elif (( !RA3 && LEAK )); then
    echo "warning: the leaked process(es) are gone (seen after $1)" >&2
  fi
  LEAK=$RA3
}
check_collect() { # what (a collect before an operation: should find nothing)
  (( RA2 == 0 )) || echo "warning: $1: $RA2 leftover process(es) exited late; $RA1 us CPU not attributed" >&2
  live_warning "$1"
}

SAMPLES=$WORK/samples.tsv
printf 'runtime\titer\tkind\twall_us\tcpu_us\tcreate_wall_us\tcreate_cpu_us\tstart_wall_us\tstart_cpu_us\twait_wall_us\tdelete_wall_us\tdelete_cpu_us\torphan_cpu_us\torphans\n' > "$SAMPLES"

lifecycle() { # k iter record(0/1)
  local k=$1 i=$2 rec=$3 id="$PREFIX-${RT_NAME[$1]}-l$2" pf="$WORK/pid-${RT_NAME[$1]}" pid=
  local t0 t1 tw0 tw1 cw cc sw sc dw dc
  rq collect; check_collect "before lifecycle $id"
  rm -f "$pf"
  t0=${EPOCHREALTIME/./}
  LIVE[k]=$id
  op "$k" create --bundle "$B" --pid-file "$pf" "$id"; cw=$OW cc=$OC
  op "$k" start "$id"; sw=$OW sc=$OC
  tw0=${EPOCHREALTIME/./}
  read -r pid < "$pf" || [[ -n $pid ]] || fail_op "$k" "create $id wrote no pid file $pf" "$WORK/stderr-${RT_NAME[k]}"
  [[ $pid =~ ^[0-9]+$ ]] || fail_op "$k" "bad pid file content '$pid'" "$WORK/stderr-${RT_NAME[k]}"
  rq waitexit "$pid" 10
  [[ $RS == ok ]] || fail_op "$k" "container process $pid of $id did not exit within 10 s" "$WORK/stderr-${RT_NAME[k]}"
  tw1=${EPOCHREALTIME/./}
  op "$k" delete "$id"; dw=$OW dc=$OC
  t1=${EPOCHREALTIME/./}
  LIVE[k]=
  rq collect                                   # the container process (and any other orphan) of this lifecycle
  live_warning "lifecycle $id"
  (( rec )) || return 0
  printf '%s\t%d\tlifecycle\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n' "${RT_NAME[k]}" "$i" $((t1 - t0)) \
    $((cc + sc + dc + RA1)) "$cw" "$cc" "$sw" "$sc" $((tw1 - tw0)) "$dw" "$dc" "$RA1" "$RA2" >> "$SAMPLES"
}

run_once() { # k iter record(0/1)
  local k=$1 i=$2 rec=$3 id="$PREFIX-${RT_NAME[$1]}-r$2"
  rq collect; check_collect "before run $id"
  LIVE[k]=$id
  op "$k" run --bundle "$B" "$id"
  LIVE[k]=
  rq collect                                   # orphans, if the runtime leaves any behind
  live_warning "run $id"
  (( rec )) || return 0
  printf '%s\t%d\trun\t%d\t%d\t\t\t\t\t\t\t\t%d\t%d\n' "${RT_NAME[k]}" "$i" "$OW" $((OC + RA1)) "$RA1" "$RA2" >> "$SAMPLES"
}

echo "bundle: $B (busybox $BUSYBOX, args /bin/true)" >&2
for k in "${!RT_NAME[@]}"; do
  echo "runtime ${RT_NAME[k]}: ${RT_BIN[k]} ($("${RT_BIN[k]}" --version 2>/dev/null | head -n 1 || true))" >&2
done
echo "N=$N interleaved iterations (+$WARMUP warm-up), each: per runtime one lifecycle + one run" >&2

total=$((WARMUP + N))
for ((it = 0; it < total; it++)); do
  rec=$(( it >= WARMUP ))
  for ((j = 0; j < NRT; j++)); do
    k=$(( (it + j) % NRT ))                    # rotate the order: nobody always goes first
    lifecycle "$k" "$it" "$rec"
    run_once "$k" "$it" "$rec"
  done
  if (( (it + 1) % 10 == 0 )); then echo "  ... $((it + 1))/$total iterations" >&2; fi
done

if [[ -n $RAW_OUT ]]; then cp "$SAMPLES" "$RAW_OUT"; echo "raw samples: $RAW_OUT" >&2; fi
echo "harness overhead per operation (bash wall - helper wall, mean): $((OVH_SUM / OVH_N)) us" >&2

# ---- report -------------------------------------------------------------------------------------------------------
python3 - "$SAMPLES" "${RT_NAME[@]}" <<'PY'
import csv, math, sys
path, names = sys.argv[1], sys.argv[2:]
rows = list(csv.DictReader(open(path), delimiter="\t"))

def col(name, kind, key):
    return [int(r[key]) / 1000.0 for r in rows if r["runtime"] == name and r["kind"] == kind]

def median(v):
    s = sorted(v); n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2

def p90(v):
    s = sorted(v)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]

metrics = [("lifecycle_wall_ms", "lifecycle", "wall_us"), ("lifecycle_cpu_ms", "lifecycle", "cpu_us"),
           ("run_wall_ms", "run", "wall_us"), ("run_cpu_ms", "run", "cpu_us")]
med = {n: {m: median(col(n, k, c)) for m, k, c in metrics} for n in names}
n_samples = len(col(names[0], "lifecycle", "wall_us"))

w = max(8, max(len(n) for n in names))
print()
print("Medians (p90) over %d interleaved iterations, ms; CPU = user+sys of all processes incl. the container" % n_samples)
print("%-*s %20s %20s %20s %20s" % (w, "runtime", "lifecycle wall", "lifecycle cpu", "run wall", "run cpu"))
for n in names:
    cells = ["%8.2f (%8.2f)" % (med[n][m], p90(col(n, k, c))) for m, k, c in metrics]
    print("%-*s %20s %20s %20s %20s" % (w, n, *cells))

print()
print("Lifecycle steps, median ms (wall / cpu); 'container' = CPU of the reaped container process (+ other orphans)")
print("%-*s %15s %15s %8s %15s %10s" % (w, "runtime", "create", "start", "wait", "delete", "container"))
for n in names:
    def m(key): return median(col(n, "lifecycle", key))
    print("%-*s %7.2f / %5.2f %7.2f / %5.2f %8.2f %7.2f / %5.2f %10.2f" % (
        w, n, m("create_wall_us"), m("create_cpu_us"), m("start_wall_us"), m("start_cpu_us"),
        m("wait_wall_us"), m("delete_wall_us"), m("delete_cpu_us"), m("orphan_cpu_us")))

refs = [r for r in ("crun", "runc") if r in names]
if any(n != r for n in names for r in refs):
    print()
    print("Ratios of medians (runtime / reference)")
    print("%-*s %-6s %15s %15s %10s %10s" % (w, "runtime", "vs", "lifecycle wall", "lifecycle cpu", "run wall", "run cpu"))
    for n in names:
        for r in refs:
            if r == n: continue
            q = [med[n][m] / med[r][m] for m, _, _ in metrics]
            print("%-*s %-6s %14.2fx %14.2fx %9.2fx %9.2fx" % (w, n, r, *q))

print()
for n in names:
    print("RESULT runtime=%s n=%d %s" % (n, n_samples, " ".join("%s=%.2f" % (m, med[n][m]) for m, _, _ in metrics)))
for n in names:
    for r in refs:
        if r == n: continue
        q = {m: med[n][m] / med[r][m] for m, _, _ in metrics}
        print("RATIO %s/%s lifecycle_wall %.2fx lifecycle_cpu %.2fx run_wall %.2fx run_cpu %.2fx" % (
            n, r, q["lifecycle_wall_ms"], q["lifecycle_cpu_ms"], q["run_wall_ms"], q["run_cpu_ms"]))
PY
