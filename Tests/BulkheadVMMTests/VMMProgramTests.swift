import Glibc
import Testing
@testable import BulkheadVMM

/// The API server of the bulkhead-vmm binary, without booting anything (no /dev/kvm needed).
@Suite("bulkhead-vmm API server",
       .enabled(if: vmmBinaryAvailable, "needs the bulkhead-vmm binary next to the test bundle (swift build --build-tests)"))
struct VMMAPIServerTests {
    @Test func badRequestsGet400WithTheFieldAndTheServerSurvivesGarbage() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let vmm = try VMMProcess(["--api-sock", "SOCK", "--id", "fuzz"], directory: directory)
        defer { kill(vmm.pid, SIGKILL); vmm.wait(seconds: 5) }
        #expect(vmm.waitForSocket())
        let client = try APIClient(path: vmm.socketPath)
        #expect(try client.request("GET", "/").body == #"{"app_name":"bulkhead-vmm","id":"fuzz","state":"Not started","vmm_version":"0.1.0"}"#)
        // Keep-alive: the same connection answers request after request.
        let missing = try client.request("PUT", "/machine-config", #"{"mem_size_mib": 128}"#)
        #expect(missing.status == 400 && missing.body.contains("missing field `vcpu_count`"))
        let wrongType = try client.request("PUT", "/drives/rootfs", #"{"drive_id": "rootfs", "path_on_host": 7, "is_root_device": true}"#)
        #expect(wrongType.status == 400 && wrongType.body.contains("`path_on_host` must be a string"))
        let badJSON = try client.request("PUT", "/boot-source", #"{"kernel_image_path": "#)
        #expect(badJSON.status == 400 && badJSON.body.contains("fault_message"))
        #expect(try client.request("GET", "/does-not-exist").status == 400)
        let noKernel = try client.request("PUT", "/actions", #"{"action_type": "InstanceStart"}"#)
        #expect(noKernel.status == 400 && noKernel.body.contains("without kernel configuration"))

        // Expect: 100-continue (curl, bodies over 1 KiB): 100 first, then the answer to the body.
        let patient = try APIClient(path: vmm.socketPath)
        let body = #"{"vcpu_count": 1, "mem_size_mib": 128}"#
        patient.sendRaw(Array("PUT /machine-config HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n".utf8))
        #expect(try patient.readResponse().status == 100)
        patient.sendRaw(Array(body.utf8))
        #expect(try patient.readResponse().status == 204)

        // A huge Content-Length is refused at once, not buffered.
        let huge = try APIClient(path: vmm.socketPath)
        huge.sendRaw(Array("PUT /boot-source HTTP/1.1\r\nContent-Length: 4000000000\r\n\r\n{".utf8))
        let refused = try huge.readResponse()
        #expect(refused.status == 400 && refused.body.contains("Content-Length"))

        // A client that sends half a request and disconnects, and one that stalls mid-body.
        do { let c = try APIClient(path: vmm.socketPath); c.sendRaw(Array("PUT /machine-config HTTP/1.1\r\nContent-Le".utf8)) }
        let stalled = try APIClient(path: vmm.socketPath)
        stalled.sendRaw(Array("PUT /machine-config HTTP/1.1\r\nContent-Length: 100\r\n\r\n{".utf8))

        // Random bytes, on connections of their own.
        var generator = SystemRandomNumberGenerator()
        for round in 0..<40 {
            let c = try APIClient(path: vmm.socketPath)
            var bytes = (0..<Int.random(in: 1...2000, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if round % 4 == 0 { bytes = Array("PUT /drives/x HTTP/1.1\r\nContent-Length: 20\r\n\r\n".utf8) + bytes }
            c.sendRaw(bytes)
        }
        // More idle connections than the server keeps: the least recently active make room.
        let idle = try (0..<40).map { _ in try APIClient(path: vmm.socketPath) }
        // Still answering, with the stalled and idle clients still connected.
        let after = try APIClient(path: vmm.socketPath)
        #expect(try after.request("GET", "/").status == 200)
        let fresh = try APIClient(path: vmm.socketPath)
        #expect(try fresh.request("GET", "/machine-config").body == #"{"mem_size_mib":128,"smt":false,"track_dirty_pages":false,"vcpu_count":1}"#)
        #expect(vmm.wait(seconds: 0) == nil)  // not exited
        _ = idle
    }

    /// Its JSON is BulkheadJSON's: measured, FoundationEssentials' code touched at start-up alone
    /// kept about 1 MiB of the binary resident (file pages are mapped 64 KiB around each fault).
    @Test func theBinaryLinksNoFoundation() throws {
        let bytes = try readFile(vmmBinary)
        let needle = Array("FoundationEssentials".utf8)
        let found = bytes.withUnsafeBufferPointer { b -> Bool in
            var offset = 0
            while offset + needle.count <= b.count {
                guard let hit = memchr(b.baseAddress! + offset, Int32(needle[0]), b.count - offset) else { return false }
                let at = b.baseAddress!.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if at + needle.count <= b.count, memcmp(hit, needle, needle.count) == 0 { return true }
                offset = at + 1
            }
            return false
        }
        #expect(!found, "\(vmmBinary) contains FoundationEssentials")
    }

    /// Its code starts with the functions of Sources/bulkhead-vmm/hot-symbols.txt, which lld put
    /// first and together (Package.swift: RSS follows how many 64 KiB windows the code it runs
    /// spans), and the list still names most of its code (a debug build lacks the release-only
    /// specializations). Needs nm and readelf (binutils, which gcc brings).
    @Test(.enabled(if: findInPath("nm") != nil && findInPath("readelf") != nil, "needs nm and readelf (binutils)"))
    func theCodeStartsWithTheHotFunctions() throws {
        let packageRoot = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let listed = String(decoding: try readFile(packageRoot + "/Sources/bulkhead-vmm/hot-symbols.txt"), as: UTF8.self)
            .split(separator: "\n").map(String.init)
        let sections = try toolOutput(["readelf", "-SW", vmmBinary]).split(separator: "\n")
        guard let text = sections.first(where: { $0.contains(" .text ") }),
              let fields = Optional(text.split(separator: " ", omittingEmptySubsequences: true)),
              let index = fields.firstIndex(of: ".text"), let start = UInt64(fields[index + 2], radix: 16) else {
            Issue.record("no .text in \(vmmBinary)"); return
        }
        var functions: [(address: UInt64, name: String)] = []
        for line in try toolOutput(["nm", "-n", "--defined-only", vmmBinary]).split(separator: "\n") {
            let f = line.split(separator: " ", maxSplits: 2)
            guard f.count == 3, "tTwW".contains(f[1]), let address = UInt64(f[0], radix: 16), address >= start else { continue }
            functions.append((address, String(f[2])))
        }
        let names = Set(functions.map(\.name))
        let present = listed.filter(names.contains)
        #expect(present.count * 2 > listed.count, "\(present.count) of \(listed.count) listed functions are in the binary")
        #expect(functions.first?.name == present.first, "first function \(functions.first?.name ?? "none")")
    }

    @Test func noAPIWithoutAConfigFileIsAUsageError() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let vmm = try VMMProcess(["--no-api"], directory: directory)
        #expect(vmm.wait(seconds: 10) == 2)
        #expect(vmm.stderr.contains("--no-api needs --config-file"))
    }

    @Test func configFileWithABadKernelIsRefusedBeforeBooting() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeFile(directory + "/kernel", [UInt8](repeating: 0x90, count: 8192))
        try writeFile(directory + "/config.json", Array(#"{"boot-source": {"kernel_image_path": "\#(directory)/kernel"}}"#.utf8))
        let vmm = try VMMProcess(["--no-api", "--config-file", directory + "/config.json"], directory: directory)
        #expect(vmm.wait(seconds: 10) == 1)
        #expect(vmm.stderr.contains("not a Linux kernel"))
    }
}

/// bulkhead-vmm booting the freestanding test guests on /dev/kvm, configured by file or by API.
@Suite("bulkhead-vmm boots guests",
       .enabled(if: vmmBinaryAvailable, "needs the bulkhead-vmm binary next to the test bundle (swift build --build-tests)"),
       .enabled(if: kvmAvailable, "needs read-write /dev/kvm (CI runs as root with KVM)"),
       .enabled(if: gccAvailable, "needs gcc and ld in PATH to compile the freestanding test guests"))
struct VMMProgramBootTests {
    @Test func noAPIConfigFileBootsTheGuestWithADiskAndExitsZeroOnReset() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeFile(directory + "/guest.elf", try buildGuest("virtio_blk_guest.c"))
        let disk = try TestDisk(sectors: 16)
        defer { disk.remove() }
        var bytes = try readFile(disk.path)
        bytes.replaceSubrange(0..<22, with: Array("BULKHEAD-DISK-SECTOR-0".utf8))
        bytes[22] = 0xa5
        try writeFile(disk.path, bytes)
        try writeFile(directory + "/config.json", Array("""
            {"boot-source": {"kernel_image_path": "\(directory)/guest.elf", "boot_args": "console=ttyS0"},
             "drives": [{"drive_id": "disk0", "path_on_host": "\(disk.path)", "is_root_device": false, "is_read_only": false}],
             "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}
            """.utf8))
        let vmm = try VMMProcess(["--no-api", "--config-file", directory + "/config.json"], directory: directory)
        #expect(vmm.wait(seconds: 180) == 0, "stderr: \(vmm.stderr)")
        let lines = vmm.stdout.split(separator: "\n")
        #expect(lines.first == "DEVICE 0xd0000000 gsi=5 magic=0x74726976 version=2 id=2")
        #expect(lines.contains { $0.hasPrefix("READ status=0 text=BULKHEAD-DISK-SECTOR-0") })
        #expect(lines.contains("ID status=0 id=disk0"))  // the drive ID is the disk's serial
        #expect(lines.last == "DONE")
    }

    @Test func stdinReachesTheGuestsSerialConsole() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeFile(directory + "/guest.elf", try buildGuest("serial_echo_guest.c"))
        try writeFile(directory + "/config.json", Array("""
            {"boot-source": {"kernel_image_path": "\(directory)/guest.elf"},
             "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}
            """.utf8))
        // Longer than the 64-byte receive FIFO: the rest follows as the guest reads.
        let text = "hello from the host " + String(repeating: "0123456789", count: 15)
        try writeFile(directory + "/input", Array((text + "\n").utf8))
        let vmm = try VMMProcess(["--no-api", "--config-file", directory + "/config.json"], directory: directory,
                                 stdin: directory + "/input")
        #expect(vmm.wait(seconds: 120) == 0, "stderr: \(vmm.stderr)")
        #expect(vmm.stdout == "READY\nECHO \(text)\n")
    }

    @Test func noAPIBootsASyntheticBzImage() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        var image = SyntheticBzImage()
        image.payload = try buildFlatGuest("boot_guest.c")
        image.initSize = UInt32((image.payload.count + 0xffff) & ~0xffff)
        try writeFile(directory + "/bzImage", image.bytes)
        try writeFile(directory + "/config.json", Array("""
            {"boot-source": {"kernel_image_path": "\(directory)/bzImage", "boot_args": "console=ttyS0 via=bzImage"},
             "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}
            """.utf8))
        let vmm = try VMMProcess(["--no-api", "--config-file", directory + "/config.json"], directory: directory)
        #expect(vmm.wait(seconds: 120) == 0, "stderr: \(vmm.stderr)")
        #expect(vmm.stdout == "E820 n=2 ram=\(0x9fc00 + (64 << 20) - 0x100000)\nCMDLINE console=ttyS0 via=bzImage\n")
    }

    @Test func configFileWithTheAPIBootsAtOnceAndTheAPIStaysUp() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeFile(directory + "/guest.elf", try buildGuest("ctrl_alt_del_guest.c"))
        try writeFile(directory + "/config.json", Array("""
            {"boot-source": {"kernel_image_path": "\(directory)/guest.elf"},
             "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}
            """.utf8))
        let vmm = try VMMProcess(["--api-sock", "SOCK", "--config-file", directory + "/config.json"], directory: directory)
        defer { if vmm.exitStatus == nil { kill(vmm.pid, SIGKILL); vmm.wait(seconds: 5) } }
        #expect(vmm.waitForSocket())
        let client = try APIClient(path: vmm.socketPath)
        #expect(try client.request("GET", "/").body.contains(#""state":"Running""#))
        #expect(try client.request("GET", "/vm/config").body.contains(#""kernel_image_path":"\#(directory)/guest.elf""#))
        var waited = 0
        while !vmm.stdout.contains("WAITING FOR CTRL-ALT-DEL") && waited < 6000 { usleep(10_000); waited += 1 }
        #expect(try client.request("PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#).status == 204)
        #expect(vmm.wait(seconds: 120) == 0, "stderr: \(vmm.stderr)")
        #expect(vmm.stdout.hasSuffix("CTRL-ALT-DEL\n"))
    }

    /// The monitor's own memory while a guest runs: reading the kernel through a 1 MiB bounce
    /// buffer left 1 MiB of freed heap resident for the VMM's whole life (measured: [heap] RSS
    /// 1052 KiB before, 84 KiB after; the bound is far from both), and every thread had a malloc
    /// arena of its own.
    @Test func heapStaysSmallWhileTheGuestRuns() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeFile(directory + "/guest.elf", try buildGuest("ctrl_alt_del_guest.c"))
        try writeFile(directory + "/config.json", Array("""
            {"boot-source": {"kernel_image_path": "\(directory)/guest.elf"},
             "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}
            """.utf8))
        let vmm = try VMMProcess(["--api-sock", "SOCK", "--config-file", directory + "/config.json"], directory: directory)
        defer { if vmm.exitStatus == nil { kill(vmm.pid, SIGKILL); vmm.wait(seconds: 5) } }
        var waited = 0
        while !vmm.stdout.contains("WAITING FOR CTRL-ALT-DEL") && waited < 6000 { usleep(10_000); waited += 1 }
        #expect(vmm.stdout.contains("WAITING FOR CTRL-ALT-DEL"))
        let smaps = String(decoding: try readFile("/proc/\(vmm.pid)/smaps"), as: UTF8.self).split(separator: "\n")
        guard let heap = smaps.firstIndex(where: { $0.hasSuffix("[heap]") }),
              let rss = smaps[heap...].first(where: { $0.hasPrefix("Rss:") }) else {
            Issue.record("no [heap] in smaps"); return
        }
        let kib = Int(rss.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
        #expect(kib >= 0 && kib < 512, "[heap] RSS \(kib) KiB")
        // One malloc arena (main.swift): a thread's own arena shows as the inaccessible rest of
        // a 64 MiB reservation (guard pages of thread stacks are a page).
        let arenaReserves = smaps.filter { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 2, f[1] == "---p", let range = Optional(f[0].split(separator: "-")), range.count == 2,
                  let lo = UInt64(range[0], radix: 16), let hi = UInt64(range[1], radix: 16) else { return false }
            return hi - lo >= 32 << 20
        }
        #expect(arenaReserves.isEmpty, "per-thread malloc arenas: \(arenaReserves)")
    }

    @Test func apiConfiguresStartsPausesAndCtrlAltDelEndsTheProcess() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeFile(directory + "/guest.elf", try buildGuest("ctrl_alt_del_guest.c"))
        let disk = try TestDisk(sectors: 4)
        defer { disk.remove() }
        let vmm = try VMMProcess(["--api-sock", "SOCK", "--boot-timer", "--id", "api_test"], directory: directory)
        defer { if vmm.exitStatus == nil { kill(vmm.pid, SIGKILL); vmm.wait(seconds: 5) } }
        #expect(vmm.waitForSocket())
        let client = try APIClient(path: vmm.socketPath)
        #expect(try client.request("PUT", "/boot-source",
                                   #"{"kernel_image_path": "\#(directory)/guest.elf", "boot_args": "console=ttyS0"}"#).status == 204)
        // Two vCPUs: pause and resume park and release both threads.
        #expect(try client.request("PUT", "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 64}"#).status == 204)
        #expect(try client.request("PUT", "/drives/rootfs",
                                   #"{"drive_id": "rootfs", "path_on_host": "\#(disk.path)", "is_root_device": true, "is_read_only": true}"#).status == 204)
        let badField = try client.request("PUT", "/machine-config", #"{"vcpu_count": 1, "mem_size_mib": -5}"#)
        #expect(badField.status == 400 && badField.body.contains("`mem_size_mib`"))
        #expect(try client.request("PUT", "/actions", #"{"action_type": "InstanceStart"}"#).status == 204)
        #expect(try client.request("GET", "/").body.contains(#""state":"Running""#))

        // Pre-boot-only requests are refused now.
        let late = try client.request("PUT", "/boot-source", #"{"kernel_image_path": "/x"}"#)
        #expect(late.status == 400 && late.body.contains("not supported after starting"))
        #expect(try client.request("PUT", "/actions", #"{"action_type": "InstanceStart"}"#).status == 400)
        let config = try client.request("GET", "/vm/config").body
        #expect(config.contains(#""boot_args":"console=ttyS0""#) && config.contains(#""drive_id":"rootfs""#))

        #expect(try client.request("PATCH", "/vm", #"{"state": "Paused"}"#).status == 204)
        #expect(try client.request("GET", "/").body.contains(#""state":"Paused""#))
        #expect(try client.request("PATCH", "/vm", #"{"state": "Resumed"}"#).status == 204)
        #expect(try client.request("GET", "/").body.contains(#""state":"Running""#))

        // Wait for the guest to be in its key loop, then Ctrl-Alt-Del: it resets, the VMM exits 0.
        var waited = 0
        while !vmm.stdout.contains("WAITING FOR CTRL-ALT-DEL") && waited < 6000 { usleep(10_000); waited += 1 }
        #expect(try client.request("PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#).status == 204)
        #expect(vmm.wait(seconds: 120) == 0, "stderr: \(vmm.stderr)")
        #expect(vmm.stdout == "WAITING FOR CTRL-ALT-DEL\nKEY 0x14\nKEY 0x11\nKEY 0xe0\nKEY 0x71\nCTRL-ALT-DEL\n")
        #expect(vmm.stderr.contains("Guest-boot-time = "))
        #expect(access(vmm.socketPath, F_OK) != 0)  // the socket is removed on the way out
    }
}
