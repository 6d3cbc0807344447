/* virtio_rng_guest.c — a minimal virtio-rng driver: find the entropy device (id 4) in ACPI,
 * negotiate VERSION_1, set up its request queue, ask twice for 64 bytes, and report whether the
 * two answers differ and are not all zero. Then a hostile request (a device-readable buffer) must
 * make the device ask for a reset, and the device must work again after one. */
#include "virtio_guest.h"

#define QUEUE_MEM 0x200000ul
#define BUF_A 0x204000ul
#define BUF_B 0x205000ul

static struct vq q;

static u32 ask(u64 buffer, u32 len, u16 flags) {
  vq_desc(&q, 0, buffer, len, flags, 0);
  vq_publish(&q, 0);
  vq_kick(&q);
  u32 id = 0, got = 0;
  if (!vq_take(&q, 1000, &id, &got)) { puts_("TIMEOUT\n"); return 0xffffffff; }
  return got;
}

static u32 nonzero(const volatile u8 *p, u32 n) {
  u32 c = 0;
  for (u32 i = 0; i < n; i++) if (p[i]) c++;
  return c;
}

__attribute__((noreturn)) void guest_main(const volatile u8 *boot_params) {
  (void)boot_params;
  struct acpi_info info;
  acpi_walk(&info);
  u64 base = virtio_find(&info, 4, 0);
  if (!info.ok || !base) { puts_("NO ENTROPY DEVICE\n"); reset_machine(); }
  u32 status = virtio_negotiate(base, 0, 0);
  puts_("DEVICE id="); putdec(vreg(base, VR_DEVICE_ID));
  puts_(" features-ok="); putdec((status & VS_FEATURES_OK) != 0);
  puts_(" queue-max="); putdec((vset(base, VR_QUEUE_SEL, 0), vreg(base, VR_QUEUE_NUM_MAX)));
  puts_(" ready="); putdec(vq_setup(&q, base, 0, 8, QUEUE_MEM)); putc_('\n');
  virtio_driver_ok(base);

  mem_set((void *)BUF_A, 0, 64);
  mem_set((void *)BUF_B, 0, 64);
  u32 la = ask(BUF_A, 64, VD_WRITE);
  u32 lb = ask(BUF_B, 64, VD_WRITE);
  const volatile u8 *a = (const volatile u8 *)BUF_A, *b = (const volatile u8 *)BUF_B;
  u32 same = 0;
  for (u32 i = 0; i < 64; i++) if (a[i] == b[i]) same++;
  puts_("READ len-a="); putdec(la); puts_(" len-b="); putdec(lb);
  puts_(" a-nonzero="); putdec(nonzero(a, 64) > 0); puts_(" b-nonzero="); putdec(nonzero(b, 64) > 0);
  puts_(" differ="); putdec(same < 64); putc_('\n');
  puts_("A ");
  for (u32 i = 0; i < 8; i++) { puthex(a[i]); putc_(' '); }
  putc_('\n');

  /* A device-readable buffer: not an entropy request. */
  vq_desc(&q, 0, BUF_A, 64, 0, 0);
  vq_publish(&q, 0);
  vq_kick(&q);
  puts_("HOSTILE needs-reset="); putdec((vreg(base, VR_STATUS) & VS_NEEDS_RESET) != 0);
  puts_(" used="); putdec(vq_used_idx(&q)); putc_('\n');

  status = virtio_negotiate(base, 0, 0);
  vq_setup(&q, base, 0, 8, QUEUE_MEM);
  virtio_driver_ok(base);
  mem_set((void *)BUF_A, 0, 64);
  puts_("AFTER-RESET status="); putdec(vreg(base, VR_STATUS));
  puts_(" len="); putdec(ask(BUF_A, 32, VD_WRITE));
  puts_(" tail-zero="); putdec(nonzero(a + 32, 32) == 0); putc_('\n');
  puts_("DONE\n");
  reset_machine();
}
