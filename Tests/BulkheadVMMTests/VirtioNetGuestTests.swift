import Glibc
import Testing
@testable import BulkheadVMM

/// Whether `ip netns` can be used: root, and the ip tool.
let netnsAvailable = getuid() == 0 && findInPath("ip") != nil && access("/dev/net/tun", R_OK | W_OK) == 0
    && access("/usr/bin/python3", X_OK) == 0

/// A private network namespace, deleted by `remove` (the host's interfaces are never touched).
struct TestNetworkNamespace {
    let name: String
    init(tag: String) throws {
        name = "bh-test-\(getpid())-\(tag)"
        try runTool(["ip", "netns", "add", name])
    }
    func remove() { try? runTool(["ip", "netns", "del", name]) }
    var exec: [String] { ["ip", "netns", "exec", name] }
}

/// The host side of the network test, run inside the namespace: waits for the VMM's TAP, gives
/// it 10.0.0.1/24 and brings it up (the kernel then answers the guest's ARP requests), watches
/// the TAP with a packet socket for the guest's ARP request, and injects one frame of ethertype
/// 0x88b5 addressed to the guest. Writes what it saw to argv[3].
let netHostHelper = #"""
import os, socket, subprocess, sys, time
tap, mac, out = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), sys.argv[3]
log = open(out, "w", buffering=1)
deadline = time.time() + 90
while not os.path.exists("/sys/class/net/" + tap):
    if time.time() > deadline:
        log.write("NO TAP\n"); sys.exit(1)
    time.sleep(0.05)
subprocess.call(["sysctl", "-q", "-w", "net.ipv6.conf.%s.disable_ipv6=1" % tap])
subprocess.check_call(["ip", "addr", "add", "10.0.0.1/24", "dev", tap])
subprocess.check_call(["ip", "link", "set", tap, "up"])
log.write("UP\n")
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((tap, 0))
s.settimeout(1.0)
while time.time() < deadline:
    try:
        f = s.recv(65536)
    except socket.timeout:
        continue
    if len(f) >= 42 and f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x01" and f[6:12] == mac:
        log.write("SAW-ARP-REQUEST sender=%s target=%s\n" % (f[28:32].hex(), f[38:42].hex()))
        break
else:
    log.write("NO ARP REQUEST\n"); sys.exit(1)
frame = mac + bytes.fromhex("020000000001") + b"\x88\xb5" + b"HELLO-FROM-THE-HOST" + bytes(27)
s.send(frame)
log.write("INJECTED %d\n" % len(frame))
"""#

/// The freestanding virtio-net driver (Guests/virtio_net_guest.c) in bulkhead-vmm, run inside a
/// private network namespace on a TAP that the VMM creates there from its config file.
@Suite("virtio-net driven by a guest on a TAP",
       .enabled(if: vmmBinaryAvailable, "needs the bulkhead-vmm binary next to the test bundle (swift build --build-tests)"),
       .enabled(if: kvmAvailable, "needs read-write /dev/kvm (CI runs as root with KVM)"),
       .enabled(if: gccAvailable, "needs gcc and ld in PATH to compile the freestanding test guest"),
       .enabled(if: netnsAvailable, "needs root, ip, /dev/net/tun and /usr/bin/python3 for a private network namespace"))
struct VirtioNetGuestTests {
    static let guestMAC = "06:00:ac:10:00:02"

    func writeConfig(_ directory: String, tap: String) throws {
        try writeFile(directory + "/config.json", Array("""
            {"boot-source": {"kernel_image_path": "\(directory)/guest.elf", "boot_args": "console=ttyS0"},
             "machine-config": {"vcpu_count": 1, "mem_size_mib": 32},
             "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "\(tap)", "guest_mac": "\(Self.guestMAC)"}]}
            """.utf8))
    }

    @Test func guestSendsARPGetsTheReplyAndReceivesAnInjectedFrame() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let namespace = try TestNetworkNamespace(tag: "net")
        defer { namespace.remove() }
        try writeFile(directory + "/guest.elf", try buildGuest("virtio_net_guest.c"))
        try writeConfig(directory, tap: "bhtap0")
        try writeFile(directory + "/helper.py", Array(netHostHelper.utf8))

        // The helper runs concurrently (it waits for the TAP); it is a VMMProcess-like child.
        var helperPID: pid_t = 0
        let helperArgv = namespace.exec + ["/usr/bin/python3", directory + "/helper.py", "bhtap0", Self.guestMAC, directory + "/helper.out"]
        let cArgs = helperArgv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        #expect(posix_spawnp(&helperPID, "ip", nil, nil, cArgs, environ) == 0)
        defer {
            var status: Int32 = 0
            if waitpid(helperPID, &status, WNOHANG) == 0 { kill(helperPID, SIGKILL); waitpid(helperPID, &status, 0) }
        }

        let vmm = try VMMProcess(["--no-api", "--config-file", directory + "/config.json"], directory: directory,
                                 prefix: namespace.exec)
        #expect(vmm.wait(seconds: 180) == 0, "stderr: \(vmm.stderr)")
        var status: Int32 = 0
        while waitpid(helperPID, &status, 0) < 0 && errno == EINTR {}
        let helper = (try? readFile(directory + "/helper.out")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let lines = vmm.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "DEVICE id=1 mac-feature=1 features-ok=1 mac=\(Self.guestMAC) rx-ready=1 tx-ready=1", "\(lines)")
        // The guest's ARP request reached the TAP; the host kernel's reply reached the guest.
        #expect(helper.contains("SAW-ARP-REQUEST sender=0a000002 target=0a000001"), "helper: \(helper)")
        #expect(lines.contains { $0.hasPrefix("ARP-REPLY 10.0.0.1 is-at ") && $0.hasSuffix(" num-buffers=1") }, "\(lines)")
        // The frame injected on the TAP reached the guest whole.
        #expect(helper.contains("INJECTED 60"), "helper: \(helper)")
        #expect(lines.contains("FRAME to=\(Self.guestMAC) payload=HELLO-FROM-THE-HOST len=60"), "\(lines)")
        #expect(lines.last == "DONE")
        // The TAP went away with the VMM.
        #expect(throws: ToolFailure.self) { try runTool(namespace.exec + ["ip", "link", "show", "bhtap0"]) }
    }

    @Test func aTAPThatCannotBeCreatedIsRefusedByName() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let namespace = try TestNetworkNamespace(tag: "badtap")
        defer { namespace.remove() }
        try writeFile(directory + "/guest.elf", try buildGuest("virtio_net_guest.c"))
        // "lo" exists in the namespace and is not a TAP: TUNSETIFF refuses it.
        try writeConfig(directory, tap: "lo")
        let vmm = try VMMProcess(["--no-api", "--config-file", directory + "/config.json"], directory: directory,
                                 prefix: namespace.exec)
        #expect(vmm.wait(seconds: 60) == 1)
        #expect(vmm.stderr.contains("network interface 'eth0'") && vmm.stderr.contains("TAP device 'lo'"), "\(vmm.stderr)")
        #expect(vmm.stdout.isEmpty)
    }
}
