/* virtio_guest.h — the driver side of virtio-mmio version 2 and split virtqueues, shared by the
 * freestanding device guests (rng, vsock): find a device by id in the ACPI tables, negotiate
 * features, set up queues at fixed guest physical addresses, post chains, kick, and poll the used
 * ring. Interrupts stay disabled; guests poll. (virtio_blk_guest.c predates this header and
 * spells the same steps out.) */
#pragma once
#include "acpi_walk.h"

#define VR_MAGIC 0x000
#define VR_VERSION 0x004
#define VR_DEVICE_ID 0x008
#define VR_DEVICE_FEATURES 0x010
#define VR_DEVICE_FEATURES_SEL 0x014
#define VR_DRIVER_FEATURES 0x020
#define VR_DRIVER_FEATURES_SEL 0x024
#define VR_QUEUE_SEL 0x030
#define VR_QUEUE_NUM_MAX 0x034
#define VR_QUEUE_NUM 0x038
#define VR_QUEUE_READY 0x044
#define VR_QUEUE_NOTIFY 0x050
#define VR_INTERRUPT_STATUS 0x060
#define VR_INTERRUPT_ACK 0x064
#define VR_STATUS 0x070
#define VR_QUEUE_DESC_LOW 0x080
#define VR_QUEUE_DESC_HIGH 0x084
#define VR_QUEUE_DRIVER_LOW 0x090
#define VR_QUEUE_DRIVER_HIGH 0x094
#define VR_QUEUE_DEVICE_LOW 0x0a0
#define VR_QUEUE_DEVICE_HIGH 0x0a4
#define VR_CONFIG 0x100

#define VS_ACKNOWLEDGE 1
#define VS_DRIVER 2
#define VS_DRIVER_OK 4
#define VS_FEATURES_OK 8
#define VS_NEEDS_RESET 64

#define VD_NEXT 1
#define VD_WRITE 2

#define vbarrier() __asm__ volatile("" ::: "memory")

struct vdesc { u64 addr; u32 len; u16 flags; u16 next; };

/* One split queue: three pages at `mem` (descriptors, available ring, used ring). */
struct vq {
  u64 base;          /* the device's register window */
  u32 index;
  u16 size;
  u64 desc, avail, used;
  u16 avail_idx;     /* next available index the driver publishes */
  u16 used_seen;     /* used entries the driver has consumed */
};

static u32 vreg(u64 base, u32 off) { return mmio_read32(base + off); }
static void vset(u64 base, u32 off, u32 v) { mmio_write32(base + off, v); }

/* The register window of the first virtio device with `id`, or 0. */
__attribute__((unused)) static u64 virtio_find(const struct acpi_info *info, u32 id, u32 *gsi) {
  for (u32 i = 0; i < info->virtio_count; i++) {
    if (mmio_read32(info->virtio[i].base + VR_DEVICE_ID) == id) {
      if (gsi) *gsi = info->virtio[i].gsi;
      return info->virtio[i].base;
    }
  }
  return 0;
}

/* Reset, ACKNOWLEDGE, DRIVER, accept VERSION_1 and `low` & offered, FEATURES_OK. Returns the
 * status read back (FEATURES_OK clear if the device refused). */
__attribute__((unused)) static u32 virtio_negotiate(u64 base, u32 low, u32 *offered_low) {
  vset(base, VR_STATUS, 0);
  vset(base, VR_STATUS, VS_ACKNOWLEDGE);
  vset(base, VR_STATUS, VS_ACKNOWLEDGE | VS_DRIVER);
  vset(base, VR_DEVICE_FEATURES_SEL, 0);
  u32 offered = vreg(base, VR_DEVICE_FEATURES);
  vset(base, VR_DEVICE_FEATURES_SEL, 1);
  u32 high = vreg(base, VR_DEVICE_FEATURES);
  if (offered_low) *offered_low = offered;
  vset(base, VR_DRIVER_FEATURES_SEL, 0);
  vset(base, VR_DRIVER_FEATURES, offered & low);
  vset(base, VR_DRIVER_FEATURES_SEL, 1);
  vset(base, VR_DRIVER_FEATURES, high & 1);  /* VIRTIO_F_VERSION_1 */
  vset(base, VR_STATUS, VS_ACKNOWLEDGE | VS_DRIVER | VS_FEATURES_OK);
  return vreg(base, VR_STATUS);
}

/* Sets up queue `index` of `size` entries with empty rings in the three pages at `mem`. Returns
 * QueueReady read back. */
__attribute__((unused)) static u32 vq_setup(struct vq *q, u64 base, u32 index, u16 size, u64 mem) {
  q->base = base; q->index = index; q->size = size;
  q->desc = mem; q->avail = mem + 0x1000; q->used = mem + 0x2000;
  q->avail_idx = 0; q->used_seen = 0;
  mem_set((void *)mem, 0, 0x3000);
  vset(base, VR_QUEUE_SEL, index);
  vset(base, VR_QUEUE_NUM, size);
  vset(base, VR_QUEUE_DESC_LOW, (u32)q->desc); vset(base, VR_QUEUE_DESC_HIGH, (u32)(q->desc >> 32));
  vset(base, VR_QUEUE_DRIVER_LOW, (u32)q->avail); vset(base, VR_QUEUE_DRIVER_HIGH, (u32)(q->avail >> 32));
  vset(base, VR_QUEUE_DEVICE_LOW, (u32)q->used); vset(base, VR_QUEUE_DEVICE_HIGH, (u32)(q->used >> 32));
  vset(base, VR_QUEUE_READY, 1);
  return vreg(base, VR_QUEUE_READY);
}

__attribute__((unused)) static void virtio_driver_ok(u64 base) {
  vset(base, VR_STATUS, VS_ACKNOWLEDGE | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK);
}

__attribute__((unused)) static void vq_desc(struct vq *q, u16 i, u64 addr, u32 len, u16 flags, u16 next) {
  volatile struct vdesc *d = (volatile struct vdesc *)q->desc + i;
  d->addr = addr; d->len = len; d->flags = flags; d->next = next;
}

/* Makes the chain at `head` available (the ring entry before the index that publishes it). */
__attribute__((unused)) static void vq_publish(struct vq *q, u16 head) {
  volatile u16 *avail = (volatile u16 *)q->avail;
  avail[2 + q->avail_idx % q->size] = head;
  vbarrier();
  q->avail_idx++;
  avail[1] = q->avail_idx;
  vbarrier();
}

__attribute__((unused)) static void vq_kick(struct vq *q) { vset(q->base, VR_QUEUE_NOTIFY, q->index); }

__attribute__((unused)) static u16 vq_used_idx(struct vq *q) { return ((volatile u16 *)q->used)[1]; }

/* Waits (at most `spins` polls) for a used entry the driver has not consumed; returns 1 and its
 * id and length, or 0. */
__attribute__((unused)) static int vq_take(struct vq *q, u32 spins, u32 *id, u32 *len) {
  for (u32 i = 0; i < spins && vq_used_idx(q) == q->used_seen; i++) { vbarrier(); }
  if (vq_used_idx(q) == q->used_seen) return 0;
  vbarrier();
  volatile u32 *e = (volatile u32 *)(q->used + 4 + 8 * (q->used_seen % q->size));
  if (id) *id = e[0];
  if (len) *len = e[1];
  q->used_seen++;
  return 1;
}
