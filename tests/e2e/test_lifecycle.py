#!/usr/bin/env python3
"""e2e: how l4lbd stops (DESIGN sections 8 and 11).

Three parts, in the order (c), (b), (a):
(a) Under load: wrk (2 threads, 64 keep-alive connections) on the web VIP,
    curl after curl (new flows), `l4lbctl stats` and metrics scrapes in
    loops, so the control API and the metrics read the workers while l4lbd
    stops. SIGTERM: l4lbd must exit 0 within 5 s, its log must end with
    "l4lbd stopped", hold the workers' audit ("flow table, SNAT pool and
    counters agree") and no error, critical or sanitizer line.
(b) Drain cut short: l4lbd again, 4 long-lived echo connections; the config
    gains dataplane.shutdown_drain_s: 60 by SIGHUP (a reload applies it).
    SIGTERM: l4lbd logs that it drains 4 flows and keeps running, and the
    echo connections keep echoing through it for 2 s. A second SIGTERM:
    exit 0 within 3 s, the log says the drain was cut short.
(c) Drain that ends by itself: l4lbd with the drain in its config, 3 echo
    connections, SIGTERM; they still echo; they close (FIN both ways) and
    l4lbd exits 0 on its own ("drained"), long before the 60 s.
"""
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "lifecycle.yaml"
DRAIN_S = 60
BAD_LOG = re.compile(r"\b(error|critical)\b|AddressSanitizer|runtime error:|LeakSanitizer", re.IGNORECASE)


def log_since(lab, offset):
    return lab.daemon_log.read_bytes()[offset:].decode(errors="replace")


def wait_exit(lab, timeout):
    """Seconds until l4lbd exits, or TestFailure."""
    t0 = time.monotonic()
    try:
        lab.daemon.wait(timeout)
    except subprocess.TimeoutExpired:
        raise e2e.TestFailure(f"l4lbd still running {timeout} s after the signal") from None
    return time.monotonic() - t0


def check_clean_log(text, problems, when):
    bad = [line for line in text.splitlines() if BAD_LOG.search(line)]
    if bad:
        problems.append(f"{when}: log has {len(bad)} bad lines, first: {bad[0]}")
    if "flow table, SNAT pool and counters agree" not in text:
        problems.append(f"{when}: no clean worker audit in the log")
    if not text.rstrip().endswith("l4lbd stopped"):
        problems.append(f"{when}: log does not end with 'l4lbd stopped': {text.rstrip().splitlines()[-1:]}")


def echo_sessions(lab, n, label):
    sessions = []
    for i in range(n):
        s = e2e.LineSession(lab, f"{label}-{i}", [e2e.PY, e2e.NETCLIENT, "tcp-session", "--to", f"{e2e.VIP}:7"])
        first = s.expect()
        if not first.startswith("connected"):
            raise e2e.TestFailure(f"echo connection {i} could not open: {first}")
        sessions.append(s)
    return sessions


def all_echo(sessions, text):
    return [f"{s.label}: {answer}" for s in sessions if not (answer := s.ask(f"send {text}")).startswith("ok")]


def drain_config(lab):
    path = lab.workdir / "lifecycle-drain.yaml"
    path.write_text(CONFIG.read_text().replace("shutdown_drain_s: 0", f"shutdown_drain_s: {DRAIN_S}"))
    return path


def under_load(lab, problems):
    offset = lab.daemon_log.stat().st_size if lab.daemon_log.exists() else 0
    lab.start_daemon(CONFIG)
    lab.wait_vip("http", 8080)
    wrk = lab.spawn("wrk", lab.ns_client, ["wrk", "-t2", "-c64", "-d60s", "--timeout", "2s",
                                           f"http://{e2e.VIP}:8080/"])
    curls = e2e.CurlLoop(lab)
    # The control API and the metrics, read as fast as they answer.
    readers = [
        lab.spawn("ctl-loop", lab.ns_lb, ["bash", "-c", f"while :; do {e2e.L4LBCTL} --file-prefix {lab.prefix} "
                                          "stats >/dev/null 2>&1; done"]),
        lab.spawn("metrics-loop", lab.ns_lb, ["bash", "-c", "while :; do curl -s -m 1 "
                                              "http://127.0.0.1:9100/metrics >/dev/null; done"]),
    ]
    time.sleep(4)
    before = lab.stats()["total"]
    e2e.log(f"(a) under load: {before['rx_packets']} packets, {before['flows_created']} flows so far; SIGTERM")
    if before["flows_created"] < 50:
        problems.append(f"(a) too little load before SIGTERM: {before['flows_created']} flows")
    lab.daemon.send_signal(signal.SIGTERM)
    took = wait_exit(lab, 5)
    e2e.log(f"(a) l4lbd exited with {lab.daemon.returncode} {took:.2f} s after SIGTERM")
    if lab.daemon.returncode != 0:
        problems.append(f"(a) exit status {lab.daemon.returncode}, expected 0")
    for p in readers + [wrk]:
        p.kill()
        p.wait()
    curls.stop()
    check_clean_log(log_since(lab, offset), problems, "(a)")


def drain_cut_short(lab, problems):
    offset = lab.daemon_log.stat().st_size if lab.daemon_log.exists() else 0
    running = lab.workdir / "lifecycle-running.yaml"
    running.write_text(CONFIG.read_text())
    lab.start_daemon(running)
    lab.wait_vip("http", 8080)
    sessions = echo_sessions(lab, 4, "drain-b")
    # The drain comes by reload: it is read when the signal arrives.
    running.write_text(drain_config(lab).read_text())
    lab.daemon.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "config reloaded" not in log_since(lab, offset):
        if time.monotonic() > deadline:
            raise e2e.TestFailure("(b) SIGHUP: no 'config reloaded' in the log")
        time.sleep(0.1)
    lab.daemon.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while "draining" not in log_since(lab, offset):
        if time.monotonic() > deadline or lab.daemon.poll() is not None:
            raise e2e.TestFailure(f"(b) SIGTERM with a drain: no 'draining' in the log (exit {lab.daemon.poll()})")
        time.sleep(0.05)
    m = re.search(r"draining (\d+) flows for up to (\d+) s", log_since(lab, offset))
    e2e.log(f"(b) {m.group(0) if m else 'draining'}")
    if not m or int(m.group(1)) < 4 or int(m.group(2)) != DRAIN_S:
        problems.append(f"(b) expected to drain >= 4 flows for {DRAIN_S} s: {m.group(0) if m else 'no count'}")
    for second in range(2):
        time.sleep(1)
        failed = all_echo(sessions, f"draining-{second}")
        if failed:
            problems.append(f"(b) during the drain: {failed}")
        if lab.daemon.poll() is not None:
            raise e2e.TestFailure(f"(b) l4lbd exited ({lab.daemon.returncode}) during the drain")
    e2e.log("(b) echo connections answer through the drain; second SIGTERM")
    lab.daemon.send_signal(signal.SIGTERM)
    took = wait_exit(lab, 3)
    e2e.log(f"(b) l4lbd exited with {lab.daemon.returncode} {took:.2f} s after the second SIGTERM")
    if lab.daemon.returncode != 0:
        problems.append(f"(b) exit status {lab.daemon.returncode}, expected 0")
    text = log_since(lab, offset)
    if "second signal" not in text:
        problems.append("(b) the log does not say the second signal cut the drain short")
    check_clean_log(text, problems, "(b)")
    for s in sessions:
        s.proc.kill()


def drain_to_the_end(lab, problems):
    offset = lab.daemon_log.stat().st_size if lab.daemon_log.exists() else 0
    lab.start_daemon(drain_config(lab))
    lab.wait_vip("http", 8080)
    sessions = echo_sessions(lab, 3, "drain-c")
    lab.daemon.send_signal(signal.SIGTERM)
    time.sleep(1)
    if lab.daemon.poll() is not None:
        raise e2e.TestFailure(f"(c) l4lbd exited ({lab.daemon.returncode}) with 3 flows to drain")
    failed = all_echo(sessions, "still-here")
    if failed:
        problems.append(f"(c) during the drain: {failed}")
    t0 = time.monotonic()
    for s in sessions:
        s.close()
    wait_exit(lab, 15)
    e2e.log(f"(c) connections closed; l4lbd exited with {lab.daemon.returncode} "
            f"{time.monotonic() - t0:.2f} s later (drain limit {DRAIN_S} s)")
    if lab.daemon.returncode != 0:
        problems.append(f"(c) exit status {lab.daemon.returncode}, expected 0")
    text = log_since(lab, offset)
    if "drained, no flows left" not in text:
        problems.append("(c) the log does not say the drain ended with no flows left")
    check_clean_log(text, problems, "(c)")


def body(lab):
    problems = []
    # Connections a part leaves behind keep retransmitting FINs, which a
    # later l4lbd forwards (tcp_miss) and a drain would count once the
    # backend answers: the part that closes its connections cleanly runs
    # first, the one without a drain last.
    drain_to_the_end(lab, problems)
    drain_cut_short(lab, problems)
    under_load(lab, problems)
    lab.daemon = None
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    e2e.run_test("lifecycle", body, servers=[("http_server", 8080), ("tcp_echo", 7)], timeout=240)
