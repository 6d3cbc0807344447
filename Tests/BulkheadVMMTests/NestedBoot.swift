import Glibc
@testable import BulkheadVMM

/// The nested-boot harness: boots Debian's stock cloud kernel through bulkhead-vmm on a real KVM
/// even where /dev/kvm cannot run a stock kernel (PVM, as on these machines).
///
/// L0 (this machine) runs L1 = the Debian kernel under `qemu-system-x86_64 -accel tcg -cpu max`:
/// QEMU's software CPU emulates AMD-V, so L1 loads kvm_amd and has a hardware-like /dev/kvm. L1's
/// initramfs (built here with `Initramfs`) holds busybox, kvm/kvm_amd, the static bulkhead-vmm, and
/// the L2 files: the same kernel, an initramfs whose init loads virtio_mmio + virtio_blk, prints
/// BULKHEAD-BOOTED, mounts the ext4 disk (mke2fs -d) and prints its marker, then reboots (reboot=k,
/// the i8042 reset line ends the VMM), and a Firecracker config file. L1's init runs
/// `bulkhead-vmm --no-api --config-file`, and, for comparison, QEMU's microvm on the same L2 files
/// (QEMU and its libraries copied in by ldd), and stamps each L2 console line with L1's uptime.
struct NestedBoot {
    static let bootedMarker = "BULKHEAD-BOOTED"
    static let diskMarker = "BULKHEAD-DISK-MARKER-7f3a"

    /// Free L1 memory written over before each run (twice an L2's RAM, see l1Init).
    static let scrubMiB = 512

    /// The L2 kernel command line, the same for both VMMs. No RTC in either (cmos_init would
    /// probe for ~3 s), reset through the i8042. Not i8042.nopnp: on a hardware-reduced ACPI
    /// platform Linux has no legacy IRQs, so the i8042 driver gets its interrupt only from the
    /// DSDT's PNP0303 device through PNP (with nopnp it asks for IRQ 1, which does not exist:
    /// "probe of i8042 failed with error -22").
    static let l2Append = "console=ttyS0 loglevel=4 reboot=k panic=-1 tsc=reliable no_timer_check i8042.noaux i8042.nomux "
        + "i8042.dumbkbd random.trust_cpu=on mitigations=off initcall_blacklist=cmos_init"

    var kernel: GuestKernel
    var vmm: String
    var busybox = "/bin/busybox"
    var qemu = findInPath("qemu-system-x86_64") ?? "qemu-system-x86_64"
    /// Runs of each L2 VMM inside the one L1 boot, after one warm-up.
    var runs = 1
    var l2Timeout = 240
    var withQEMUMicrovm = true
    var extraAppend = ""
    /// The L2 initramfs as stored-block gzip instead of plain cpio (the kernel takes both).
    var gzipInitramfs = false
    /// vCPUs of L2, under both VMMs (L1 itself has one).
    var vcpus = 1
    /// L2's init prints its whole kernel log after the markers.
    var l2Dmesg = false
    /// Also boot the ELF vmlinux extracted from the same bzImage (`GuestKernel.vmlinux`): through
    /// bulkhead-vmm's ELF loader as Firecracker does ("bulkhead-vmm-elf") and through QEMU
    /// microvm's PVH entry ("qemu-microvm-pvh"). The guest then skips its own decompression.
    var withVmlinux = true

    struct Run {
        var label: String
        var startUptime: Double
        var lines: [(uptime: Double, text: String)]
        var exitStatus: Int?
        var endUptime: Double?
        func seconds(toLineContaining marker: String) -> Double? {
            lines.first { $0.text.contains(marker) }.map { $0.uptime - startUptime }
        }
    }

    struct Result {
        var l1Log: String
        var l1Seconds: Double
        var l1KVM: Bool
        var runs: [Run]
        func runs(_ label: String) -> [Run] { runs.filter { $0.label == label } }
    }

    static let l2Init = """
        #!/bin/sh
        export PATH=/bin
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        echo BULKHEAD-INIT
        while read -r m; do insmod "/lib/modules/$(uname -r)/$m" || echo "BULKHEAD-ERR insmod $m"; done < /etc/modules
        echo \(bootedMarker)
        echo "BULKHEAD-CPUS online=$(cat /sys/devices/system/cpu/online)"
        # The kernel's i8042 lines are below the console loglevel: show them for the test.
        dmesg | grep -E 'i8042[: ]|serio' | sed 's/^/BULKHEAD-DMESG /'
        i=0
        while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        mkdir -p /mnt
        if mount -t ext4 -o ro /dev/vda /mnt; then echo "BULKHEAD-DISK $(cat /mnt/marker)"
        else echo "BULKHEAD-DISK-FAILED devices: $(ls /sys/bus/virtio/devices 2>&1)"; dmesg | tail -20; fi
        # The network (bulkhead-vmm's run has a virtio-net device on a TAP that L1 gives 10.0.2.1).
        if [ -e /sys/class/net/eth0 ]; then
          ip link set eth0 up && ip addr add 10.0.2.2/24 dev eth0
          if ping -c 1 -W 3 10.0.2.1 >/dev/null 2>&1; then echo "BULKHEAD-NET ok $(cat /sys/class/net/eth0/address)"
          else echo "BULKHEAD-NET-FAILED"; fi
        else
          echo "BULKHEAD-NET none"
        fi
        # Console input (the 8250's receive interrupt): L1 types a line once it sees READY.
        echo BULKHEAD-CONSOLE-READY
        if read -r -t 20 line; then echo "BULKHEAD-CONSOLE got=$line"; else echo "BULKHEAD-CONSOLE-FAILED"; fi
        # vsock (bulkhead-vmm's run has a virtio-vsock device, id 0x0013): one stream each way with L1.
        if grep -qx 0x0013 /sys/bus/virtio/devices/*/device 2>/dev/null; then
          echo "BULKHEAD-VSOCK-OUT $(vsock-probe connect-vsock 2 5000 from-L2 2>&1)"
          echo "BULKHEAD-VSOCK-IN $(vsock-probe listen-vsock 6000 2>&1)"
        else
          echo "BULKHEAD-VSOCK none"
        fi
        # BULKHEAD_NESTED_DMESG=1: the whole kernel log, after the markers (for timelines).
        [ @DMESG@ = 1 ] && dmesg | sed 's/^/BULKHEAD-DMESG /'
        # reboot -f does not wait for the tty to drain: give the last line time to leave.
        sleep 0.5
        reboot -f

        """

    /// L1's /init. `@RUNS@` etc. are filled in by `l1Initramfs`. QEMU's microvm has no keyboard
    /// controller: with reboot=k its L2 went on to the BIOS and triple-fault methods and QEMU
    /// exited 30-35 s after "reboot: Restarting system" (measured), so it gets reboot=t (the last
    /// reboot= wins); nothing else in the command line differs.
    static let l1Init = """
        #!/bin/sh
        export PATH=/bin:/usr/bin LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        mount -t tmpfs tmpfs /tmp
        echo "L1-INIT $(cut -d' ' -f1 /proc/uptime)"
        while read -r m; do insmod "/lib/modules/$(uname -r)/$m" || echo "L1-ERR insmod $m"; done < /etc/modules
        if [ -c /dev/kvm ]; then echo "L1-KVM yes"; else echo "L1-KVM no"; fi
        # The VMM's stdin is a FIFO (held open read-write, so never at end of file) into which
        # awk types a line for L2's console once L2 prints BULKHEAD-CONSOLE-READY.
        run() { # LABEL CMD...
          label=$1; shift
          # Each run starts with L1 memory that QEMU's software CPU (L0) holds no translated code
          # for: L1 writes over @SCRUB_MIB@ MiB of free pages (a tmpfs file, removed), which the
          # next VM then gets first. A page that held code L0 translated (the last L2's kernel) is
          # slow to write until L0 drops those translations, so without this every run after the
          # first paid ~1 s more, for both VMMs (measured: bulkhead-vmm's warm-up 2.8 s, its later
          # runs 3.8-4.0 s, QEMU's 4.1-4.6 s; with this, 2.2-2.8 s for both).
          dd if=/dev/zero of=/tmp/scrub bs=1M count=@SCRUB_MIB@ 2>/dev/null; rm -f /tmp/scrub
          rm -f /tmp/console; mkfifo /tmp/console; exec 3<>/tmp/console
          echo "L1-RUN-START $label $(cut -d' ' -f1 /proc/uptime)"
          { timeout @TIMEOUT@ "$@" <&3; echo "L2-EXIT $?"; } 2>&1 | awk -v L="$label" \\
            '{ getline u < "/proc/uptime"; close("/proc/uptime"); split(u, a, " "); print "L2|" L "|" a[1] "|" $0; fflush() }
             /BULKHEAD-CONSOLE-READY/ { print "typed-in-L1" > "/tmp/console"; close("/tmp/console") }'
          exec 3<&-
          echo "L1-RUN-END $label $(cut -d' ' -f1 /proc/uptime)"
        }
        APPEND='@APPEND@'
        i=0
        vmm() { # LABEL CONFIG
          # The TAP appears when bulkhead-vmm opens it: give it L1's address once it exists.
          ( j=0; while [ ! -e /sys/class/net/bhtap0 ] && [ $j -lt 200 ]; do sleep 0.05; j=$((j + 1)); done
            ip addr add 10.0.2.1/24 dev bhtap0 && ip link set bhtap0 up ) &
          # vsock: L1 listens where L2's connection to port 5000 lands, and connects to L2's port 6000.
          rm -f /tmp/v.sock /tmp/v.sock_5000
          vsock-probe listen-unix /tmp/v.sock_5000 > /dev/null 2>&1 &
          vsock-probe connect-unix /tmp/v.sock 6000 from-L1 > /dev/null 2>&1 &
          run "$1" /bin/bulkhead-vmm --no-api --config-file "$2"
        }
        qemu() { # LABEL KERNEL
          run "$1" /usr/bin/qemu-system-x86_64 -L /usr/share/qemu -accel kvm -cpu host -m 256 -smp @VCPUS@ \
            -M microvm,acpi=on,pit=off,pic=off,rtc=off,isa-serial=on -nodefaults -no-user-config -nographic \
            -serial stdio -no-reboot -kernel "$2" -initrd /l2/initramfs.cpio -append "$APPEND reboot=t" \
            -drive id=d,file=/l2/disk.ext4,format=raw,if=none,readonly=on -device virtio-blk-device,drive=d
        }
        while [ $i -le @RUNS@ ]; do
          vmm bulkhead-vmm /l2/vm.json
          [ -e /l2/vmlinux ] && vmm bulkhead-vmm-elf /l2/vm-elf.json
          if [ -x /usr/bin/qemu-system-x86_64 ]; then
            qemu qemu-microvm /l2/vmlinuz
            # The same vmlinux through its PVH entry note (QEMU's pvh.bin option ROM).
            [ -e /l2/vmlinux ] && qemu qemu-microvm-pvh /l2/vmlinux
            [ $i = 0 ] && ! [ -e /usr/share/qemu/bios-microvm.bin ] && echo "L1-ERR no microvm firmware"
          fi
          i=$((i + 1))
        done
        echo "L1-DONE $(cut -d' ' -f1 /proc/uptime)"
        poweroff -f

        """

    /// busybox and a symlink per applet under bin/.
    static func addBusybox(_ archive: inout Initramfs, from busybox: String) throws {
        try archive.addHostFile("bin/busybox", from: busybox)
        for applet in try shellOutput("'\(busybox)' --list").split(separator: "\n") where applet != "busybox" {
            try archive.addSymlink("bin/\(applet)", target: "busybox")
        }
        try archive.addCharacterDevice("dev/console", major: 5, minor: 1)
        try archive.addCharacterDevice("dev/null", major: 1, minor: 3, permissions: 0o666)
        for d in ["proc", "sys", "tmp", "mnt", "etc"] { try archive.addDirectory(d) }
    }

    static func addModules(_ archive: inout Initramfs, kernel: GuestKernel, names: [String]) throws {
        let paths = try kernel.modulePaths(names)
        for p in paths {
            try archive.addHostFile("lib/modules/\(kernel.release)/\(p)", from: "\(kernel.modulesDirectory)/\(p)")
        }
        try archive.addFile("etc/modules", text: paths.joined(separator: "\n") + "\n")
    }

    func l2Initramfs(vsockProbe: String) throws -> Initramfs {
        var a = Initramfs()
        try Self.addBusybox(&a, from: busybox)
        try Self.addModules(&a, kernel: kernel, names: ["virtio_mmio", "virtio_blk", "virtio_net", "vmw_vsock_virtio_transport"])
        try a.addHostFile("bin/vsock-probe", from: vsockProbe)
        try a.addFile("init", text: Self.l2Init.replacing("@DMESG@", with: l2Dmesg ? "1" : "0"), permissions: 0o755)
        return a
    }

    /// L1's initramfs in `directory` (which also holds the disk image and scratch files).
    func l1Initramfs(directory: String) throws -> Initramfs {
        var a = Initramfs()
        try Self.addBusybox(&a, from: busybox)
        try Self.addModules(&a, kernel: kernel, names: ["kvm_amd", "tun"])
        let append = Self.l2Append + (extraAppend.isEmpty ? "" : " " + extraAppend)
        try a.addFile("init", text: Self.l1Init
            .replacing("@RUNS@", with: String(runs))
            .replacing("@VCPUS@", with: String(vcpus))
            .replacing("@TIMEOUT@", with: String(l2Timeout))
            .replacing("@APPEND@", with: append)
            .replacing("@SCRUB_MIB@", with: String(Self.scrubMiB)), permissions: 0o755)
        // bulkhead-vmm without its debug info (a quarter of the size, same code).
        let stripped = directory + "/bulkhead-vmm"
        if (try? runTool(["strip", "-o", stripped, vmm])) == nil { try runTool(["cp", vmm, stripped]) }
        try a.addHostFile("bin/bulkhead-vmm", from: stripped)
        // The L2 files.
        try a.addFile("l2/vmlinuz", contents: try readFile(kernel.vmlinuz))
        // Both ends of the vsock check (NestedTools/vsock_probe.c), static for L1 and L2.
        let vsockProbe = directory + "/vsock-probe"
        try runTool(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", vsockProbe,
                     nestedToolsDirectory + "/vsock_probe.c"])
        try a.addHostFile("bin/vsock-probe", from: vsockProbe)
        let l2 = try l2Initramfs(vsockProbe: vsockProbe)
        try a.addFile("l2/initramfs.cpio", contents: gzipInitramfs ? l2.gzipped() : l2.cpio())
        try runTool(["mkdir", "-p", directory + "/disk"])
        try writeFile(directory + "/disk/marker", Array((Self.diskMarker + "\n").utf8))
        try runTool(["mke2fs", "-q", "-F", "-t", "ext4", "-d", directory + "/disk", directory + "/disk.ext4", "8M"])
        try a.addHostFile("l2/disk.ext4", from: directory + "/disk.ext4")
        func config(kernel: String) -> String {
            """
            {"boot-source": {"kernel_image_path": "\(kernel)", "initrd_path": "/l2/initramfs.cpio", "boot_args": "\(append)"},
             "drives": [{"drive_id": "disk", "path_on_host": "/l2/disk.ext4", "is_root_device": false, "is_read_only": true}],
             "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "bhtap0", "guest_mac": "06:00:0a:00:02:02"}],
             "vsock": {"guest_cid": 3, "uds_path": "/tmp/v.sock"},
             "machine-config": {"vcpu_count": \(vcpus), "mem_size_mib": 256}}
            """
        }
        try a.addFile("l2/vm.json", text: config(kernel: "/l2/vmlinuz"))
        if withVmlinux {
            try a.addHostFile("l2/vmlinux", from: kernel.vmlinux)
            try a.addFile("l2/vm-elf.json", text: config(kernel: "/l2/vmlinux"))
        }
        if withQEMUMicrovm {
            // QEMU with the libraries ldd names and the microvm firmware.
            try a.addHostFile("usr/bin/qemu-system-x86_64", from: qemu)
            for line in try shellOutput("ldd '\(qemu)'").split(separator: "\n") {
                let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                let path = words.first { $0.hasPrefix("/") }
                if let path { try a.addHostFile(String(path), from: String(path)) }
            }
            for rom in ["bios-microvm.bin", "linuxboot_dma.bin", "pvh.bin"] {
                try a.addHostFile("usr/share/qemu/\(rom)", from: "/usr/share/qemu/\(rom)")
            }
        }
        return a
    }

    /// Builds everything in a fresh directory, boots L1 and parses its console.
    func run(timeoutSeconds: Double = 900) throws -> Result {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try l1Initramfs(directory: directory).write(to: directory + "/l1.cpio")
        let khz = (try? shellOutput("awk '/^cpu MHz/ {printf \"%d\", $4 * 1000; exit}' /proc/cpuinfo")) ?? ""
        let argv = [qemu, "-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "1",
                    "-M", "microvm,acpi=on,isa-serial=on", "-nodefaults", "-no-user-config", "-nographic",
                    "-serial", "stdio", "-no-reboot", "-kernel", kernel.vmlinuz, "-initrd", directory + "/l1.cpio",
                    "-append", "console=ttyS0 loglevel=4" + (khz.isEmpty ? "" : " tsc_early_khz=\(khz)")]
        let start = monotonicSeconds()
        let process = try VMMProcess.spawn(argv, directory: directory)
        _ = process.wait(seconds: timeoutSeconds)
        let elapsed = monotonicSeconds() - start
        let log = process.stdout + process.stderr
        return Self.parse(log: log, l1Seconds: elapsed)
    }

    static func parse(log: String, l1Seconds: Double) -> Result {
        var result = Result(l1Log: log, l1Seconds: l1Seconds, l1KVM: false, runs: [])
        var current: Run?
        // "\r\n" is one Character in Swift: split on both.
        for raw in log.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            var line = String(raw)
            while line.hasSuffix("\r") || line.hasSuffix("\r\n") { line.removeLast() }
            let words = line.split(separator: " ")
            if line.hasPrefix("L1-KVM yes") { result.l1KVM = true }
            if words.count == 3, words[0] == "L1-RUN-START" {
                current = Run(label: String(words[1]), startUptime: Double(words[2]) ?? 0, lines: [])
            } else if words.count == 3, words[0] == "L1-RUN-END", var run = current {
                run.endUptime = Double(words[2])
                result.runs.append(run)
                current = nil
            } else if line.hasPrefix("L2|"), current != nil {
                let parts = line.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count == 4, let t = Double(parts[2]) else { continue }
                let text = String(parts[3])
                if text.hasPrefix("L2-EXIT ") { current!.exitStatus = Int(text.dropFirst(8)) }
                current!.lines.append((t, text))
            }
        }
        if let current { result.runs.append(current) }
        return result
    }
}

/// Programs the harness builds for L1 and L2, next to this file.
let nestedToolsDirectory: String = {
    let file = #filePath
    return String(file[..<file.lastIndex(of: "/")!]) + "/NestedTools"
}()

func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

extension VMMProcess {
    /// Any program, with stdout and stderr in files of `directory` (as the VMM's).
    static func spawn(_ argv: [String], directory: String) throws -> VMMProcess {
        try VMMProcess(program: argv[0], argv, directory: directory)
    }
}
