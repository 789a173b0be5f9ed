#!/usr/bin/env python3
"""e2e smoke test of the benchmark (DESIGN §10): `tools/bench --quick` at a
rate limit of 1 Mpps and 1 s per case (half of --quick's 2 s, for the
suite's time), on the binaries tools/test built, must produce its report
(CSV, JSON, PNG) with every case present, every case moving traffic
(packets forwarded to the backends and returned to the clients) with zero
loss, a baseline to compare with, and nothing left behind. Behaviour, not
speed: no rate is asserted beyond "more than zero"."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402
import bench_lab  # noqa: E402 - l4lb_e2e put tools/lib on the path
import netns  # noqa: E402

BENCH = e2e.REPO / "tools" / "bench"
RATE = 1_000_000
FLOWS = [1_000, 1_000_000]
SCENARIOS = ["established", "new", "reverse"]
BENCH_TIMEOUT = 200


def run_bench(out):
    cmd = [sys.executable, str(BENCH), "--quick", "--max-rate", str(RATE), "--duration", "1", "--out", str(out),
           "--build-dir", str(e2e.REPO / "build"), "--no-build"]
    e2e.log("running: " + " ".join(cmd[1:]))
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, bufsize=1, start_new_session=True)
    lines = []
    t0 = time.monotonic()
    try:
        for line in p.stdout:
            lines.append(line.rstrip())
            e2e.log("  | " + line.rstrip())
            if time.monotonic() - t0 > BENCH_TIMEOUT:
                raise e2e.TestFailure(f"tools/bench still running after {BENCH_TIMEOUT} s")
        rc = p.wait(30)
    except BaseException:
        # Let tools/bench clean up after itself (namespace, processes, hugepages).
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        raise
    return rc, lines


def check_report(out):
    csv_path, json_path, png_path = (out / f"bench-quick.{ext}" for ext in ("csv", "json", "png"))
    for f in (csv_path, json_path, png_path):
        if not f.exists() or f.stat().st_size == 0:
            raise e2e.TestFailure(f"{f.name} was not written")
    doc = json.loads(json_path.read_text())
    for key in ("meta", "definitions", "rows", "cases"):
        if key not in doc:
            raise e2e.TestFailure(f"{json_path.name} has no '{key}'")
    for key in ("mpps", "ratio", "latency", "loss"):
        if key not in doc["definitions"]:
            raise e2e.TestFailure(f"{json_path.name}: definitions lack '{key}'")
    if doc["meta"].get("rate_limit_pps") != RATE:
        raise e2e.TestFailure(f"meta.rate_limit_pps is {doc['meta'].get('rate_limit_pps')}, expected {RATE}")
    with open(csv_path) as f:
        csv_rows = list(csv.DictReader(f))
    if len(csv_rows) != len(doc["rows"]):
        raise e2e.TestFailure(f"CSV has {len(csv_rows)} rows, JSON {len(doc['rows'])}")

    rows = {(r["scenario"], r["flows"]): r for r in doc["rows"]}
    expected = [("baseline", min(FLOWS))] + [(s, f) for s in SCENARIOS for f in FLOWS]
    problems = []
    for key in expected:
        r = rows.get(key)
        name = f"{key[0]} {key[1]}"
        if r is None:
            problems.append(f"{name}: missing from the report")
            continue
        if r["status"] != "ok":
            problems.append(f"{name}: status {r['status']}: {r.get('reason')}")
            continue
        case = next(c for c in doc["cases"] if c["scenario"] == key[0] and c["flows"] == key[1])
        m = case["pktgen"]["measure"]
        w = case["pktgen"]["warmup"]
        e2e.log(f"measured: {name:<18} sent {m['tx_packets']:>9}  to backends {m['forwarded']:>9}  "
                f"to clients {m['returned']:>9}  lost {m['lost']}  {r['mpps']:.3f} Mpps (ratio {r['ratio']:.3f})")
        if m["tx_packets"] <= 0 or m["returned"] <= 0 or r["mpps"] <= 0:
            problems.append(f"{name}: moved no traffic (sent {m['tx_packets']}, returned {m['returned']})")
        if key[0] in ("baseline", "established", "new") and m["forwarded"] < m["tx_packets"]:
            problems.append(f"{name}: {m['forwarded']} of {m['tx_packets']} reached a backend")
        if m["lost"] != 0 or r["lost"] != 0:
            problems.append(f"{name}: lost {m['lost']} of {m['tx_packets']} ({r.get('reason')})")
        if w["ran"] and w["opened"] != w["flows"]:
            problems.append(f"{name}: warm-up opened {w['opened']} of {w['flows']} flows")
        if key[0] != "baseline" and case.get("l4lbd_exit") != 0:
            problems.append(f"{name}: l4lbd exited with {case.get('l4lbd_exit')}")
        if r["ratio"] <= 0:
            problems.append(f"{name}: no ratio to the baseline")
    if problems:
        raise e2e.TestFailure(f"{len(problems)} problem(s) in the report:\n" + "\n".join(problems))


def bench_namespaces():
    return {ns for ns in os.listdir("/run/netns") if ns.startswith("l4lb-bench-")} \
        if os.path.isdir("/run/netns") else set()


def check_leftovers(before):
    left = sorted(bench_namespaces() - before)
    # A record whose owner is gone belongs to a run that did not clean up.
    states = [st["sfx"] for st in netns.load_records(bench_lab.STATE_DIR) if not netns.owner_alive(st)]
    if left or states:
        subprocess.run([sys.executable, str(BENCH), "--clean"], capture_output=True)
        raise e2e.TestFailure(f"tools/bench left namespaces {left} / run records {states}")


def body(_lab):
    e2e.require_root()
    out = Path(tempfile.mkdtemp(prefix="l4lb-bench-test-"))
    before = bench_namespaces()
    try:
        t0 = time.monotonic()
        rc, lines = run_bench(out)
        e2e.log(f"tools/bench: exit {rc} after {time.monotonic() - t0:.0f} s")
        check_leftovers(before)
        check_report(out)
        if rc != 0:
            raise e2e.TestFailure(f"tools/bench exited with {rc}")
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    e2e.run_test("bench_quick", body, topology=False, timeout=280)
