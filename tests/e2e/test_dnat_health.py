#!/usr/bin/env python3
"""e2e (issue 13): health probes of DNAT backends
(configs/dnat_health.yaml, the routed layout of Lab(dnat=True): web-tcp
:8080 with tcp probes, web-http :8081 with http probes of "/" expecting
200; both interval 300 ms, timeout 250 ms, rise 2, fall 2).

The probes leave from the appliance's own address 10.99.0.1 and the
backends, routed via 10.99.0.1, answer through the data port: a probe's
answer comes from a DNAT backend's address:port, like the replies of the
VIP's flows, and must still reach the kernel that sent the probe.

Checks:
  - once l4lbd is ready, `l4lbctl backends --json` shows all six backends
    up within rise x interval (the first probe starts within one interval;
    rise-1 more follow) + SLACK_S;
  - curl loops run against both VIPs (a new connection each, from the
    client 10.98.0.10); b2's :8080 server and b3's :8081 server are
    killed (SIGKILL). Each is shown down within fall x interval + timeout
    + SLACK_S; from that moment on it answers no request (every server
    says which backend answered) and no request fails; the other two
    answer, and it stays down while its server is dead.
Before that, the baseline: every request succeeds, all three backends of
each VIP answer."""
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile  # noqa: E402
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "dnat_health.yaml"
INTERVAL_S, TIMEOUT_S, RISE, FALL = 0.3, 0.25, 2, 2
SLACK_S = 2.0       # dp0 is plugged after "ready" (earlier probes time out), a loaded
                    # 2-CPU VM, the 0.1 s l4lbctl poll
VIPS = {"web-tcp": 8080, "web-http": 8081}
VICTIM = {"web-tcp": "b2", "web-http": "b3"}


def states(lab):
    """{(vip, backend addr:port): state} of every backend."""
    return {(r["vip"], r["backend"]): r["state"] for r in lab.backends()}


def key_of(vip, name):
    return (vip, f"{dict(e2e.BACKENDS)[name]}:{VIPS[vip]}")


def body(lab):
    problems = []
    lab.start_daemon(CONFIG)
    t_ready = time.monotonic()
    bound_up = RISE * INTERVAL_S + SLACK_S
    rows = {}
    while time.monotonic() - t_ready < bound_up + 10:
        rows = states(lab)
        if len(rows) == 6 and all(s == "up" for s in rows.values()):
            break
        time.sleep(0.1)
    took = time.monotonic() - t_ready
    e2e.log(f"backends {'all up' if all(s == 'up' for s in rows.values()) else 'NOT all up'} "
            f"{took:.2f} s after l4lbd was ready (bound {bound_up:.2f} s):\n"
            + lab.ctl("backends").stdout.rstrip())
    if len(rows) != 6 or any(s != "up" for s in rows.values()):
        problems.append("not every DNAT backend up after "
                        f"{took:.1f} s: {sorted(k[1] + ' ' + s for k, s in rows.items() if s != 'up')} "
                        f"(last_error: {sorted({r['last_error'] for r in lab.backends() if r['state'] != 'up'})})")
    elif took > bound_up:
        problems.append(f"all backends up only after {took:.2f} s > {bound_up:.2f} s")
    lab.wait_vip("http", 8080)
    lab.wait_vip("http", 8081)

    loops = {vip: e2e.CurlLoop(lab, url=f"http://{e2e.VIP}:{port}/", connect_timeout=2, max_time=4,
                               label=f"curl-{vip}") for vip, port in VIPS.items()}
    t_down = {}
    down_checks = []
    try:
        time.sleep(2.5)                                   # baseline
        t_kill = time.time()
        for vip, name in VICTIM.items():
            pid = lab.server_pid("http_server", name, VIPS[vip])
            os.kill(pid, signal.SIGKILL)
            e2e.log(f"killed {name}'s http_server on :{VIPS[vip]} (pid {pid}), a backend of {vip}")
        bound_down = FALL * INTERVAL_S + TIMEOUT_S + SLACK_S
        deadline = time.monotonic() + bound_down + 8
        while len(t_down) < len(VICTIM) and time.monotonic() < deadline:
            now = states(lab)
            for vip, name in VICTIM.items():
                if vip not in t_down and now.get(key_of(vip, name)) == "down":
                    t_down[vip] = time.time()
            time.sleep(0.1)
        for vip, name in VICTIM.items():
            if vip in t_down:
                e2e.log(f"{vip}: {name} shown down {t_down[vip] - t_kill:.2f} s after the kill "
                        f"(bound {bound_down:.2f} s)")
                if t_down[vip] - t_kill > bound_down:
                    problems.append(f"{vip}: {name} detected down after {t_down[vip] - t_kill:.2f} s "
                                    f"> {bound_down:.2f} s")
            else:
                problems.append(f"{vip}: {name} not shown down within {bound_down + 8:.1f} s of its kill")
        for _ in range(4):                                # traffic while they are down
            time.sleep(1.0)
            now = states(lab)
            down_checks.append({vip: now.get(key_of(vip, name)) for vip, name in VICTIM.items()})
    finally:
        results = {vip: loop.stop() for vip, loop in loops.items()}
    t_stop = time.time()
    e2e.log(f"victims' state, once a second after detection: {down_checks}")
    if any(s != "down" for c in down_checks for s in c.values()):
        problems.append(f"a killed backend did not stay down: {down_checks}")

    for vip, name in VICTIM.items():
        # The baseline is the requests that finished before the kill; one in
        # flight at the kill belongs to the gap.
        base = hostile.window([r for r in results[vip] if r.end < t_kill], 0, t_kill)
        gap = hostile.window(results[vip], t_kill, t_down.get(vip, t_stop), in_flight=True)
        after = hostile.window(results[vip], t_down.get(vip, t_stop), t_stop)
        e2e.log(hostile.describe(f"{vip}: before the kill", *base))
        e2e.log(hostile.describe(f"{vip}: between the kill and detection", *gap))
        e2e.log(hostile.describe(f"{vip}: after detection", *after))
        if base[1] or len(base[2]) != 3:
            problems.append(f"{vip}: baseline not clean: {len(base[1])} failed, answered by {base[2]}")
        if vip in t_down:
            part, failed, by = after
            if len(part) < 10:
                problems.append(f"{vip}: only {len(part)} requests after detection")
            if by.get(name):
                problems.append(f"{vip}: {by[name]} requests answered by {name} after it was shown down")
            if failed:
                problems.append(f"{vip}: {len(failed)} of {len(part)} requests failed after detection, "
                                f"e.g. {failed[0].text[:100]}")
            if len(by) != 2:
                problems.append(f"{vip}: after detection answered by {by}, expected the other two")
    lab.finish(problems)


if __name__ == "__main__":
    # l4lbd is started by body, to time the first probes from its start.
    e2e.run_test("dnat_health", body, servers=[("http_server", 8080), ("http_server", 8081)],
                 dnat=True, timeout=120)
