#!/usr/bin/env python3
"""e2e: ping from the client to the VIP and to the appliance's own address
10.99.0.1: all replies arrive, and l4lbd's slow_path_packets counter shows
the echo requests went through it (both are answered by the kernel behind
l4lbd's exception path)."""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

COUNT = 3


def slow_path(lab):
    return lab.stats()["total"]["slow_path_packets"]


def body(lab):
    failed = []
    before = slow_path(lab)
    for target in (e2e.VIP, e2e.LB_ADDR):
        p = lab.in_client(["ping", "-n", "-c", COUNT, "-i", "0.2", "-W", "2", target],
                          check=False, timeout=30)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", p.stdout)
        got = int(m.group(2)) if m else 0
        rtt = re.search(r"= [\d.]+/([\d.]+)/", p.stdout)
        e2e.log(f"measured: ping {target}: {got}/{COUNT} replies"
                + (f", avg rtt {rtt.group(1)} ms" if rtt else ""))
        if p.returncode != 0 or got != COUNT:
            e2e.log((p.stdout + p.stderr).rstrip())
            failed.append(f"{target} {got}/{COUNT}")
    delta = slow_path(lab) - before
    e2e.log(f"measured: slow_path_packets +{delta} during the pings")
    lab.print_stats()
    if failed:
        raise e2e.TestFailure("missing ping replies: " + ", ".join(failed))
    # Both targets are answered by the kernel behind l4lbd's exception path,
    # so each echo request must have gone through l4lbd's slow path.
    if delta < 2 * COUNT:
        raise e2e.TestFailure(f"slow_path_packets rose by {delta} during {2 * COUNT} pings: "
                              "the replies did not come through l4lbd")


if __name__ == "__main__":
    e2e.run_test("ping", body, config=e2e.CONFIG_DIR / "http.yaml",
                 servers=[("http_server", 8080)], probe=("http", 8080))
