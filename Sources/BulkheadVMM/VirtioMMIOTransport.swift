import Glibc

/// The virtio-mmio transport, version 2 (virtio 1.x §4.2): the register window through which a
/// driver discovers a device, negotiates features, sets up split virtqueues and notifies them.
///
/// Notifications are plain MMIO exits: a write to QueueNotify exits to the VMM, and the queue is
/// served right there on the vCPU thread before the guest resumes. That is one exit per kick and
/// needs no locking or second thread; ioeventfd (KVM_IOEVENTFD) would let another thread serve the
/// queue without the exit's round trip, and can replace this later without changing the device.
/// Interrupts go out through an InterruptLine (an irqfd in a VM): the used-buffer bit is set in
/// InterruptStatus first, so a driver that reads the register after the interrupt sees why.
///
/// Devices with host-side input (virtio-net's TAP, virtio-vsock's sockets) are also served from
/// the VMM's event thread (DeviceEventLoop) through `serviceHostEvents()`; a mutex serialises that
/// with the register accesses of the vCPU thread, so queue state has one owner at a time.
///
/// A malformed queue never stops the VM: the device sets DEVICE_NEEDS_RESET, signals a
/// configuration change, records why in `failure`, and ignores notifications until the driver
/// resets it by writing 0 to Status.
public final class VirtioMMIOTransport: MMIODevice, HostEventSource {
    /// Register offsets (§4.2.2).
    public enum Register {
        public static let magicValue: UInt64 = 0x000
        public static let version: UInt64 = 0x004
        public static let deviceID: UInt64 = 0x008
        public static let vendorID: UInt64 = 0x00c
        public static let deviceFeatures: UInt64 = 0x010
        public static let deviceFeaturesSelect: UInt64 = 0x014
        public static let driverFeatures: UInt64 = 0x020
        public static let driverFeaturesSelect: UInt64 = 0x024
        public static let queueSelect: UInt64 = 0x030
        public static let queueNumMax: UInt64 = 0x034
        public static let queueNum: UInt64 = 0x038
        public static let queueReady: UInt64 = 0x044
        public static let queueNotify: UInt64 = 0x050
        public static let interruptStatus: UInt64 = 0x060
        public static let interruptACK: UInt64 = 0x064
        public static let status: UInt64 = 0x070
        public static let queueDescriptorLow: UInt64 = 0x080
        public static let queueDescriptorHigh: UInt64 = 0x084
        public static let queueDriverLow: UInt64 = 0x090
        public static let queueDriverHigh: UInt64 = 0x094
        public static let queueDeviceLow: UInt64 = 0x0a0
        public static let queueDeviceHigh: UInt64 = 0x0a4
        public static let sharedMemorySelect: UInt64 = 0x0ac
        public static let sharedMemoryLengthLow: UInt64 = 0x0b0
        public static let sharedMemoryLengthHigh: UInt64 = 0x0b4
        public static let sharedMemoryBaseLow: UInt64 = 0x0b8
        public static let sharedMemoryBaseHigh: UInt64 = 0x0bc
        public static let configGeneration: UInt64 = 0x0fc
        public static let configuration: UInt64 = 0x100
    }

    /// "virt" read as a little-endian 32-bit value.
    public static let magic: UInt32 = 0x7472_6976
    public static let version: UInt32 = 2
    /// Vendor id reported to the driver: "BHVM" (any value is allowed; drivers match on device id).
    public static let vendor: UInt32 = 0x4d56_4842
    /// One page per device, as Firecracker lays them out.
    public static let windowSize: UInt32 = 0x1000

    public let device: VirtioDevice
    public let memory: GuestMemory
    public let interrupt: InterruptLine

    public private(set) var status: UInt32 = 0
    public private(set) var interruptStatus: UInt32 = 0
    public private(set) var driverFeatures: UInt64 = 0
    public private(set) var queues: [Virtqueue]
    /// Why the device set DEVICE_NEEDS_RESET, until the driver resets it.
    public private(set) var failure: String?
    private var deviceFeaturesSelect: UInt32 = 0
    private var driverFeaturesSelect: UInt32 = 0
    private var queueSelect: UInt32 = 0
    /// The configuration space never changes at run time yet, so its generation stays 0.
    private let configGeneration: UInt32 = 0

    /// Serialises the vCPU thread's register accesses with the event thread's host events.
    private let lock = ThreadLock()
    /// Called (with the lock held) after the driver notified a queue: the event loop uses it to
    /// look at the device's file descriptors again (a full receive queue got buffers).
    public var wakeEventLoop: (() -> Void)?

    public init(device: VirtioDevice, memory: GuestMemory, interrupt: InterruptLine) {
        self.device = device
        self.memory = memory
        self.interrupt = interrupt
        queues = Array(repeating: Virtqueue(), count: device.queueMaxSizes.count)
    }



    private var selectedQueue: Int? {
        Int(queueSelect) < queues.count ? Int(queueSelect) : nil
    }

    // MARK: Register reads

    public func read(offset: UInt64, size: Int) -> UInt64 {
        lock.locked { readLocked(offset: offset, size: size) }
    }

    private func readLocked(offset: UInt64, size: Int) -> UInt64 {
        if offset >= Register.configuration {
            return readConfiguration(at: Int(offset - Register.configuration), size: size)
        }
        // Registers are 32 bits wide and read with aligned 32-bit accesses (§4.2.2.2).
        guard size == 4, offset % 4 == 0 else { return 0 }
        let value: UInt32
        switch offset {
        case Register.magicValue: value = Self.magic
        case Register.version: value = Self.version
        case Register.deviceID: value = device.deviceType
        case Register.vendorID: value = Self.vendor
        case Register.deviceFeatures:
            value = deviceFeaturesSelect < 2 ? UInt32(truncatingIfNeeded: device.offeredFeatures >> (32 * UInt64(deviceFeaturesSelect))) : 0
        case Register.queueNumMax: value = selectedQueue.map { UInt32(device.queueMaxSizes[$0]) } ?? 0
        case Register.queueNum: value = selectedQueue.map { UInt32(queues[$0].size) } ?? 0
        case Register.queueReady: value = selectedQueue.map { queues[$0].ready ? 1 : 0 } ?? 0
        case Register.interruptStatus: value = interruptStatus
        case Register.status: value = status
        case Register.configGeneration: value = configGeneration
        case Register.queueDescriptorLow: value = queueAddress(\.descriptorTable, high: false)
        case Register.queueDescriptorHigh: value = queueAddress(\.descriptorTable, high: true)
        case Register.queueDriverLow: value = queueAddress(\.availableRing, high: false)
        case Register.queueDriverHigh: value = queueAddress(\.availableRing, high: true)
        case Register.queueDeviceLow: value = queueAddress(\.usedRing, high: false)
        case Register.queueDeviceHigh: value = queueAddress(\.usedRing, high: true)
        case Register.sharedMemoryLengthLow, Register.sharedMemoryLengthHigh,
             Register.sharedMemoryBaseLow, Register.sharedMemoryBaseHigh:
            value = 0xffff_ffff  // no shared memory regions: length -1 means "does not exist"
        default: value = 0  // write-only or reserved
        }
        return UInt64(value)
    }

    private func queueAddress(_ field: KeyPath<Virtqueue, UInt64>, high: Bool) -> UInt32 {
        guard let q = selectedQueue else { return 0 }
        return UInt32(truncatingIfNeeded: queues[q][keyPath: field] >> (high ? 32 : 0))
    }

    private func readConfiguration(at offset: Int, size: Int) -> UInt64 {
        let config = device.configuration
        guard offset >= 0, offset + size <= config.count else { return 0 }
        var value: UInt64 = 0
        for i in 0..<size { value |= UInt64(config[offset + i]) << (8 * UInt64(i)) }
        return value
    }

    // MARK: Register writes

    public func write(offset: UInt64, size: Int, value: UInt64) {
        lock.locked { writeLocked(offset: offset, size: size, value: value) }
    }

    private func writeLocked(offset: UInt64, size: Int, value: UInt64) {
        // The block device's configuration is read-only; other devices' writable fields come later.
        guard offset < Register.configuration, size == 4, offset % 4 == 0 else { return }
        let v = UInt32(truncatingIfNeeded: value)
        switch offset {
        case Register.deviceFeaturesSelect: deviceFeaturesSelect = v
        case Register.driverFeaturesSelect: driverFeaturesSelect = v
        case Register.driverFeatures:
            // Only between DRIVER and FEATURES_OK (§3.1.1).
            guard status & Virtio.Status.driver != 0, status & Virtio.Status.featuresOK == 0,
                  driverFeaturesSelect < 2 else { return }
            let shift = 32 * UInt64(driverFeaturesSelect)
            driverFeatures = (driverFeatures & ~(0xffff_ffff << shift)) | (UInt64(v) << shift)
        case Register.queueSelect: queueSelect = v
        case Register.queueNum: updateQueue { $0.size = UInt16(truncatingIfNeeded: v) }
        case Register.queueDescriptorLow: updateQueue { $0.descriptorTable = Self.setLow($0.descriptorTable, v) }
        case Register.queueDescriptorHigh: updateQueue { $0.descriptorTable = Self.setHigh($0.descriptorTable, v) }
        case Register.queueDriverLow: updateQueue { $0.availableRing = Self.setLow($0.availableRing, v) }
        case Register.queueDriverHigh: updateQueue { $0.availableRing = Self.setHigh($0.availableRing, v) }
        case Register.queueDeviceLow: updateQueue { $0.usedRing = Self.setLow($0.usedRing, v) }
        case Register.queueDeviceHigh: updateQueue { $0.usedRing = Self.setHigh($0.usedRing, v) }
        case Register.queueReady: setQueueReady(v == 1)
        case Register.queueNotify: notifyLocked(queue: Int(v))
        case Register.interruptACK: interruptStatus &= ~v
        case Register.status: setStatus(v)
        default: break  // read-only or reserved
        }
    }

    private static func setLow(_ old: UInt64, _ v: UInt32) -> UInt64 { (old & 0xffff_ffff_0000_0000) | UInt64(v) }
    private static func setHigh(_ old: UInt64, _ v: UInt32) -> UInt64 { (old & 0xffff_ffff) | (UInt64(v) << 32) }

    /// Queue layout can change only while the selected queue is not ready (§4.2.3.2).
    private func updateQueue(_ change: (inout Virtqueue) -> Void) {
        guard let q = selectedQueue, !queues[q].ready else { return }
        change(&queues[q])
    }

    private func setQueueReady(_ ready: Bool) {
        guard let q = selectedQueue else { return }
        guard ready else { queues[q].reset(); return }
        guard !queues[q].ready else { return }
        guard queues[q].size <= device.queueMaxSizes[q] else {
            return fail("queue \(q) size \(queues[q].size) is larger than its maximum \(device.queueMaxSizes[q])")
        }
        do { try queues[q].validate(memory: memory) } catch {
            return fail("queue \(q): \(error.description)")
        }
        queues[q].ready = true
    }

    private func setStatus(_ v: UInt32) {
        if v == 0 { return reset() }
        var new = v & ~Virtio.Status.deviceNeedsReset  // the device's bit, not the driver's
        if new & Virtio.Status.featuresOK != 0, status & Virtio.Status.featuresOK == 0 {
            // The driver may accept only what was offered, and must accept VERSION_1: refusing
            // FEATURES_OK (it reads back clear) is how the device says no (§3.1.1).
            let acceptable = driverFeatures & ~device.offeredFeatures == 0
                && driverFeatures & Virtio.featureVersion1 != 0
            if !acceptable { new &= ~Virtio.Status.featuresOK }
        }
        if new & Virtio.Status.driverOK != 0, status & Virtio.Status.driverOK == 0,
           new & Virtio.Status.featuresOK != 0 {
            device.activate(features: driverFeatures)
        }
        status = new | (status & Virtio.Status.deviceNeedsReset)
    }

    private func reset() {
        device.reset()
        status = 0
        interruptStatus = 0
        driverFeatures = 0
        deviceFeaturesSelect = 0
        driverFeaturesSelect = 0
        queueSelect = 0
        failure = nil
        for i in queues.indices { queues[i].reset() }
    }

    // MARK: Queues and interrupts

    /// Serves queue `index` if the driver has the device running and the queue ready.
    public func notify(queue index: Int) {
        lock.locked { notifyLocked(queue: index) }
    }

    private func notifyLocked(queue index: Int) {
        let running = Virtio.Status.featuresOK | Virtio.Status.driverOK
        guard index >= 0, index < queues.count, queues[index].ready,
              status & running == running, failure == nil else { return }
        do {
            if try device.processQueue(index, queue: &queues[index], memory: memory) {
                interruptStatus |= Virtio.Interrupt.usedBuffer
                interrupt.trigger()
            }
        } catch {
            fail("queue \(index): \(error.description)")
        }
        wakeEventLoop?()
    }

    /// The event thread's entry: lets a device with host-side input move it into its queues
    /// (only while the driver has it running), and interrupts if it used any buffer.
    public func serviceHostEvents() {
        guard let device = device as? VirtioHostEventDevice else { return }
        lock.locked {
            let running = Virtio.Status.featuresOK | Virtio.Status.driverOK
            guard status & running == running, failure == nil else { return }
            do {
                if try device.serviceHostEvents(queues: &queues, memory: memory) {
                    interruptStatus |= Virtio.Interrupt.usedBuffer
                    interrupt.trigger()
                }
            } catch {
                fail("host event: \(error)")
            }
        }
    }

    /// What the event thread should wait for on this device's behalf (empty while the driver
    /// has not started it: nothing could be delivered).
    public func hostPollRequests() -> [pollfd] {
        guard let device = device as? VirtioHostEventDevice else { return [] }
        return lock.locked {
            let running = Virtio.Status.featuresOK | Virtio.Status.driverOK
            guard status & running == running, failure == nil else { return [] }
            return device.pollRequests
        }
    }

    /// DEVICE_NEEDS_RESET (§2.1.2): stop using the queues, tell the driver through a configuration
    /// change interrupt, keep running.
    private func fail(_ reason: String) {
        failure = reason
        status |= Virtio.Status.deviceNeedsReset
        interruptStatus |= Virtio.Interrupt.configurationChange
        interrupt.trigger()
    }
}
