import Glibc

/// A pthread mutex for state that the vCPU threads, the device event thread and the API thread
/// share (device registers, queues, the logger, run state). A class, so the mutex keeps the stable
/// address pthreads requires; `mutex` is there for condition variables.
final class ThreadLock {
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
