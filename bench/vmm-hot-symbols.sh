#!/usr/bin/env bash
# bench/vmm-hot-symbols.sh: regenerates Sources/bulkhead-vmm/hot-symbols.txt, the functions that the
# linker places first and together in bulkhead-vmm (Package.swift says why: code pages are mapped
# 64 KiB around every fault, so the monitor's RSS follows how many 64 KiB windows the code it runs
# is spread over). Builds bulkhead-vmm for release, runs a copy without debug info (valgrind cannot
# read Swift's) under valgrind's callgrind, and lists every function symbol that executed, in
# address order, over three runs:
#   1. --api-sock + --config-file, the Ctrl-Alt-Del test guest: GET /, GET /vm/config, GET
#      /machine-config, PUT /actions SendCtrlAltDel, exit (what bench/vmm-start.sh measures);
#   2. --no-api --config-file, the boot test guest, which exits at once;
#   3. run 2 with the seccomp filters: valgrind cannot install them (it does not know seccomp(2)),
#      so the guest does not run, but the code that builds the filters does.
# Run it after changes to the VMM's start-up or run loop and commit the list; a stale list costs
# only locality (the linker ignores names that are gone). Needs valgrind (apt-get install valgrind;
# a developer tool, not part of ./setup.sh), gcc, python3 and a read-write /dev/kvm.
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-} in -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
[[ -r /dev/kvm && -w /dev/kvm ]] || { echo "cannot run: no read-write /dev/kvm" >&2; exit 2; }
swift build -c release --product bulkhead-vmm
WORK=$(mktemp -d /var/tmp/bulkhead-hot.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
GUESTS=Tests/BulkheadVMMTests/Guests
sh "$GUESTS/build-guest.sh" ctrl_alt_del_guest.c "$WORK/ctrl_alt_del.elf"
sh "$GUESTS/build-guest.sh" boot_guest.c "$WORK/boot.elf"
objcopy --strip-debug .build/release/bulkhead-vmm "$WORK/bulkhead-vmm"
cat > "$WORK/api.json" <<JSON
{"boot-source": {"kernel_image_path": "$WORK/ctrl_alt_del.elf"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}
JSON
cat > "$WORK/boot.json" <<JSON
{"boot-source": {"kernel_image_path": "$WORK/boot.elf", "boot_args": "console=ttyS0"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}
JSON
grind() { # NAME ARGS...: one callgrind run with per-instruction addresses
  local name=$1; shift
  timeout 300 valgrind -q --tool=callgrind --dump-instr=yes --callgrind-out-file="$WORK/$name.cg" \
    "$WORK/bulkhead-vmm" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || true
}
api() { python3 bench/unix_http.py "$WORK/api.sock" "$@" > /dev/null; }

grind api --no-seccomp --api-sock "$WORK/api.sock" --config-file "$WORK/api.json" &
pid=$!
for _ in $(seq 600); do grep -q "WAITING FOR CTRL-ALT-DEL" "$WORK/api.out" 2>/dev/null && break; sleep 0.1; done
grep -q "WAITING FOR CTRL-ALT-DEL" "$WORK/api.out" || { echo "run 1: the guest never waited for Ctrl-Alt-Del:" >&2; cat "$WORK/api.err" >&2; exit 1; }
api GET / && api GET /vm/config && api GET /machine-config && api PUT /actions '{"action_type": "SendCtrlAltDel"}'
wait "$pid"
grind boot --no-seccomp --no-api --config-file "$WORK/boot.json"
grep -q CMDLINE "$WORK/boot.out" || { echo "run 2: the boot guest printed nothing:" >&2; cat "$WORK/boot.err" >&2; exit 1; }
grind seccomp --no-api --config-file "$WORK/boot.json"

nm -n -S --defined-only "$WORK/bulkhead-vmm" > "$WORK/symbols"
python3 - "$WORK/symbols" "$WORK"/*.cg > Sources/bulkhead-vmm/hot-symbols.txt <<'PY'
import bisect, sys
# Function symbols by address, with their sizes (nm -S); callgrind's cost lines start with an
# instruction address, absolute (0x...) or relative to the previous one (+n, -n, * for the same).
functions = []
for line in open(sys.argv[1]):
    fields = line.split(None, 3)
    if len(fields) == 4 and fields[2] in "tTwW":
        functions.append((int(fields[0], 16), int(fields[1], 16), fields[3].strip()))
starts = [a for a, _, _ in functions]
hot = set()
for path in sys.argv[2:]:
    last = 0
    for line in open(path):
        if not line or line[0] not in "0123456789+-*":
            continue
        token = line.split()[0]
        if token.startswith("0x"):
            last = int(token, 16)
        elif token[0] in "+-":
            last += int(token)
        elif token != "*":
            continue
        i = bisect.bisect_right(starts, last) - 1
        if i >= 0 and last < functions[i][0] + functions[i][1]:  # not the vDSO or valgrind's own
            hot.add(functions[i])
for _, _, name in sorted(hot):
    print(name)
PY
echo "$(wc -l < Sources/bulkhead-vmm/hot-symbols.txt) functions in Sources/bulkhead-vmm/hot-symbols.txt"
# SwiftPM does not see the list as an input of the link: relink so the release binary uses it.
rm -f .build/release/bulkhead-vmm
swift build -c release --product bulkhead-vmm
