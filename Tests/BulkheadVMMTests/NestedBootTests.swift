import Glibc
import Testing
@testable import BulkheadVMM

/// Whether an ELF file has no program interpreter (a static executable, which can be copied into
/// an initramfs alone).
func isStaticELF(_ path: String) -> Bool {
    guard let bytes = try? readFile(path), bytes.count > 64, bytes[0..<4] == [0x7f, 0x45, 0x4c, 0x46] else { return false }
    func u(_ at: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
    let phoff = u(0x20, 8), phentsize = u(0x36, 2), phnum = u(0x38, 2)
    for i in 0..<phnum where phoff + i * phentsize + 4 <= bytes.count {
        if u(phoff + i * phentsize, 4) == 3 { return false }  // PT_INTERP
    }
    return true
}

/// What the nested boot needs, or why it cannot run here.
let nestedPrerequisites: (kernel: GuestKernel?, reason: String) = {
    if let v = getenv("BULKHEAD_NESTED"), String(cString: v) == "0" { return (nil, "BULKHEAD_NESTED=0") }
    guard findInPath("qemu-system-x86_64") != nil else {
        return (nil, "needs qemu-system-x86_64 (Debian package qemu-system-x86) to run L1 under TCG with emulated AMD-V")
    }
    guard isStaticELF("/bin/busybox") else { return (nil, "needs a static /bin/busybox (Debian package busybox-static)") }
    guard findInPath("mke2fs") != nil else { return (nil, "needs mke2fs (Debian package e2fsprogs) for the L2 disk") }
    guard gccAvailable else { return (nil, "needs gcc (and the static libc of libc6-dev) to build the vsock probe") }
    guard vmmBinaryAvailable, isStaticELF(vmmBinary) else {
        return (nil, "needs the static bulkhead-vmm at \(vmmBinary) (swift build --build-tests builds it)")
    }
    let cache = getenv("BULKHEAD_KERNEL_CACHE").map { String(cString: $0) } ?? "/var/tmp/bulkhead-kernels"
    do {
        let kernel = try GuestKernel.fetch(cacheDirectory: cache, modules: GuestKernel.guestModules + ["kvm_amd", "tun"])
        return (kernel, "")
    } catch {
        return (nil, "no cached kernel in \(cache) and fetching one failed: \(error)")
    }
}()

@Suite(.serialized) struct NestedBootTests {
    @Test(.enabled(if: nestedPrerequisites.kernel != nil, Comment(rawValue: nestedPrerequisites.reason)),
          .timeLimit(.minutes(20)))
    func stockKernelBootsThroughBulkheadVMMInNestedKVM() throws {
        // BULKHEAD_NESTED_VMM: another (static) build, e.g. .build/release/bulkhead-vmm.
        let vmm = getenv("BULKHEAD_NESTED_VMM").map { String(cString: $0) } ?? vmmBinary
        var harness = NestedBoot(kernel: nestedPrerequisites.kernel!, vmm: vmm)
        if let v = getenv("BULKHEAD_NESTED_RUNS"), let n = Int(String(cString: v)) { harness.runs = n }
        if let v = getenv("BULKHEAD_NESTED_APPEND") { harness.extraAppend = String(cString: v) }
        if let v = getenv("BULKHEAD_NESTED_QEMU"), String(cString: v) == "0" { harness.withQEMUMicrovm = false }
        if let v = getenv("BULKHEAD_NESTED_GZIP"), String(cString: v) == "1" { harness.gzipInitramfs = true }
        // Two vCPUs by default, so the stock kernel's SMP bring-up (INIT/SIPI, its own trampoline) is tested.
        harness.vcpus = getenv("BULKHEAD_NESTED_VCPUS").flatMap { Int(String(cString: $0)) } ?? 2
        if let v = getenv("BULKHEAD_NESTED_DMESG"), String(cString: v) == "1" { harness.l2Dmesg = true }
        if let v = getenv("BULKHEAD_NESTED_VMLINUX"), String(cString: v) == "0" { harness.withVmlinux = false }
        let result = try harness.run()
        if let v = getenv("BULKHEAD_NESTED_LOG") { try? writeFile(String(cString: v), Array(result.l1Log.utf8)) }
        let report = NestedBootReport(result)
        print("NESTED_L2 vcpus=\(harness.vcpus)")
        print(report.text)
        let l1KVM = result.l1KVM
        #expect(l1KVM, "L1 has no /dev/kvm (kvm_amd did not load); L1 console tail:\n\(report.l1Tail)")
        // The first run of each VMM warms L1's caches; with BULKHEAD_NESTED_RUNS=0 it is the only one.
        for label in ["bulkhead-vmm"] + (harness.withVmlinux ? ["bulkhead-vmm-elf"] : []) {
            let all = result.runs(label)
            let measured = all.count > 1 ? Array(all.dropFirst()) : all
            #expect(!measured.isEmpty, "no measured \(label) run; L1 console tail:\n\(report.l1Tail)")
            for run in measured {
                #expect(run.seconds(toLineContaining: NestedBoot.bootedMarker) != nil,
                        "L2 did not print \(NestedBoot.bootedMarker); last L2 lines:\n\(NestedBootReport.tail(run))")
                #expect(run.seconds(toLineContaining: "BULKHEAD-DISK \(NestedBoot.diskMarker)") != nil,
                        "L2 did not read the disk marker; last L2 lines:\n\(NestedBootReport.tail(run))")
                // The stock kernel's virtio_net finds the device and reaches L1 through the TAP.
                #expect(run.seconds(toLineContaining: "BULKHEAD-NET ok 06:00:0a:00:02:02") != nil,
                        "L2 did not ping L1 over virtio-net; last L2 lines:\n\(NestedBootReport.tail(run))")
                // The i8042 driver binds (its IRQ comes from the DSDT's PNP0303): Ctrl-Alt-Del needs it.
                #expect(run.seconds(toLineContaining: "serio: i8042 KBD port at 0x60,0x64") != nil,
                        "L2's i8042 driver did not register its keyboard port; last L2 lines:\n\(NestedBootReport.tail(run))")
                #expect(run.seconds(toLineContaining: "probe of i8042 failed") == nil,
                        "L2's i8042 probe failed; last L2 lines:\n\(NestedBootReport.tail(run))")
                // Linux brought every vCPU online.
                let online = harness.vcpus == 1 ? "0" : "0-\(harness.vcpus - 1)"
                #expect(run.seconds(toLineContaining: "BULKHEAD-CPUS online=\(online)") != nil,
                        "L2 did not bring \(harness.vcpus) vCPUs online; last L2 lines:\n\(NestedBootReport.tail(run))")
                // What L1 typed reached L2's shell through the UART's receive interrupt.
                #expect(run.seconds(toLineContaining: "BULKHEAD-CONSOLE got=typed-in-L1") != nil,
                        "L2 did not read L1's console input; last L2 lines:\n\(NestedBootReport.tail(run))")
                // vsock, one stream each way: L2 to L1's listener on <uds_path>_5000, L1 to L2's port 6000.
                #expect(run.seconds(toLineContaining: "BULKHEAD-VSOCK-OUT reply=host got from-L2") != nil,
                        "L2's vsock connection to the host failed; last L2 lines:\n\(NestedBootReport.tail(run))")
                #expect(run.seconds(toLineContaining: "BULKHEAD-VSOCK-IN got=from-L1") != nil,
                        "L1's vsock connection to L2 failed; last L2 lines:\n\(NestedBootReport.tail(run))")
                #expect(run.exitStatus == 0, "\(label) exit \(run.exitStatus.map(String.init) ?? "?") (124 = timeout)")
            }
        }
    }
}

/// Medians per VMM and the ratio to QEMU microvm, as text.
struct NestedBootReport {
    var text = ""
    var l1Tail: String

    static func tail(_ run: NestedBoot.Run, _ n: Int = 25) -> String {
        run.lines.suffix(n).map { String(format2($0.uptime - run.startUptime)) + "s " + $0.text }.joined(separator: "\n")
    }

    init(_ result: NestedBoot.Result) {
        l1Tail = result.l1Log.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).suffix(40).joined(separator: "\n")
        text = "NESTED_L1 kvm=\(result.l1KVM) total_s=\(format2(result.l1Seconds)) (TCG L1, 1 vCPU, L2 times on L1's clock)\n"
        var medians: [String: Double] = [:]
        for label in Self.labels {
            let all = result.runs(label)
            guard !all.isEmpty else { continue }
            let measured = all.count > 1 ? Array(all.dropFirst()) : all
            for (i, r) in all.enumerated() {
                let b = r.seconds(toLineContaining: NestedBoot.bootedMarker)
                let d = r.seconds(toLineContaining: "BULKHEAD-DISK")
                let e = r.endUptime.map { $0 - r.startUptime }
                // bulkhead-vmm logs InstanceStart: what came before is the VMM's own set-up.
                let started = r.seconds(toLineContaining: "Started the microVM")
                text += "NESTED_RUN label=\(label)\(i == 0 && all.count > 1 ? " warmup" : "")"
                    + (started.map { " vmm_setup_s=\(format2($0))" } ?? "") + " booted_s=\(b.map(format2) ?? "-") "
                    + "disk_s=\(d.map(format2) ?? "-") exit_s=\(e.map(format2) ?? "-") rc=\(r.exitStatus.map(String.init) ?? "-")\n"
            }
            let booted = measured.compactMap { $0.seconds(toLineContaining: NestedBoot.bootedMarker) }.sorted()
            if !booted.isEmpty { medians[label] = booted[booted.count / 2] }
            text += "NESTED_RESULT label=\(label) booted=\(booted.count)/\(measured.count) booted_s_median=\(medians[label].map(format2) ?? "-")\n"
            if booted.count < measured.count, let bad = measured.first(where: { $0.seconds(toLineContaining: NestedBoot.bootedMarker) == nil }) {
                text += "last L2 lines of a failed \(label) run:\n\(Self.tail(bad))\n"
            }
        }
        for (b, q) in Self.ratios {
            if let mb = medians[b], let mq = medians[q] { text += "NESTED_RATIO \(b)/\(q) booted=\(format2(mb / mq))\n" }
        }
    }

    /// bzImage through each VMM, then the ELF vmlinux from the same bzImage (bulkhead-vmm's ELF
    /// loader, QEMU's PVH entry).
    static let labels = ["bulkhead-vmm", "qemu-microvm", "bulkhead-vmm-elf", "qemu-microvm-pvh"]
    /// Each bulkhead-vmm boot against QEMU booting the same file, and the ELF boot against QEMU's bzImage boot.
    static let ratios = [("bulkhead-vmm", "qemu-microvm"), ("bulkhead-vmm-elf", "qemu-microvm-pvh"),
                         ("bulkhead-vmm-elf", "qemu-microvm")]
}

func format2(_ v: Double) -> String {
    let hundredths = Int((v * 100).rounded())
    let frac = abs(hundredths % 100)
    return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
}
