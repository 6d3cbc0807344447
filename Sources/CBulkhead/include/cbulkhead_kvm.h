// cbulkhead_kvm.h — the parts of <linux/kvm.h> that Swift cannot import: ioctl numbers (function-like
// _IO/_IOW macros), the anonymous unions of struct kvm_run, and structs with flexible array members.
// Everything here is a constant or a tiny inline wrapper; the logic lives in Swift (BulkheadVMM).
#pragma once

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>  // irqfd/ioeventfd and the run watchdog; not in the Glibc module
#include <sys/ioctl.h>

// ioctl is variadic: Swift cannot call it directly.
static inline int bh_kvm_ioctl(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
static inline int bh_kvm_ioctl_value(int fd, unsigned long request, unsigned long value) {
    return ioctl(fd, request, value);
}

// System ioctls (on the /dev/kvm fd).
static const unsigned long BH_KVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long BH_KVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long BH_KVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long BH_KVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long BH_KVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
static const int BH_KVM_API_VERSION = KVM_API_VERSION;

// VM ioctls.
static const unsigned long BH_KVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long BH_KVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long BH_KVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
static const unsigned long BH_KVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
static const unsigned long BH_KVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long BH_KVM_CREATE_PIT2 = KVM_CREATE_PIT2;
static const unsigned int BH_KVM_PIT_SPEAKER_DUMMY = KVM_PIT_SPEAKER_DUMMY;
static const unsigned long BH_KVM_IRQFD = KVM_IRQFD;
static const unsigned int BH_KVM_IRQFD_FLAG_DEASSIGN = KVM_IRQFD_FLAG_DEASSIGN;

// vCPU ioctls.
static const unsigned long BH_KVM_RUN = KVM_RUN;
static const unsigned long BH_KVM_GET_REGS = KVM_GET_REGS;
static const unsigned long BH_KVM_SET_REGS = KVM_SET_REGS;
static const unsigned long BH_KVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long BH_KVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long BH_KVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long BH_KVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long BH_KVM_SET_FPU = KVM_SET_FPU;
static const unsigned long BH_KVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long BH_KVM_SET_LAPIC = KVM_SET_LAPIC;

// Capabilities the VMM checks before relying on them.
static const int BH_KVM_CAP_IRQCHIP = KVM_CAP_IRQCHIP;
static const int BH_KVM_CAP_PIT2 = KVM_CAP_PIT2;
static const int BH_KVM_CAP_USER_MEMORY = KVM_CAP_USER_MEMORY;
static const int BH_KVM_CAP_EXT_CPUID = KVM_CAP_EXT_CPUID;
static const int BH_KVM_CAP_IRQFD = KVM_CAP_IRQFD;

// Exit reasons of struct kvm_run.
static const uint32_t BH_KVM_EXIT_UNKNOWN = KVM_EXIT_UNKNOWN;
static const uint32_t BH_KVM_EXIT_IO = KVM_EXIT_IO;
static const uint32_t BH_KVM_EXIT_HLT = KVM_EXIT_HLT;
static const uint32_t BH_KVM_EXIT_MMIO = KVM_EXIT_MMIO;
static const uint32_t BH_KVM_EXIT_SHUTDOWN = KVM_EXIT_SHUTDOWN;
static const uint32_t BH_KVM_EXIT_FAIL_ENTRY = KVM_EXIT_FAIL_ENTRY;
static const uint32_t BH_KVM_EXIT_INTR = KVM_EXIT_INTR;
static const uint32_t BH_KVM_EXIT_INTERNAL_ERROR = KVM_EXIT_INTERNAL_ERROR;
static const uint32_t BH_KVM_EXIT_SYSTEM_EVENT = KVM_EXIT_SYSTEM_EVENT;
static const uint32_t BH_KVM_EXIT_IRQ_WINDOW_OPEN = KVM_EXIT_IRQ_WINDOW_OPEN;
static const uint8_t BH_KVM_EXIT_IO_IN = KVM_EXIT_IO_IN;
static const uint8_t BH_KVM_EXIT_IO_OUT = KVM_EXIT_IO_OUT;
static const uint32_t BH_KVM_SYSTEM_EVENT_SHUTDOWN = KVM_SYSTEM_EVENT_SHUTDOWN;
static const uint32_t BH_KVM_SYSTEM_EVENT_RESET = KVM_SYSTEM_EVENT_RESET;

// struct kvm_run: its exit data lives in anonymous unions of anonymous structs, which Swift imports
// poorly; read it through these accessors.
static inline uint32_t bh_kvm_run_exit_reason(const struct kvm_run *run) { return run->exit_reason; }
static inline void bh_kvm_run_set_immediate_exit(struct kvm_run *run, uint8_t value) { run->immediate_exit = value; }

static inline uint8_t bh_kvm_run_io_direction(const struct kvm_run *run) { return run->io.direction; }
static inline uint8_t bh_kvm_run_io_size(const struct kvm_run *run) { return run->io.size; }
static inline uint16_t bh_kvm_run_io_port(const struct kvm_run *run) { return run->io.port; }
static inline uint32_t bh_kvm_run_io_count(const struct kvm_run *run) { return run->io.count; }
// The I/O data is inside the kvm_run mapping, io.data_offset bytes from its start.
static inline uint8_t *bh_kvm_run_io_data(struct kvm_run *run) { return (uint8_t *)run + run->io.data_offset; }

static inline uint64_t bh_kvm_run_mmio_address(const struct kvm_run *run) { return run->mmio.phys_addr; }
static inline uint32_t bh_kvm_run_mmio_length(const struct kvm_run *run) { return run->mmio.len; }
static inline uint8_t bh_kvm_run_mmio_is_write(const struct kvm_run *run) { return run->mmio.is_write; }
static inline uint8_t *bh_kvm_run_mmio_data(struct kvm_run *run) { return run->mmio.data; }

static inline uint32_t bh_kvm_run_system_event_type(const struct kvm_run *run) { return run->system_event.type; }
static inline uint32_t bh_kvm_run_internal_suberror(const struct kvm_run *run) { return run->internal.suberror; }
static inline uint64_t bh_kvm_run_fail_entry_reason(const struct kvm_run *run) {
    return run->fail_entry.hardware_entry_failure_reason;
}

// Memory fences for virtqueues shared with a running guest: Swift has no fence in the standard
// library without the Synchronization module. On x86 both compile to no instruction, but they stop
// the compiler from moving loads and stores across them.
static inline void bh_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
static inline void bh_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }

// struct kvm_cpuid2 ends in a flexible array; the caller allocates header + n entries.
static const size_t BH_KVM_CPUID2_HEADER_SIZE = sizeof(struct kvm_cpuid2);
static inline struct kvm_cpuid_entry2 *bh_kvm_cpuid2_entries(struct kvm_cpuid2 *cpuid) { return cpuid->entries; }

// KVM_SET_MSRS with a flexible array of entries: builds the request on the stack (at most 32 MSRs).
// Returns the number of MSRs set (KVM stops at the first one it refuses), or -1 with errno.
static inline int bh_kvm_set_msrs(int vcpu_fd, const uint32_t *indices, const uint64_t *values, uint32_t count) {
    // Header and entries in one 8-byte-aligned buffer (a struct holding kvm_msrs then an array
    // would be a GNU extension).
    uint64_t buffer[(sizeof(struct kvm_msrs) + 32 * sizeof(struct kvm_msr_entry)) / sizeof(uint64_t)];
    struct kvm_msrs *request = (struct kvm_msrs *)buffer;
    if (count > 32) count = 32;
    memset(buffer, 0, sizeof buffer);
    request->nmsrs = count;
    for (uint32_t i = 0; i < count; i++) {
        request->entries[i].index = indices[i];
        request->entries[i].data = values[i];
    }
    return ioctl(vcpu_fd, KVM_SET_MSRS, request);
}

// struct kvm_lapic_state is a 1 KiB register image; Linux expects LINT0 = ExtINT and LINT1 = NMI
// (what the BIOS would program). Same as Firecracker's set_lint. Returns 0 or -1 with errno.
static inline int bh_kvm_set_lint(int vcpu_fd) {
    struct kvm_lapic_state lapic;
    if (ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) < 0) return -1;
    uint32_t lint0, lint1;
    memcpy(&lint0, lapic.regs + 0x350, 4);
    memcpy(&lint1, lapic.regs + 0x360, 4);
    lint0 = (lint0 & ~0x700u) | 0x700u;  // delivery mode ExtINT
    lint1 = (lint1 & ~0x700u) | 0x400u;  // delivery mode NMI
    memcpy(lapic.regs + 0x350, &lint0, 4);
    memcpy(lapic.regs + 0x360, &lint1, 4);
    return ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic);
}
