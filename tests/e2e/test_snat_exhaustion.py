#!/usr/bin/env python3
"""e2e (issue 8): SNAT port exhaustion with a pool of 8 ports.

Ports are unique per (SNAT address, backend) since issue 13, so the VIP has
one backend: its pool is the whole range. Eight long-lived connections to
the echo VIP take every FNAT source port.
A ninth connection attempt must fail, its SYNs dropped and counted as
snat_exhausted, while the eight keep working. After they close and the hold
time (closing timeouts, snat_port_hold_s) passes, the ports return to the pool and new
connections succeed again, reusing those ports."""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402
from test_reload import Echoes  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "snat_small.yaml"
POOL = 8


def stats(lab):
    return json.loads(lab.ctl("stats", "--json").stdout)["total"]


def snat_ports_in_use(lab):
    for line in lab.metrics().splitlines():
        if line.startswith('l4lb_snat_ports_in_use{address="10.99.0.1"}'):
            return int(float(line.split()[-1]))
    return None


def try_connect(lab, label):
    """One more connection attempt; returns the helper's first line."""
    s = e2e.tcp_session(lab, label)
    try:
        return s.expect(15), s
    except e2e.TestFailure as e:
        return f"no answer: {e}", s


HOLD = 3  # tcp_closing_s and snat_port_hold_s in snat_small.yaml


def body(lab):
    problems = []
    # The readiness probe's connections hold ports until the hold time ends.
    time.sleep(HOLD + 2)
    echoes = Echoes(lab, POOL)
    problems += echoes.check("with the pool full")
    before = stats(lab)
    e2e.log(f"after {POOL} connections: flows_active {before['flows_active']}, "
            f"snat ports in use (metrics) {snat_ports_in_use(lab)}")
    first, extra = try_connect(lab, "ninth")
    after = stats(lab)
    exhausted = after["drops"].get("snat_exhausted", 0) - before["drops"].get("snat_exhausted", 0)
    e2e.log(f"ninth connection: {first!r}; snat_exhausted drops +{exhausted}")
    if first.startswith("connected"):
        problems.append("a ninth connection got through a pool of 8 ports")
    if exhausted < 1:
        problems.append("the refused connection was not counted as snat_exhausted")
    extra.close()
    problems += echoes.check("while the ninth was refused")
    ports_used = {p.split()[3] for w in json.loads(lab.ctl("flows", "--list", "--json").stdout)["workers"]
                  for p in w.get("flows", []) if p.split()[2].endswith(":7")}
    echoes.close()
    e2e.log(f"closed the {POOL}; waiting out tcp_closing_s ({HOLD} s) and aging")
    time.sleep(HOLD + 2)
    e2e.log(f"snat ports in use after the hold: {snat_ports_in_use(lab)}")
    again = Echoes(lab, POOL, label="echo-again")
    problems += again.check("after the hold time")
    reused = {p.split()[3] for w in json.loads(lab.ctl("flows", "--list", "--json").stdout)["workers"]
              for p in w.get("flows", []) if p.split()[2].endswith(":7") and p.split()[-1] != "closing"}
    e2e.log(f"SNAT endpoints before: {sorted(ports_used)}; now: {sorted(reused)}")
    if len(reused) != POOL or not (reused & ports_used):
        problems.append(f"new connections did not reuse the released ports: {sorted(reused)}")
    again.close()
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    e2e.run_test("snat_exhaustion", body, config=CONFIG, servers=[("tcp_echo", 7)], probe=("tcp-echo", 7), timeout=150)
