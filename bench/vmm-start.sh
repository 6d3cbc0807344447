#!/usr/bin/env bash
# bench/vmm-start.sh [-n RUNS] [-w WARMUP]: start-up of a release bulkhead-vmm, beside QEMU's microvm.
#
#   api-ready   process start until the API answers: bulkhead-vmm --api-sock S until the first
#               GET / is answered with HTTP 200; QEMU (qemu-system-x86_64 -M microvm -nodefaults
#               -no-user-config -display none -S -qmp unix:S,server=on,wait=off) until its QMP
#               greeting. Interleaved, RUNS each; medians and the ratio bulkhead-vmm/QEMU.
#   vm-per-s    sequential microVMs: bulkhead-vmm --no-api --config-file, a freestanding test guest
#               (Tests/BulkheadVMMTests/Guests/boot_guest.c: prints its e820 map and command line
#               and resets at once), process start to exit, RUNS times; VMs per second over the
#               whole sequence and the median time of one; then one such loop per online CPU at
#               once (what the host starts per second).
#   memory      the monitor's own memory: RSS minus the guest RAM mapping's resident pages, 1 vCPU,
#               128 MiB, the Ctrl-Alt-Del test guest running idle (waiting for its key), from
#               /proc/PID/smaps; also what of it is file-backed (the binary's pages).
#
# Defaults: RUNS=20, WARMUP=2 (not recorded). Each figure is printed with the load average at that
# moment (2 shared cores here: compare runs only at similar load). Needs what ./setup.sh test
# installs: gcc (the guests, built by Guests/build-guest.sh), python3, qemu-system-x86 (for the
# comparison; skipped if missing), and read-write /dev/kvm for vm-per-s and memory (skipped,
# saying so, without it). Ends with RESULT lines. Work files go to a temp dir under /var/tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=20
WARMUP=2
while getopts ':n:w:h' opt; do
  case $opt in
    n) RUNS=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; [[ $opt == h ]] && exit 0; exit 2 ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "-n takes a positive number of runs" >&2; exit 2; }
[[ $WARMUP =~ ^[0-9]+$ ]] || { echo "-w takes a number of warm-up runs" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is needed (./setup.sh test installs it)" >&2; exit 2; }

swift build -c release --product bulkhead-vmm
VMM=$PWD/.build/release/bulkhead-vmm
WORK=$(mktemp -d /var/tmp/bulkhead-vmm-start.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

KVM=yes
if [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
  KVM=no
  echo "NOTE: no read-write /dev/kvm: vm-per-s and memory cannot run; api-ready only" >&2
fi
if [[ $KVM == yes ]]; then
  command -v gcc >/dev/null || { echo "gcc is needed to build the test guests (./setup.sh test installs it)" >&2; exit 2; }
  sh Tests/BulkheadVMMTests/Guests/build-guest.sh boot_guest.c "$WORK/boot.elf"
  sh Tests/BulkheadVMMTests/Guests/build-guest.sh ctrl_alt_del_guest.c "$WORK/ctrl_alt_del.elf"
fi
QEMU=$(command -v qemu-system-x86_64 || true)
[[ -n $QEMU ]] || echo "NOTE: qemu-system-x86_64 not found: api-ready without the QEMU comparison" >&2

echo "bulkhead-vmm: $VMM ($(stat -c %s "$VMM") bytes)"
[[ -n $QEMU ]] && echo "qemu: $QEMU ($("$QEMU" --version | head -n 1))"
echo "runs=$RUNS warmup=$WARMUP kvm=$KVM"
echo "load at start: $(uptime)"
PYTHONPATH=bench python3 - "$VMM" "${QEMU:-}" "$WORK" "$RUNS" "$WARMUP" "$KVM" <<'PY'
import concurrent.futures, os, signal, socket, statistics, subprocess, sys, time
import unix_http

vmm, qemu, work, runs, warmup, kvm = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "yes"
results = []

def load():
    return "load %.2f %.2f %.2f" % os.getloadavg()

def spawn(argv, out=subprocess.DEVNULL, err=subprocess.DEVNULL):
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)

def stop(p):
    if p.poll() is None:
        p.kill()  # our own child, by its pid
    p.wait()

def poll_until(deadline_s, attempt):
    """Calls attempt() every 0.1 ms until it returns true; False at the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if attempt():
            return True
        time.sleep(0.0001)
    return False

def time_until_ready(argv, sock, ready, failure):
    """Milliseconds from spawning argv until ready() (polled); the process is stopped after."""
    t0 = time.monotonic_ns()
    p = spawn(argv)
    ok = poll_until(10, ready)
    t1 = time.monotonic_ns()
    stop(p)
    if os.path.exists(sock):
        os.unlink(sock)
    if not ok:
        sys.exit(failure)
    return (t1 - t0) / 1e6

def vmm_api_ready(i):
    sock = f"{work}/vmm-{i}.sock"
    def answered():
        try:
            return unix_http.request(sock, "GET", "/", timeout=2)[0] == 200
        except OSError:
            return False
    return time_until_ready([vmm, "--api-sock", sock, "--id", "bench"], sock, answered,
                            "bulkhead-vmm never answered GET / on its API socket")

def qemu_qmp_ready(i):
    sock = f"{work}/qemu-{i}.qmp"
    def greeted():
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(sock)
                data = b""
                while b"\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        return False
                    data += chunk
                return data.startswith(b'{"QMP"')
        except OSError:
            return False
    return time_until_ready([qemu, "-M", "microvm", "-nodefaults", "-no-user-config", "-display", "none", "-S",
                             "-qmp", f"unix:{sock},server=on,wait=off"], sock, greeted,
                            "QEMU never sent its QMP greeting")

def median(v):
    return statistics.median(v)

# --- api-ready, interleaved ---------------------------------------------------------------------
contenders = [("bulkhead-vmm", vmm_api_ready)] + ([("qemu-microvm", qemu_qmp_ready)] if qemu else [])
samples = {name: [] for name, _ in contenders}
for it in range(warmup + runs):
    order = contenders if it % 2 == 0 else contenders[::-1]
    for name, measure in order:
        ms = measure(it)
        if it >= warmup:
            samples[name].append(ms)
print()
print("api-ready: process start until the API answers (ms), %d runs each, interleaved" % runs)
for name, v in samples.items():
    print("  %-13s median %7.2f  min %7.2f  max %7.2f   (%s)" % (name, median(v), min(v), max(v), load()))
    results.append(f"RESULT bench=api-ready vmm={name} runs={runs} median_ms={median(v):.2f}")
if qemu:
    ratio = median(samples["bulkhead-vmm"]) / median(samples["qemu-microvm"])
    print("  ratio bulkhead-vmm/qemu-microvm %.3f" % ratio)
    results.append(f"RATIO bench=api-ready bulkhead-vmm/qemu-microvm={ratio:.3f}")

if kvm:
    # --- vm-per-s -------------------------------------------------------------------------------
    config = f"{work}/boot.json"
    with open(config, "w") as f:
        f.write('{"boot-source": {"kernel_image_path": "%s/boot.elf", "boot_args": "console=ttyS0"},'
                ' "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}' % work)
    def one_vm():
        t0 = time.monotonic_ns()
        p = subprocess.run([vmm, "--no-api", "--config-file", config], stdin=subprocess.DEVNULL,
                           capture_output=True)
        t1 = time.monotonic_ns()
        if p.returncode != 0 or b"CMDLINE console=ttyS0" not in p.stdout:
            sys.exit("the boot guest did not run to its reset (exit %d): %s" % (p.returncode, p.stderr.decode()[-500:]))
        return (t1 - t0) / 1e6
    for _ in range(warmup):
        one_vm()
    t0 = time.monotonic_ns()
    times = [one_vm() for _ in range(runs)]
    total_s = (time.monotonic_ns() - t0) / 1e9
    print()
    print("vm-per-s: sequential bulkhead-vmm --no-api --config-file, boot guest that resets at once, %d runs" % runs)
    print("  %.1f VMs/s  median %.2f ms  min %.2f  max %.2f   (%s)" % (runs / total_s, median(times), min(times), max(times), load()))
    results.append(f"RESULT bench=vm-per-s runs={runs} vms_per_s={runs / total_s:.1f} median_ms={median(times):.2f}")
    # The same with one sequential loop per online CPU at once: what the host starts per second
    # (Firecracker's "150 microVMs per second per host" is this kind of figure).
    jobs = os.cpu_count() or 1
    t0 = time.monotonic_ns()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        parallel = [t for ts in pool.map(lambda _: [one_vm() for _ in range(runs)], range(jobs)) for t in ts]
    total_s = (time.monotonic_ns() - t0) / 1e9
    print("  %d loops at once (one per CPU): %.1f VMs/s  median %.2f ms   (%s)" % (jobs, len(parallel) / total_s, median(parallel), load()))
    results.append(f"RESULT bench=vm-per-s-parallel loops={jobs} runs={len(parallel)} vms_per_s={len(parallel) / total_s:.1f} median_ms={median(parallel):.2f}")

    # --- memory ---------------------------------------------------------------------------------
    guest_mib = 128
    config = f"{work}/idle.json"
    with open(config, "w") as f:
        f.write('{"boot-source": {"kernel_image_path": "%s/ctrl_alt_del.elf"},'
                ' "machine-config": {"vcpu_count": 1, "mem_size_mib": %d}}' % (work, guest_mib))
    sock = f"{work}/mem.sock"
    # The child writes through its own open file: seeking a shared one to read it back would
    # move the child's write offset too (seen: the guest's line overwritten, never found).
    out = open(f"{work}/mem.out", "wb")
    err = open(f"{work}/mem.err", "w+b")
    p = spawn([vmm, "--api-sock", sock, "--config-file", config], out=out, err=err)
    def waiting():
        with open(f"{work}/mem.out", "rb") as f:
            return b"WAITING FOR CTRL-ALT-DEL" in f.read() or p.poll() is not None
    if not poll_until(60, waiting) or p.poll() is not None:
        for task in sorted(os.listdir(f"/proc/{p.pid}/task")) if p.poll() is None else []:
            def read(name):
                try:
                    with open(f"/proc/{p.pid}/task/{task}/{name}") as f:
                        return f.read().strip()
                except OSError:
                    return "?"
            print(f"  thread {task} {read('comm')}: {read('stat').split(') ')[-1][:1]} in {read('wchan')}", file=sys.stderr)
        stop(p)
        err.seek(0)
        sys.exit("the Ctrl-Alt-Del guest never started waiting (exit %s); bulkhead-vmm said: %s"
                 % (p.returncode, err.read().decode(errors="replace")[-800:]))
    time.sleep(1)
    # smaps: the guest RAM is the anonymous mapping of exactly guest_mib; the rest is the monitor's.
    rss = guest = file_backed = 0
    mapping = None
    with open(f"/proc/{p.pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                mapping = (hi - lo, len(fields) > 5, fields[5] if len(fields) > 5 else "")
            elif fields[0] == "Rss:":
                kib = int(fields[1])
                rss += kib
                size, named, name = mapping
                if size == guest_mib << 20 and not named:
                    guest += kib
                elif named and name.startswith("/"):
                    file_backed += kib
    unix_http.request(sock, "PUT", "/actions", '{"action_type": "SendCtrlAltDel"}')
    p.wait(timeout=60)
    out.close()
    own = rss - guest
    print()
    print("memory: the monitor's own RSS (outside guest RAM), 1 vCPU, %d MiB, idle guest" % guest_mib)
    print("  %d KiB = %.2f MiB (of it file-backed %d KiB; guest RAM resident %d KiB)   (%s)" % (own, own / 1024, file_backed, guest, load()))
    results.append(f"RESULT bench=memory guest_mib={guest_mib} own_rss_kib={own} file_backed_kib={file_backed}")
print()
for r in results:
    print(r)
PY
echo "load at end: $(uptime)"
