import Glibc
import Testing
@testable import BulkheadVMM

/// virtio-net through the transport with a datagram socket pair standing in for the TAP (frame
/// boundaries kept, no host interface touched): the test holds the "host" end.
final class NetHarness {
    typealias R = VirtioMMIOTransport.Register
    static let mac: [UInt8] = [0x06, 0x00, 0xac, 0x10, 0x00, 0x02]
    // Queue 1 (transmit) lives apart from the test driver's queue 0 (receive).
    static let txDescriptors: UInt64 = 0x6000, txAvailable: UInt64 = 0x7000, txUsed: UInt64 = 0x8000
    let driver: TestVirtioDriver
    let net: VirtioNet
    let host: Int32
    private var txIndex: UInt16 = 0

    init() throws {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0, &fds) == 0 else {
            throw ToolFailure(description: "socketpair: errno \(errno)")
        }
        host = fds[1]
        net = try VirtioNet(fd: fds[0], interfaceName: "test", mac: Self.mac, isTAP: false)
        driver = try TestVirtioDriver(device: net)
    }

    deinit { close(host) }

    func start() {
        driver.initialise()
        driver.setUpQueue(1, size: 8, descriptorTable: Self.txDescriptors, availableRing: Self.txAvailable, usedRing: Self.txUsed)
    }

    /// Transmits one chain of (address, bytes, writable) buffers from descriptor 0 on.
    func transmit(_ buffers: [(UInt64, [UInt8], Bool)]) throws {
        for (i, (address, bytes, writable)) in buffers.enumerated() {
            try driver.memory.write(bytes, at: address)
            let at = Self.txDescriptors + 16 * UInt64(i)
            try driver.memory.store(address, at: at)
            try driver.memory.store(UInt32(bytes.count), at: at + 8)
            let last = i == buffers.count - 1
            try driver.memory.store(UInt16(last ? 0 : 1) | (writable ? 2 : 0), at: at + 12)
            try driver.memory.store(UInt16(i + 1), at: at + 14)
        }
        try driver.memory.store(UInt16(0), at: Self.txAvailable + 4 + 2 * UInt64(txIndex % 8))
        txIndex &+= 1
        try driver.memory.store(txIndex, at: Self.txAvailable + 2)
        driver.set(R.queueNotify, 1)
    }

    var txUsedIndex: UInt16 { (try? driver.memory.load(UInt16.self, at: Self.txUsed + 2)) ?? 0 }

    func hostSend(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { send(host, $0.baseAddress, $0.count, 0) }
    }

    func hostReceive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 70000)
        let n = buffer.withUnsafeMutableBytes { recv(host, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return n < 0 ? nil : Array(buffer[0..<n])
    }
}

/// An Ethernet frame: broadcast destination, the guest's MAC as source, ethertype 0x88b5, payload.
func ethernetFrame(_ payload: String, to destination: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) -> [UInt8] {
    destination + NetHarness.mac + [0x88, 0xb5] + Array(payload.utf8)
}

@Suite("virtio-net")
struct VirtioNetTests {
    typealias R = VirtioMMIOTransport.Register

    @Test func identifiesAsANetworkDeviceWithItsMAC() throws {
        let h = try NetHarness()
        #expect(h.driver.reg(R.deviceID) == 1)
        h.driver.set(R.deviceFeaturesSelect, 0)
        #expect(h.driver.reg(R.deviceFeatures) == 1 << 5)  // VIRTIO_NET_F_MAC, no offloads
        h.driver.set(R.deviceFeaturesSelect, 1)
        #expect(h.driver.reg(R.deviceFeatures) == 1)       // VIRTIO_F_VERSION_1
        #expect((0..<6).map { UInt8(h.driver.transport.read(offset: R.configuration + UInt64($0), size: 1)) } == NetHarness.mac)
        h.driver.set(R.queueSelect, 1)
        #expect(h.driver.reg(R.queueNumMax) == 256)
        h.driver.set(R.queueSelect, 2)
        #expect(h.driver.reg(R.queueNumMax) == 0)
    }

    @Test func macAddressesParse() {
        #expect(VirtioNet.parseMAC("06:00:AC:10:00:02") == [6, 0, 0xac, 0x10, 0, 2])
        #expect(VirtioNet.parseMAC("06:00:ac:10:00") == nil)
        #expect(VirtioNet.parseMAC("06:00:ac:10:00:2") == nil)
        #expect(VirtioNet.parseMAC("06:00:ac:10:00:zz") == nil)
        #expect(NetworkInterfaceConfiguration(id: "eth0", tapName: "t").effectiveMAC[0] == 0x02)  // local, unicast
    }

    @Test func transmitSendsTheFrameWithAZeroHeader() throws {
        let h = try NetHarness()
        h.start()
        // A header asking for checksum (flags 1) and TCPv4 GSO (type 1), never negotiated.
        let header: [UInt8] = [1, 1, 0x40, 0, 0x40, 0, 0x22, 0, 0x10, 0, 0, 0]
        let frame = ethernetFrame("hello from the guest")
        try h.transmit([(0x9000, header, false), (0x9100, Array(frame[0..<10]), false), (0x9200, Array(frame[10...]), false)])
        #expect(h.txUsedIndex == 1)
        #expect(h.hostReceive() == [UInt8](repeating: 0, count: 12) + frame)
        #expect(h.net.framesSent == 1)
        #expect(h.driver.interrupt.count == 1)
    }

    @Test func receiveFillsBuffersWhenTheDriverAddsThemAndFromTheEventThread() throws {
        let h = try NetHarness()
        h.start()
        // A frame arrives before the driver has any receive buffer: it waits, and the TAP is not polled.
        let first = [UInt8](repeating: 0, count: 12) + ethernetFrame("first", to: NetHarness.mac)
        h.hostSend(first)
        h.driver.transport.serviceHostEvents()
        #expect(h.driver.usedIndex == 0)
        #expect(h.net.pollRequests.isEmpty)
        try h.driver.descriptor(0, address: 0x4000, length: 1526, writable: true)
        try h.driver.submit(head: 0)
        #expect(h.driver.usedIndex == 1)
        #expect(try h.driver.usedElement(0) == (id: 0, length: UInt32(first.count)))
        var expected = first
        expected[10] = 1  // num_buffers
        #expect(try h.driver.memory.read(at: 0x4000, count: first.count) == expected)
        #expect(h.net.pollRequests.count == 1)
        // A buffer split in two, then a frame delivered by the event thread's path.
        try h.driver.descriptor(1, address: 0x5000, length: 8, writable: true, next: 2)
        try h.driver.descriptor(2, address: 0x5100, length: 1518, writable: true)
        try h.driver.submit(head: 1)
        let second = [UInt8](repeating: 0, count: 12) + ethernetFrame("second", to: NetHarness.mac)
        h.hostSend(second)
        h.driver.transport.serviceHostEvents()
        #expect(h.driver.usedIndex == 2)
        #expect(try h.driver.usedElement(1) == (id: 1, length: UInt32(second.count)))
        #expect(try h.driver.memory.read(at: 0x5000, count: 8) == Array(second[0..<8]))
        #expect(try h.driver.memory.read(at: 0x5100, count: 8) == [0, 0, 1, 0] + Array(second[12..<16]))  // num_buffers 1
        #expect(h.net.framesReceived == 2)
        #expect(h.driver.interrupt.count == 2)
    }

    @Test func frameLargerThanTheBufferIsDroppedAndRunt() throws {
        let h = try NetHarness()
        h.start()
        try h.driver.descriptor(0, address: 0x4000, length: 64, writable: true)
        try h.driver.submit(head: 0)
        h.hostSend([UInt8](repeating: 0, count: 12) + ethernetFrame(String(repeating: "x", count: 200)))
        h.hostSend([1, 2, 3])  // shorter than a header and an Ethernet header
        h.driver.transport.serviceHostEvents()
        #expect(try h.driver.usedElement(0) == (id: 0, length: 0))
        #expect(h.net.framesDropped == 2)
        #expect(h.driver.transport.failure == nil)
    }

    @Test func malformedTransmitChains() throws {
        let cases: [([(UInt64, [UInt8], Bool)], String)] = [
            ([(0x9000, [0, 0, 0], false)], "shorter than the 12-byte"),
            ([(0x9000, [UInt8](repeating: 0, count: 12), false), (0x9100, [0], true)], "device-writable"),
            ([(0x10000, [UInt8](repeating: 0, count: 12 + 65553 + 1), false)], "larger than a header"),
        ]
        for (chain, message) in cases {
            let h = try NetHarness()
            h.start()
            try h.transmit(chain)
            #expect(h.driver.transport.failure?.contains(message) == true, "\(String(describing: h.driver.transport.failure))")
            #expect(h.hostReceive() == nil)
        }
    }

    @Test func receiveChainWithReadableBufferIsMalformed() throws {
        let h = try NetHarness()
        h.start()
        try h.driver.descriptor(0, address: 0x4000, length: 1526)
        try h.driver.submit(head: 0)
        h.hostSend([UInt8](repeating: 0, count: 12) + ethernetFrame("x"))
        h.driver.transport.serviceHostEvents()
        #expect(h.driver.transport.failure?.contains("device-readable") == true)
        #expect(h.driver.reg(R.status) & Virtio.Status.deviceNeedsReset != 0)
        #expect(h.driver.transport.hostPollRequests().isEmpty)  // a failed device is not polled
    }

    /// The event thread delivers TAP input on its own, and not while paused.
    @Test func eventThreadDeliversFramesAndPausingHoldsThem() throws {
        let h = try NetHarness()
        h.start()
        let loop = try DeviceEventLoop(sources: [h.driver.transport])
        try loop.start()
        defer { loop.stop() }
        func waitForUsed(_ index: UInt16) -> Bool {
            for _ in 0..<500 where h.driver.usedIndex != index { usleep(10_000) }
            return h.driver.usedIndex == index
        }
        try h.driver.descriptor(0, address: 0x4000, length: 1526, writable: true)
        try h.driver.descriptor(1, address: 0x5000, length: 1526, writable: true)
        try h.driver.submit(head: 0)
        try h.driver.submit(head: 1)
        h.hostSend([UInt8](repeating: 0, count: 12) + ethernetFrame("one", to: NetHarness.mac))
        #expect(waitForUsed(1))
        loop.setPaused(true)
        h.hostSend([UInt8](repeating: 0, count: 12) + ethernetFrame("two", to: NetHarness.mac))
        usleep(200_000)
        #expect(h.driver.usedIndex == 1)
        loop.setPaused(false)
        #expect(waitForUsed(2))
        #expect(h.net.framesReceived == 2)
    }

    @Test func badTAPNamesAreRefusedByName() {
        for name in ["", "a-name-longer-than-15", "x/y"] {
            #expect {
                _ = try VirtioNet(tapName: name, mac: NetHarness.mac)
            } throws: { "\($0)".contains("'\(name)'") }
        }
    }
}
