#!/usr/bin/env python3
"""e2e (issue 13): a burst of SYNs twice the SNAT port range does not lock
real clients out of an FNAT VIP (configs/syn_burst.yaml: one SNAT address,
P = 256 ports in snat_port_range, a flow table of 8192, three http
backends).

From the client namespace, `hping3 -S` sends 2P = 512 SYNs to VIP:8080 in
about 2 s (4 ms apart) from source ports 2000..2511 (hping3 increments the port per
packet; the range stays clear of the client kernel's ephemeral ports, which
curl uses). Each SYN is a new flow that needs an SNAT port; the backends
answer SYN-ACK and the client's kernel, having no socket, answers each with
a RST, as any host does. Meanwhile three curl loops (a new connection per
request, 1 s to connect, 2 s in all: a SYN dropped for want of a port is a
failure, not a retry) keep using the VIP.

The bound: the burst's 2P flows are spread by Maglev over 3 backends, about
2P/3 = 171 per backend (a binomial spread: more than P = 256 on one is
out of reach), and SNAT ports are pooled per SNAT address x backend, so no
pool needs more than its P ports even before the RST-closed flows give
theirs back (tcp_close_s = 2 s); the curl loops hold at most a few dozen
more (about 30 requests/s x (tcp_time_wait_s + 1 s of aging sweep)). So
`snat_exhausted` must stay 0. With one pool of P ports for every backend
the burst takes all P, and new connections are refused until the closed
flows age out (measured on the code before issue 13, with
L4LB_E2E_OLD_KEYS=1, so tcp_closing_s 5: 214 of 512 SYNs got a port,
snat_exhausted +327, 6 of 77 curls failed during the burst).

Checks:
  - hping3 sent at least 2P SYNs (it runs for their time, then is
    interrupted) and l4lbd saw them (flows created);
  - at least 99% of the curls started from the burst's start until
    tcp_close_s + 2 s after its end succeed ("during"), and every curl
    started after that ("after");
  - the burst's SYNs were answered (hping3 counts the SYN-ACKs), >= 95%;
  - `snat_exhausted` (l4lbctl stats --json) did not grow."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile  # noqa: E402
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "syn_burst.yaml"
LOOPS = 3
BASE_PORT = 2000
INTERVAL_US = 4000   # 512 SYNs in ~2 s: quicker than the closed flows age out
AFTER_S = 5.0


def body(lab):
    problems = []
    first, last = hostile.snat_range(CONFIG)
    ports = last - first + 1
    burst = 2 * ports
    close_s = hostile.config_timeouts(CONFIG).get("tcp_close_s", 2)
    e2e.log(f"SNAT range {first}-{last} ({ports} ports, one SNAT address, 3 backends); burst {burst} SYNs")

    loops = [e2e.CurlLoop(lab, connect_timeout=1, max_time=2, label=f"curl-loop-{i}") for i in range(LOOPS)]
    try:
        time.sleep(3.0)                                   # baseline
        before = hostile.totals(lab)
        t_start = time.time()
        hping = hostile.Hping(lab, "hping3-syn", ["-S", "-p", "8080", "-s", BASE_PORT, "-c", 4 * burst,
                                                  "-i", f"u{INTERVAL_US}", "-q", e2e.VIP])
        sent, answered = hping.wait(burst * INTERVAL_US / 1e6 + 0.3)
        # hping3 lingers ~1 s after its last packet for late answers.
        t_end = min(hping.end, t_start + burst * INTERVAL_US / 1e6 + 0.5)
        during_end = t_end + close_s + 2.0
        mid = hostile.totals(lab)
        e2e.log(f"hping3: {sent} SYNs sent, {answered} answered, in {hping.end - t_start:.2f} s; "
                f"l4lbd: rx +{hostile.delta(before, mid, 'rx_packets')}, "
                f"flows created +{hostile.delta(before, mid, 'flows_created')}, "
                f"snat_exhausted +{hostile.drop_delta(before, mid, 'snat_exhausted')}")
        time.sleep(max(0.0, during_end - time.time()) + AFTER_S)
    finally:
        results = [r for loop in loops for r in loop.stop()]
    t_stop = time.time()
    after = hostile.totals(lab)

    base = hostile.window(results, 0, t_start)
    during = hostile.window(results, t_start, during_end)
    later = hostile.window(results, during_end, t_stop)
    e2e.log(hostile.describe("curls before the burst", *base))
    e2e.log(hostile.describe(f"curls during the burst and {close_s + 2:.0f} s after it", *during))
    e2e.log(hostile.describe("curls after that", *later))
    exhausted = hostile.drop_delta(before, after, "snat_exhausted")
    e2e.log(f"over the burst: drops {hostile.nonzero_drops(before, after) or 'none'}, "
            f"flows_created +{hostile.delta(before, after, 'flows_created')}, "
            f"flows_closed +{hostile.delta(before, after, 'flows_closed')}, "
            f"flows_evicted +{hostile.delta(before, after, 'flows_evicted')}")

    if base[1]:
        problems.append(f"{len(base[1])} of {len(base[0])} curls failed before the burst")
    if sent is None or sent < 0.9 * burst:
        problems.append(f"hping3 sent {sent} of {burst} SYNs: {hping.tail(3)!r}")
    if hostile.delta(before, mid, "flows_created") < burst * 0.9:
        problems.append(f"l4lbd created only {hostile.delta(before, mid, 'flows_created')} flows "
                        f"for a burst of {burst} SYNs")
    if answered is not None and sent and answered < 0.95 * sent:
        problems.append(f"only {answered} of {sent} burst SYNs were answered")
    part, failed, _ = during
    if len(part) < 30:
        problems.append(f"only {len(part)} curls during the burst: no load to judge by")
    elif len(failed) > 0.01 * len(part):
        problems.append(f"{len(failed)} of {len(part)} curls failed during the burst (more than 1%), "
                        f"e.g. {failed[0].text[:100]}")
    if later[1] or len(later[0]) < 10:
        problems.append(f"after the burst {len(later[1])} of {len(later[0])} curls failed")
    if exhausted:
        problems.append(f"snat_exhausted grew by {exhausted}")
    lab.finish(problems)


if __name__ == "__main__":
    e2e.run_test("syn_burst", body, config=CONFIG, servers=[("http_server", 8080)],
                 probe=("http", 8080), timeout=120)
