/* boot_guest.c — freestanding test guest for the VMM's Linux boot setup. It reads what a Linux
 * kernel reads first from the zero page (the e820 memory map, the command line, the initrd), reports
 * it on COM1, then resets the machine through the i8042. Kernel-mode code is very slow on a PVM host, so
 * it touches only the few bytes it needs and does all output with port I/O (one exit per byte). */
#include "guest_lib.h"

/* struct boot_params offsets (Documentation/arch/x86/zero-page.rst) */
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0
#define E820_ENTRY_SIZE 20
#define E820_RAM 1

/* Fields of the packed zero page, read at their byte offsets. */
static u8 rd8(const volatile u8 *p) { return *p; }
static u32 rd32(const volatile u8 *p) { return *(const volatile u32 *)p; }
static u64 rd64(const volatile u8 *p) { return *(const volatile u64 *)p; }

__attribute__((noreturn)) void guest_main(const volatile u8 *boot_params) {
  u32 entries = rd8(boot_params + BP_E820_ENTRIES);
  u64 ram = 0;
  for (u32 i = 0; i < entries && i < 128; i++) {
    const volatile u8 *e = boot_params + BP_E820_TABLE + i * E820_ENTRY_SIZE;
    if (rd32(e + 16) == E820_RAM) ram += rd64(e + 8);
  }
  puts_("E820 n="); putdec(entries); puts_(" ram="); putdec(ram); putc_('\n');

  u64 cmdline = rd32(boot_params + BP_CMD_LINE_PTR) | ((u64)rd32(boot_params + BP_EXT_CMD_LINE_PTR) << 32);
  puts_("CMDLINE ");
  if (cmdline) puts_((const char *)cmdline);  /* identity-mapped: physical == virtual */
  putc_('\n');

  /* Only with an initrd: where it is, how big, and its first bytes (up to 16, or a NUL). */
  u64 initrd = rd32(boot_params + BP_RAMDISK_IMAGE) | ((u64)rd32(boot_params + BP_EXT_RAMDISK_IMAGE) << 32);
  u64 initrd_size = rd32(boot_params + BP_RAMDISK_SIZE) | ((u64)rd32(boot_params + BP_EXT_RAMDISK_SIZE) << 32);
  if (initrd_size) {
    puts_("INITRD addr="); putdec(initrd); puts_(" size="); putdec(initrd_size); puts_(" data=");
    const volatile char *data = (const volatile char *)initrd;
    for (u64 i = 0; i < initrd_size && i < 16 && data[i]; i++) putc_(data[i]);
    putc_('\n');
  }

  reset_machine();
}
