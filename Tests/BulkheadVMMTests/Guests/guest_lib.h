/* guest_lib.h — what every freestanding test guest needs: fixed-width types, port and MMIO
 * accessors, output on COM1 (one exit per byte), and the i8042 reset that ends the run. Kernel-mode
 * code is very slow on a PVM host: keep loops short and touch few bytes. */
#pragma once

typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

#define COM1 0x3f8
#define COM1_LSR (COM1 + 5)
#define LSR_THRE 0x20
#define I8042_COMMAND 0x64
#define I8042_RESET 0xfe

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

/* Device registers: volatile, exactly the width asked for (each is one MMIO exit). */
static inline u32 mmio_read32(u64 addr) { return *(volatile u32 *)addr; }
static inline void mmio_write32(u64 addr, u32 v) { *(volatile u32 *)addr = v; }

/* Unaligned little-endian loads from tables in memory (identity-mapped: physical == virtual). */
static inline u16 ld16(const u8 *p) { return (u16)(p[0] | (p[1] << 8)); }
static inline u32 ld32(const u8 *p) { return ld16(p) | ((u32)ld16(p + 2) << 16); }
static inline u64 ld64(const u8 *p) { return ld32(p) | ((u64)ld32(p + 4) << 32); }

static void putc_(char c) {
  while (!(inb(COM1_LSR) & LSR_THRE)) { }
  outb(COM1, (u8)c);
}
static void puts_(const char *s) { while (*s) putc_(*s++); }
__attribute__((unused)) static void putdec(u64 v) {
  char digits[24];
  int n = 0;
  do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) putc_(digits[--n]);
}
__attribute__((unused)) static void puthex(u64 v) {
  int shift = 60;
  puts_("0x");
  while (shift > 0 && !((v >> shift) & 0xf)) shift -= 4;
  for (; shift >= 0; shift -= 4) putc_("0123456789abcdef"[(v >> shift) & 0xf]);
}
__attribute__((unused)) static void putn(const char *s, u32 n) { for (u32 i = 0; i < n; i++) putc_(s[i]); }

__attribute__((unused)) static int mem_eq(const void *a, const void *b, u32 n) {
  const u8 *x = a, *y = b;
  for (u32 i = 0; i < n; i++) if (x[i] != y[i]) return 0;
  return 1;
}
__attribute__((unused)) static void mem_set(void *p, u8 v, u32 n) { volatile u8 *q = p; for (u32 i = 0; i < n; i++) q[i] = v; }
__attribute__((unused)) static void mem_copy(void *d, const void *s, u32 n) {
  volatile u8 *x = d; const u8 *y = s;
  for (u32 i = 0; i < n; i++) x[i] = y[i];
}

__attribute__((noreturn)) static void reset_machine(void) {
  outb(I8042_COMMAND, I8042_RESET);
  for (;;) __asm__ volatile("cli; hlt");
}
