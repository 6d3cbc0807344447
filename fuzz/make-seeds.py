#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/virtqueue (layout: fuzz/VirtqueueFuzzer.swift).

Each seed is a small guest: a queue of 8 descriptors at 0x0, the available ring at 0x80, the used
ring at 0x100, a request header at 0x180, data at 0x200 and the status byte at 0x400.
"""
import os
import struct

DESC, AVAIL, USED, HEADER, DATA, STATUS = 0x0, 0x80, 0x100, 0x180, 0x200, 0x400
NEXT, WRITE, INDIRECT = 1, 2, 4
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "virtqueue")


def guest(descriptors, heads, request_type=0, sector=0, data=b"", avail_index=None):
    memory = bytearray(0x401)
    for i, (address, length, flags, next_) in enumerate(descriptors):
        struct.pack_into("<QIHH", memory, DESC + 16 * i, address, length, flags, next_)
    index = len(heads) if avail_index is None else avail_index
    struct.pack_into("<HH", memory, AVAIL, 0, index)
    for i, head in enumerate(heads):
        struct.pack_into("<H", memory, AVAIL + 4 + 2 * i, head)
    struct.pack_into("<IIQ", memory, HEADER, request_type, 0, sector)
    memory[DATA:DATA + len(data)] = data
    return bytes(memory)


def direct(memory, mode=0, size_code=3):
    return bytes([mode, size_code]) + struct.pack("<III", DESC, AVAIL, USED) + memory


def transport(memory, operations, mode=1, size_code=3):
    ops = b"".join(struct.pack("<HBHB", offset, code, value & 0xffff, value >> 16) for offset, code, value in operations)
    return bytes([mode, size_code]) + struct.pack("<III", DESC, AVAIL, USED) + bytes([len(operations)]) + ops + memory


def request(data_flags=WRITE, data_length=512):
    return [(HEADER, 16, NEXT, 1), (DATA, data_length, data_flags | NEXT, 2), (STATUS, 1, WRITE, 0)]


seeds = {
    "read": direct(guest(request(), [0], request_type=0)),
    "write": direct(guest(request(data_flags=0), [0], request_type=1, sector=3, data=b"\xa5" * 512)),
    "write-read-only-disk": direct(guest(request(data_flags=0), [0], request_type=1), mode=2),
    "flush": direct(guest([(HEADER, 16, NEXT, 1), (STATUS, 1, WRITE, 0)], [0], request_type=4)),
    "get-id": direct(guest(request(data_length=20), [0], request_type=8)),
    "unsupported-type": direct(guest(request(), [0], request_type=77)),
    "read-past-the-end": direct(guest(request(), [0], request_type=0, sector=127)),
    "two-requests": direct(guest(request() + [(HEADER, 16, NEXT, 4), (STATUS, 1, WRITE, 0)], [0, 3], request_type=4)),
    "loop": direct(guest([(HEADER, 16, NEXT, 1), (DATA, 16, NEXT, 0)], [0])),
    "indirect": direct(guest([(HEADER, 16, INDIRECT, 0)], [0])),
    "readable-after-writable": direct(guest([(STATUS, 1, WRITE | NEXT, 1), (HEADER, 16, 0, 0)], [0])),
    "buffer-outside-memory": direct(guest([(0xffff_ffff_ffff_fff0, 64, NEXT, 1), (STATUS, 1, WRITE, 0)], [0])),
    "available-index-too-far": direct(guest(request(), [0], avail_index=100)),
    "split-header": direct(guest([(HEADER, 4, NEXT, 1), (HEADER + 4, 12, NEXT, 2), (DATA, 512, WRITE | NEXT, 3),
                                  (STATUS, 1, WRITE, 0)], [0])),
    "transport-read": transport(guest(request(), [0]), [(0x100, 2, 0), (0x070, 2, 0), (0x060, 2, 0),
                                                        (0x064, 0x82, 1), (0x050, 0x82, 0)]),
    "transport-reset-and-reconfigure": transport(guest(request(), [0]), [(0x070, 0x82, 0), (0x038, 0x82, 300),
                                                                         (0x044, 0x82, 1), (0x050, 0x82, 0)]),
}

os.makedirs(here, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {here}")
