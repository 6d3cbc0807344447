/* virtio_net_guest.c — a minimal virtio-net driver: find the network device (id 1) in ACPI,
 * negotiate VERSION_1 and MAC, read the MAC from the configuration space, set up the receive
 * (0) and transmit (1) queues, post receive buffers, then send ARP requests for 10.0.0.1 (from
 * 10.0.0.2) until the host answers, and wait for a frame of ethertype 0x88b5 that the test
 * injects. Every frame goes with the 12-byte virtio_net_hdr of a VERSION_1 device. Waiting reads
 * InterruptStatus (an exit each time), which lets the host's event thread run. */
#include "virtio_guest.h"

#define RX_MEM 0x200000ul
#define TX_MEM 0x210000ul
#define RX_BUFS 0x220000ul
#define TX_BUF 0x230000ul
#define RX_COUNT 4
#define RX_SIZE 2048
#define HDR 12

static struct vq rx, tx;
static u8 mac[6];
static int got_arp, got_frame;

static u8 mmio_read8(u64 addr) { return *(volatile u8 *)addr; }

static void put_mac(const volatile u8 *m) {
  for (int i = 0; i < 6; i++) {
    if (i) putc_(':');
    putc_("0123456789abcdef"[m[i] >> 4]); putc_("0123456789abcdef"[m[i] & 15]);
  }
}

static void post_rx(u16 i) {
  vq_desc(&rx, i, RX_BUFS + (u64)i * RX_SIZE, RX_SIZE, VD_WRITE, 0);
  vq_publish(&rx, i);
}

static void send_arp_request(void) {
  volatile u8 *p = (volatile u8 *)TX_BUF;
  mem_set((void *)TX_BUF, 0, HDR + 42);
  volatile u8 *f = p + HDR;
  for (int i = 0; i < 6; i++) { f[i] = 0xff; f[6 + i] = mac[i]; }
  f[12] = 0x08; f[13] = 0x06;                   /* ARP */
  f[14] = 0; f[15] = 1; f[16] = 0x08; f[17] = 0; /* Ethernet, IPv4 */
  f[18] = 6; f[19] = 4; f[20] = 0; f[21] = 1;    /* request */
  for (int i = 0; i < 6; i++) f[22 + i] = mac[i];
  f[28] = 10; f[29] = 0; f[30] = 0; f[31] = 2;   /* sender 10.0.0.2 */
  f[38] = 10; f[39] = 0; f[40] = 0; f[41] = 1;   /* target 10.0.0.1 */
  vq_desc(&tx, 0, TX_BUF, HDR + 42, 0, 0);
  vq_publish(&tx, 0);
  vq_kick(&tx);
  vq_take(&tx, 1000, 0, 0);
}

static void handle(u32 id, u32 len) {
  const volatile u8 *p = (const volatile u8 *)(RX_BUFS + (u64)id * RX_SIZE);
  const volatile u8 *f = p + HDR;
  if (len >= HDR + 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 && f[28] == 10 && f[31] == 1 && !got_arp) {
    puts_("ARP-REPLY 10.0.0.1 is-at "); put_mac(f + 22);
    puts_(" num-buffers="); putdec(p[10] | (p[11] << 8)); putc_('\n');
    got_arp = 1;
  } else if (len >= HDR + 14 && f[12] == 0x88 && f[13] == 0xb5 && !got_frame) {
    puts_("FRAME to="); put_mac(f); puts_(" payload=");
    for (u32 i = HDR + 14; i < len && i < HDR + 14 + 40 && p[i] >= 0x20 && p[i] < 0x7f; i++) putc_((char)p[i]);
    puts_(" len="); putdec(len - HDR); putc_('\n');
    got_frame = 1;
  }
}

__attribute__((noreturn)) void guest_main(const volatile u8 *boot_params) {
  (void)boot_params;
  struct acpi_info info;
  acpi_walk(&info);
  u64 base = virtio_find(&info, 1, 0);
  if (!info.ok || !base) { puts_("NO NETWORK DEVICE\n"); reset_machine(); }
  u32 offered = 0;
  u32 status = virtio_negotiate(base, 1u << 5, &offered);
  for (int i = 0; i < 6; i++) mac[i] = mmio_read8(base + VR_CONFIG + i);
  puts_("DEVICE id="); putdec(vreg(base, VR_DEVICE_ID));
  puts_(" mac-feature="); putdec((offered >> 5) & 1);
  puts_(" features-ok="); putdec((status & VS_FEATURES_OK) != 0);
  puts_(" mac="); put_mac(mac);
  puts_(" rx-ready="); putdec(vq_setup(&rx, base, 0, 8, RX_MEM));
  puts_(" tx-ready="); putdec(vq_setup(&tx, base, 1, 8, TX_MEM)); putc_('\n');
  for (u16 i = 0; i < RX_COUNT; i++) post_rx(i);
  virtio_driver_ok(base);
  vq_kick(&rx);

  for (u32 round = 0; round < 400 && !(got_arp && got_frame); round++) {
    if (!got_arp) send_arp_request();
    for (u32 poll = 0; poll < 2000 && !(got_arp && got_frame); poll++) {
      u32 isr = vreg(base, VR_INTERRUPT_STATUS);  /* an exit: the host runs meanwhile */
      if (isr) vset(base, VR_INTERRUPT_ACK, isr);
      u32 id, len;
      while (vq_take(&rx, 0, &id, &len)) {
        handle(id, len);
        post_rx((u16)id);
        vq_kick(&rx);
      }
    }
  }
  puts_(got_arp && got_frame ? "DONE\n" : "GAVE UP\n");
  reset_machine();
}
