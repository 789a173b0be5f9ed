#!/usr/bin/env python3
"""e2e (issue 13): a flood to the appliance's own address does not starve
its control traffic (configs/slow_path_flood.yaml: tcp health probes every
200 ms, timeout 150 ms, fall 2, on three backends).

From the client namespace `hping3 --flood -S` aims at 10.99.0.1:22 (the
appliance's own address, a port nothing listens on) for FLOOD_S seconds:
every packet goes to the kernel through the exception path, and the
kernel answers each with a RST. The health probes' answers come back from
the backends to the same address. They ride the control ring, which the
management core drains before the rest; the flood fills only the slow-path
ring and is dropped there (counted as slow_path_full).

Checks: no backend is ever reported down during the flood (polled every
0.25 s, and l4lbctl answers at least once a second; a lost probe answer for
2 x 200 ms would mark one down); curls to
the VIP keep succeeding; control_packets grows during the flood; the flood
reached l4lbd (rx grew)."""
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile  # noqa: E402
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "slow_path_flood.yaml"
FLOOD_S = 8


def body(lab):
    problems = []
    lab.wait_backends_up("web", deadline=15)
    before = hostile.totals(lab)
    downs, polls = [], [0]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                rows = lab.backends("web")
                polls[0] += 1
                for r in rows:
                    if r.get("state") != "up":
                        downs.append(f"{r.get('backend')} {r.get('state')} at {time.time() - t0:.1f} s")
            except Exception as e:  # noqa: BLE001 - a failed poll is a finding too
                downs.append(f"l4lbctl backends failed: {e}")
            time.sleep(0.25)

    t0 = time.time()
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    loop = e2e.CurlLoop(lab, connect_timeout=2, max_time=4, label="curl-loop")
    flood = hostile.Hping(lab, "hping3-flood", ["--flood", "-S", "-p", "22", "-q", e2e.LB_ADDR])
    flood.wait(FLOOD_S)
    mid = hostile.totals(lab)
    time.sleep(1.0)
    stop.set()
    poller.join(5)
    results = loop.stop()
    after = hostile.totals(lab)

    rx = hostile.delta(before, mid, "rx_packets")
    control = hostile.delta(before, mid, "control_packets")
    slow = hostile.delta(before, mid, "slow_path_packets")
    e2e.log(f"flood {FLOOD_S} s: l4lbd rx +{rx}, to the kernel: slow path +{slow}, control +{control}, "
            f"drops {hostile.nonzero_drops(before, after) or 'none'}; backends polled {polls[0]} times")
    failed = [r for r in results if not r.ok]
    e2e.log(f"curls during the flood: {len(results)}, {len(failed)} failed")
    if downs:
        problems.append(f"a backend went down during the flood: {downs[:3]}")
    # Each poll is a Python start-up plus a management-core round trip on a
    # CPU the flood and its generator share: at least one a second.
    if polls[0] < FLOOD_S:
        problems.append(f"l4lbctl answered only {polls[0]} polls in {FLOOD_S} s")
    if rx < 20000:
        problems.append(f"the flood hardly reached l4lbd (rx +{rx})")
    if control <= 0:
        problems.append("no control packets (probe answers) counted during the flood")
    if failed:
        problems.append(f"{len(failed)} of {len(results)} curls failed: {failed[0].text[:100]}")
    lab.finish(problems)


if __name__ == "__main__":
    e2e.run_test("slow_path_flood", body, config=CONFIG, servers=[("http_server", 8080)],
                 probe=("http", 8080), timeout=120)
