// Host interfaces of the VMM's virtio devices that the Glibc module does not export, or that are
// function-like macros: getrandom(2) for virtio-rng; the TUN/TAP ioctl for virtio-net.
#pragma once
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>  // getrandom: not in the Glibc module

static const unsigned long BH_TUNSETIFF = TUNSETIFF;
static const unsigned long BH_TUNSETVNETHDRSZ = TUNSETVNETHDRSZ;
static const short BH_IFF_TAP = IFF_TAP;
static const short BH_IFF_NO_PI = IFF_NO_PI;
static const short BH_IFF_VNET_HDR = IFF_VNET_HDR;

// TUNSETIFF on an open /dev/net/tun: attaches the fd to TAP interface `name` (created if absent)
// with `flags`. Writes the name the kernel chose into `name_out` (IFNAMSIZ bytes). -1 and errno on failure.
static inline int bh_tun_set_iff(int fd, const char *name, short flags, char *name_out) {
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    request.ifr_flags = flags;
    if (ioctl(fd, TUNSETIFF, &request) < 0) return -1;
    memcpy(name_out, request.ifr_name, IFNAMSIZ);
    return 0;
}

// TUNSETVNETHDRSZ: the size of the virtio_net_hdr in front of every frame (10 by default; 12
// for a VIRTIO_F_VERSION_1 device).
static inline int bh_tun_set_vnet_header_size(int fd, int size) {
    return ioctl(fd, TUNSETVNETHDRSZ, &size);
}
