import CBulkhead
import Glibc

/// Why a vCPU's run loop ended.
public enum VMExit: Equatable, Sendable {
    /// The guest asked for a reset (i8042 0xfe, or KVM_SYSTEM_EVENT_RESET): a microVM's way to stop.
    case reset
    /// KVM_SYSTEM_EVENT_SHUTDOWN (ACPI/PSCI power-off).
    case shutdown
    /// KVM_EXIT_HLT: the guest halted with no in-kernel LAPIC to wait in (only without an irqchip).
    case halted
    /// KVM_EXIT_SHUTDOWN: triple fault; the guest cannot continue.
    case tripleFault
    /// KVM_RUN returned EINTR after `stop` was requested.
    case stopped
    /// KVM could not run the guest (entry failure, emulation error, unexpected exit); the text says what.
    case failed(String)
}

/// Counters of what the run loop did, for diagnostics and tests.
public struct RunStatistics: Equatable, Sendable {
    public var exits = 0
    public var portIOExits = 0
    public var mmioExits = 0
    /// Port I/O or MMIO accesses no device claimed (reads returned all ones, writes were dropped).
    public var unclaimedAccesses = 0
}

/// Runs one vCPU until the guest stops: handles KVM_EXIT_IO through a port bus and KVM_EXIT_MMIO
/// through an MMIO bus, answers accesses that no device claims with all ones, and turns the terminal exits into a VMExit. Never traps on guest
/// behaviour: anything unexpected ends the loop with `.failed`.
public final class VCPURunLoop {
    public let vcpu: VCPU
    public let ports: PortIOBus
    public let mmio: MMIOBus
    public private(set) var statistics = RunStatistics()

    public init(vcpu: VCPU, ports: PortIOBus, mmio: MMIOBus = MMIOBus()) {
        self.vcpu = vcpu
        self.ports = ports
        self.mmio = mmio
    }

    /// Runs the vCPU on the calling thread until the guest stops or `stop(thread:)` is called.
    public func run() -> VMExit {
        let run = vcpu.run
        bh_kvm_run_set_immediate_exit(run, 0)
        // `stop` interrupts KVM_RUN with a signal, which only works if this thread can take it.
        // Thread pools block nearly every signal (measured: Swift Testing's workers block SIGUSR2),
        // so unblock the kick signal for the duration of the run.
        VCPURunLoop.installKickSignalHandler()
        var kickSet = sigset_t(), previousMask = sigset_t()
        sigemptyset(&kickSet)
        sigaddset(&kickSet, VCPURunLoop.kickSignal)
        pthread_sigmask(SIG_UNBLOCK, &kickSet, &previousMask)
        defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
        while true {
            if vcpu.runOnce() < 0 {
                let e = errno
                if e == EINTR || e == EAGAIN {
                    // A signal interrupted KVM_RUN; immediate_exit set means someone asked us to stop.
                    if run.pointee.immediate_exit != 0 { return .stopped }
                    continue
                }
                return .failed(KVMError("KVM_RUN", errno: e).description)
            }
            statistics.exits += 1
            switch bh_kvm_run_exit_reason(run) {
            case BH_KVM_EXIT_IO:
                statistics.portIOExits += 1
                if handlePortIO(run) == .reset { return .reset }
            case BH_KVM_EXIT_MMIO:
                statistics.mmioExits += 1
                handleMMIO(run)
            case BH_KVM_EXIT_HLT:
                return .halted
            case BH_KVM_EXIT_SHUTDOWN:
                return .tripleFault
            case BH_KVM_EXIT_SYSTEM_EVENT:
                switch bh_kvm_run_system_event_type(run) {
                case BH_KVM_SYSTEM_EVENT_RESET: return .reset
                case BH_KVM_SYSTEM_EVENT_SHUTDOWN: return .shutdown
                case let type: return .failed("KVM_EXIT_SYSTEM_EVENT type \(type)\(ripSuffix())")
                }
            case BH_KVM_EXIT_INTR, BH_KVM_EXIT_IRQ_WINDOW_OPEN:
                continue
            case BH_KVM_EXIT_FAIL_ENTRY:
                return .failed("KVM_EXIT_FAIL_ENTRY hardware reason 0x\(String(bh_kvm_run_fail_entry_reason(run), radix: 16))\(ripSuffix())")
            case BH_KVM_EXIT_INTERNAL_ERROR:
                return .failed("KVM_EXIT_INTERNAL_ERROR suberror \(bh_kvm_run_internal_suberror(run))\(ripSuffix())")
            case let reason:
                return .failed("unexpected KVM exit reason \(reason)\(ripSuffix())")
            }
        }
    }

    /// Asks the run loop running on `thread` to return `.stopped`: sets immediate_exit (seen at the
    /// next KVM_RUN) and signals the thread (interrupts a KVM_RUN in progress with EINTR). A signal
    /// can land between two KVM_RUN calls; callers repeat until `run` has returned.
    public func stop(thread: pthread_t) {
        bh_kvm_run_set_immediate_exit(vcpu.run, 1)
        pthread_kill(thread, VCPURunLoop.kickSignal)
    }

    /// SIGUSR2 has no default use in the VMM; its handler does nothing but interrupt KVM_RUN.
    public static let kickSignal = SIGUSR2

    /// Installs a no-op handler for `kickSignal` (without SA_RESTART, so KVM_RUN returns EINTR).
    static func installKickSignalHandler() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(kickSignal, &action, nil)
    }

    private func handlePortIO(_ run: UnsafeMutablePointer<kvm_run>) -> DeviceRequest {
        let port = bh_kvm_run_io_port(run), size = Int(bh_kvm_run_io_size(run))
        let count = Int(bh_kvm_run_io_count(run)), isOut = bh_kvm_run_io_direction(run) == BH_KVM_EXIT_IO_OUT
        guard let data = bh_kvm_run_io_data(run), [1, 2, 4].contains(size) else { return .none }
        var request = DeviceRequest.none
        // String I/O (rep outsb/insb) arrives as `count` consecutive items in one exit.
        for i in 0..<count {
            let item = data + i * size
            if isOut {
                var value: UInt32 = 0
                for b in 0..<size { value |= UInt32(item[b]) << (8 * UInt32(b)) }
                if ports.write(port: port, size: size, value: value) == .reset { request = .reset }
            } else {
                let value = ports.read(port: port, size: size)
                for b in 0..<size { item[b] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(b))) }
            }
        }
        if !ports.claims(port) { statistics.unclaimedAccesses += 1 }
        return request
    }

    private func handleMMIO(_ run: UnsafeMutablePointer<kvm_run>) {
        guard let data = bh_kvm_run_mmio_data(run) else { return }
        let address = bh_kvm_run_mmio_address(run)
        let size = min(Int(bh_kvm_run_mmio_length(run)), 8)
        if bh_kvm_run_mmio_is_write(run) != 0 {
            var value: UInt64 = 0
            for i in 0..<size { value |= UInt64(data[i]) << (8 * UInt64(i)) }
            if !mmio.write(address: address, size: size, value: value) { statistics.unclaimedAccesses += 1 }
        } else {
            // Reads of nothing return all ones, like an empty bus.
            let value = mmio.read(address: address, size: size) ?? {
                statistics.unclaimedAccesses += 1
                return UInt64.max
            }()
            for i in 0..<size { data[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
    }

    private func ripSuffix() -> String {
        guard let r = try? vcpu.registers() else { return "" }
        return " at rip 0x\(String(r.rip, radix: 16))"
    }
}
