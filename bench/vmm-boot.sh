#!/usr/bin/env bash
# bench/vmm-boot.sh [-n RUNS]: boot-to-init of the stock Debian cloud kernel through bulkhead-vmm
# and through QEMU's -M microvm, the same kernel, initramfs and disk, in the same nested L1 (QEMU's
# software CPU with emulated AMD-V, where /dev/kvm behaves like hardware; this host's own /dev/kvm
# cannot boot a stock kernel). Each VMM boots the kernel twice over: as Debian's bzImage
# (labels bulkhead-vmm, qemu-microvm) and as the ELF vmlinux decompressed from that same bzImage by
# fetch-kernel (bulkhead-vmm-elf: bulkhead-vmm's ELF loader, as Firecracker boots; qemu-microvm-pvh:
# QEMU through the kernel's PVH note); the guest skips its own decompression then. Runs the
# nested-boot harness of the test suite (Tests/BulkheadVMMTests/NestedBoot.swift) with a release
# build of bulkhead-vmm and RUNS measured runs per label after a warm-up, and prints its lines:
# NESTED_RUN (each run), NESTED_RESULT (medians, seconds from the VMM's start to the guest's
# markers, on L1's clock) and NESTED_RATIO (bulkhead-vmm against QEMU on the same file, and the ELF
# boot against QEMU's bzImage boot). L2 gets BULKHEAD_NESTED_VCPUS vCPUs under both VMMs (default 1
# here; the test alone defaults to 2).
# Needs what ./setup.sh test installs (qemu-system-x86, e2fsprogs, cpio, busybox-static); the kernel
# is fetched once into /var/tmp/bulkhead-kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=5
while getopts ':n:h' opt; do
  case $opt in
    n) RUNS=$OPTARG ;;
    *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
[[ $RUNS =~ ^[0-9]+$ ]] || { echo "-n takes a number of runs" >&2; exit 2; }
swift build -c release --product bulkhead-vmm
swift build --build-tests
echo "load at start: $(uptime)"
BULKHEAD_NESTED_VCPUS=${BULKHEAD_NESTED_VCPUS:-1} BULKHEAD_NESTED_RUNS=$RUNS BULKHEAD_NESTED_VMM="$PWD/.build/release/bulkhead-vmm" \
  swift test --skip-build --filter NestedBootTests 2>&1 | grep -E '^NESTED_|✘|passed after|failed after'
echo "load at end: $(uptime)"
