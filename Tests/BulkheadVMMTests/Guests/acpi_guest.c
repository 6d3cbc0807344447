/* acpi_guest.c — walks the ACPI tables the VMM wrote, as Linux would, and reports on COM1 what it
 * found: the chain of tables with their checksums, the MADT's APICs, the FADT's hardware-reduced
 * flag, COM1, and every LNRO0005 (virtio-mmio) device with its window and GSI. */
#include "acpi_walk.h"

__attribute__((noreturn)) void guest_main(const volatile u8 *boot_params) {
  (void)boot_params;
  struct acpi_info info;
  acpi_walk(&info);
  if (info.ok) {
    puts_("RSDP "); puthex((u64)info.rsdp);
    puts_(" XSDT "); puthex((u64)info.xsdt);
    puts_(" FADT "); puthex((u64)info.fadt);
    puts_(" MADT "); puthex((u64)info.madt);
    puts_(" DSDT "); puthex((u64)info.dsdt); puts_(" checksums ok\n");
    puts_("FADT hw-reduced="); putdec((info.fadt_flags >> 20) & 1); putc_('\n');
    puts_("MADT lapics="); putdec(info.local_apics); puts_(" ioapic="); puthex(info.ioapic_address); putc_('\n');
    puts_("SERIAL io="); puthex(info.serial_port); puts_(" irq="); putdec(info.serial_irq); putc_('\n');
    for (u32 i = 0; i < info.virtio_count; i++) {
      puts_("VIRTIO "); putn(info.virtio[i].name, 4);
      puts_(" mmio="); puthex(info.virtio[i].base);
      puts_(" size="); puthex(info.virtio[i].size);
      puts_(" gsi="); putdec(info.virtio[i].gsi);
      puts_(info.virtio[i].edge ? " edge\n" : " level\n");
    }
  }
  puts_("DONE\n");
  reset_machine();
}
