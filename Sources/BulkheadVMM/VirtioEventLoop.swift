import CBulkhead
import Glibc

/// The VMM's event thread for devices with host-side input (virtio-net's TAP, virtio-vsock's
/// sockets): waits in poll(2) on what each device asks for plus a wake-up eventfd, then lets every
/// device move host input into its queues (VirtioMMIOTransport.serviceHostEvents).
///
/// Why a thread and not the vCPU loop: a guest that waits for input halts (or spins) without
/// exiting, so input seen only between exits could wait forever. Driver notifications still run
/// on the vCPU thread; the transport's mutex keeps the two apart. A notification wakes this
/// thread (onNotify), so a receive queue that was full is looked at again as soon as the driver
/// adds buffers. The poll timeout (100 ms) is only a safety net.
public final class VirtioEventLoop {
    let transports: [VirtioMMIOTransport]
    private let wakeFD: Int32
    private var thread = pthread_t()
    private var started = false
    /// Set by `stop`; read by the thread after each wake-up.
    private let stopFlag = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    /// Held while devices are serviced, and guards `paused`.
    private let serviceLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var paused = false

    public init(transports: [VirtioMMIOTransport]) throws(KVMError) {
        self.transports = transports
        wakeFD = try check("eventfd (virtio event loop)", eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK)))
        stopFlag.pointee = 0
        pthread_mutex_init(serviceLock, nil)
        let fd = wakeFD
        for t in transports {
            t.onNotify = {
                var one: UInt64 = 1
                _ = Glibc.write(fd, &one, 8)
            }
        }
    }

    deinit {
        stop()
        for t in transports { t.onNotify = nil }
        close(wakeFD)
        stopFlag.deallocate()
        pthread_mutex_destroy(serviceLock)
        serviceLock.deallocate()
    }

    /// While paused (Firecracker's PATCH /vm Paused) no host input reaches guest memory; returns
    /// once any servicing in progress has finished. Host sockets and the TAP keep their data.
    public func setPaused(_ value: Bool) {
        pthread_mutex_lock(serviceLock)
        paused = value
        pthread_mutex_unlock(serviceLock)
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    public func start() throws(KVMError) {
        guard !started, !transports.isEmpty else { return }
        let unmanaged = Unmanaged.passUnretained(self)
        let created = pthread_create(&thread, nil, { raw in
            Unmanaged<VirtioEventLoop>.fromOpaque(raw!).takeUnretainedValue().loop()
            return nil
        }, unmanaged.toOpaque())
        guard created == 0 else { throw KVMError("pthread_create (virtio event loop)", errno: created) }
        started = true
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
        while !loadFlag(stopFlag) {
            var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            pthread_mutex_lock(serviceLock)
            let isPaused = paused
            pthread_mutex_unlock(serviceLock)
            if !isPaused { for t in transports { fds += t.hostPollRequests() } }
            let ready = poll(&fds, nfds_t(fds.count), 100)
            if ready < 0 && errno != EINTR { usleep(10_000) }
            if fds[0].revents != 0 {
                var value: UInt64 = 0
                _ = read(wakeFD, &value, 8)
            }
            if loadFlag(stopFlag) { break }
            pthread_mutex_lock(serviceLock)
            if !paused { for t in transports { t.serviceHostEvents() } }
            pthread_mutex_unlock(serviceLock)
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
