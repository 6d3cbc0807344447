/* smp_guest.c — brings up every vCPU the MADT lists, as Linux does: it sends each other enabled
 * Processor Local APIC an INIT and two SIPIs (vector 0x10: smp_trampoline.S copied to 0x10000),
 * waits for them to reach long mode and report their LAPIC ids, and prints
 *   SMP boot=<own LAPIC id> madt=<ids listed in the MADT> started=<ids the APs read from their LAPICs>
 * with the ids in ascending order, then resets. */
#include "acpi_walk.h"

#define LAPIC 0xfee00000UL
#define LAPIC_ID 0x20
#define LAPIC_SPURIOUS 0xf0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define ICR_DELIVERY_PENDING (1u << 12)
#define ICR_INIT_ASSERT 0x4500
#define ICR_STARTUP 0x4600
#define SMP_TRAMPOLINE 0x10000
#define MAX_CPUS 64

extern u8 smp_trampoline_start[], smp_trampoline_end[], smp_trampoline_cr3[];
volatile u32 ap_started;
volatile u32 ap_apic_ids[MAX_CPUS];

static u32 lapic_read(u32 reg) { return mmio_read32(LAPIC + reg); }
static void lapic_write(u32 reg, u32 v) { mmio_write32(LAPIC + reg, v); }

static void send_ipi(u32 apic_id, u32 command) {
  lapic_write(LAPIC_ICR_HIGH, apic_id << 24);
  lapic_write(LAPIC_ICR_LOW, command);
  while (lapic_read(LAPIC_ICR_LOW) & ICR_DELIVERY_PENDING) { }
}

static void sort(u32 *v, u32 n) {
  for (u32 i = 1; i < n; i++)
    for (u32 j = i; j > 0 && v[j - 1] > v[j]; j--) { u32 t = v[j]; v[j] = v[j - 1]; v[j - 1] = t; }
}

static void put_ids(const char *label, u32 *ids, u32 n) {
  sort(ids, n);
  puts_(label);
  for (u32 i = 0; i < n; i++) { if (i) putc_(','); putdec(ids[i]); }
}

__attribute__((noreturn)) void guest_main(const volatile u8 *boot_params) {
  (void)boot_params;
  struct acpi_info info;
  acpi_walk(&info);
  if (!info.ok) { puts_("SMP no ACPI\n"); reset_machine(); }

  u32 self = lapic_read(LAPIC_ID) >> 24;
  lapic_write(LAPIC_SPURIOUS, 0x1ff);  /* software-enable the LAPIC */

  u64 cr3;
  __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
  u32 size = (u32)(smp_trampoline_end - smp_trampoline_start);
  mem_copy((void *)SMP_TRAMPOLINE, smp_trampoline_start, size);
  *(volatile u32 *)(SMP_TRAMPOLINE + (smp_trampoline_cr3 - smp_trampoline_start)) = (u32)cr3;

  /* Every enabled Processor Local APIC entry of the MADT (type 0, flags bit 0). */
  u32 madt_ids[MAX_CPUS], listed = 0;
  const u8 *m = info.madt + 44, *end = info.madt + ld32(info.madt + 4);
  for (; m + 2 <= end && m[1] >= 2; m += m[1])
    if (m[0] == 0 && (ld32(m + 4) & 1) && listed < MAX_CPUS) madt_ids[listed++] = m[3];

  for (u32 i = 0; i < listed; i++) {
    if (madt_ids[i] == self) continue;
    send_ipi(madt_ids[i], ICR_INIT_ASSERT);
    send_ipi(madt_ids[i], ICR_STARTUP | (SMP_TRAMPOLINE >> 12));
    send_ipi(madt_ids[i], ICR_STARTUP | (SMP_TRAMPOLINE >> 12));
  }
  /* Bounded: an AP that never starts shows as a short list, not a hang. */
  for (u64 spins = 0; ap_started + 1 < listed && spins < 200000000UL; spins++) __asm__ volatile("pause");

  u32 started = ap_started, ids[MAX_CPUS];
  puts_("SMP boot=");
  putdec(self);
  put_ids(" madt=", madt_ids, listed);
  for (u32 i = 0; i < started && i < MAX_CPUS; i++) ids[i] = ap_apic_ids[i];
  put_ids(" started=", ids, started < MAX_CPUS ? started : MAX_CPUS);
  putc_('\n');
  reset_machine();
}
