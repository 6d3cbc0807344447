/* virtio_blk_guest.c — a minimal virtio-blk driver over virtio-mmio version 2, the steps Linux's
 * virtio_mmio and virtio_blk drivers take: find the device in ACPI (LNRO0005), check the
 * registers, negotiate features, set up one split virtqueue in guest memory, then read sector 0,
 * write sector 1, flush, ask for the serial id and read past the end of the disk. Each result
 * goes to COM1; the test compares it with the host file. Interrupts stay disabled: the guest
 * polls the used ring, and checks that the device's interrupt reached the LAPIC by reading IRR. */
#include "acpi_walk.h"

/* virtio-mmio registers */
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEVICE_FEATURES 0x010
#define R_DEVICE_FEATURES_SEL 0x014
#define R_DRIVER_FEATURES 0x020
#define R_DRIVER_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INTERRUPT_STATUS 0x060
#define R_INTERRUPT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC_LOW 0x080
#define R_QUEUE_DESC_HIGH 0x084
#define R_QUEUE_DRIVER_LOW 0x090
#define R_QUEUE_DRIVER_HIGH 0x094
#define R_QUEUE_DEVICE_LOW 0x0a0
#define R_QUEUE_DEVICE_HIGH 0x0a4
#define R_CONFIG 0x100

#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8

#define F_BLK_RO (1u << 5)
#define F_BLK_FLUSH (1u << 9)
#define F_VERSION_1_HIGH 1u /* bit 32: bit 0 of the high word */

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8

#define D_NEXT 1
#define D_WRITE 2

/* Queue and buffers at fixed guest physical addresses above the guest image. */
#define QUEUE_SIZE 8
#define DESC_TABLE 0x200000ul
#define AVAIL_RING 0x201000ul
#define USED_RING 0x202000ul
#define HEADER 0x203000ul
#define STATUS 0x203100ul
#define DATA 0x204000ul

/* LAPIC and IOAPIC, to see the device's interrupt arrive without taking it. */
#define LAPIC 0xfee00000ul
#define LAPIC_SVR 0x0f0
#define LAPIC_IRR 0x200
#define IOAPIC 0xfec00000ul
#define TEST_VECTOR 0x40

struct desc { u64 addr; u32 len; u16 flags; u16 next; };

static u64 base;
static u16 avail_idx;

#define barrier() __asm__ volatile("" ::: "memory")

static void reg_write(u32 off, u32 v) { mmio_write32(base + off, v); }
static u32 reg_read(u32 off) { return mmio_read32(base + off); }

static void set_desc(u16 i, u64 addr, u32 len, u16 flags, u16 next) {
  volatile struct desc *d = (volatile struct desc *)DESC_TABLE + i;
  d->addr = addr; d->len = len; d->flags = flags; d->next = next;
}

/* One request: header, optional data, status. Returns the status byte the device wrote. */
static u8 request(u32 type, u64 sector, u32 data_len, int device_writes_data) {
  volatile u8 *header = (volatile u8 *)HEADER;
  *(volatile u32 *)header = type;
  *(volatile u32 *)(header + 4) = 0;
  *(volatile u64 *)(header + 8) = sector;
  *(volatile u8 *)STATUS = 0xff;
  set_desc(0, HEADER, 16, D_NEXT, data_len ? 1 : 2);
  if (data_len) set_desc(1, DATA, data_len, D_NEXT | (device_writes_data ? D_WRITE : 0), 2);
  set_desc(2, STATUS, 1, D_WRITE, 0);
  volatile u16 *avail = (volatile u16 *)AVAIL_RING;
  avail[2 + avail_idx % QUEUE_SIZE] = 0;
  barrier();
  avail_idx++;
  avail[1] = avail_idx;  /* publish after the ring entry */
  barrier();
  reg_write(R_QUEUE_NOTIFY, 0);
  /* The VMM serves the queue during the notify exit; poll a little in case it did not. */
  volatile u16 *used = (volatile u16 *)USED_RING;
  for (int i = 0; i < 1000 && used[1] != avail_idx; i++) { }
  if (used[1] != avail_idx) { puts_("TIMEOUT\n"); return 0xfe; }
  return *(volatile u8 *)STATUS;
}

/* Reset, negotiate (VERSION_1, and RO and FLUSH if offered), set up queue 0 with empty rings,
 * DRIVER_OK. Prints the negotiation when `report`. Returns the status read back. */
static u32 init_device(int report) {
  reg_write(R_STATUS, 0);
  reg_write(R_STATUS, S_ACKNOWLEDGE);
  reg_write(R_STATUS, S_ACKNOWLEDGE | S_DRIVER);
  reg_write(R_DEVICE_FEATURES_SEL, 0);
  u32 low = reg_read(R_DEVICE_FEATURES);
  reg_write(R_DEVICE_FEATURES_SEL, 1);
  u32 high = reg_read(R_DEVICE_FEATURES);
  reg_write(R_DRIVER_FEATURES_SEL, 0);
  reg_write(R_DRIVER_FEATURES, low & (F_BLK_RO | F_BLK_FLUSH));
  reg_write(R_DRIVER_FEATURES_SEL, 1);
  reg_write(R_DRIVER_FEATURES, high & F_VERSION_1_HIGH);
  reg_write(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
  u32 status = reg_read(R_STATUS);
  if (report) {
    puts_("FEATURES version1="); putdec(high & F_VERSION_1_HIGH);
    puts_(" ro="); putdec((low & F_BLK_RO) != 0);
    puts_(" flush="); putdec((low & F_BLK_FLUSH) != 0);
    puts_(" features-ok="); putdec((status & S_FEATURES_OK) != 0); putc_('\n');
  }

  mem_set((void *)DESC_TABLE, 0, 0x3000);
  reg_write(R_QUEUE_SEL, 0);
  u32 max = reg_read(R_QUEUE_NUM_MAX);
  reg_write(R_QUEUE_NUM, QUEUE_SIZE);
  reg_write(R_QUEUE_DESC_LOW, (u32)DESC_TABLE); reg_write(R_QUEUE_DESC_HIGH, 0);
  reg_write(R_QUEUE_DRIVER_LOW, (u32)AVAIL_RING); reg_write(R_QUEUE_DRIVER_HIGH, 0);
  reg_write(R_QUEUE_DEVICE_LOW, (u32)USED_RING); reg_write(R_QUEUE_DEVICE_HIGH, 0);
  reg_write(R_QUEUE_READY, 1);
  reg_write(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
  avail_idx = 0;
  if (report) { puts_("QUEUE max="); putdec(max); puts_(" ready="); putdec(reg_read(R_QUEUE_READY)); }
  return reg_read(R_STATUS);
}

static void ioapic_route(u32 gsi, u8 vector) {
  mmio_write32(IOAPIC, 0x10 + 2 * gsi);       /* IOREGSEL: redirection entry, low half */
  mmio_write32(IOAPIC + 0x10, vector);        /* fixed, physical, edge, active high, unmasked */
  mmio_write32(IOAPIC, 0x11 + 2 * gsi);
  mmio_write32(IOAPIC + 0x10, 0);             /* destination APIC id 0 */
}

__attribute__((noreturn)) void guest_main(const volatile u8 *boot_params) {
  (void)boot_params;
  struct acpi_info info;
  acpi_walk(&info);
  if (!info.ok || info.virtio_count == 0) { puts_("NO VIRTIO DEVICE\n"); reset_machine(); }
  base = info.virtio[0].base;
  u32 gsi = info.virtio[0].gsi;
  puts_("DEVICE "); puthex(base); puts_(" gsi="); putdec(gsi);
  puts_(" magic="); puthex(reg_read(R_MAGIC));
  puts_(" version="); putdec(reg_read(R_VERSION));
  puts_(" id="); putdec(reg_read(R_DEVICE_ID)); putc_('\n');

  /* Interrupts stay off (IF=0): a delivered interrupt waits in the LAPIC's IRR, where we look. */
  mmio_write32(LAPIC + LAPIC_SVR, 0x1ff);     /* APIC software-enabled, spurious vector 0xff */
  ioapic_route(gsi, TEST_VECTOR);
  u32 irr_before = mmio_read32(LAPIC + LAPIC_IRR + 0x10 * (TEST_VECTOR / 32));
  puts_("ROUTE vector="); putdec(TEST_VECTOR); puts_(" lapic-irr="); putdec((irr_before >> (TEST_VECTOR % 32)) & 1); putc_('\n');

  u32 status = init_device(1);
  u64 capacity = reg_read(R_CONFIG) | ((u64)reg_read(R_CONFIG + 4) << 32);
  (void)status;
  puts_(" capacity="); putdec(capacity); putc_('\n');

  /* Sector 0: print its leading text and a sum of all 512 bytes. */
  mem_set((void *)DATA, 0, 512);
  u8 s = request(T_IN, 0, 512, 1);
  const volatile u8 *data = (const volatile u8 *)DATA;
  u64 sum = 0;
  for (u32 i = 0; i < 512; i++) sum += data[i];
  puts_("READ status="); putdec(s); puts_(" text=");
  for (u32 i = 0; i < 32 && data[i] >= 0x20 && data[i] < 0x7f; i++) putc_((char)data[i]);
  puts_(" sum="); putdec(sum); putc_('\n');

  /* Sector 1: a text, then bytes 0, 1, 2, ... */
  const char *text = "WRITTEN BY THE GUEST";
  volatile u8 *out = (volatile u8 *)DATA;
  for (u32 i = 0; i < 512; i++) out[i] = (u8)i;
  for (u32 i = 0; text[i]; i++) out[i] = (u8)text[i];
  puts_("WRITE status="); putdec(request(T_OUT, 1, 512, 0)); putc_('\n');
  puts_("FLUSH status="); putdec(request(T_FLUSH, 0, 0, 0)); putc_('\n');

  mem_set((void *)DATA, 0, 32);
  s = request(T_GET_ID, 0, 20, 1);
  puts_("ID status="); putdec(s); puts_(" id=");
  for (u32 i = 0; i < 20 && data[i]; i++) putc_((char)data[i]);
  putc_('\n');

  puts_("PAST-END status="); putdec(request(T_IN, capacity, 512, 1)); putc_('\n');

  volatile u32 *used_elements = (volatile u32 *)(USED_RING + 4);
  puts_("USED idx="); putdec(((volatile u16 *)USED_RING)[1]);
  puts_(" first-len="); putdec(used_elements[1]); putc_('\n');

  u32 isr = reg_read(R_INTERRUPT_STATUS);
  reg_write(R_INTERRUPT_ACK, isr);
  u32 irr = mmio_read32(LAPIC + LAPIC_IRR + 0x10 * (TEST_VECTOR / 32));
  puts_("INTERRUPT status="); putdec(isr); puts_(" after-ack="); putdec(reg_read(R_INTERRUPT_STATUS));
  puts_(" lapic-irr="); putdec((irr >> (TEST_VECTOR % 32)) & 1); putc_('\n');

  /* A descriptor loop (0 -> 1 -> 0): the device must give up on the queue, say DEVICE_NEEDS_RESET
   * with a configuration-change interrupt, and work again after the driver resets it. */
  set_desc(0, HEADER, 16, D_NEXT, 1);
  set_desc(1, DATA, 512, D_NEXT | D_WRITE, 0);
  volatile u16 *avail = (volatile u16 *)AVAIL_RING;
  avail[2 + avail_idx % QUEUE_SIZE] = 0;
  barrier();
  avail[1] = ++avail_idx;
  barrier();
  reg_write(R_QUEUE_NOTIFY, 0);
  puts_("LOOP needs-reset="); putdec((reg_read(R_STATUS) >> 6) & 1);
  puts_(" interrupt-status="); putdec(reg_read(R_INTERRUPT_STATUS)); putc_('\n');
  u32 again = init_device(0);
  mem_set((void *)DATA, 0, 512);
  s = request(T_IN, 2, 512, 1);
  puts_("AFTER-RESET status="); putdec(again); puts_(" read="); putdec(s); puts_(" byte="); putdec(data[0]); putc_('\n');
  puts_("DONE\n");
  reset_machine();
}
