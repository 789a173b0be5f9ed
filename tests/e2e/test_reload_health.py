#!/usr/bin/env python3
"""e2e (issue 13): a reload that changes only the health probes' timing
keeps every backend up and resets no flow, under load
(configs/reload_health.yaml: web :8080 with http probes, echo :7 with tcp
probes, both interval 300 ms / timeout 250 ms, rise 2, fall 2, and
down_policy: reset, so a backend taken for down would reset its flows).

l4lbd runs on a copy of the file. With every backend up, 6 long-lived
connections to the echo VIP are opened (test_reload's Echoes) and a curl
loop runs against web (a new connection per request). Then two reloads
(`l4lbctl reload` after rewriting the copy), 4 s apart, change only
interval_ms / timeout_ms of both VIPs: to 600 / 400, then to 200 / 150.
A probe that starts over from its initial state after a reload ("a probed
backend starts down") would take every backend out of service for
rise x interval, and down_policy: reset would cut their flows.

Checks:
  - both reloads are accepted;
  - `l4lbctl backends --json`, polled every 0.1 s from before the first
    reload to the end, never shows a backend other than up, and l4lbd logs
    no "is down" line;
  - flows_reset (l4lbctl stats --json) and the backend_down drops do not
    change; the long-lived connections echo after each reload, on the
    backend they started on; no curl fails;
  - the new timing is in force: each backend's probes counter grows by
    window / interval (within 25% + 1.5 probes) in a 3 s window starting
    1 s after each reload.

Measured before issue 13: both reloads accepted, then every backend shown
down (the probes started over), "every backend is down by health; failing
open" logged for both VIPs after each reload; failing open kept the flows
(flows_reset +0) and the curls (0 failed of 116)."""
import re
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile  # noqa: E402
import l4lb_e2e as e2e  # noqa: E402
from test_reload import Echoes  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "reload_health.yaml"
TIMINGS = [(600, 400), (200, 150)]     # (interval_ms, timeout_ms) of each reload
SETTLE_S = 1.0
WINDOW_S = 3.0


def with_timing(text, interval, timeout):
    out, n = re.subn(r"interval_ms: \d+, timeout_ms: \d+", f"interval_ms: {interval}, timeout_ms: {timeout}", text)
    if n != 2:
        raise e2e.TestFailure(f"expected 2 health lines in {CONFIG.name}, found {n}")
    return out


def probes(lab):
    return {(r["vip"], r["backend"]): r["probes"] for r in lab.backends()}


def body(lab):
    problems = []
    original = CONFIG.read_text()
    config = lab.install_config(original)
    lab.start_daemon(config)
    lab.wait_backends_up("web")
    lab.wait_backends_up("echo")
    lab.wait_vip("http", 8080)
    lab.wait_vip("tcp-echo", 7)
    e2e.log("every backend up; l4lbctl backends:\n" + lab.ctl("backends").stdout.rstrip())

    echoes = Echoes(lab, 6)
    problems += echoes.check("before the reloads")
    not_up, polls, stop = [], [0], threading.Event()

    def poll():
        while not stop.is_set():
            try:
                for r in lab.backends():
                    if r["state"] != "up":
                        not_up.append((time.time(), r["vip"], r["backend"], r["state"], r.get("last_error")))
                polls[0] += 1
            except e2e.TestFailure as e:
                not_up.append((time.time(), "-", "-", "l4lbctl failed", str(e)[:100]))
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    loop = e2e.CurlLoop(lab, connect_timeout=2, max_time=4)
    down_lines_before = sum(1 for line in lab.daemon_log.read_text(errors="replace").splitlines()
                            if " is down" in line)
    try:
        time.sleep(2.0)
        before = hostile.totals(lab)
        for interval, timeout in TIMINGS:
            lab.install_config(with_timing(original, interval, timeout))
            p = lab.ctl("reload", check=False)
            t_reload = time.time()
            e2e.log(f"reload: interval_ms {interval}, timeout_ms {timeout}: l4lbctl exit {p.returncode} "
                    f"{(p.stdout + p.stderr).strip()}")
            if p.returncode != 0:
                problems.append(f"reload to interval {interval} ms refused: {(p.stdout + p.stderr).strip()}")
            time.sleep(SETTLE_S)
            a, t_a = probes(lab), time.monotonic()
            time.sleep(WINDOW_S)
            b, t_b = probes(lab), time.monotonic()
            counts = {k: b[k] - a.get(k, 0) for k in b}
            want = (t_b - t_a) * 1000.0 / interval
            e2e.log(f"probes per backend in {t_b - t_a:.2f} s from {SETTLE_S:.0f} s after the reload: "
                    f"{sorted(counts.values())} (at 1/interval: {want:.1f})")
            off = {f"{v}/{k}": n for (v, k), n in counts.items() if abs(n - want) > 0.25 * want + 1.5}
            if off:
                problems.append(f"after the reload to {interval} ms, probe counts off {want:.1f} "
                                f"(1/interval) by more than 25% + 1.5: {off}")
            problems += echoes.check(f"after the reload to {interval}/{timeout} ms")
        after = hostile.totals(lab)
    finally:
        results = loop.stop()
        stop.set()
        poller.join(5)
    down_lines = [line for line in lab.daemon_log.read_text(errors="replace").splitlines()
                  if " is down" in line][down_lines_before:]
    e2e.log(f"l4lbctl backends polled {polls[0]} times: {len(not_up)} rows not up"
            + (f", first: {not_up[:3]}" if not_up else ""))
    for line in down_lines[:6]:
        e2e.log(f"  l4lbd: {line}")
    resets = hostile.delta(before, after, "flows_reset")
    backend_down = hostile.drop_delta(before, after, "backend_down")
    part, failed, by = hostile.window(results, 0, time.time() + 1)
    e2e.log(hostile.describe("curl loop over both reloads", part, failed, by))
    e2e.log(f"flows_reset +{resets}, backend_down drops +{backend_down}, drops "
            f"{hostile.nonzero_drops(before, after) or 'none'}")
    echoes.close()

    if not_up:
        states = sorted({f"{v}/{b} {s}" for _, v, b, s, _ in not_up})
        problems.append(f"backends shown not up after a timing-only reload ({len(not_up)} rows): {states[:6]}")
    if down_lines:
        problems.append(f"l4lbd logged {len(down_lines)} 'is down' lines, e.g. {down_lines[0].split(' ', 3)[-1]}")
    if resets or backend_down:
        problems.append(f"flows reset by the reloads: flows_reset +{resets}, backend_down drops +{backend_down}")
    if failed:
        problems.append(f"{len(failed)} of {len(part)} curls failed, e.g. {failed[0].text[:100]}")
    if len(part) < 20 or len(by) != 3:
        problems.append(f"curl loop: {len(part)} requests answered by {by}: not enough load")
    lab.finish(problems)


if __name__ == "__main__":
    # l4lbd is started by body, on a copy of the config that it rewrites.
    e2e.run_test("reload_health", body, servers=[("http_server", 8080), ("tcp_echo", 7)], timeout=120)
