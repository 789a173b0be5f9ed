#!/usr/bin/env python3
"""e2e (issue 13): an ACK flood and a spoofed-source SYN flood against FNAT
VIPs whose flow table is larger than their SNAT port pool
(configs/ack_flood.yaml: 16384 flows, P = 256 SNAT ports on one address,
web :8080 and echo :7 on three backends, tcp_miss: forward).

Before the floods, two long-lived connections to the echo VIP are opened
(test_reload's Echoes) and two curl loops start (a new connection per
request; 2 s to connect, 4 s in all). Then, one after the other:
  A. `hping3 -A` from the client's own address to VIP:8080, 5000 ACKs
     1 ms apart (hping3 manages about 650/s here) from incrementing source
     ports 3000..7999. Each is a TCP miss that tcp_miss: forward sends on to
     a backend, which answers with a RST; a pickup held 2-3 s (tcp_close_s
     after the RST, plus the aging sweep) means about 1600 flows wanting an
     SNAT port at once: more than P, and more than the 3 x P of pools per
     backend.
  B. tests/e2e/syn_flood.py: 9000 SYNs in 6 s from random spoofed
     10.97.0.0/16 sources. The backends' SYN-ACKs go nowhere, so these flows
     stay embryonic until tcp_syn_recv_s (3 s): about 5000 at once.
Neither flood fills the flow table, so making room only when the table is
full (table_full: evict_embryonic) never helps: what runs out is SNAT
ports. Flows no client has confirmed (embryonic, or pickups) must not lock
real clients out of the ports.

Checks:
  - the long-lived connections echo before, between and after the floods,
    on the backend they started on;
  - >= 99% of the curls started during the ACK flood succeed, >= 90%
    during the spoofed SYN flood (and until its flows have aged out), and
    every curl started after that. The SYN flood's bound is looser for a
    reason outside l4lbd: a port taken from an evicted half-open flow
    still names a half-open connection on its backend (the backend keeps
    retransmitting its SYN-ACK for a minute), so a real client that gets
    that port is answered with the stale SYN-ACK; its kernel's RST (which
    l4lbd lets through: it matches the backend's ACK) clears the backend,
    and the client's SYN retry 1 s later succeeds. With curl's 2 s connect
    timeout an unlucky client can miss twice;
  - the floods reached l4lbd (rx grew by at least half of what was sent);
  - l4lbctl answers throughout (every stats call above).

Measured before issue 13 (L4LB_E2E_OLD_KEYS=1, so tcp_closing_s 5): all
256 ports held through both floods (snat_exhausted +13767, no eviction: the
table was never full); 8 of 16 curls failed during the ACK flood, 5 of 48
during the SYN flood; the long-lived connections survived."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile  # noqa: E402
import l4lb_e2e as e2e  # noqa: E402
from test_reload import Echoes  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "ack_flood.yaml"
FLOOD = Path(__file__).resolve().parent / "syn_flood.py"
ACKS = 5000
ACK_INTERVAL_US = 1000
SYN_SECONDS = 6
SYN_RATE = 1500
AFTER_S = 5.0


def body(lab):
    problems = []
    timeouts = hostile.config_timeouts(CONFIG)
    settle = max(timeouts.get("tcp_syn_recv_s", 3), timeouts.get("tcp_close_s", 2)) + 2.0
    first, last = hostile.snat_range(CONFIG)
    e2e.log(f"SNAT range {first}-{last} ({last - first + 1} ports), flow table 16384")
    echoes = Echoes(lab, 2)
    problems += echoes.check("before the floods")
    loops = [e2e.CurlLoop(lab, connect_timeout=2, max_time=4, label=f"curl-loop-{i}") for i in range(2)]
    try:
        time.sleep(2.0)                                   # baseline
        t0 = time.time()
        before = hostile.totals(lab)
        hping = hostile.Hping(lab, "hping3-ack", ["-A", "-p", "8080", "-s", "3000", "-c", 4 * ACKS,
                                                  "-i", f"u{ACK_INTERVAL_US}", "-q", e2e.VIP])
        time.sleep(ACKS * ACK_INTERVAL_US / 1e6 / 2)
        mid = hostile.totals(lab)
        e2e.log(f"halfway through the ACK flood: flows_active {mid['flows_active']}, "
                f"embryonic {mid['flows_embryonic']}, drops {hostile.nonzero_drops(before, mid) or 'none'}")
        # hping3 also ends once it has *received* -c packets: interrupt it
        # after the flood's time instead (hostile.Hping.wait).
        sent, _ = hping.wait(ACKS * ACK_INTERVAL_US / 1e6 * 1.4)
        after_a = hostile.totals(lab)
        e2e.log(f"ACK flood: {sent} ACKs in {hping.end - t0:.1f} s; l4lbd rx +"
                f"{hostile.delta(before, after_a, 'rx_packets')}, flows created +"
                f"{hostile.delta(before, after_a, 'flows_created')}, drops "
                f"{hostile.nonzero_drops(before, after_a) or 'none'}")
        if sent is None or sent < 0.9 * ACKS:
            problems.append(f"hping3 -A sent {sent} of {ACKS}: {hping.tail(3)!r}")
        problems += echoes.check("after the ACK flood")

        t1 = time.time()
        flood = lab.spawn("syn-flood", lab.ns_client,
                          [e2e.PY, FLOOD, e2e.VIP, "8080", "10.97.0.0", SYN_SECONDS, SYN_RATE], pipes=True)
        time.sleep(SYN_SECONDS / 2)
        mid = hostile.totals(lab)
        e2e.log(f"halfway through the SYN flood: flows_active {mid['flows_active']}, "
                f"embryonic {mid['flows_embryonic']}, drops {hostile.nonzero_drops(after_a, mid) or 'none'}")
        try:
            line = flood.stdout.readline().strip()
            flood.wait(SYN_SECONDS + 20)
        except Exception as e:  # noqa: BLE001 - report what there is
            line = f"? ({e})"
        t_flood_end = time.time()
        syns = int(line.split()[1]) if line.startswith("sent") else 0
        after_b = hostile.totals(lab)
        e2e.log(f"SYN flood: {syns} spoofed SYNs in {t_flood_end - t1:.1f} s; l4lbd rx +"
                f"{hostile.delta(after_a, after_b, 'rx_packets')}, flows created +"
                f"{hostile.delta(after_a, after_b, 'flows_created')}, evicted +"
                f"{hostile.delta(after_a, after_b, 'flows_evicted')}, drops "
                f"{hostile.nonzero_drops(after_a, after_b) or 'none'}")
        if syns < SYN_SECONDS * SYN_RATE * 0.8:
            problems.append(f"the SYN flood sent only {syns} SYNs ({line!r})")
        problems += echoes.check("after the SYN flood")
        t_after = t_flood_end + settle
        time.sleep(settle + AFTER_S)
    finally:
        results = [r for loop in loops for r in loop.stop()]
    t_stop = time.time()
    end = hostile.totals(lab)
    problems += echoes.check("after the floods aged out")
    echoes.close()

    base = hostile.window(results, 0, t0)
    ack = hostile.window(results, t0, t1)
    syn = hostile.window(results, t1, t_after)
    during = hostile.window(results, t0, t_after)
    later = hostile.window(results, t_after, t_stop)
    e2e.log(hostile.describe("curls before the floods", *base))
    e2e.log(hostile.describe("curls during the ACK flood", *ack))
    e2e.log(hostile.describe(f"curls during the SYN flood and {settle:.0f} s after", *syn))
    e2e.log(hostile.describe("curls after the floods aged out", *later))
    e2e.log(f"whole test: flows created +{hostile.delta(before, end, 'flows_created')}, evicted +"
            f"{hostile.delta(before, end, 'flows_evicted')}, drops {hostile.nonzero_drops(before, end) or 'none'}")

    if base[1]:
        problems.append(f"{len(base[1])} of {len(base[0])} curls failed before the floods")
    if hostile.delta(before, end, "rx_packets") < (ACKS + syns) * 0.5:
        problems.append(f"l4lbd received {hostile.delta(before, end, 'rx_packets')} packets of "
                        f"{ACKS + syns} flooded")
    part, failed, _ = during
    if len(part) < 30:
        problems.append(f"only {len(part)} curls during the floods: no load to judge by")
    elif len(ack[1]) > 0.01 * len(ack[0]) or len(syn[1]) > 0.10 * len(syn[0]):
        problems.append(f"{len(failed)} of {len(part)} curls failed during the floods (ACK flood: "
                        f"{len(ack[1])} of {len(ack[0])}, SYN flood: {len(syn[1])} of {len(syn[0])}), "
                        f"e.g. {failed[0].text[:100]}")
    if later[1] or len(later[0]) < 10:
        problems.append(f"after the floods {len(later[1])} of {len(later[0])} curls failed")
    lab.finish(problems)


if __name__ == "__main__":
    e2e.run_test("ack_flood", body, config=CONFIG, servers=[("http_server", 8080), ("tcp_echo", 7)],
                 probe=("tcp-echo", 7), timeout=150)
