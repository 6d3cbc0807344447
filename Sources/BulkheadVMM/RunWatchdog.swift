import CBulkhead
import Glibc

/// Bounds how long a run loop may run on the calling thread: a helper thread waits for `seconds`
/// and, unless the run finished first, kicks the vCPU out of KVM_RUN so the loop returns `.stopped`.
/// A guest spinning in kernel mode never exits by itself, and tests must not hang on one.
enum RunWatchdog {
    private final class Context {
        let runLoop: VCPURunLoop
        let runThread: pthread_t
        let cancelFD: Int32
        let timeoutMilliseconds: Int32
        init(runLoop: VCPURunLoop, runThread: pthread_t, cancelFD: Int32, timeoutMilliseconds: Int32) {
            self.runLoop = runLoop; self.runThread = runThread
            self.cancelFD = cancelFD; self.timeoutMilliseconds = timeoutMilliseconds
        }
    }

    static func run(_ runLoop: VCPURunLoop, seconds: Double) throws(KVMError) -> VMExit {
        // An eventfd that the run thread signals when the run ends, so the watchdog wakes at once.
        let doneFD = try check("eventfd (watchdog)", eventfd(0, Int32(EFD_CLOEXEC)))
        defer { close(doneFD) }
        let millis = Int32(clamping: Int64(max(0, seconds) * 1000))
        let context = Context(runLoop: runLoop, runThread: pthread_self(), cancelFD: doneFD, timeoutMilliseconds: millis)
        let unmanaged = Unmanaged.passRetained(context)
        var watchdog = pthread_t()
        let created = pthread_create(&watchdog, nil, { raw in
            let context = Unmanaged<Context>.fromOpaque(raw!).takeRetainedValue()
            var fd = pollfd(fd: context.cancelFD, events: Int16(POLLIN), revents: 0)
            var ready: Int32
            repeat { ready = poll(&fd, 1, context.timeoutMilliseconds) } while ready < 0 && errno == EINTR
            // Kick until the run loop reports back: a signal that lands while the thread is between
            // KVM_RUN calls only sets immediate_exit, and the loop may be busy handling an exit.
            while ready == 0 {
                context.runLoop.stop(thread: context.runThread)
                ready = poll(&fd, 1, 10)
            }
            return nil
        }, unmanaged.toOpaque())
        if created != 0 {
            unmanaged.release()
            throw KVMError("pthread_create (watchdog)", errno: created)
        }
        let exit = runLoop.run()
        var one: UInt64 = 1
        _ = write(doneFD, &one, 8)
        pthread_join(watchdog, nil)
        return exit
    }
}
