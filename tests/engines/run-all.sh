#!/bin/bash
# Run every engine test (podman, containerd) against RUNTIME_BIN.
# The last line is "N passed, M failed"; the exit status is non-zero if any
# failed. An engine that cannot run here (not installed, refused by the
# machine) counts as failed, with the reason printed.
#
# usage: tests/engines/run-all.sh RUNTIME_BIN
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 RUNTIME_BIN" >&2; exit 2; }
RUNTIME=$1

passed=0 failed=0 summary=()
for engine in podman containerd; do
    log=$(mktemp /tmp/bulkhead-engine-log.XXXXXX)
    start=$EPOCHREALTIME
    if [ "$(id -u)" != 0 ]; then
        echo "[$engine] FAIL: needs root (private daemons, mounts, cgroups)" > "$log"
        rc=1
    else
        "$HERE/$engine.sh" "$RUNTIME" > "$log" 2>&1 </dev/null
        rc=$?
    fi
    secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    cat "$log"
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        summary+=("PASS $engine (${secs}s)")
    else
        failed=$((failed + 1))
        reason=$(grep -a -m1 -o 'FAIL: .*' "$log" | sed 's/^FAIL: //')
        more=$(grep -a -c 'FAIL: ' "$log")
        [ "$more" -gt 1 ] && reason="$reason (and $((more - 1)) more failed check(s) above)"
        summary+=("FAIL $engine (${secs}s, exit $rc): ${reason:-see the output above}")
    fi
    rm -f "$log"
done
echo
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
