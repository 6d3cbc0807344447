/* ctrl_alt_del_guest.c — a guest that stays up until its monitor sends Ctrl-Alt-Del, for the
 * bulkhead-vmm API tests (the VM must still be running when the test asks GET /). It signals
 * "booted" to Firecracker's boot-timer device, then polls the i8042 status port for key bytes
 * (polling, not IRQ 1: the guest has no IDT) and resets once it has seen Ctrl, Alt and Delete. */
#include "guest_lib.h"

#define BOOT_TIMER_MMIO 0xc0000000UL
#define BOOT_TIMER_MAGIC 123
#define I8042_DATA 0x60
#define I8042_STATUS 0x64
#define I8042_OUTPUT_FULL 0x01

__attribute__((noreturn)) void guest_main(const volatile u8 *boot_params) {
  (void)boot_params;
  *(volatile u8 *)BOOT_TIMER_MMIO = BOOT_TIMER_MAGIC;
  puts_("WAITING FOR CTRL-ALT-DEL\n");
  u8 last = 0;
  u32 count = 0;
  while (!(last == 0x71 && count >= 4)) {  /* 0x71 after 0xe0: the Delete key's make code */
    if (inb(I8042_STATUS) & I8042_OUTPUT_FULL) {
      last = inb(I8042_DATA);
      count++;
      puts_("KEY "); puthex(last); putc_('\n');
    }
  }
  puts_("CTRL-ALT-DEL\n");
  reset_machine();
}
