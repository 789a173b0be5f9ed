#!/usr/bin/env python3
"""e2e (issue 13): many clients, short connections, a small SNAT range
(configs/many_clients.yaml: FNAT VIP :8080, one SNAT address, P = 128
ports, three http backends; tcp_fin_wait_s 2, tcp_time_wait_s 2,
tcp_close_s 1, snat_port_hold_s 5).

64 addresses, 10.99.0.150-213, are added to the client's eth0 (inside the
client namespace, in its own subnet). tests/e2e/many_clients.py opens
R = 50 connections a second for 20 s (1000 in all, about 16 per address,
well past every closing timeout), each bound to the next address in turn:
connect, one keep-alive GET, read the answer, close (the client closes
first, as curl does).

The arithmetic, counting every closed port as held for the longest,
snat_port_hold_s = 5 s, plus up to 1 s until the aging sweep sees it:
  - one pool for every backend: R x 6 s = 300 ports wanted > P = 128;
  - a pool per SNAT address x backend: Maglev splits R over the 3
    backends, about 17/s each: 17 x 6 s = 100 ports of each pool's 128.
The client closes first here, so l4lbd may reuse a port once the flow has
gone through fin_wait and time_wait (2 s): then each pool needs about
17 x 3 s = 50. Either way no connection may fail and `snat_exhausted`
stays 0, while one shared pool would run dry within seconds.

Checks: all 1000 requests answered (3 s each to connect and answer; the
driver started them at >= 90% of R), by all three backends and from all 64
addresses; `snat_exhausted` is 0; 4 s after the last connection fewer than
P/4 flows remain. The peak of l4lb_snat_ports_in_use is printed.

Measured before issue 13 (L4LB_E2E_OLD_KEYS=1: one pool, tcp_closing_s 5):
412 of 1000 requests failed, snat_exhausted 1372, ports in use pinned at
128. The same run with a 10000-port range passed (peak 302 ports =
R x 6 s, p99 latency 11 ms): the rig itself sustains R."""
import json
import re
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile  # noqa: E402
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "many_clients.yaml"
DRIVER = Path(__file__).resolve().parent / "many_clients.py"
SOURCES = [f"10.99.0.{i}" for i in range(150, 214)]
RATE = 50
SECONDS = 20


def snat_in_use(lab):
    m = re.search(r'^l4lb_snat_ports_in_use\{address="10\.99\.0\.1"\} (\S+)', lab.metrics(), re.M)
    return int(float(m.group(1))) if m else None


def body(lab):
    problems = []
    first, last = hostile.snat_range(CONFIG)
    ports = last - first + 1
    batch = "".join(f"addr add {a}/{e2e.PREFIXLEN} dev eth0\n" for a in SOURCES)
    e2e.run(["ip", "-n", lab.ns_client, "-batch", "-"], input=batch)
    have = e2e.run(["ip", "-n", lab.ns_client, "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
    added = sum(1 for a in SOURCES if f" {a}/" in have)
    e2e.log(f"client: {added} extra addresses {SOURCES[0]}-{SOURCES[-1]} on eth0; "
            f"SNAT range {first}-{last} ({ports} ports), {RATE} connections/s for {SECONDS} s")
    if added != len(SOURCES):
        raise e2e.TestFailure(f"only {added} of {len(SOURCES)} client addresses were added")
    time.sleep(4)   # the readiness probe's flow ages out
    before = hostile.totals(lab)

    peak, samples, stop = [0], [], threading.Event()

    def sample():
        while not stop.is_set():
            try:
                n = snat_in_use(lab)
                if n is not None:
                    samples.append(n)
                    peak[0] = max(peak[0], n)
            except e2e.TestFailure:
                pass
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    logfile = lab.workdir / "many-clients.log"
    driver = lab.spawn("many-clients", lab.ns_client,
                       [e2e.PY, DRIVER, "--to", f"{e2e.VIP}:8080", "--sources", ",".join(SOURCES),
                        "--rate", RATE, "--seconds", SECONDS, "--timeout", 3], logfile=logfile)
    try:
        driver.wait(SECONDS + 30)
    except Exception:  # noqa: BLE001 - TimeoutExpired
        driver.kill()
        driver.wait()
        problems.append(f"many_clients.py did not finish within {SECONDS + 30} s")
    stop.set()
    sampler.join(5)
    after = hostile.totals(lab)
    lines = [line for line in logfile.read_text(errors="replace").splitlines() if line.startswith("{")]
    if not lines:
        raise e2e.TestFailure(f"many_clients.py printed no result: {lab.tail(logfile, 5)}")
    res = json.loads(lines[-1])
    e2e.log(f"driver: {res['ok']} ok, {res['failed']} failed of {res['planned']}, started at "
            f"{res['rate']}/s (max lag {res['max_lag_s']} s), latency {res.get('latency_s')}, "
            f"answered by {dict(sorted(res['by_backend'].items()))}")
    for f in res["failures"][:5]:
        e2e.log(f"  failure: {f}")
    answered_from = sum(1 for ok, _ in res["by_source"].values() if ok)
    exhausted = hostile.drop_delta(before, after, "snat_exhausted")
    e2e.log(f"l4lbd: flows created +{hostile.delta(before, after, 'flows_created')}, closed +"
            f"{hostile.delta(before, after, 'flows_closed')}, expired +{hostile.delta(before, after, 'flows_expired')}, "
            f"evicted +{hostile.delta(before, after, 'flows_evicted')}, drops "
            f"{hostile.nonzero_drops(before, after) or 'none'}")
    e2e.log(f"SNAT ports in use (l4lb_snat_ports_in_use, every 0.5 s): peak {peak[0]} of a {ports}-port range, "
            f"median {sorted(samples)[len(samples) // 2] if samples else '-'}")
    time.sleep(4)   # past time_wait + the sweep: the last flows close
    settled = hostile.totals(lab)
    e2e.log(f"4 s later: flows_active {settled['flows_active']}")

    if res["failed"]:
        problems.append(f"{res['failed']} of {res['planned']} requests failed, e.g. {res['failures'][:2]}")
    if res["rate"] < 0.9 * RATE:
        problems.append(f"the driver reached only {res['rate']} connections/s of {RATE}: no load to judge by")
    if answered_from != len(SOURCES):
        problems.append(f"answers came back to {answered_from} of {len(SOURCES)} client addresses")
    if len(res["by_backend"]) != 3:
        problems.append(f"not every backend answered: {res['by_backend']}")
    if exhausted or hostile.drop(after, "snat_exhausted"):
        problems.append(f"snat_exhausted is {hostile.drop(after, 'snat_exhausted')} (+{exhausted} during the run)")
    if settled["flows_active"] > ports // 4:
        problems.append(f"{settled['flows_active']} flows still active 4 s after the last connection")
    lab.finish(problems)


if __name__ == "__main__":
    e2e.run_test("many_clients", body, config=CONFIG, servers=[("http_server", 8080)],
                 probe=("http", 8080), timeout=120)
