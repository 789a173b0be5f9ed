#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/).

  tests/fuzz/make_seeds.py            (re)write the generated seeds

packet/seed-*: a 16-byte control block (see packet_fuzz.cc) + a frame:
valid TCP/UDP/ICMP to each VIP of the fuzzer's snapshot and to other
addresses, backend replies to SNAT addresses and DNAT clients, ARP, IPv6,
VLAN, padding, UDP without checksum, and truncated or malformed variants.
config/seed-*: the repo's config/*.yaml and tests/e2e/configs/*.yaml, plus a
few small hand-written documents (valid and not).

Files not named seed-* (crash-* reproducers, inputs the fuzzers added) are
left alone. Deterministic: running it again rewrites the same bytes.
"""
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"


def csum(data: bytes, start: int = 0) -> int:
    if len(data) % 2:
        data += b"\0"
    s = start
    for (w,) in struct.iter_unpack("!H", data):
        s += w
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(dotted: str) -> bytes:
    return bytes(int(x) for x in dotted.split("."))


def frame6(proto="tcp", sport=40000, dport=8080, flags=0x02, payload=b"", ext=(), icmp_type=128):
    """Ethernet/IPv6 (+ extension headers, each (type, bytes after the
    next-header byte)) / TCP, UDP or ICMPv6 with its checksum."""
    pnum = {"tcp": 6, "udp": 17, "icmp6": 58}[proto]
    src = bytes.fromhex("20010db8009900000000000000000010")
    dst = bytes.fromhex("20010db8009900000000000000000100")
    if pnum == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 0x11000000, 0, 5 << 4, flags, 0xFFFF, 0, 0) + payload
        at = 16
    elif pnum == 17:
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        at = 6
    else:
        l4 = struct.pack("!BBHI", icmp_type, 0, 0, 0) + payload
        at = 2
    c = csum(src + dst + struct.pack("!IxxxB", len(l4), pnum) + l4)
    l4 = l4[:at] + struct.pack("!H", c) + l4[at + 2:]
    chain = b""
    for i, (_, body) in enumerate(ext):
        chain += bytes([ext[i + 1][0] if i + 1 < len(ext) else pnum]) + body
    first = ext[0][0] if ext else pnum
    hdr = struct.pack("!IHBB", 0x60000000, len(chain) + len(l4), first, 64) + src + dst
    return bytes.fromhex("020000000001020000000010" + "86dd") + hdr + chain + l4


def opts6(units=1, segments_left=0):
    body = bytearray(units * 8 - 1)
    body[0] = units - 1
    body[2] = segments_left
    return bytes(body)


def frag6(offset, more, ident=0x01020304):
    return struct.pack("!xHI", offset | more, ident)


def frame(proto="tcp", src="10.99.0.10", dst="10.99.0.100", sport=40000, dport=8080,
          flags=0x02, payload=b"", vlan=False, udp_zero=False, pad=0, ihl=5, frag=0x4000,
          bad_ip_sum=False, bad_l4_sum=False, doff=5):
    eth = bytes.fromhex("020000000001") + bytes.fromhex("020000000010")
    if vlan:
        eth += b"\x81\x00\x00\x64"
    eth += b"\x08\x00"
    opts = b"\x01" * ((ihl - 5) * 4)
    pnum = {"tcp": 6, "udp": 17, "icmp": 1}.get(proto, proto if isinstance(proto, int) else 99)
    if pnum == 6:
        opts_tcp = b"\x01" * max(0, (doff - 5) * 4)
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 0x11000000, 0x22000000 if flags & 0x10 else 0,
                         doff << 4, flags, 0xFFFF, 0, 0) + opts_tcp + payload
        at = 16
    elif pnum == 17:
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        at = 6
    else:
        l4 = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + payload
        at = 2
    total = 20 + len(opts) + len(l4)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0x1234, frag, 64, pnum, 0, ip4(src), ip4(dst)) + opts
    s = csum(hdr) ^ (0x5555 if bad_ip_sum else 0)
    hdr = hdr[:10] + struct.pack("!H", s) + hdr[12:]
    if pnum in (6, 17):
        pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, pnum, len(l4))
        c = csum(pseudo + l4)
        if pnum == 17 and c == 0:
            c = 0xFFFF
        if udp_zero:
            c = 0
        if bad_l4_sum:
            c ^= 0x0F0F
    else:
        c = csum(l4)
    l4 = l4[:at] + struct.pack("!H", c) + l4[at + 2:]
    return eth + hdr + l4 + b"\0" * pad


def icmp_error(src, dst, quoted, quote_len=48, icmp_type=3, code=4, mtu=1280):
    """An ICMP error from src to dst quoting the IPv4 packet of the frame
    `quoted` (its first quote_len bytes), as a router sends it."""
    body = struct.pack("!BBHHH", icmp_type, code, 0, 0, mtu) + quoted[14:14 + quote_len]
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0x1234, 0, 64, 1, 0, ip4(src), ip4(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return bytes.fromhex("020000000001020000000010" + "0800") + hdr + body


def control(src="10.99.0.1", dst="10.99.0.21", sport=10240, dport=8080, workers=1, index=0, preset=0,
            keep_udp_zero=False, mac=b"\x11\x22\x33", steps=False):
    b12 = (workers - 1) | (index << 2) | (preset << 4) | (0x40 if keep_udp_zero else 0) | (0x80 if steps else 0)
    return ip4(src) + ip4(dst) + struct.pack("!HHB", sport, dport, b12) + mac


# Scripted inputs (packet_fuzz.cc): the frame, then 8-byte steps, then an
# options byte and the step count.
CLIENT, BACKEND, WAIT, RELOAD, RAW = range(5)
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def step(op, flags=0, delta=0, pause=0, arg=0):
    return struct.pack("!BBIBB", op, flags, delta & 0xFFFFFFFF, pause, arg)


def options(reject=False, refuse=False, capacity=2, pools=2, embryonic=False):
    """capacity: index into kCapacities (4, 16, 64, 1024); pools: into kPools (1, 2, 4, 16)."""
    return bytes([(1 if reject else 0) | (2 if refuse else 0) | capacity << 2 | pools << 4 |
                  (0x40 if embryonic else 0)])


def script(ctl, frm, steps, opts=None):
    assert len(steps) <= 16
    return ctl + frm + b"".join(steps) + (opts or options()) + bytes([len(steps)])


def packet_seeds():
    c = control()
    c4 = control(workers=4, index=1)
    c2 = control(workers=2, index=1, preset=1)
    c3 = control(workers=3, index=2, preset=2, keep_udp_zero=True)
    syn = frame()
    seeds = {
        # Forward to each VIP of packet_fuzz.cc's config.
        "tcp-syn-web": c + syn,
        "tcp-syn-web-4workers": c4 + syn,
        "tcp-ack-web": c + frame(flags=0x10, payload=b"GET / HTTP/1.1\r\n\r\n"),
        "tcp-fin-web": c2 + frame(flags=0x11),
        "tcp-rst-web": c + frame(flags=0x04),
        "tcp-syn-strict": c + frame(dport=8443),
        "tcp-ack-strict": c4 + frame(dport=8443, flags=0x18, payload=b"x" * 7),
        "udp-dns": c + frame("udp", dport=53, payload=b"\x12\x34\x01\x00"),
        "udp-dns-zero-sum": c3 + frame("udp", dport=53, payload=b"abc", udp_zero=True),
        "tcp-syn-dnat-api": c4 + frame(dst="10.99.0.101", dport=80),
        "udp-dnat": c2 + frame("udp", dst="10.99.0.101", dport=4000, payload=b"ping"),
        "udp-drained": c + frame("udp", dst="10.99.0.102", dport=80),
        "tcp-syn-web-vlan": c + frame(vlan=True),
        "tcp-syn-web-padded": c + frame(pad=6),
        "tcp-syn-web-options": c + frame(doff=8),
        "tcp-web-bad-sums": c + frame(flags=0x10, bad_ip_sum=True, bad_l4_sum=True),
        # Replies: backend -> SNAT address (FNAT), backend -> client (DNAT).
        "tcp-reply-fnat": c + frame(src="10.99.0.21", dst="10.99.0.1", sport=8080, dport=10240, flags=0x12),
        "tcp-reply-fnat-4workers": c4 + frame(src="10.99.0.22", dst="10.99.0.1", sport=8080, dport=20000,
                                               flags=0x12),
        "udp-reply-fnat": c + frame("udp", src="10.99.0.21", dst="10.99.0.2", sport=53, dport=10300),
        "tcp-reply-dnat": c4 + frame(src="10.99.0.31", dst="10.98.0.10", sport=80, dport=40000, flags=0x12),
        # ICMP errors about a flow's packets (DESIGN §3 step 0): to the SNAT
        # address about one to a backend, to a VIP about a reply, to a DNAT
        # client about one to its backend, and about a probe (the kernel's).
        "icmp-frag-needed-fnat": c + icmp_error("10.99.0.254", "10.99.0.1", frame(
            src="10.99.0.1", dst="10.99.0.21", sport=10240, dport=8080, flags=0x10, payload=b"x" * 40)),
        "icmp-frag-needed-reply": c + icmp_error("198.51.100.1", "10.99.0.100", frame(
            src="10.99.0.100", dst="10.99.0.10", sport=8080, dport=40000, flags=0x10, payload=b"x" * 40)),
        "icmp-frag-needed-dnat": c4 + icmp_error("10.99.0.254", "10.98.0.10", frame(
            src="10.98.0.10", dst="10.99.0.31", sport=40000, dport=80, flags=0x10, payload=b"x" * 40)),
        "icmp-time-exceeded-probe": c + icmp_error("10.99.0.254", "10.99.0.1", frame(
            src="10.99.0.1", dst="10.99.0.31", sport=45000, dport=80), quote_len=28, icmp_type=11, code=0),
        # Slow path and not for us.
        "tcp-to-own-address": c + frame(dst="10.99.0.1", dport=22),
        "icmp-echo-vip": c + frame("icmp", dst="10.99.0.100", payload=b"abcdefgh"),
        "icmp-echo-other": c + frame("icmp", dst="10.1.2.3"),
        "tcp-not-for-us": c + frame(dst="192.0.2.1"),
        "gre-to-vip": c + frame(47, dst="10.99.0.100", payload=b"\0" * 8),
        "arp": c + bytes.fromhex("ffffffffffff0200000000100806") + bytes.fromhex(
            "0001080006040001020000000010" + "0a63000a" + "000000000000" + "0a630064"),
        "ipv6-empty": c + bytes.fromhex("020000000001020000000010" + "86dd") + bytes(40),
        # IPv6 (DESIGN §3 step 2): the chain walked, NDP to control, the rest
        # to the kernel; refused chains dropped by reason.
        "ipv6-syn": c + frame6(),
        "ipv6-chain": c + frame6("udp", dport=53, ext=[(0, opts6()), (60, opts6(2)), (43, opts6()), (44, frag6(0, 0))]),
        "ipv6-neighbour-solicitation": c + frame6("icmp6", icmp_type=135, payload=bytes(16)),
        "ipv6-echo": c + frame6("icmp6", payload=b"ping"),
        "ipv6-routing-segments-left": c + frame6(ext=[(43, opts6(1, 1))]),
        "ipv6-first-fragment": c + frame6("udp", dport=53, payload=b"f" * 16, ext=[(44, frag6(0, 1))]),
        "ipv6-later-fragment": c + frame6("udp", dport=53, payload=b"l" * 16, ext=[(44, frag6(1480, 0))]),
        "qinq": c + bytes.fromhex("020000000001020000000010" + "81000064" + "81000065" + "0800") + bytes(20),
        # Malformed.
        "empty": c,
        "truncated-eth": c + syn[:13],
        "truncated-vlan": c + frame(vlan=True)[:16],
        "truncated-ipv4": c + syn[:30],
        "truncated-tcp": c + syn[:40],
        "ip-options": c + frame(ihl=6),
        "bad-ihl": c + frame(ihl=4)[:54],
        "bad-fragment": c + frame(frag=0x2000),
        # Fragments (DESIGN §3 step 2a): a first that carries the ports, a
        # later one that does not, and one that would end past 65535.
        "fragment-first-udp": c + frame("udp", dport=53, payload=b"f" * 16, frag=0x2000),
        "fragment-later-udp": c + frame("udp", dport=53, payload=b"l" * 16, frag=0x00B9),
        "fragment-oversized": c + frame("udp", dport=53, payload=b"o" * 16, frag=0x3FFF),
        "bad-version": c + syn[:14] + b"\x65" + syn[15:],
        "bad-tcp-offset": c + frame(doff=2),
        "bad-udp-length": c + frame("udp", dport=53)[:-8] + frame("udp", dport=53)[-8:-4] + b"\0\x30\0\0",
        "ip-length-too-long": c + syn[:16] + b"\x01\x00" + syn[18:],
    }
    s1 = control(steps=True)
    s4 = control(workers=4, index=1, steps=True)
    small = control(preset=1, steps=True)  # SNAT ports 1024-1027: four per pool on one worker
    handshake = [step(CLIENT, SYN), step(BACKEND, SYN | ACK), step(CLIENT, ACK)]
    seeds.update({
        # syn_sent -> syn_recv -> established -> fin_wait -> time_wait, then
        # a SYN on the tuple (a new connection) and time past every timeout.
        "steps-handshake-fin-syn": script(s1, syn, handshake + [
            step(CLIENT, PSH | ACK, pause=1), step(BACKEND, PSH | ACK, pause=3), step(CLIENT, FIN | ACK),
            step(BACKEND, FIN | ACK), step(CLIENT, ACK), step(CLIENT, SYN, pause=20), step(BACKEND, SYN | ACK),
            step(WAIT, arg=8), step(WAIT, arg=255)]),
        # RSTs out of the window (dropped, nothing changes), then one inside.
        "steps-rst-window": script(s1, syn, handshake + [
            step(BACKEND, RST, delta=0x80000000), step(CLIENT, RST | ACK, delta=0x00300000),
            step(CLIENT, RST, delta=-0x00200000), step(BACKEND, RST, delta=-0x8000), step(CLIENT, ACK),
            step(WAIT, arg=4)]),
        # The backend closes first: its port is held; the client's SYN burst
        # on four ports per backend evicts unconfirmed flows, never confirmed.
        "steps-pool-eviction": script(small, syn, handshake + [
            step(CLIENT, FIN | ACK, arg=0), step(CLIENT, SYN, arg=1), step(CLIENT, SYN, arg=2),
            step(CLIENT, SYN, arg=3), step(CLIENT, SYN, arg=4), step(CLIENT, SYN, arg=5), step(BACKEND, SYN | ACK, arg=5),
            step(CLIENT, ACK, arg=5), step(CLIENT, SYN, arg=6), step(CLIENT, SYN, arg=7), step(CLIENT, SYN, arg=8),
            step(CLIENT, SYN, arg=9), step(WAIT, arg=70)], options(capacity=1, pools=3)),
        # A full table of unconfirmed flows with one confirmed; refuse turns
        # eviction off.
        "steps-table-full": script(s1, syn, handshake + [step(CLIENT, SYN, arg=a) for a in range(1, 9)],
                                   options(capacity=0)),
        "steps-table-full-refuse": script(s1, syn, handshake + [step(CLIENT, SYN, arg=a) for a in range(1, 6)],
                                          options(capacity=0, refuse=True, embryonic=True)),
        # Reloads under established flows: a backend removed, new MACs, the
        # SNAT address moved, weights changed, the closed-port policy flipped.
        "steps-reloads": script(s1, syn, handshake + [
            step(RELOAD, arg=1), step(CLIENT, ACK), step(RELOAD, arg=0 | 0 << 3 | 1 << 6), step(CLIENT, ACK),
            step(BACKEND, ACK), step(RELOAD, arg=2), step(BACKEND, ACK), step(CLIENT, SYN, arg=1),
            step(RELOAD, arg=6), step(CLIENT, SYN, arg=2), step(RELOAD, arg=3), step(RAW)]),
        # down_policy: reset on the strict VIP: health takes its backends down.
        # Three flows; health takes 10.99.0.21 down: its flows are reset.
        "steps-health-reset": script(s1, frame(dport=8443), [
            step(CLIENT, SYN, arg=a) for a in range(3)] + [step(BACKEND, SYN | ACK, arg=a) for a in range(3)] + [
            step(CLIENT, ACK, arg=a) for a in range(3)] + [step(RELOAD, arg=4 | 1 << 3 | 0 << 6)] + [
            step(CLIENT, ACK, arg=a) for a in range(3)] + [step(BACKEND, ACK, arg=0)]),
        # ... and a new connection on a closing flow of the down backend is
        # not reset: it takes fresh choices.
        "steps-health-reset-syn": script(s1, frame(dport=8443), handshake + [
            step(CLIENT, FIN | ACK), step(BACKEND, FIN | ACK), step(RELOAD, arg=4 | 1 << 3 | 0 << 6),
            step(CLIENT, SYN, delta=0x10000), step(BACKEND, SYN | ACK), step(CLIENT, ACK)]),
        # Mid-stream pick-up confirmed by the backend's answer.
        "steps-midstream": script(s4, frame(flags=ACK, payload=b"data"), [
            step(CLIENT, ACK), step(BACKEND, ACK), step(CLIENT, ACK, delta=4), step(BACKEND, RST, delta=0x40000000),
            step(WAIT, arg=11)]),
        # UDP: unreplied, then a reply, each with its timeout.
        "steps-udp": script(s1, frame("udp", dport=53, payload=b"q"), [
            step(CLIENT), step(CLIENT, arg=1), step(BACKEND), step(WAIT, arg=11), step(CLIENT), step(CLIENT, arg=1),
            step(WAIT, arg=121)]),
        # DNAT: the VIP's backends replaced by a reload; replies still drain.
        "steps-dnat-drain": script(s1, frame(dst="10.99.0.101", dport=80), handshake + [
            step(RELOAD, arg=5 | 3 << 3), step(BACKEND, ACK), step(CLIENT, ACK), step(CLIENT, SYN, arg=1)]),
        # Closed VIP ports answered (reject), then dropped after a reload.
        "steps-closed-reject-udp": script(s1, frame("udp", dport=5353, payload=b"q"),
                                          [step(RAW), step(RELOAD, arg=3), step(RAW)], options(reject=True)),
        "steps-closed-reject-tcp": script(s1, frame(dport=2222),
                                          [step(RAW), step(CLIENT, RST), step(CLIENT, SYN | ACK)], options(reject=True)),
    })
    return seeds


def config_seeds():
    seeds = {}
    for path in sorted((ROOT / "config").glob("*.yaml")) + sorted((ROOT / "tests/e2e/configs").glob("*.yaml")):
        prefix = "e2e-" if "e2e" in path.parts else "config-"
        seeds[prefix + path.stem] = path.read_bytes()
    seeds.update({
        "minimal": b"ports: [{name: p0, address: 10.0.0.1/24}]\n",
        "minimal-vip": (b"ports:\n  - {name: p0, address: [10.0.0.1/24], gateway: 10.0.0.254}\n"
                        b"neighbors:\n  - {address: 10.0.0.254, mac: '02:00:00:00:00:fe'}\n"
                        b"vips:\n  - {name: v, address: 10.1.0.1, port: 80, snat: 10.0.0.1, table_size: 7,\n"
                        b"     backends: [{address: 10.2.0.1, port: 80, weight: 3}]}\n"),
        "dnat-health": (b"dataplane: {workers: 2, snat_port_range: [2000, 2001]}\n"
                        b"ports: [{name: p0, address: 10.0.0.1/24}]\n"
                        b"vips:\n  - name: v\n    address: 10.0.0.9\n    port: 53\n    protocol: udp\n"
                        b"    mode: dnat\n    health: {type: http, path: /h, expect: 204, interval_ms: 100,"
                        b" timeout_ms: 50}\n    backends: [{address: 10.0.0.2, port: 53}]\n"),
        "bad-port": b"ports: [{name: p0, address: 10.0.0.1/24}]\nvips: [{name: v, address: 10.1.0.1, port: 70000}]\n",
        "bad-syntax": b"ports: [{name: p0, address: 10.0.0.1/24}\n",
        "two-documents": b"ports: []\n---\nports: []\n",
        "anchors": b"a: &x {name: p0}\nports: [*x, *x]\n",
        "tags": b"ports: !!seq [ !!map {name: !!str p0, address: !!binary AAAA} ]\n",
        "nested": b"ports: " + b"[" * 64 + b"]" * 64 + b"\n",
        "crlf": b"ports:\r\n  - name: p0\r\n    address: 10.0.0.1/24\r\n",
        "empty": b"",
    })
    return seeds


def write(kind, seeds):
    d = CORPUS / kind
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for name, data in seeds.items():
        (d / f"seed-{name}").write_bytes(data)
    print(f"{d.relative_to(ROOT)}: {len(seeds)} seeds")


def main():
    write("packet", packet_seeds())
    write("config", config_seeds())


if __name__ == "__main__":
    main()
