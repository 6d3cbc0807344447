#!/bin/sh
# Builds the libFuzzer target for bulkhead-vmm's guest-facing virtio code and runs it over the
# corpus in fuzz/corpus/virtqueue. SwiftPM cannot link a libFuzzer executable, so the sources are
# compiled here with swiftc as one module (BulkheadVMM) plus the fuzz entry point.
#
#   fuzz/run.sh [SECONDS]          fuzz for SECONDS (default 60), then print the execution count
#   RUNS=N fuzz/run.sh             stop after N executions instead
#   fuzz/run.sh --regress          only replay the corpus (every seed must run clean)
#
# New inputs found while fuzzing go to $WORK/new (not the repository corpus); crashes to
# $WORK/crash-*. Keep a crashing input as a regression seed in fuzz/corpus/virtqueue once fixed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
WORK=${WORK:-${TMPDIR:-/tmp}/bulkhead-fuzz}
SWIFTC=${SWIFTC:-swiftc}
mkdir -p "$WORK/new" "$WORK/module"

# The guest-facing code and what it needs; none of it touches KVM at run time.
vmm="$root/Sources/BulkheadVMM"
sources="Virtqueue VirtioBlock VirtioDevice VirtioMMIOTransport MMIOBus InterruptLine GuestMemory
         VMMError ELFKernel ACPITable VirtualMachine KVMSystem VCPU Registers CPUID BootLayout
         ThreadLock DeviceEventLoop"
files=""
for s in $sources; do files="$files $vmm/$s.swift"; done

# CBulkhead's headers as a clang module (SwiftPM generates this map for the package build).
cat > "$WORK/module/module.modulemap" <<MAP
module CBulkhead {
    header "$root/Sources/CBulkhead/include/cbulkhead.h"
    header "$root/Sources/CBulkhead/include/cbulkhead_kvm.h"
    export *
}
MAP

binary="$WORK/virtqueue-fuzzer"
newest=$(ls -t $files "$here/VirtqueueFuzzer.swift" "$0" "$binary" 2>/dev/null | head -1)
if [ "$newest" != "$binary" ]; then
    echo "building $binary"
    "$SWIFTC" -sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6 \
        -module-name BulkheadVMM -Xcc -D_GNU_SOURCE \
        -Xcc -fmodule-map-file="$WORK/module/module.modulemap" -I "$root/Sources/CBulkhead/include" \
        $files "$here/VirtqueueFuzzer.swift" -o "$binary" 2>"$WORK/build.log" \
        || { cat "$WORK/build.log" >&2; exit 1; }
fi

# libFuzzer and ASan report a crash; Swift's own backtracer would only add noise (under ASan it
# reads freed memory of the fuzzer itself).
export SWIFT_BACKTRACE=enable=no
corpus="$here/corpus/virtqueue"
log="$WORK/fuzz.log"
if [ "${1:-}" = "--regress" ]; then
    "$binary" -runs=0 "$corpus" 2>&1 | tee "$log" | tail -3
    exit 0
fi
seconds=${1:-60}
limit="-max_total_time=$seconds"
if [ -n "${RUNS:-}" ]; then limit="-runs=$RUNS"; fi
# -max_len: a header, up to 63 operations, and enough guest memory for a 256-entry queue.
set +e
"$binary" $limit -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$WORK/" "$WORK/new" "$corpus" >"$log" 2>&1
status=$?
set -e
tail -25 "$log" | grep -E "stat::|Done|ERROR|SUMMARY|crash-|Test unit" || true
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
if [ $status -eq 0 ]; then
    echo "clean: ${runs:-?} executions without a crash (log: $log)"
else
    echo "FAILED (status $status) after ${runs:-?} executions; see $log and $WORK/crash-*" >&2
fi
exit $status
