# Shared helpers for tests/engines/*.sh (sourced, not run).

# Re-exec the calling script as a child subreaper: conmon and containerd's
# shims double-fork, and PID 1 here reaps orphans only about once a second, so
# the orphans are reparented to (and reaped by) this script's bash instead.
bh_subreaper() {
    if [ -z "${BH_ENGINES_SUBREAPER:-}" ]; then
        export BH_ENGINES_SUBREAPER=$$
        exec python3 -c 'import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER): " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])' bash "$@"
    fi
}

bh_note() { printf '[%s] %s\n' "$BH_NAME" "$*" >&2; }
bh_fail() { printf '[%s] FAIL: %s\n' "$BH_NAME" "$*" >&2; exit 1; }
# a failed check after which the remaining checks still make sense
BH_FAILED=0
bh_error() { printf '[%s] FAIL: %s\n' "$BH_NAME" "$*" >&2; BH_FAILED=1; }
# the end of a script: PASS, or exit 1 if a bh_error was reported
bh_done() {
    if [ "$BH_FAILED" = 0 ]; then bh_note "PASS"; else bh_note "FAILED"; exit 1; fi
}

# bh_expect DESCRIPTION EXPECTED ACTUAL
bh_expect() {
    if [ "$2" = "$3" ]; then
        bh_note "ok: $1"
    else
        bh_fail "$1: expected $(printf %q "$2"), got $(printf %q "$3")"
    fi
}

# Unmount everything mounted at or below $1, deepest first.
bh_umount_below() {
    local dir=$1 m
    [ -n "$dir" ] || return 0
    awk -v d="$dir" '{ gsub(/\\040/, " ", $5); if ($5 == d || index($5, d "/") == 1) print $5 }' \
        /proc/self/mountinfo | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}

# Kill the processes whose pids are listed in the given files (if alive).
bh_kill_pidfiles() {
    local f p
    for f in "$@"; do
        [ -f "$f" ] || continue
        p=$(cat "$f" 2>/dev/null) || continue
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
    done
}

# Remove the (empty) cgroup directories NAME (a path below each hierarchy's
# root) and below, in every mounted hierarchy: v1 controllers, cgroup2.
bh_rmdir_cgroups() {
    local name=${1#/} root
    [ -n "$name" ] || return 0
    for root in $(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts); do
        [ -d "$root/$name" ] && find "$root/$name" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    return 0
}
