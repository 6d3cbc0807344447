import Glibc

/// A virtio device behind a transport (virtio 1.x §2, §5): what it is, what it offers, its
/// configuration space and how it serves its queues. The transport owns feature negotiation,
/// device status, queue setup and interrupts; the device only sees negotiated features and
/// ready queues.
public protocol VirtioDevice: AnyObject {
    /// The virtio device id (§5): 2 for block, 1 for network, ...
    var deviceType: UInt32 { get }
    /// Feature bits the device offers, VIRTIO_F_VERSION_1 included.
    var offeredFeatures: UInt64 { get }
    /// The largest size of each queue; the count is the number of queues.
    var queueMaxSizes: [UInt16] { get }
    /// The device-specific configuration space, little-endian.
    var configuration: [UInt8] { get }

    /// The driver set DRIVER_OK with `features` accepted.
    func activate(features: UInt64)
    /// Serves every chain available on queue `index`. Returns whether any chain was returned to
    /// the used ring (the transport then interrupts). Throws when the queue is malformed.
    func processQueue(_ index: Int, queue: inout Virtqueue, memory: GuestMemory) throws(VirtqueueError) -> Bool
    /// The driver reset the device: forget negotiated state.
    func reset()
}

/// A device whose input comes from the host side (a TAP, sockets) rather than from the driver's
/// notifications: the event thread polls `pollRequests` and then calls `serviceHostEvents`,
/// both with the transport's lock held, so the device never races the vCPU thread.
public protocol VirtioHostEventDevice: VirtioDevice {
    /// File descriptors and events to wait for now (a receive path with no guest buffers should
    /// not ask for POLLIN, or the event thread would spin).
    var pollRequests: [pollfd] { get }
    /// Moves whatever the host has into the queues, without blocking. Returns whether any chain
    /// was returned to a used ring.
    func serviceHostEvents(queues: inout [Virtqueue], memory: GuestMemory) throws(VirtqueueError) -> Bool
}

/// Feature bits and status bits shared by every virtio device.
public enum Virtio {
    /// VIRTIO_F_VERSION_1: the device follows virtio 1.x (not legacy); required by MMIO version 2.
    public static let featureVersion1: UInt64 = 1 << 32

    /// Device status bits (§2.1).
    public enum Status {
        public static let acknowledge: UInt32 = 1
        public static let driver: UInt32 = 2
        public static let driverOK: UInt32 = 4
        public static let featuresOK: UInt32 = 8
        public static let deviceNeedsReset: UInt32 = 64
        public static let failed: UInt32 = 128
    }

    /// InterruptStatus bits (§4.2.2).
    public enum Interrupt {
        public static let usedBuffer: UInt32 = 1
        public static let configurationChange: UInt32 = 2
    }
}
