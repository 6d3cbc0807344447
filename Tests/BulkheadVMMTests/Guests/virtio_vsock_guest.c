/* virtio_vsock_guest.c — a minimal virtio-vsock driver: find the vsock device (id 19), read the
 * guest CID from the configuration space, set up the receive (0), transmit (1) and event (2)
 * queues, then (1) listen on port 52: answer the host's REQUEST with RESPONSE and echo the bytes
 * of the first RW packet back; (2) connect to host port 1234, send a line, and shut down. Each
 * step goes to COM1. Waiting reads InterruptStatus (an exit), which lets the host's event thread run. */
#include "virtio_guest.h"

#define RX_MEM 0x200000ul
#define TX_MEM 0x210000ul
#define EV_MEM 0x218000ul
#define RX_BUFS 0x220000ul
#define TX_BUF 0x230000ul
#define RX_COUNT 4
#define RX_SIZE 1024
#define HDR 44

#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6

static struct vq rx, tx, ev;
static u64 base, cid;
static u32 fwd_cnt;

struct pkt { u64 src_cid, dst_cid; u32 src_port, dst_port, len; u16 type, op; u32 flags, buf_alloc, fwd_cnt; const volatile u8 *data; };

static void st16(volatile u8 *p, u16 v) { p[0] = (u8)v; p[1] = (u8)(v >> 8); }
static void st32(volatile u8 *p, u32 v) { st16(p, (u16)v); st16(p + 2, (u16)(v >> 16)); }
static void st64(volatile u8 *p, u64 v) { st32(p, (u32)v); st32(p + 4, (u32)(v >> 32)); }

static void post_rx(u16 i) {
  vq_desc(&rx, i, RX_BUFS + (u64)i * RX_SIZE, RX_SIZE, VD_WRITE, 0);
  vq_publish(&rx, i);
}

static void send_pkt(u32 src_port, u32 dst_port, u16 op, u32 flags, const u8 *data, u32 len) {
  volatile u8 *p = (volatile u8 *)TX_BUF;
  st64(p, cid); st64(p + 8, 2); st32(p + 16, src_port); st32(p + 20, dst_port); st32(p + 24, len);
  st16(p + 28, 1); st16(p + 30, op); st32(p + 32, flags); st32(p + 36, 65536); st32(p + 40, fwd_cnt);
  for (u32 i = 0; i < len; i++) p[HDR + i] = data[i];
  vq_desc(&tx, 0, TX_BUF, HDR + len, 0, 0);
  vq_publish(&tx, 0);
  vq_kick(&tx);
  vq_take(&tx, 1000, 0, 0);
}

/* Waits for the next packet (up to `rounds` register reads); returns 1 and fills `k`. The
 * caller re-posts buffer `*id` when done with it. */
static int next_pkt(struct pkt *k, u32 *id, u32 rounds) {
  u32 len;
  for (u32 i = 0; i < rounds; i++) {
    if (vq_take(&rx, 0, id, &len)) {
      const volatile u8 *p = (const volatile u8 *)(RX_BUFS + (u64)*id * RX_SIZE);
      k->src_cid = ld64((const u8 *)p); k->dst_cid = ld64((const u8 *)p + 8);
      k->src_port = ld32((const u8 *)p + 16); k->dst_port = ld32((const u8 *)p + 20); k->len = ld32((const u8 *)p + 24);
      k->type = ld16((const u8 *)p + 28); k->op = ld16((const u8 *)p + 30); k->flags = ld32((const u8 *)p + 32);
      k->buf_alloc = ld32((const u8 *)p + 36); k->fwd_cnt = ld32((const u8 *)p + 40);
      k->data = p + HDR;
      if (len < HDR + k->len) { puts_("SHORT PACKET\n"); return 0; }
      return 1;
    }
    u32 isr = vreg(base, VR_INTERRUPT_STATUS);  /* an exit: the host runs meanwhile */
    if (isr) vset(base, VR_INTERRUPT_ACK, isr);
  }
  return 0;
}

static void done_with(u32 id) { post_rx((u16)id); vq_kick(&rx); }

__attribute__((noreturn)) void guest_main(const volatile u8 *boot_params) {
  (void)boot_params;
  struct acpi_info info;
  acpi_walk(&info);
  base = virtio_find(&info, 19, 0);
  if (!info.ok || !base) { puts_("NO VSOCK DEVICE\n"); reset_machine(); }
  u32 status = virtio_negotiate(base, 0, 0);
  cid = vreg(base, VR_CONFIG) | ((u64)vreg(base, VR_CONFIG + 4) << 32);
  puts_("DEVICE id="); putdec(vreg(base, VR_DEVICE_ID));
  puts_(" features-ok="); putdec((status & VS_FEATURES_OK) != 0);
  puts_(" cid="); putdec(cid);
  puts_(" ready="); putdec(vq_setup(&rx, base, 0, 8, RX_MEM) + vq_setup(&tx, base, 1, 8, TX_MEM) + vq_setup(&ev, base, 2, 8, EV_MEM));
  putc_('\n');
  for (u16 i = 0; i < RX_COUNT; i++) post_rx(i);
  virtio_driver_ok(base);
  vq_kick(&rx);

  /* 1: the host connects to port 52 (CONNECT 52 on the Unix socket). */
  struct pkt k; u32 id;
  u32 host_port = 0;
  int echoed = 0;
  while (!echoed && next_pkt(&k, &id, 2000000)) {
    if (k.op == OP_REQUEST && k.dst_port == 52) {
      host_port = k.src_port;
      puts_("REQUEST from cid="); putdec(k.src_cid); puts_(" port-ok="); putdec(k.src_port >= (1u << 30));
      puts_(" buf-alloc="); putdec(k.buf_alloc); putc_('\n');
      done_with(id);
      send_pkt(52, host_port, OP_RESPONSE, 0, 0, 0);
    } else if (k.op == OP_RW && k.dst_port == 52 && k.src_port == host_port) {
      u8 copy[256];
      u32 n = k.len < sizeof copy ? k.len : sizeof copy;
      for (u32 i = 0; i < n; i++) copy[i] = k.data[i];
      done_with(id);
      fwd_cnt += n;
      puts_("RW len="); putdec(n); puts_(" text=");
      for (u32 i = 0; i < n && copy[i] >= 0x20 && copy[i] < 0x7f; i++) putc_((char)copy[i]);
      putc_('\n');
      send_pkt(52, host_port, OP_RW, 0, copy, n);
      echoed = 1;
    } else {
      puts_("OTHER op="); putdec(k.op); putc_('\n');
      done_with(id);
    }
  }
  if (!echoed) { puts_("NO ECHO\n"); reset_machine(); }

  /* 2: connect to host port 1234 (the test listens on <uds_path>_1234). */
  send_pkt(1000, 1234, OP_REQUEST, 0, 0, 0);
  int connected = 0;
  while (!connected && next_pkt(&k, &id, 2000000)) {
    if (k.dst_port == 1000 && k.src_port == 1234) {
      puts_(k.op == OP_RESPONSE ? "CONNECTED 1234\n" : k.op == OP_RST ? "REFUSED 1234\n" : "UNEXPECTED\n");
      connected = k.op == OP_RESPONSE ? 1 : -1;
    } else if (k.dst_port == 52) {
      puts_("PORT-52 op="); putdec(k.op); putc_('\n');  /* the host client closing: SHUTDOWN */
      if (k.op == OP_SHUTDOWN) send_pkt(52, host_port, OP_RST, 0, 0, 0);
    }
    done_with(id);
  }
  if (connected == 1) {
    const char *line = "hello from guest port 1000\n";
    u32 n = 0; while (line[n]) n++;
    fwd_cnt = 0;
    send_pkt(1000, 1234, OP_RW, 0, (const u8 *)line, n);
    send_pkt(1000, 1234, OP_SHUTDOWN, 3, 0, 0);
    while (next_pkt(&k, &id, 200000)) {
      int rst = k.dst_port == 1000 && k.op == OP_RST;
      done_with(id);
      if (rst) { puts_("RST 1234\n"); break; }
    }
  }
  puts_("DONE\n");
  reset_machine();
}
