import Glibc
import Testing
@testable import BulkheadVMM

/// A Unix stream socket for the vsock tests: connect or listen at a path, with a receive timeout
/// so a broken device fails the test instead of hanging it.
final class UnixStream {
    let fd: Int32
    init(fd: Int32) {
        self.fd = fd
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
    deinit { close(fd) }

    static func connect(_ path: String) throws -> UnixStream {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard VirtioVsock.withAddress(path, { Glibc.connect(fd, $0, $1) }) == 0 else {
            let e = errno
            close(fd)
            throw ToolFailure(description: "connect \(path): errno \(e)")
        }
        return UnixStream(fd: fd)
    }

    static func listen(_ path: String) throws -> UnixStream {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard VirtioVsock.withAddress(path, { bind(fd, $0, $1) }) == 0, Glibc.listen(fd, 4) == 0 else {
            let e = errno
            close(fd)
            throw ToolFailure(description: "listen \(path): errno \(e)")
        }
        return UnixStream(fd: fd)
    }

    /// The next connection, waiting at most `seconds`.
    func accept(seconds: Int32) -> UnixStream? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, seconds * 1000) == 1 else { return nil }
        let c = Glibc.accept(fd, nil, nil)
        return c < 0 ? nil : UnixStream(fd: c)
    }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until `count` bytes, a newline if `line`, end of stream, or the timeout.
    func read(count: Int = 4096, line: Bool = false) -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count < count {
            guard recv(fd, &byte, 1, 0) == 1 else { break }
            bytes.append(byte)
            if line && byte == 10 { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The freestanding virtio-vsock driver (Guests/virtio_vsock_guest.c) in bulkhead-vmm, configured
/// with Firecracker's vsock section: the test is the host side on the Unix sockets.
@Suite("virtio-vsock driven by a guest",
       .enabled(if: vmmBinaryAvailable, "needs the bulkhead-vmm binary next to the test bundle (swift build --build-tests)"),
       .enabled(if: kvmAvailable, "needs read-write /dev/kvm (CI runs as root with KVM)"),
       .enabled(if: gccAvailable, "needs gcc and ld in PATH to compile the freestanding test guest"))
struct VirtioVsockGuestTests {
    @Test func hostConnectsToTheGuestsListenerAndTheGuestConnectsToTheHost() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let uds = directory + "/v.sock"
        try writeFile(directory + "/guest.elf", try buildGuest("virtio_vsock_guest.c"))
        try writeFile(directory + "/config.json", Array("""
            {"boot-source": {"kernel_image_path": "\(directory)/guest.elf", "boot_args": "console=ttyS0"},
             "machine-config": {"vcpu_count": 1, "mem_size_mib": 32},
             "vsock": {"guest_cid": 3, "uds_path": "\(uds)"}}
            """.utf8))
        // The guest's connection to host port 1234 goes to <uds_path>_1234.
        let hostListener = try UnixStream.listen(uds + "_1234")
        let vmm = try VMMProcess(["--no-api", "--config-file", directory + "/config.json"], directory: directory)

        var waited = 0
        while access(uds, F_OK) != 0 && waited < 3000 { usleep(10_000); waited += 1 }
        let client = try UnixStream.connect(uds)
        client.write("CONNECT 52\n")
        let ok = client.read(line: true)
        #expect(ok.hasPrefix("OK ") && ok.hasSuffix("\n") && UInt32(ok.dropFirst(3).dropLast()) != nil, "\(ok)")
        client.write("ping-from-host\n")
        #expect(client.read(count: 15) == "ping-from-host\n")

        let fromGuest = hostListener.accept(seconds: 60)
        #expect(fromGuest != nil)
        #expect(fromGuest?.read() == "hello from guest port 1000\n")  // then end of stream (guest SHUTDOWN)

        #expect(vmm.wait(seconds: 180) == 0, "stderr: \(vmm.stderr)")
        let lines = vmm.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "DEVICE id=19 features-ok=1 cid=3 ready=3", "\(lines)")
        #expect(lines.contains("REQUEST from cid=2 port-ok=1 buf-alloc=\(VirtioVsock.bufferAllocation)"), "\(lines)")
        #expect(lines.contains("RW len=15 text=ping-from-host"), "\(lines)")
        #expect(lines.contains("CONNECTED 1234"), "\(lines)")
        #expect(lines.contains("RST 1234"), "\(lines)")
        #expect(lines.last == "DONE", "\(lines)")
        // The VMM removed its socket when it ended.
        #expect(access(uds, F_OK) != 0)
    }

    @Test func aGuestConnectionToAPortNobodyListensOnIsReset() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let uds = directory + "/v.sock"
        try writeFile(directory + "/guest.elf", try buildGuest("virtio_vsock_guest.c"))
        try writeFile(directory + "/config.json", Array("""
            {"boot-source": {"kernel_image_path": "\(directory)/guest.elf"},
             "machine-config": {"vcpu_count": 1, "mem_size_mib": 32},
             "vsock": {"guest_cid": 7, "uds_path": "\(uds)"}}
            """.utf8))
        let vmm = try VMMProcess(["--no-api", "--config-file", directory + "/config.json"], directory: directory)
        var waited = 0
        while access(uds, F_OK) != 0 && waited < 3000 { usleep(10_000); waited += 1 }
        let client = try UnixStream.connect(uds)
        client.write("CONNECT 52\n")
        #expect(client.read(line: true).hasPrefix("OK "))
        client.write("x\n")
        #expect(client.read(count: 2) == "x\n")
        #expect(vmm.wait(seconds: 180) == 0, "stderr: \(vmm.stderr)")
        let lines = vmm.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "DEVICE id=19 features-ok=1 cid=7 ready=3")
        #expect(lines.contains("REFUSED 1234"), "\(lines)")
        #expect(lines.last == "DONE")
    }
}
