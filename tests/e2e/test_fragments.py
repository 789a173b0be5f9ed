#!/usr/bin/env python3
"""e2e: IPv4 fragments of UDP datagrams through an FNAT and a DNAT VIP
(configs/fragments.yaml, the routed layout of Lab(dnat=True): echo-fnat
10.99.0.100:5353 and echo-dnat 10.99.0.100:5354 -> udp_echo on the three
backends). Every link has a 1500-byte MTU, so a datagram of 4000 or 9000
bytes leaves the client's kernel as 3 or 7 fragments, and its echo leaves
the backend's kernel fragmented the same way: l4lbd must send each later
fragment (no ports in it) the way of its first, in both directions, without
reassembling anything.

1. Kernel fragments, in order: from 4 client sockets per VIP (4 flows
   each), 3 datagrams of 4000 and 3 of 9000 bytes per socket, each payload
   unique; every echo must come back complete, unchanged and from the
   VIP's address:port.
2. Fragments out of order, made by hand (raw socket, IP_HDRINCL, one IP ID,
   1480-byte pieces, the UDP checksum over the whole datagram) from the
   port of a UDP socket that waits for the echo: to each VIP, a 4000-byte
   datagram last fragment first and first fragment last (l4lbd holds the
   others until the first comes), and a 9000-byte one in a shuffled order
   with the first fragment in the middle. Each echo must come back like
   those of step 1.
3. Overlap: to each VIP, a datagram whose second fragment starts inside
   the first one's bytes. It must not be answered, and the drop reason
   fragment_overlap grows by one fragment at least per such datagram.
4. Counters (`l4lbctl stats --json`, totals): fragment_datagrams grows by
   at least 2 per echoed datagram (it and its echo) and fragments_followed
   by at least 2 x (its fragments - 1); fragments_held is back to 0; no
   other fragment drop reason (fragment_*, bad_fragment) grows.
Steps 1 and 2 are 2.5 s apart (past l4lbd's 2 s fragment timeout), so a
hand-picked IP ID cannot meet a datagram of the kernel's still tracked."""
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "fragments.yaml"
VIPS = {"fnat": 5353, "dnat": 5354}
FLOWS = 4
SIZES = [4000, 9000, 4000, 9000, 4000, 9000]   # per socket, one round each
PIECE = 1480              # fragment payload at MTU 1500, a multiple of 8
ROUND_TIMEOUT_S = 2.0     # for each round's echoes
QUIET_S = 2.0             # how long the overlapping datagrams must stay unanswered
PHASE_GAP_S = 2.5         # past l4lbd's 2 s fragment timeout
# The 7 fragments of a 9000-byte datagram: 3 before the first, 3 after.
SHUFFLED = [3, 6, 1, 0, 5, 2, 4]
FRAGMENT_DROPS_OK = {"fragment_overlap"}

# Runs in the client namespace; argv[1] is one JSON job, one JSON line out.
#   {"mode": "echo", ...}: kernel-fragmented datagrams from ordinary
#     sockets, in rounds (every socket sends one datagram, then all echoes
#     are awaited);
#   {"mode": "frags", ...}: datagrams as hand-made fragments in a given
#     order, sent through a raw socket from the port of a bound UDP socket.
CLIENT = r'''
import json, os, random, select, socket, struct, sys, time

job = json.loads(sys.argv[1])
sys.path.insert(0, job["e2e_dir"])
from syn_flood import checksum  # noqa: E402


def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("0.0.0.0", 0))
    s.setblocking(False)
    return s


def payload_for(what, size):
    head = (what + " ").encode()
    return head + os.urandom(size - len(head))


def collect(clients, deadline):
    """Read echoes until every client has all of its answers or the deadline."""
    while time.monotonic() < deadline:
        waiting = [c for c in clients if c["wait"]]
        if not waiting:
            return
        ready, _, _ = select.select([c["sock"] for c in waiting], [], [], max(0.0, deadline - time.monotonic()))
        for s in ready:
            c = next(c for c in waiting if c["sock"] is s)
            try:
                data, peer = s.recvfrom(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                c["result"]["errors"].append(f"{c['name']}: {e}")
                continue
            what = c["wait"].pop(data, None)
            r = c["result"]
            if what is not None and peer == c["target"]:
                r["ok"] += 1
                r["ok_by_size"][str(what[1])] = r["ok_by_size"].get(str(what[1]), 0) + 1
            else:
                r["wrong"] += 1
                r["errors"].append(f"{c['name']}: {len(data)} bytes from {peer[0]}:{peer[1]}, "
                                   + (f"the echo of {what[0]} from the wrong address" if what
                                      else f"no datagram sent: {data[:40]!r}"))


def finish(clients):
    for c in clients:
        for what in c["wait"].values():
            c["result"]["lost"] += 1
            c["result"]["errors"].append(f"{c['name']}: no echo of {what[0]}")
        c["sock"].close()


def echo():
    results, clients = {}, []
    for name, host, port in job["targets"]:
        results[name] = {"sent": 0, "ok": 0, "wrong": 0, "lost": 0, "ok_by_size": {}, "errors": []}
        for f in range(job["flows"]):
            clients.append({"name": f"{name} flow {f}", "target": (host, port), "sock": udp_socket(),
                            "wait": {}, "result": results[name]})
    for seq, size in enumerate(job["sizes"]):
        for c in clients:
            what = f"{c['name']} seq {seq} ({size} bytes)"
            data = payload_for(what, size)
            c["sock"].sendto(data, c["target"])
            c["wait"][data] = (what, size)
            c["result"]["sent"] += 1
        collect(clients, time.monotonic() + job["timeout"])
    finish(clients)
    return results


def fragments(src, dst, sport, dport, payload):
    """The datagram's IPv4 fragments, in order: PIECE bytes of IP payload each."""
    length = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, length)
    csum = checksum(pseudo + struct.pack("!HHHH", sport, dport, length, 0) + payload) or 0xFFFF
    data = struct.pack("!HHHH", sport, dport, length, csum) + payload
    return [(off, data[off:off + job["piece"]]) for off in range(0, len(data), job["piece"])]


def ip_packet(src, dst, ident, off, more, chunk):
    flags = (0x2000 if more else 0) | off // 8
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk), ident, flags, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:] + chunk


def frags():
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    src = job["src"]
    idents = random.sample(range(1, 65536), len(job["datagrams"]))
    clients, out = [], []
    for d, ident in zip(job["datagrams"], idents):
        s = udp_socket()
        sport = s.getsockname()[1]
        what = f"{d['name']} {d['order']} ({d['size']} bytes, IP ID {ident}, port {sport})"
        payload = payload_for(what, d["size"])
        pieces = fragments(src, d["host"], sport, d["port"], payload)
        end = pieces[-1][0] + len(pieces[-1][1])
        if d["order"] == "overlap":
            # The first fragment, then one from inside it to the end (the
            # last): bytes [overlap, PIECE) come twice.
            data = b"".join(chunk for _, chunk in pieces)
            start = d["overlap"]
            packets = [(0, True, pieces[0][1]), (start, False, data[start:])]
            order = [0, 1]
        else:
            packets = [(off, off + len(chunk) < end, chunk) for off, chunk in pieces]
            order = list(reversed(range(len(packets)))) if d["order"] == "reverse" else d["permutation"]
        for i in order:
            off, more, chunk = packets[i]
            raw.sendto(ip_packet(src, d["host"], ident, off, more, chunk), (d["host"], 0))
            time.sleep(0.005)
        r = {"name": d["name"], "order": d["order"], "size": d["size"], "sport": sport, "ident": ident,
             "fragments": len(packets), "sent_order": [packets[i][0] for i in order],
             "sent": 1, "ok": 0, "wrong": 0, "lost": 0, "ok_by_size": {}, "errors": []}
        out.append(r)
        clients.append({"name": what, "target": (d["host"], d["port"]), "sock": s,
                        "wait": {payload: (what, d["size"])}, "result": r})
    collect(clients, time.monotonic() + job["timeout"])
    finish(clients)
    raw.close()
    return out


print(json.dumps(echo() if job["mode"] == "echo" else frags()))
'''


def client_job(lab, job, timeout):
    """Run CLIENT with `job` in the client namespace -> its JSON answer."""
    job = dict(job, e2e_dir=str(Path(__file__).resolve().parent))
    p = lab.in_client([e2e.PY, "-c", CLIENT, json.dumps(job)], check=False, timeout=timeout)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        raise e2e.TestFailure(f"fragment client printed no result (exit {p.returncode}): "
                              f"{p.stdout[-300:]!r} {p.stderr[-600:]!r}") from e


def fragment_count(size):
    """Fragments of a `size`-byte UDP payload at MTU 1500."""
    return -(-(8 + size) // PIECE)


def totals(lab):
    t = lab.stats()["total"]
    return t, dict(t.get("drops") or {})


def is_fragment_drop(reason):
    return reason == "bad_fragment" or reason == "fragment" or reason.startswith("fragment_")


def body(lab):
    problems = []
    lab.wait_vip("udp-echo", VIPS["dnat"])
    before, drops_before = totals(lab)
    expect_datagrams = expect_followed = 0

    def expect(size, count):
        nonlocal expect_datagrams, expect_followed
        # The datagram toward the backend and its echo, each in fragments.
        expect_datagrams += 2 * count
        expect_followed += 2 * count * (fragment_count(size) - 1)

    # 1. kernel fragments, in order
    targets = [[mode, e2e.VIP, port] for mode, port in VIPS.items()]
    rounds = len(SIZES)
    bulk = client_job(lab, {"mode": "echo", "targets": targets, "flows": FLOWS, "sizes": SIZES,
                            "timeout": ROUND_TIMEOUT_S}, timeout=rounds * ROUND_TIMEOUT_S + 30)
    for mode, r in bulk.items():
        by_size = ", ".join(f"{n} of {s} bytes" for s, n in sorted(r["ok_by_size"].items()))
        e2e.log(f"measured: [{mode} :{VIPS[mode]}] sent {r['sent']} datagrams ({SIZES.count(4000) * FLOWS} of "
                f"4000, {SIZES.count(9000) * FLOWS} of 9000 bytes) on {FLOWS} flows, echoed {r['ok']} "
                f"({by_size or 'none'}), wrong {r['wrong']}, lost {r['lost']}")
        for err in r["errors"][:6]:
            e2e.log(f"  {err}")
        if r["sent"] != FLOWS * rounds or r["ok"] != r["sent"]:
            problems.append(f"{mode} VIP: {r['ok']} of {r['sent']} kernel-fragmented datagrams "
                            f"(4000 and 9000 bytes) echoed correctly from {e2e.VIP}:{VIPS[mode]}")
        for size, n in r["ok_by_size"].items():
            expect(int(size), n)

    # 2. and 3. hand-made fragments, out of order and overlapping
    time.sleep(PHASE_GAP_S)
    datagrams = []
    for mode, port in VIPS.items():
        base = {"name": mode, "host": e2e.VIP, "port": port}
        datagrams += [base | {"order": "reverse", "size": 4000},
                      base | {"order": "shuffled", "size": 9000, "permutation": SHUFFLED},
                      # UDP length 2000: fragments [0, 1480) and [1000, 2000)
                      base | {"order": "overlap", "size": 1992, "overlap": 1000}]
    hand = client_job(lab, {"mode": "frags", "src": lab.client_addr, "piece": PIECE, "datagrams": datagrams,
                            "timeout": max(ROUND_TIMEOUT_S, QUIET_S)}, timeout=60)
    overlaps = 0
    for r in hand:
        answered = "echoed" if r["ok"] else ("answered wrongly" if r["wrong"] else "not answered")
        e2e.log(f"measured: [{r['name']} :{VIPS[r['name']]}] {r['size']}-byte datagram in {r['fragments']} "
                f"hand-made fragments, {r['order']} (offsets {r['sent_order']}, IP ID {r['ident']}): {answered}")
        if r["order"] == "overlap":
            overlaps += 1
            if r["ok"] or r["wrong"]:
                problems.append(f"{r['name']} VIP: a datagram with overlapping fragments was answered")
            continue
        for err in r["errors"]:
            e2e.log(f"  {err}")
        if r["ok"] != 1:
            problems.append(f"{r['name']} VIP: the {r['size']}-byte datagram sent in {r['order']} order "
                            f"({r['fragments']} fragments) was {answered}")
        else:
            expect(r["size"], 1)

    # 4. counters
    deadline = time.monotonic() + 3
    while True:
        after, drops_after = totals(lab)
        if not after.get("fragments_held") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    missing = [k for k in ("fragment_datagrams", "fragments_followed", "fragments_held") if k not in after]
    if missing:
        problems.append(f"l4lbctl stats has no {', '.join(missing)}")
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in ("fragment_datagrams", "fragments_followed")}
    drops = {k: v - drops_before.get(k, 0) for k, v in drops_after.items() if v - drops_before.get(k, 0)}
    fragment_drops = {k: v for k, v in drops.items() if is_fragment_drop(k)}
    e2e.log(f"measured: fragment_datagrams +{grown['fragment_datagrams']} (at least {expect_datagrams} "
            f"expected), fragments_followed +{grown['fragments_followed']} (at least {expect_followed}), "
            f"fragments_held {after.get('fragments_held')}, fragment drops {fragment_drops or 'none'}")
    if not missing:
        if grown["fragment_datagrams"] < expect_datagrams:
            problems.append(f"fragment_datagrams grew by {grown['fragment_datagrams']}, "
                            f"expected at least {expect_datagrams}")
        if grown["fragments_followed"] < expect_followed:
            problems.append(f"fragments_followed grew by {grown['fragments_followed']}, "
                            f"expected at least {expect_followed}")
        if after["fragments_held"]:
            problems.append(f"fragments_held is {after['fragments_held']} 3 s after the last fragment")
    if drops.get("fragment_overlap", 0) < overlaps:
        problems.append(f"fragment_overlap grew by {drops.get('fragment_overlap', 0)} for {overlaps} datagrams "
                        "with overlapping fragments")
    unexpected = {k: v for k, v in fragment_drops.items() if k not in FRAGMENT_DROPS_OK}
    if unexpected:
        problems.append(f"fragments dropped: {unexpected}")
    lab.print_stats()
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    e2e.run_test("fragments", body, config=CONFIG, dnat=True,
                 servers=[("udp_echo", VIPS["fnat"]), ("udp_echo", VIPS["dnat"])],
                 probe=("udp-echo", VIPS["fnat"]), timeout=150)
