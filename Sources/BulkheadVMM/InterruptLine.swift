import CBulkhead
import Glibc

/// How a device raises its interrupt. Edge semantics: each `trigger` is one interrupt.
public protocol InterruptLine: AnyObject {
    func trigger()
}

/// An interrupt delivered by KVM itself: an eventfd registered with KVM_IRQFD on a GSI of the
/// in-kernel IOAPIC. Writing the eventfd pulses the pin (KVM sets and clears it), so the guest
/// must see the line as edge-triggered — which the DSDT says. No vCPU exit, no lock, and it works
/// from any thread.
public final class IRQFDInterrupt: InterruptLine {
    public let gsi: UInt32
    public let eventFD: Int32
    private let vm: VirtualMachine

    /// Creates the eventfd and registers it on `gsi` (needs the in-kernel irqchip).
    public init(vm: VirtualMachine, gsi: UInt32) throws(KVMError) {
        eventFD = try check("eventfd (irqfd for GSI \(gsi))", eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK)))
        self.gsi = gsi
        self.vm = vm
        var request = kvm_irqfd()
        request.fd = UInt32(eventFD)
        request.gsi = gsi
        if bh_kvm_ioctl(vm.fd, BH_KVM_IRQFD, &request) < 0 {
            let e = errno
            close(eventFD)
            throw KVMError("KVM_IRQFD GSI \(gsi)", errno: e)
        }
    }

    deinit {
        var request = kvm_irqfd()
        request.fd = UInt32(eventFD)
        request.gsi = gsi
        request.flags = BH_KVM_IRQFD_FLAG_DEASSIGN
        _ = bh_kvm_ioctl(vm.fd, BH_KVM_IRQFD, &request)
        close(eventFD)
    }

    public func trigger() {
        var one: UInt64 = 1
        // EAGAIN only if the counter is saturated, which means interrupts are already pending.
        _ = write(eventFD, &one, 8)
    }
}
