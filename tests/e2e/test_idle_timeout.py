#!/usr/bin/env python3
"""e2e: flow aging. With tcp_established_s = T (6 s in configs/idle.yaml):
one long-lived TCP connection to the echo VIP 10.99.0.100:7 stays usable over
4 cycles of (idle 0.7 T, then send/receive), 2.8 T in all; then, after idling longer than T,
the counters show the flow aged out: flows_expired went up and flows_active
went down."""
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "idle.yaml"
CYCLES = 4  # 4 x 0.7 T idle = 2.8 T in all: more than two timeouts' worth
MARGIN_S = 20  # how long past T we wait for the aging to show in the counters


def established_timeout():
    m = re.search(r"tcp_established_s:\s*(\d+)", CONFIG.read_text())
    return int(m.group(1))


def counters(lab):
    t = lab.stats()["total"]
    return {k: t[k] for k in ("flows_created", "flows_expired", "flows_closed", "flows_active")}


def body(lab):
    T = established_timeout()
    idle = 0.7 * T  # each idle gap shorter than the timeout, their sum longer than 2 T
    session = e2e.tcp_session(lab)
    first = session.expect()
    if not first.startswith("connected"):
        raise e2e.TestFailure(f"could not open the long-lived connection: {first}")
    e2e.log(f"client: long-lived connection from local port {first.split()[1]}, "
            f"tcp_established_s={T}")
    e2e.log(f"counters at start: {counters(lab)}")
    for i in range(1, CYCLES + 1):
        time.sleep(idle)
        answer = session.ask(f"send cycle {i} after {idle:.1f}s idle")
        e2e.log(f"cycle {i}: idle {idle:.1f} s, then send/receive -> {answer}")
        if not answer.startswith("ok"):
            raise e2e.TestFailure(f"connection broke in cycle {i} after {idle:.1f} s idle: {answer}")
    before = counters(lab)
    e2e.log(f"counters after the cycles: {before}")
    if before["flows_active"] < 1:
        raise e2e.TestFailure(f"flows_active is {before['flows_active']} while the connection is open")
    t0 = time.monotonic()
    time.sleep(T + 1)
    after = counters(lab)
    while not (after["flows_expired"] > before["flows_expired"]
               and after["flows_active"] < before["flows_active"]):
        if time.monotonic() - t0 > T + MARGIN_S:
            break
        time.sleep(1)
        after = counters(lab)
    waited = time.monotonic() - t0
    e2e.log(f"counters after {waited:.0f} s idle: {after}")
    e2e.log(f"measured: flows_expired +{after['flows_expired'] - before['flows_expired']}, "
            f"flows_active {before['flows_active']} -> {after['flows_active']}")
    session.close()
    lab.print_stats()
    if after["flows_expired"] <= before["flows_expired"]:
        raise e2e.TestFailure(f"flows_expired did not increase within {waited:.0f} s idle "
                              f"(timeout {T} s)")
    if after["flows_active"] >= before["flows_active"]:
        raise e2e.TestFailure(f"flows_active stayed at {after['flows_active']} after {waited:.0f} s idle")


if __name__ == "__main__":
    e2e.run_test("idle_timeout", body, config=CONFIG,
                 servers=[("tcp_echo", 7)], probe=("tcp-echo", 7))
