import Glibc

/// Runs each vCPU of a VM on its own thread (as Firecracker does) and turns their run loops into
/// one VM lifetime: the first vCPU whose loop ends for good (reset, shutdown, triple fault,
/// failure) ends the VM, and the other vCPUs are kicked out of KVM_RUN and their threads end.
/// Pausing kicks every vCPU and parks its thread until resume.
///
/// Application processors need nothing special here: with the in-kernel irqchip KVM keeps them in
/// KVM_RUN (MP state "uninitialized") until the guest's boot processor sends INIT and SIPI.
///
/// A kick sets immediate_exit and signals the thread, but one that lands between two KVM_RUN
/// calls is lost when the loop starts again (`VCPURunLoop.run` clears immediate_exit); so whoever
/// waits for vCPUs to stop or park kicks again every 10 ms until they have.
public final class VCPUThreads: @unchecked Sendable {
    public let runLoops: [VCPURunLoop]
    /// Runs first on each vCPU thread, with its index; bulkhead-vmm confines the thread here. A
    /// throw ends the VM with `.failed`.
    private let prepareThread: (Int) throws -> Void
    private var threads: [pthread_t]
    private var ended: [Bool]
    private var parkedCount = 0
    /// Threads past `prepareThread`: `start` returns once all are, so a VMM that confines its
    /// vCPU threads there has no unconfined vCPU thread left when InstanceStart answers.
    private var preparedCount = 0
    private var pauseRequested = false
    private var finalExit: VMExit?
    private var started = false
    private let lock = ThreadLock()
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init(runLoops: [VCPURunLoop], prepareThread: @escaping (Int) throws -> Void = { _ in }) {
        precondition(!runLoops.isEmpty, "a VM has at least one vCPU")
        self.runLoops = runLoops
        self.prepareThread = prepareThread
        threads = Array(repeating: pthread_t(), count: runLoops.count)
        ended = Array(repeating: false, count: runLoops.count)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        changed.deallocate()
    }

    private final class ThreadStart {
        let owner: VCPUThreads
        let index: Int
        init(_ owner: VCPUThreads, _ index: Int) { self.owner = owner; self.index = index }
    }

    /// Starts one thread per vCPU and returns once each has run `prepareThread`. If a thread
    /// cannot be created, the ones already running are stopped and joined before this throws.
    public func start() throws(KVMError) {
        precondition(!started, "VCPUThreads.start called twice")
        started = true
        for index in runLoops.indices {
            let context = Unmanaged.passRetained(ThreadStart(self, index))
            let created = pthread_create(&threads[index], nil, { raw in
                let start = Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue()
                start.owner.threadMain(start.index)
                return nil
            }, context.toOpaque())
            if created != 0 {
                context.release()
                lock.lock()
                for i in index..<runLoops.count { ended[i] = true }
                if finalExit == nil { finalExit = .failed("pthread_create (vCPU \(index)) failed") }
                lock.unlock()
                _ = waitForExit(timeoutSeconds: nil, joining: 0..<index)
                throw KVMError("pthread_create (vCPU \(index))", errno: created)
            }
        }
        lock.lock()
        while preparedCount < runLoops.count { pthread_cond_wait(changed, lock.mutex) }
        lock.unlock()
    }

    private func threadMain(_ index: Int) {
        var failure: VMExit?
        do {
            try prepareThread(index)
        } catch {
            failure = .failed("vCPU \(index): \(error)")
        }
        lock.lock()
        preparedCount += 1
        pthread_cond_broadcast(changed)
        lock.unlock()
        if let failure { return finish(index, exit: failure) }
        while true {
            lock.lock()
            let over = finalExit != nil
            lock.unlock()
            if over { return finish(index, exit: nil) }
            let exit = runLoops[index].run()
            guard exit == .stopped else { return finish(index, exit: exit) }
            lock.lock()
            if pauseRequested && finalExit == nil {
                parkedCount += 1
                pthread_cond_broadcast(changed)
                while pauseRequested && finalExit == nil { pthread_cond_wait(changed, lock.mutex) }
                parkedCount -= 1
                pthread_cond_broadcast(changed)
            }
            lock.unlock()
        }
    }

    /// The thread of vCPU `index` is done; `exit` ends the VM unless another vCPU already did.
    private func finish(_ index: Int, exit: VMExit?) {
        lock.lock()
        if finalExit == nil, let exit { finalExit = exit }
        ended[index] = true
        pthread_cond_broadcast(changed)
        lock.unlock()
    }

    /// Blocks until a vCPU ends the VM, or until `timeoutSeconds` have passed (the VM then ends
    /// with `.stopped`); stops the other vCPUs, joins every thread and returns the VM's exit.
    public func waitForExit(timeoutSeconds: Double? = nil) -> VMExit {
        waitForExit(timeoutSeconds: timeoutSeconds, joining: runLoops.indices)
    }

    private func waitForExit(timeoutSeconds: Double?, joining: Range<Int>) -> VMExit {
        let deadline = timeoutSeconds.map { Self.realtime(after: max(0, $0)) }
        lock.lock()
        while finalExit == nil {
            if var deadline {
                if pthread_cond_timedwait(changed, lock.mutex, &deadline) == ETIMEDOUT && finalExit == nil {
                    finalExit = .stopped
                }
            } else {
                pthread_cond_wait(changed, lock.mutex)
            }
        }
        kickUntil { !self.ended.contains(false) }
        let exit = finalExit!
        lock.unlock()
        for index in joining { pthread_join(threads[index], nil) }
        return exit
    }

    /// Kicks the vCPUs that have neither ended nor parked out of KVM_RUN and waits; returns once
    /// every vCPU is parked (or the VM has ended). PATCH /vm Paused.
    public func pause() {
        lock.lock()
        pauseRequested = true
        kickUntil { self.finalExit != nil || self.parkedCount + self.ended.filter { $0 }.count == self.runLoops.count }
        lock.unlock()
    }

    /// Lets parked vCPUs run again; returns once none is parked.
    public func resume() {
        lock.lock()
        pauseRequested = false
        pthread_cond_broadcast(changed)
        while parkedCount > 0 && finalExit == nil { pthread_cond_wait(changed, lock.mutex) }
        lock.unlock()
    }

    /// With `lock` held: kicks every vCPU thread still running every 10 ms until `done()`.
    private func kickUntil(_ done: () -> Bool) {
        while !done() {
            for index in runLoops.indices where !ended[index] { runLoops[index].stop(thread: threads[index]) }
            var deadline = Self.realtime(after: 0.01)
            pthread_cond_timedwait(changed, lock.mutex, &deadline)
        }
    }

    private static func realtime(after seconds: Double) -> timespec {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        let nanoseconds = Int(t.tv_nsec) + Int(seconds * 1e9)
        t.tv_sec += nanoseconds / 1_000_000_000
        t.tv_nsec = nanoseconds % 1_000_000_000
        return t
    }
}
