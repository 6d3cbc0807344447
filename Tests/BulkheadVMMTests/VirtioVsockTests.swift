import Glibc
import Testing
@testable import BulkheadVMM

/// virtio-vsock through the transport with the Swift test driver: queue 0 (receive) is the test
/// driver's queue; queue 1 (transmit) is set up here at 0x6000/0x7000/0x8000. The event thread's
/// work is done by calling serviceHostEvents directly.
final class VsockHarness {
    typealias R = VirtioMMIOTransport.Register
    typealias Header = VirtioVsock.Header
    static let txDescriptors: UInt64 = 0x6000, txAvailable: UInt64 = 0x7000, txUsed: UInt64 = 0x8000
    static let cid: UInt64 = 3
    let directory: String
    let uds: String
    let vsock: VirtioVsock
    let driver: TestVirtioDriver
    private var txIndex: UInt16 = 0
    private var rxPosted: UInt16 = 0
    private var rxSeen: UInt16 = 0

    init() throws {
        directory = try makeTemporaryDirectory()
        uds = directory + "/v.sock"
        vsock = try VirtioVsock(guestCID: Self.cid, udsPath: uds)
        driver = try TestVirtioDriver(device: vsock)
    }

    deinit { removeTree(directory) }

    func start() {
        driver.initialise()
        driver.setUpQueue(1, size: 8, descriptorTable: Self.txDescriptors, availableRing: Self.txAvailable, usedRing: Self.txUsed)
    }

    /// Posts receive buffers (descriptors 0..<count, 512 bytes each from 0x10000).
    func postReceiveBuffers(_ count: UInt16 = 4, length: UInt32 = 512, readable: Bool = false) throws {
        for _ in 0..<count {
            let i = rxPosted % 8
            try driver.descriptor(i, address: 0x10000 + 0x1000 * UInt64(i), length: length, writable: !readable)
            try driver.submit(head: i)
            rxPosted &+= 1
        }
    }

    /// The packets the device put in the receive queue since the last call.
    func received() throws -> [(Header, [UInt8])] {
        var packets: [(Header, [UInt8])] = []
        while rxSeen != driver.usedIndex {
            let (id, length) = try driver.usedElement(rxSeen)
            let bytes = try driver.memory.read(at: 0x10000 + 0x1000 * UInt64(id), count: Int(length))
            packets.append((Header(Array(bytes[0..<44])), Array(bytes[44...])))
            rxSeen &+= 1
        }
        return packets
    }

    func header(_ op: UInt16, src: UInt32, dst: UInt32, len: UInt32 = 0, flags: UInt32 = 0) -> Header {
        var h = Header()
        h.srcCID = Self.cid; h.dstCID = 2; h.srcPort = src; h.dstPort = dst
        h.op = op; h.len = len; h.flags = flags; h.bufAlloc = 65536
        return h
    }

    /// Sends one chain of (bytes, writable) buffers on the transmit queue.
    func transmit(_ buffers: [([UInt8], Bool)]) throws {
        for (i, (bytes, writable)) in buffers.enumerated() {
            let address = 0x30000 + 0x1000 * UInt64(i)
            try driver.memory.write(bytes, at: address)
            let at = Self.txDescriptors + 16 * UInt64(i)
            try driver.memory.store(address, at: at)
            try driver.memory.store(UInt32(bytes.count), at: at + 8)
            try driver.memory.store(UInt16(i == buffers.count - 1 ? 0 : 1) | (writable ? 2 : 0), at: at + 12)
            try driver.memory.store(UInt16(i + 1), at: at + 14)
        }
        try driver.memory.store(UInt16(0), at: Self.txAvailable + 4 + 2 * UInt64(txIndex % 8))
        txIndex &+= 1
        try driver.memory.store(txIndex, at: Self.txAvailable + 2)
        driver.set(R.queueNotify, 1)
    }

    func send(_ h: Header, _ payload: [UInt8] = []) throws { try transmit([(h.bytes + payload, false)]) }

    func service() { driver.transport.serviceHostEvents() }
}

@Suite("virtio-vsock")
struct VirtioVsockTests {
    typealias R = VirtioMMIOTransport.Register
    typealias Op = VirtioVsock.Op

    @Test func identifiesAsVsockWithTheGuestCID() throws {
        let h = try VsockHarness()
        #expect(h.driver.reg(R.deviceID) == 19)
        #expect(h.driver.transport.read(offset: R.configuration, size: 8) == 3)
        for q: UInt32 in 0..<3 {
            h.driver.set(R.queueSelect, q)
            #expect(h.driver.reg(R.queueNumMax) == 256)
        }
        h.driver.set(R.queueSelect, 3)
        #expect(h.driver.reg(R.queueNumMax) == 0)
        #expect(access(h.uds, F_OK) == 0)
    }

    @Test func headerLayoutIs44LittleEndianBytes() {
        var h = VirtioVsock.Header()
        h.srcCID = 0x0102; h.dstCID = 2; h.srcPort = 0x0304; h.dstPort = 52; h.len = 7
        h.op = Op.rw; h.flags = 3; h.bufAlloc = 0x10000; h.fwdCnt = 9
        let b = h.bytes
        #expect(b.count == 44)
        #expect(Array(b[0..<2]) == [2, 1] && b[8] == 2 && b[16] == 4 && b[20] == 52 && b[24] == 7)
        #expect(b[28] == 1 && b[30] == 5 && b[32] == 3 && b[38] == 1 && b[40] == 9)
        #expect(VirtioVsock.Header(b) == h)
    }

    @Test func reservedCIDsAndBadPathsAreRefused() throws {
        for cid: UInt64 in [0, 1, 2, 0xffff_ffff] {
            #expect { _ = try VirtioVsock(guestCID: cid, udsPath: "/tmp/x") } throws: { "\($0)".contains("guest_cid \(cid)") }
        }
        let long = "/tmp/" + String(repeating: "a", count: 120)
        #expect { _ = try VirtioVsock(guestCID: 3, udsPath: long) } throws: { "\($0)".contains(long) }
        let h = try VsockHarness()
        // A path that is already taken (the first device's socket) is an error naming it.
        #expect { _ = try VirtioVsock(guestCID: 4, udsPath: h.uds) } throws: { "\($0)".contains(h.uds) }
    }

    @Test func hostConnectHandshakeAndStream() throws {
        let h = try VsockHarness()
        h.start()
        try h.postReceiveBuffers()
        let client = try UnixStream.connect(h.uds)
        client.write("CONNECT 52\n")
        h.service()
        let request = try h.received()
        #expect(request.count == 1)
        let r = request[0].0
        #expect(r.op == Op.request && r.srcCID == 2 && r.dstCID == 3 && r.dstPort == 52 && r.srcPort == 1 << 30)
        #expect(r.bufAlloc == VirtioVsock.bufferAllocation)
        // The guest accepts; the client is told its port.
        try h.send(h.header(Op.response, src: 52, dst: r.srcPort))
        #expect(client.read(line: true) == "OK \(1 << 30)\n")
        // Host bytes become an RW packet; guest bytes reach the client.
        client.write("abc")
        h.service()
        let data = try h.received()
        #expect(data.count == 1 && data[0].0.op == Op.rw && data[0].0.len == 3 && data[0].1 == Array("abc".utf8))
        try h.send(h.header(Op.rw, src: 52, dst: r.srcPort, len: 4), Array("wxyz".utf8))
        #expect(client.read(count: 4) == "wxyz")
        // A credit request is answered with this side's fwd_cnt (4 bytes forwarded).
        try h.postReceiveBuffers(1)
        try h.send(h.header(Op.creditRequest, src: 52, dst: r.srcPort))
        h.service()
        let credit = try h.received()
        #expect(credit.count == 1 && credit[0].0.op == Op.creditUpdate && credit[0].0.fwdCnt == 4)
        // The client closes: the guest hears SHUTDOWN with both flags.
        try h.postReceiveBuffers(1)
        _ = client
        shutdown(client.fd, Int32(SHUT_RDWR))
        h.service()
        let closing = try h.received()
        #expect(closing.count == 1 && closing[0].0.op == Op.shutdown && closing[0].0.flags == 3)
    }

    @Test func guestDataIsLimitedByTheGuestsCredit() throws {
        let h = try VsockHarness()
        h.start()
        try h.postReceiveBuffers(8)
        let client = try UnixStream.connect(h.uds)
        client.write("CONNECT 52\n")
        h.service()
        let port = try h.received()[0].0.srcPort
        // The guest advertises 10 bytes of space.
        var response = h.header(Op.response, src: 52, dst: port)
        response.bufAlloc = 10
        try h.send(response)
        _ = client.read(line: true)
        client.write(String(repeating: "x", count: 25))
        for _ in 0..<4 { h.service() }
        let packets = try h.received()
        #expect(packets.reduce(0) { $0 + $1.1.count } == 10)  // no more than the credit
        // The guest frees the space: the rest follows.
        var update = h.header(Op.creditUpdate, src: 52, dst: port)
        update.bufAlloc = 10; update.fwdCnt = 10
        try h.send(update)
        for _ in 0..<4 { h.service() }
        #expect(try h.received().reduce(0) { $0 + $1.1.count } == 10)
    }

    @Test func badConnectLinesCloseTheClient() throws {
        let h = try VsockHarness()
        h.start()
        try h.postReceiveBuffers()
        for line in ["HELLO 52\n", "CONNECT\n", "CONNECT 99999999999\n", String(repeating: "C", count: 40)] {
            let client = try UnixStream.connect(h.uds)
            client.write(line)
            h.service()
            #expect(client.read() == "", "\(line)")  // closed without an answer
        }
        #expect(try h.received().isEmpty)
    }

    @Test func guestConnectsToAHostPort() throws {
        let h = try VsockHarness()
        h.start()
        try h.postReceiveBuffers()
        let listener = try UnixStream.listen(h.uds + "_1234")
        try h.send(h.header(Op.request, src: 1000, dst: 1234))
        try h.send(h.header(Op.request, src: 1001, dst: 4321))  // nobody listens
        h.service()
        let replies = try h.received()
        #expect(replies.map(\.0.op) == [Op.response, Op.rst])
        #expect(replies[0].0.dstPort == 1000 && replies[0].0.srcPort == 1234)
        let accepted = try #require(listener.accept(seconds: 5))
        try h.send(h.header(Op.rw, src: 1000, dst: 1234, len: 5), Array("hello".utf8))
        #expect(accepted.read(count: 5) == "hello")
        // More than the 256 KiB this side offered: the stream is reset.
        let big = [UInt8](repeating: 1, count: 60000)
        var overflowed = false
        for _ in 0..<40 {
            // The test never reads, so the socket buffer fills and the rest waits in the device.
            try h.send(h.header(Op.rw, src: 1000, dst: 1234, len: UInt32(big.count)), big)
        }
        h.service()
        overflowed = try h.received().contains { $0.0.op == Op.rst && $0.0.dstPort == 1000 }
        #expect(overflowed)
    }

    @Test func aGuestShutdownWaitsUntilItsBytesAreWritten() throws {
        let h = try VsockHarness()
        h.start()
        try h.postReceiveBuffers()
        let listener = try UnixStream.listen(h.uds + "_1234")
        try h.send(h.header(Op.request, src: 1000, dst: 1234))
        let accepted = try #require(listener.accept(seconds: 5))
        // About what the socket buffer holds, then SHUTDOWN with both flags: the stream ends
        // only after the last byte (whether or not some had to wait in the device).
        let chunk = [UInt8](repeating: 7, count: 60000)
        for _ in 0..<4 { try h.send(h.header(Op.rw, src: 1000, dst: 1234, len: UInt32(chunk.count)), chunk) }
        try h.send(h.header(Op.shutdown, src: 1000, dst: 1234, flags: 3))
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            h.service()  // writes what the socket takes now
            let n = recv(accepted.fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            total += n
        }
        #expect(total == 4 * chunk.count)  // every byte, then end of stream
        // RESPONSE, CREDIT_UPDATEs as the bytes go out (half the buffer each), and RST last.
        let ops = try h.received().map(\.0.op)
        #expect(ops.first == Op.response && ops.last == Op.rst, "\(ops)")
        #expect(ops.dropFirst().dropLast().allSatisfy { $0 == Op.creditUpdate }, "\(ops)")
    }

    @Test func packetsThatBreakTheRules() throws {
        let h = try VsockHarness()
        h.start()
        try h.postReceiveBuffers()
        // Wrong source CID: dropped, no answer.
        var spoofed = h.header(Op.request, src: 1, dst: 1234)
        spoofed.srcCID = 9
        try h.send(spoofed)
        #expect(h.vsock.droppedPackets == 1)
        // Data for no connection, an unknown op and a datagram type: RST each.
        try h.send(h.header(Op.rw, src: 5, dst: 6, len: 1), [0])
        try h.send(h.header(99, src: 5, dst: 6))
        var dgram = h.header(Op.request, src: 5, dst: 6)
        dgram.type = 3
        try h.send(dgram)
        h.service()
        #expect(try h.received().map(\.0.op) == [Op.rst, Op.rst, Op.rst])
        #expect(h.driver.transport.failure == nil)
    }

    @Test func malformedChains() throws {
        let header = VsockHarness.Header()
        var longLen = header
        longLen.len = 100
        let cases: [([([UInt8], Bool)], String)] = [
            ([([1, 2, 3], false)], "shorter than the 44-byte header"),
            ([(header.bytes, false), ([0], true)], "device-writable"),
            ([(longLen.bytes + [1, 2], false)], "exceeds its 2 payload bytes"),
        ]
        for (chain, message) in cases {
            let h = try VsockHarness()
            h.start()
            try h.transmit(chain)
            #expect(h.driver.transport.failure?.contains(message) == true, "\(String(describing: h.driver.transport.failure))")
        }
        // Receive chains: device-readable, or too small for a header.
        for (length, readable, message) in [(UInt32(512), true, "device-readable"), (UInt32(20), false, "cannot hold")] {
            let h = try VsockHarness()
            h.start()
            try h.postReceiveBuffers(1, length: length, readable: readable)
            try h.send(h.header(Op.rw, src: 5, dst: 6))  // answered with RST, which needs a receive buffer
            h.service()
            #expect(h.driver.transport.failure?.contains(message) == true, "\(String(describing: h.driver.transport.failure))")
        }
    }

    @Test func resetForgetsStreamsAndClosesThem() throws {
        let h = try VsockHarness()
        h.start()
        try h.postReceiveBuffers()
        let listener = try UnixStream.listen(h.uds + "_77")
        try h.send(h.header(Op.request, src: 1000, dst: 77))
        let accepted = try #require(listener.accept(seconds: 5))
        h.driver.set(R.status, 0)
        #expect(accepted.read() == "")  // end of stream
    }
}
