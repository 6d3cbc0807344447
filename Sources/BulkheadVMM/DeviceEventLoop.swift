import CBulkhead
import Glibc

/// A device with host-side input that the device event loop serves.
public protocol HostEventSource: AnyObject {
    /// File descriptors and events to wait for now (a receive path with no room for more should
    /// not ask for POLLIN, or the event thread would spin).
    func hostPollRequests() -> [pollfd]
    /// Moves whatever the host has into the device, without blocking.
    func serviceHostEvents()
    /// Set by the event loop: the device calls it when what it waits for may have changed (the
    /// guest made room for more input), so the loop polls again at once.
    var wakeEventLoop: (() -> Void)? { get set }
}

/// The VMM's event thread for devices with host-side input (virtio-net's TAP, virtio-vsock's
/// sockets, the serial console's stdin): waits in poll(2) on what each device asks for plus a
/// wake-up eventfd, then lets every device move host input in (`serviceHostEvents`).
///
/// Why a thread and not the vCPU loop: a guest that waits for input halts (or spins) without
/// exiting, so input seen only between exits could wait forever. Driver notifications still run
/// on the vCPU threads; each device's lock keeps the two apart. A device wakes this thread
/// (`wakeEventLoop`), so a receive queue that was full is looked at again as soon as the driver
/// adds buffers. The poll timeout (100 ms) is only a safety net.
///
/// bulkhead-vmm confines the thread as a `vmm` thread (ThreadConfinement) before it polls.
public final class DeviceEventLoop {
    let sources: [HostEventSource]
    /// Runs first on the event thread (bulkhead-vmm loads the seccomp filter there).
    private let prepareThread: () throws -> Void
    private let wakeFD: Int32
    private var thread = pthread_t()
    private var started = false
    /// Set by `stop`; read by the thread after each wake-up.
    private let stopFlag = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    /// Held while devices are serviced, and guards `paused`.
    private let serviceLock = ThreadLock()
    private var paused = false
    /// Posted by the thread once `prepareThread` has run.
    private let prepared = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    public init(sources: [HostEventSource], prepareThread: @escaping () throws -> Void = {}) throws(KVMError) {
        self.sources = sources
        self.prepareThread = prepareThread
        wakeFD = try check("eventfd (device event loop)", eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK)))
        stopFlag.pointee = 0
        sem_init(prepared, 0, 0)
        let fd = wakeFD
        for source in sources {
            source.wakeEventLoop = {
                var one: UInt64 = 1
                _ = Glibc.write(fd, &one, 8)
            }
        }
    }

    deinit {
        stop()
        for source in sources { source.wakeEventLoop = nil }
        close(wakeFD)
        stopFlag.deallocate()
        sem_destroy(prepared)
        prepared.deallocate()
    }

    /// While paused (Firecracker's PATCH /vm Paused) no host input reaches guest memory; returns
    /// once any servicing in progress has finished. Host sockets and the TAP keep their data.
    public func setPaused(_ value: Bool) {
        serviceLock.lock()
        paused = value
        serviceLock.unlock()
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    /// Starts the thread and returns once it has run `prepareThread` (so it is confined before
    /// the guest runs).
    public func start() throws(KVMError) {
        guard !started, !sources.isEmpty else { return }
        let unmanaged = Unmanaged.passUnretained(self)
        let created = pthread_create(&thread, nil, { raw in
            Unmanaged<DeviceEventLoop>.fromOpaque(raw!).takeUnretainedValue().loop()
            return nil
        }, unmanaged.toOpaque())
        guard created == 0 else { throw KVMError("pthread_create (device event loop)", errno: created) }
        started = true
        while sem_wait(prepared) != 0 && errno == EINTR {}
    }

    /// Ends the thread and waits for it; idempotent.
    public func stop() {
        guard started else { return }
        started = false
        storeFlag(stopFlag)
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
        pthread_join(thread, nil)
    }

    private func loop() {
        do {
            try prepareThread()
        } catch {
            // The devices' host input would go unserved: a VMM that cannot confine this thread stops.
            let bytes = Array("bulkhead-vmm: device event thread: \(error)\n".utf8)
            _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            Glibc.exit(1)
        }
        sem_post(prepared)
        while !loadFlag(stopFlag) {
            var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            serviceLock.lock()
            let isPaused = paused
            serviceLock.unlock()
            if !isPaused { for source in sources { fds += source.hostPollRequests() } }
            let ready = poll(&fds, nfds_t(fds.count), 100)
            if ready < 0 && errno != EINTR { usleep(10_000) }
            if fds[0].revents != 0 {
                var value: UInt64 = 0
                _ = read(wakeFD, &value, 8)
            }
            if loadFlag(stopFlag) { break }
            serviceLock.lock()
            if !paused { for source in sources { source.serviceHostEvents() } }
            serviceLock.unlock()
        }
    }
}

// The stop flag is written by one thread and read by another: plain loads could be hoisted out
// of the loop, so go through the C fences already used for the rings.
@inline(__always) private func storeFlag(_ p: UnsafeMutablePointer<Int32>) {
    bh_fence_release()
    p.pointee = 1
    bh_fence_release()
}
@inline(__always) private func loadFlag(_ p: UnsafeMutablePointer<Int32>) -> Bool {
    bh_fence_acquire()
    let v = p.pointee
    bh_fence_acquire()
    return v != 0
}
