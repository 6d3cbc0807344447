/* acpi_walk.h — finds the ACPI tables the way Linux does on a BIOS machine (RSDP scan of
 * 0xe0000-0xfffff on 16-byte boundaries, XSDT, FADT -> DSDT, MADT), checks every checksum, and
 * walks the DSDT's AML namespace (Scope, Device, Name) to find devices by _HID and decode their
 * _CRS. Only the AML the VMM emits is understood; anything else stops the walk with a message. */
#pragma once
#include "guest_lib.h"

#define MAX_DEVICES 8

struct acpi_info {
  const u8 *rsdp, *xsdt, *fadt, *madt, *dsdt;
  int ok;                    /* every table found and every checksum right */
  u32 local_apics;           /* enabled Processor Local APIC entries in the MADT */
  u32 ioapic_address;
  u32 fadt_flags;
  u32 virtio_count;
  struct { char name[4]; u32 base, size, gsi; int edge; } virtio[MAX_DEVICES];
  u32 serial_port, serial_irq;
};

static int checksum_ok(const u8 *p, u32 n) {
  u8 sum = 0;
  for (u32 i = 0; i < n; i++) sum = (u8)(sum + p[i]);
  return sum == 0;
}

/* A table header is sane if its signature is `sig` and its length's bytes sum to 0. */
static int table_ok(const u8 *t, const char *sig) {
  if (!t || !mem_eq(t, sig, 4)) return 0;
  u32 len = ld32(t + 4);
  if (len < 36 || len > 0x10000) return 0;
  return checksum_ok(t, len);
}

static const u8 *find_rsdp(void) {
  for (u64 a = 0xe0000; a < 0x100000; a += 16) {
    const u8 *p = (const u8 *)a;
    if (mem_eq(p, "RSD PTR ", 8) && checksum_ok(p, 20)) return p;
  }
  return 0;
}

/* AML PkgLength: returns the length (counted from the PkgLength's first byte) and advances *p. */
static u32 aml_pkglen(const u8 **p) {
  u8 lead = *(*p)++;
  u32 extra = lead >> 6;
  if (!extra) return lead & 0x3f;
  u32 len = lead & 0xf;
  for (u32 i = 0; i < extra; i++) len |= (u32)(*(*p)++) << (4 + 8 * i);
  return len;
}

/* NameString: skips prefixes and segments, returns the last segment. */
static const u8 *aml_name(const u8 **p) {
  while (**p == '\\' || **p == '^') (*p)++;
  const u8 *last;
  if (**p == 0x2e) { last = *p + 5; *p += 9; }
  else if (**p == 0x2f) { u32 n = (*p)[1]; last = *p + 2 + 4 * (n - 1); *p += 2 + 4 * n; }
  else if (**p == 0) { last = *p; (*p)++; }
  else { last = *p; *p += 4; }
  return last;
}

/* A data object: integer (value), string (str) or buffer (str = bytes, value = length). */
struct aml_obj { int kind; u64 value; const u8 *str; };
enum { AML_INT = 1, AML_STR, AML_BUF, AML_PKG };

static int aml_data(const u8 **p, struct aml_obj *o) {
  u8 op = *(*p)++;
  switch (op) {
  case 0x00: o->kind = AML_INT; o->value = 0; return 1;
  case 0x01: o->kind = AML_INT; o->value = 1; return 1;
  case 0xff: o->kind = AML_INT; o->value = ~0ul; return 1;
  case 0x0a: o->kind = AML_INT; o->value = **p; *p += 1; return 1;
  case 0x0b: o->kind = AML_INT; o->value = ld16(*p); *p += 2; return 1;
  case 0x0c: o->kind = AML_INT; o->value = ld32(*p); *p += 4; return 1;
  case 0x0e: o->kind = AML_INT; o->value = ld64(*p); *p += 8; return 1;
  case 0x0d: o->kind = AML_STR; o->str = *p; while (**p) (*p)++; (*p)++; return 1;
  case 0x11: case 0x12: {
    const u8 *start = *p;
    u32 len = aml_pkglen(p);
    if (op == 0x11) {
      struct aml_obj size;
      if (!aml_data(p, &size) || size.kind != AML_INT) return 0;
      o->kind = AML_BUF; o->str = *p; o->value = size.value;
    } else {
      o->kind = AML_PKG;
    }
    *p = start + len;
    return 1;
  }
  default:
    puts_("AML unknown data object "); puthex(op); putc_('\n');
    return 0;
  }
}

/* Decodes a _CRS resource template into what Linux's ACPI resource walker would report. */
static void decode_crs(const u8 *r, u64 n, struct acpi_info *info, int is_virtio) {
  const u8 *end = r + n;
  while (r < end) {
    u8 tag = r[0];
    if (tag == 0x79) break;                          /* End Tag */
    if (tag & 0x80) {                                 /* large descriptor */
      u16 len = ld16(r + 1);
      if (is_virtio && tag == 0x86) {                 /* Memory32Fixed */
        info->virtio[info->virtio_count].base = ld32(r + 4);
        info->virtio[info->virtio_count].size = ld32(r + 8);
      } else if (is_virtio && tag == 0x89 && r[4] >= 1) {  /* Extended Interrupt */
        info->virtio[info->virtio_count].gsi = ld32(r + 5);
        info->virtio[info->virtio_count].edge = (r[3] >> 1) & 1;
      }
      r += 3 + len;
    } else {                                          /* small descriptor */
      u8 len = tag & 7, type = (tag >> 3) & 0xf;
      if (!is_virtio && type == 0x8) info->serial_port = ld16(r + 2);  /* IO */
      if (!is_virtio && type == 0x4) {                                 /* IRQ */
        u16 mask = ld16(r + 1);
        for (u32 i = 0; i < 16; i++) if (mask & (1u << i)) info->serial_irq = i;
      }
      r += 1 + len;
    }
  }
}

static int aml_terms(const u8 *p, const u8 *end, struct acpi_info *info);

/* Device(NAME) { Name(_HID, ..) Name(_UID, ..) Name(_CRS, ResourceTemplate() {..}) }. */
static int aml_device(const u8 *p, const u8 *end, struct acpi_info *info) {
  const u8 *name = aml_name(&p);
  int is_virtio = 0, is_serial = 0;
  const u8 *crs = 0; u64 crs_len = 0;
  while (p < end) {
    if (*p != 0x08) return aml_terms(p, end, info);  /* nested objects: walk them generically */
    p++;
    const u8 *seg = aml_name(&p);
    struct aml_obj o;
    if (!aml_data(&p, &o)) return 0;
    if (mem_eq(seg, "_HID", 4)) {
      if (o.kind == AML_STR && mem_eq(o.str, "LNRO0005", 9)) is_virtio = 1;
      if (o.kind == AML_INT && o.value == 0x0105d041) is_serial = 1;  /* EISAID("PNP0501") */
    }
    if (mem_eq(seg, "_CRS", 4) && o.kind == AML_BUF) { crs = o.str; crs_len = o.value; }
  }
  if (is_virtio && crs && info->virtio_count < MAX_DEVICES) {
    mem_copy(info->virtio[info->virtio_count].name, name, 4);
    decode_crs(crs, crs_len, info, 1);
    info->virtio_count++;
  }
  if (is_serial && crs) decode_crs(crs, crs_len, info, 0);
  return 1;
}

static int aml_terms(const u8 *p, const u8 *end, struct acpi_info *info) {
  while (p < end) {
    u8 op = *p++;
    if (op == 0x10) {                                 /* Scope */
      const u8 *start = p;
      const u8 *body_end = start + aml_pkglen(&p);
      aml_name(&p);
      if (!aml_terms(p, body_end, info)) return 0;
      p = body_end;
    } else if (op == 0x5b && *p == 0x82) {            /* Device */
      p++;
      const u8 *start = p;
      const u8 *body_end = start + aml_pkglen(&p);
      if (!aml_device(p, body_end, info)) return 0;
      p = body_end;
    } else if (op == 0x08) {                          /* Name outside a device */
      struct aml_obj o;
      aml_name(&p);
      if (!aml_data(&p, &o)) return 0;
    } else {
      puts_("AML unknown opcode "); puthex(op); putc_('\n');
      return 0;
    }
  }
  return 1;
}

/* RSDP -> XSDT -> FADT (-> DSDT) and MADT, as acpi_tb_parse_root_table does. */
static void acpi_walk(struct acpi_info *info) {
  mem_set(info, 0, sizeof *info);
  info->rsdp = find_rsdp();
  if (!info->rsdp) { puts_("RSDP not found\n"); return; }
  const u8 *rsdp = info->rsdp;
  if (rsdp[15] < 2 || ld32(rsdp + 20) != 36 || !checksum_ok(rsdp, 36)) { puts_("RSDP v2 invalid\n"); return; }
  info->xsdt = (const u8 *)ld64(rsdp + 24);
  if (!table_ok(info->xsdt, "XSDT")) { puts_("XSDT invalid\n"); return; }
  u32 entries = (ld32(info->xsdt + 4) - 36) / 8;
  for (u32 i = 0; i < entries; i++) {
    const u8 *t = (const u8 *)ld64(info->xsdt + 36 + 8 * i);
    if (table_ok(t, "FACP")) info->fadt = t;
    else if (table_ok(t, "APIC")) info->madt = t;
    else { puts_("XSDT entry "); putdec(i); puts_(" invalid\n"); return; }
  }
  if (!info->fadt || !info->madt) { puts_("FADT or MADT missing\n"); return; }
  info->fadt_flags = ld32(info->fadt + 112);
  u64 dsdt = ld32(info->fadt + 4) >= 148 ? ld64(info->fadt + 140) : 0;  /* X_DSDT */
  if (!dsdt) dsdt = ld32(info->fadt + 40);
  info->dsdt = (const u8 *)dsdt;
  if (!table_ok(info->dsdt, "DSDT")) { puts_("DSDT invalid\n"); return; }

  const u8 *m = info->madt + 44, *madt_end = info->madt + ld32(info->madt + 4);
  while (m + 2 <= madt_end && m[1] >= 2) {
    if (m[0] == 0 && (ld32(m + 4) & 1)) info->local_apics++;
    if (m[0] == 1) info->ioapic_address = ld32(m + 4);
    m += m[1];
  }
  if (!aml_terms(info->dsdt + 36, info->dsdt + ld32(info->dsdt + 4), info)) return;
  info->ok = 1;
}
