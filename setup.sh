#!/usr/bin/env bash
# Bulkhead set-up, for a fresh Debian or Ubuntu machine, as root. Each command installs what it
# needs first (Debian packages, then a build with the Swift toolchain), then:
#   ./setup.sh demo   runs a busybox container with bulkhead-runtime and prints what it sees inside
#   ./setup.sh test   runs the whole test suite (unit tests, and as root the container and KVM tests)
set -euo pipefail
cd "$(dirname "$0")"

# The Swift toolchain: on PATH, or where this kind of machine keeps it.
if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
  export PATH=$PATH:/opt/swift/usr/bin
fi

# busybox-static: the rootfs of the demo and test containers. gcc: the VMM tests build their
# freestanding guests with it. libc6-dev: headers of the C target. libseccomp-dev: libseccomp.a and
# seccomp.h, which compile config.json's seccomp rules (linked statically into the runtime).
# acpica-tools: iasl, which the VMM tests use to disassemble the ACPI tables the VMM builds.
# uidmap: newuidmap/newgidmap, through which a user maps id ranges into a rootless container.
# iproute2: the virtio-net test makes a private network namespace with ip.
# cpio: the initramfs tests read the archives back with it. qemu-system-x86 and e2fsprogs: the
# nested-boot test runs L1 under QEMU's software CPU and gives L2 an ext4 disk (about 1-2 minutes).
PACKAGES=(busybox-static gcc libc6-dev libseccomp-dev acpica-tools uidmap iproute2 cpio e2fsprogs qemu-system-x86)

# The test command also runs the runtime under private podman and containerd daemons
# (tests/engines), as engines would; python3 builds their busybox image.
ENGINE_PACKAGES=(podman conmon containerd python3)

install_packages() { # [EXTRA PACKAGE...]
  local missing=()
  for p in "${PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  command -v swift >/dev/null 2>&1 || { echo "setup: the Swift toolchain (swift) is not installed" >&2; exit 1; }
}

# A bundle whose rootfs is the distribution's static busybox with its applets.
make_bundle() { # DIR
  local dir=$1
  rm -rf "$dir"
  mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp"
  cp /bin/busybox "$dir/rootfs/bin/busybox"
  for applet in $("$dir/rootfs/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$dir/rootfs/bin/$applet"
  done
}

demo() {
  install_packages
  swift build -c release --product bulkhead-runtime
  local runtime=$PWD/.build/release/bulkhead-runtime
  local bundle=/var/tmp/bulkhead-demo
  make_bundle "$bundle"
  # A container named bulkhead-demo in its own namespaces, with a 64 MiB memory limit and at most
  # 64 processes, running a script that reports what it sees from inside.
  cat > "$bundle/config.json" <<'CONFIG'
{
  "ociVersion": "1.2.0",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": ["sh", "-c", "echo 'Hello from a Bulkhead container'; echo \"  hostname:      $(hostname)\"; echo \"  my pid:        $$ (PID 1 of its own pid namespace)\"; echo \"  user:          $(id)\"; if [ -f /sys/fs/cgroup/memory.max ]; then m=$(cat /sys/fs/cgroup/memory.max); p=$(cat /sys/fs/cgroup/pids.max); else m=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); p=$(cat /sys/fs/cgroup/pids/pids.max); fi; echo \"  memory limit:  $m bytes\"; echo \"  process limit: $p\"; echo \"  root is read-only: $(touch /probe 2>/dev/null && echo no || echo yes)\""],
    "env": ["PATH=/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "bulkhead-demo",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] },
    { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"] }
  ],
  "linux": {
    "resources": {
      "devices": [{ "allow": false, "access": "rwm" }],
      "memory": { "limit": 67108864 },
      "pids": { "limit": 64 }
    },
    "namespaces": [
      { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }
    ]
  }
}
CONFIG
  echo "setup: running $runtime run --bundle $bundle bulkhead-demo-$$" >&2
  "$runtime" run --bundle "$bundle" "bulkhead-demo-$$"
}

run_tests() {
  install_packages "${ENGINE_PACKAGES[@]}"
  swift build --build-tests
  local log engines=0
  log=$(mktemp)
  set +e
  # podman and containerd through the runtime just built (each says PASS or FAIL and why).
  tests/engines/run-all.sh "$PWD/.build/debug/bulkhead-runtime" || engines=$?
  # Swift Testing prints a line per skipped test with its reason; count them so a skip is never
  # taken for a pass.
  swift test --skip-build 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  set -e
  local skipped
  skipped=$(grep -c " skipped" "$log" || true)
  echo "setup: engine tests exited with $engines; swift test exited with $status; $skipped tests skipped (reasons above)"
  rm -f "$log"
  [[ $engines == 0 ]] || return "$engines"
  return "$status"
}

case ${1:-} in
  demo) demo ;;
  test) run_tests ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
