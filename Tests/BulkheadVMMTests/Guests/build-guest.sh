#!/bin/sh
# build-guest.sh SOURCE.c OUT.elf [LINKER_SCRIPT [EXTRA_SOURCE...]]: compiles a freestanding test
# guest (boot_entry.S + SOURCE, which defines guest_main, + any EXTRA_SOURCE) into an ELF, linked by
# LINKER_SCRIPT (default boot_guest.ld: at 1 MiB like a vmlinux; bzimage_guest.ld: a bzImage's
# protected-mode kernel). Sources and the linker script are looked up beside this file. The tests
# (TestSupport.swift), bench/vmm-start.sh and Sources/bulkhead-vmm/hot-symbols.sh all build their
# guests here.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
source=$1 out=$2 script=${3:-boot_guest.ld}
shift 2
[ $# -gt 0 ] && shift
extra=
for f in "$@"; do extra="$extra $dir/$f"; done
# Kernel-mode code at fixed addresses: no PIC/PIE, no stack protector (no TLS), no unwind tables,
# and no SSE/AVX (this host's PVM /dev/kvm kills guests that use them in kernel mode).
# shellcheck disable=SC2086 # $extra is a list of paths without spaces
exec gcc -ffreestanding -nostdlib -mgeneral-regs-only -mno-red-zone -static -O2 \
  -fno-pic -fno-pie -no-pie -fno-stack-protector -fno-asynchronous-unwind-tables \
  -Wall -Wextra -Werror \
  -Wl,-T,"$dir/$script" -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
  -o "$out" -I "$dir" "$dir/boot_entry.S" "$dir/$source" $extra
