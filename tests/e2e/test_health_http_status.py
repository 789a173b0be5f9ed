#!/usr/bin/env python3
"""e2e: an http health probe judges the status code, not just the port
(configs/health.yaml: GET /health, expect 200).

b2's http_server listens and serves / normally, but answers /health with 500
(--health-status 500; checked directly from the client, past the VIP). b1
and b3 are healthy. Expected:
  - `l4lbctl backends web`: b2 down with a last_error naming 500; b1, b3 up;
  - 60 curls to the VIP all succeed, none answered by b2, both b1 and b3
    answer; b2's new_flows stays 0;
  - control: once b2's /health answers 200 (its --health-status-file), b2
    comes up and new connections reach it."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "health.yaml"
SICK = "b2"
SICK_ADDR = dict(e2e.BACKENDS)[SICK]
SICK_KEY = f"{SICK_ADDR}:8080"
N = 60


def direct(lab, path):
    """GET http://b2:8080/path from the client, not through the VIP:
    (status code, body)."""
    p = lab.in_client(["curl", "-sS", "--noproxy", "*", "-m", "5", "-o", "-", "-w", "\n%{http_code}",
                       f"http://{SICK_ADDR}:8080{path}"], check=False, timeout=15)
    body, _, code = p.stdout.rpartition("\n")
    return code.strip(), body.strip()


def row_of(rows, key):
    return next((r for r in rows if r["backend"] == key), None)


def wait_for(lab, predicate, deadline_s, what):
    t_end = time.monotonic() + deadline_s
    while True:
        rows = lab.backends("web")
        if predicate(rows):
            return rows
        if time.monotonic() > t_end:
            raise e2e.TestFailure(f"{what} not reached within {deadline_s} s: "
                                  + "; ".join(f"{r['backend']} {r['state']} ({r['last_error']})" for r in rows))
        time.sleep(0.1)


def body(lab):
    status_file = lab.workdir / "b2-health-status"
    for name, _ in e2e.BACKENDS:
        extra = ["--health-status", "500", "--health-status-file", status_file] if name == SICK else []
        lab.start_server("http_server", 8080, on=name, extra=extra)
    e2e.log(f"servers: http_server on b1, b2, b3; {SICK}'s /health answers 500")
    lab.wait_vip("http", 8080)

    code_root, body_root = direct(lab, "/")
    code_health, body_health = direct(lab, "/health")
    e2e.log(f"{SICK} directly: GET / -> {code_root} {body_root!r}; GET /health -> {code_health} {body_health!r}")
    if code_root != "200" or code_health != "500":
        raise e2e.TestFailure(f"test set-up: {SICK} should serve / (got {code_root}) and fail /health "
                              f"with 500 (got {code_health})")

    # b1 and b3 come up after `rise` probes; b2 must stay down. Wait for the
    # first two, then watch b2 for a few more probe intervals.
    rows = wait_for(lab, lambda rs: all(r["state"] == "up" for r in rs if r["backend"] != SICK_KEY),
                    15, "b1 and b3 up")
    time.sleep(2.0)
    rows = lab.backends("web")
    e2e.log("l4lbctl backends web:\n" + lab.ctl("backends", "web").stdout.rstrip())
    sick = row_of(rows, SICK_KEY)
    problems = []
    if sick is None:
        raise e2e.TestFailure(f"no row for {SICK_KEY}")
    if sick["state"] != "down":
        problems.append(f"{SICK} is {sick['state']}, expected down")
    if "500" not in str(sick.get("last_error", "")):
        problems.append(f"{SICK}'s last_error does not mention 500: {sick.get('last_error')!r}")
    others = {r["backend"]: r["state"] for r in rows if r["backend"] != SICK_KEY}
    if any(s != "up" for s in others.values()):
        problems.append(f"healthy backends not all up: {others}")

    counts, failures = lab.curl_many(N)
    e2e.log(f"{N} curls through the VIP with {SICK} unhealthy: answered by {dict(counts)}, "
            f"{len(failures)} failed" + (f", e.g. {failures[0]}" if failures else ""))
    sick_new = row_of(lab.backends("web"), SICK_KEY)["new_flows"]
    e2e.log(f"{SICK} new_flows after the curls: {sick_new}")
    if failures:
        problems.append(f"{len(failures)} of {N} curls failed, e.g. {failures[0]}")
    if counts.get(SICK):
        problems.append(f"{counts[SICK]} of {N} curls answered by unhealthy {SICK}")
    if sick_new:
        problems.append(f"{SICK} got {sick_new} new flows while down")
    if not counts.get("b1") or not counts.get("b3"):
        problems.append(f"b1 and b3 should both answer: {dict(counts)}")

    # Control: the same server turns healthy, so the 500 was the reason.
    status_file.write_text("200\n")
    t0 = time.monotonic()
    wait_for(lab, lambda rs: row_of(rs, SICK_KEY)["state"] == "up", 10, f"{SICK} up after /health -> 200")
    e2e.log(f"{SICK}'s /health now answers 200: up after {time.monotonic() - t0:.2f} s")
    counts, failures = lab.curl_many(N)
    e2e.log(f"{N} curls with {SICK} healthy: answered by {dict(counts)}, {len(failures)} failed")
    if failures:
        problems.append(f"{len(failures)} of {N} curls failed after {SICK} recovered, e.g. {failures[0]}")
    if not counts.get(SICK):
        problems.append(f"control: {SICK} healthy again but got none of {N} curls: {dict(counts)}")
    lab.finish(problems)


if __name__ == "__main__":
    # No servers and no VIP probe here: body starts them (b2 with --health-status 500).
    e2e.run_test("health_http_status", body, config=CONFIG, timeout=120)
