/* serial_echo_guest.c — reads one line from COM1 (polling LSR's data-ready bit) and prints it back
 * as "ECHO <line>", then resets: the host's bytes reached the guest through the UART. Lines longer
 * than the receive FIFO show that input keeps flowing as the guest makes room. */
#include "guest_lib.h"

#define LSR_DATA_READY 0x01
#define MAX_LINE 512

__attribute__((noreturn)) void guest_main(const volatile u8 *boot_params) {
  (void)boot_params;
  static char line[MAX_LINE];
  u32 n = 0;
  puts_("READY\n");
  for (;;) {
    while (!(inb(COM1_LSR) & LSR_DATA_READY)) { }
    char c = (char)inb(COM1);
    if (c == '\n' || n == MAX_LINE) break;
    line[n++] = c;
  }
  puts_("ECHO ");
  putn(line, n);
  putc_('\n');
  reset_machine();
}
