#!/usr/bin/env python3
"""e2e: health-probe failover under load (configs/health.yaml: http probes
GET /health on the web VIP's three backends, interval I, timeout T, rise R,
fall F read from the file).

A curl loop (one new connection per request; 3 s connect timeout, 5 s in
all: short, but one lost SYN on this shared VM is retried within it) runs
through the whole event. b2's server is killed (SIGKILL, by pid):
  - the time until `l4lbctl backends` shows b2 down is measured (and the time
    of l4lbd's "is down" log line) and must be <= I*F + T + SLACK_S;
  - requests started after that moment must all succeed (the ones in flight
    between the kill and the detection may fail: they are printed);
  - while b2 is down, `l4lbctl backends` keeps showing it down.
b2's server is started again:
  - the time from its listening socket to `l4lbctl backends` showing it up
    must be <= I*R + SLACK_S;
  - new connections reach b2 again, and none fails."""
import datetime
import os
import re
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile  # noqa: E402
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "health.yaml"
VICTIM = "b2"
VICTIM_KEY = f"{dict(e2e.BACKENDS)[VICTIM]}:8080"
# Scheduling on a loaded 2-CPU VM (the management lcore shares a CPU with
# everything else) plus the l4lbctl polling interval: added to the
# theoretical worst cases (I*F + T to detect, I*R to recover).
SLACK_S = 1.0
POLL_S = 0.05
LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) .*backend web/(\S+) is (up|down): (.*)$")


def health_timings():
    text = CONFIG.read_text()
    m = re.search(r"health:\s*\{([^}]*)\}", text)
    fields = dict(re.findall(r"(\w+):\s*(\w+)", m.group(1)))
    return {k: int(fields[k]) for k in ("interval_ms", "timeout_ms", "rise", "fall")}


def state_of(lab, key):
    for row in lab.backends("web"):
        if row["backend"] == key:
            return row
    raise e2e.TestFailure(f"l4lbctl backends web has no row for {key}")


def wait_state(lab, key, want, deadline_s):
    """Poll l4lbctl until backend `key` is in state `want`; return
    (wall time when seen, row) or raise."""
    t_end = time.monotonic() + deadline_s
    while True:
        row = state_of(lab, key)
        if row["state"] == want:
            return time.time(), row
        if time.monotonic() > t_end:
            raise e2e.TestFailure(f"{key} still {row['state']} (not {want}) after {deadline_s} s: {row}")
        time.sleep(POLL_S)


def log_event(lab, key, state, after):
    """Wall time of l4lbd's first 'backend web/KEY is STATE' line at or after
    `after` (spdlog prints local time with ms), or None."""
    for line in lab.daemon_log.read_text(errors="replace").splitlines():
        m = LOG_TS.match(line)
        if not m or m.group(2) != key or m.group(3) != state:
            continue
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if t >= after - 0.001:
            return t, m.group(4)
    return None, None


def body(lab):
    h = health_timings()
    interval, timeout, rise, fall = (h["interval_ms"] / 1000, h["timeout_ms"] / 1000, h["rise"], h["fall"])
    detect_bound = interval * fall + timeout + SLACK_S
    recover_bound = interval * rise + SLACK_S
    e2e.log(f"health: interval {interval * 1000:.0f} ms, timeout {timeout * 1000:.0f} ms, rise {rise}, "
            f"fall {fall}; bounds: detection <= {interval * fall + timeout:.2f} + {SLACK_S} s slack, "
            f"recovery <= {interval * rise:.2f} + {SLACK_S} s slack")
    lab.wait_backends_up("web")

    loop = e2e.CurlLoop(lab, connect_timeout=3, max_time=5)
    try:
        time.sleep(2.0)                                   # baseline traffic
        t_kill = time.time()
        pid = lab.server_pid("http_server", VICTIM, 8080)
        os.kill(pid, signal.SIGKILL)
        e2e.log(f"killed {VICTIM}'s http_server (pid {pid}, SIGKILL)")
        t_down, row = wait_state(lab, VICTIM_KEY, "down", detect_bound + 10)
        t_log_down, why_down = log_event(lab, VICTIM_KEY, "down", t_kill)
        e2e.log(f"{VICTIM} down: l4lbctl shows it after {t_down - t_kill:.3f} s "
                f"(last_error '{row['last_error']}'); log line after "
                + (f"{t_log_down - t_kill:.3f} s ({why_down})" if t_log_down else "- (no log line found)"))

        down_checks = []
        for _ in range(3):                                # while down, it stays down
            time.sleep(0.7)
            down_checks.append(state_of(lab, VICTIM_KEY)["state"])
        e2e.log(f"{VICTIM} state while its server is dead (3 checks over 2.1 s): {down_checks}")

        proc = lab.start_server("http_server", 8080, on=VICTIM)
        pidfile = lab.workdir / f"http_server-{VICTIM}-8080.pid"
        t_listen = pidfile.stat().st_mtime                # written right after listen()
        e2e.log(f"restarted {VICTIM}'s http_server (pid {proc.pid})")
        t_up, row = wait_state(lab, VICTIM_KEY, "up", recover_bound + 10)
        t_log_up, why_up = log_event(lab, VICTIM_KEY, "up", t_listen)
        e2e.log(f"{VICTIM} up: l4lbctl shows it {t_up - t_listen:.3f} s after the server listened; "
                "log line after " + (f"{t_log_up - t_listen:.3f} s ({why_up})" if t_log_up else "- (none)"))
        time.sleep(3.0)                                   # traffic after recovery
    finally:
        results = loop.stop()
    t_end = time.time() + 1

    base, base_fail, base_by = hostile.window([r for r in results if r.end < t_kill], 0, t_kill)
    gap, gap_fail, gap_by = hostile.window(results, t_kill, t_down, in_flight=True)
    down, down_fail, down_by = hostile.window(results, t_down, t_listen)
    # b2 listens again but is not yet seen up: new flows may or may not reach it.
    rising, rising_fail, rising_by = hostile.window(results, t_listen, t_up)
    after, after_fail, after_by = hostile.window(results, t_up, t_end)
    e2e.log(f"requests done before the kill: {len(base)}, failed {len(base_fail)}, answered by {base_by}")
    e2e.log(f"requests in flight at the kill or started before detection ({t_down - t_kill:.3f} s): {len(gap)}, "
            f"failed {len(gap_fail)}, answered by {gap_by}")
    for r in gap_fail[:10]:
        e2e.log(f"  failed in the gap: +{r.start - t_kill:.3f} s .. +{r.end - t_kill:.3f} s: {r.text[:120]}")
    e2e.log(f"requests while {VICTIM} was down: {len(down)}, failed {len(down_fail)}, answered by {down_by}")
    e2e.log(f"requests between the restart and l4lbctl showing {VICTIM} up: {len(rising)}, "
            f"failed {len(rising_fail)}, answered by {rising_by}")
    e2e.log(f"requests after {VICTIM} came back: {len(after)}, failed {len(after_fail)}, answered by {after_by}")
    e2e.log(f"measured: detection {t_down - t_kill:.3f} s (l4lbctl) / "
            + (f"{t_log_down - t_kill:.3f} s (log)" if t_log_down else "- (log)")
            + f", bound {detect_bound:.2f} s; recovery {t_up - t_listen:.3f} s (l4lbctl) / "
            + (f"{t_log_up - t_listen:.3f} s (log)" if t_log_up else "- (log)")
            + f", bound {recover_bound:.2f} s")
    lab.print_stats()

    problems = []
    if base_fail or len(base_by) != 3:
        problems.append(f"baseline not clean: {len(base_fail)} failures, answered by {base_by}"
                        + (f", e.g. {base_fail[0].text[:100]}" if base_fail else ""))
    if t_down - t_kill > detect_bound:
        problems.append(f"detection took {t_down - t_kill:.3f} s > {detect_bound:.2f} s")
    if any(s != "down" for s in down_checks):
        problems.append(f"{VICTIM} not shown down while dead: {down_checks}")
    late_fail = down_fail + rising_fail
    if late_fail:
        problems.append(f"{len(late_fail)} of {len(down) + len(rising)} requests started after detection "
                        f"failed, e.g. +{late_fail[0].start - t_kill:.3f} s: {late_fail[0].text[:100]}")
    if VICTIM in down_by:
        problems.append(f"{down_by[VICTIM]} requests answered by {VICTIM} while it was down")
    if len(down) < 5:
        problems.append(f"only {len(down)} requests while {VICTIM} was down: no load to judge by")
    if t_up - t_listen > recover_bound:
        problems.append(f"recovery took {t_up - t_listen:.3f} s > {recover_bound:.2f} s")
    if after_fail:
        problems.append(f"{len(after_fail)} of {len(after)} requests after recovery failed, "
                        f"e.g. {after_fail[0].text[:100]}")
    if not after_by.get(VICTIM):
        problems.append(f"no new connection reached {VICTIM} after it came back ({after_by})")
    try:
        lab.stop_daemon_checked()
    except e2e.TestFailure as e:
        problems.append(str(e))
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    e2e.run_test("health_failover", body, config=CONFIG,
                 servers=[("http_server", 8080)], probe=("http", 8080), timeout=120)
