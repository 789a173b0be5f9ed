#!/usr/bin/env python3
"""e2e: hand-offs between workers on a port without rte_flow (DESIGN §4, issue 6).

l4lbd with 2 workers (tests/e2e/configs/memif_handoff.yaml, lcores 0@0,1@1,2@1)
is the memif server in its own namespace; l4lb-pktgen --queues 2 is the
client, so both ends have 2 queue pairs and worker i owns queue i. memif has
no rte_flow, so l4lbd cannot steer FNAT replies by SNAT port. The generator
sends each packet on queue hash(5-tuple) % 2: a flow's client packets always
use the same queue (the worker that sees its SYN owns it and picks its SNAT
port from its own slice), while the backend's answers, addressed to the SNAT
address:port, pick their queue by their own tuple, so about half of them
land on the worker that does not own the flow and are handed over the
worker->worker ring.

Run: established mode, FLOWS flows, RATE pps for DURATION s (plus warm-up),
closed loop with --window WINDOW, then `l4lbctl stats --json` while the
generator holds the port. The window (at most WINDOW of the generator's
packets unanswered) is below the capacity of l4lbd's hand-off rings (1024
slots, 1023 usable), so no ring can overflow by load: on this 2-CPU machine
both workers share CPU 1 and a worker descheduled for tens of milliseconds
(other work on the machine) lets its peer's hand-off ring fill; in an open
loop (L4LB_HANDOFF_WINDOW=0) those packets are dropped as handoff_full and
the test fails with that loss. With the window, a loss or a handoff_full
drop is a fault of the hand-off path itself. Checks:
  - every flow opened in the warm-up, and zero loss: every packet the
    generator sent came back to a client address (none dropped or unsent);
  - handoffs_out > 0 on at least one worker; the sum of handoffs_out equals
    the sum of handoffs_in, and for each worker j the handoff_to_j of the
    others adds up to its handoffs_in;
  - no handoff_full drops;
  - flows_created summed over the workers equals FLOWS, and both workers own
    some (both queues carried SYNs);
  - l4lbd and l4lb-pktgen exit 0 after SIGTERM.
Printed: the hand-off ratio (handoffs / rx_packets), the per-worker split,
non-zero drops and l4lbd's 'steering' log line.

Processes, namespace, memif socket directory and DPDK files are created
through tools/lib/bench_lab.py, which records them first in
/run/l4lb-bench/SFX.json, so `tools/bench --clean` also removes what an
interrupted run left.

Environment (for experiments): L4LB_HANDOFF_RATE (pps, default 300000),
L4LB_HANDOFF_WINDOW (l4lb-pktgen --window, default 1000; 0 = open loop),
L4LB_HANDOFF_DURATION (s, default 3), L4LB_PKTGEN (the generator binary).
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

sys.path.insert(0, str(e2e.REPO / "tools" / "lib"))
import bench_cases as bc  # noqa: E402
import bench_lab as bl  # noqa: E402

NAME = "memif_handoff"
CONFIG = e2e.CONFIG_DIR / "memif_handoff.yaml"
PKTGEN = Path(os.environ.get("L4LB_PKTGEN", e2e.REPO / "build" / "pktgen" / "l4lb-pktgen"))
WORKERS = 2
FLOWS = 1000
RATE = int(os.environ.get("L4LB_HANDOFF_RATE", 300_000))
WINDOW = int(os.environ.get("L4LB_HANDOFF_WINDOW", 1000))   # < the hand-off ring's 1023 slots
DURATION = float(os.environ.get("L4LB_HANDOFF_DURATION", 3))
LB_LCORES = "0@0,1@1,2@1"      # management core alone on CPU 0, both workers on CPU 1
GEN_LCORES = "0@0,1@0"         # the generator's main and poll lcores on CPU 0
MEMIF_LOG2_RING = 14           # as tools/bench: rings of 16384 slots
# 2 MiB pages: l4lbd 16384 mbufs + 2 x 16384 flows + its heap, the generator
# 32768 mbufs + its heap (bench_cases' estimates), with room to spare.
HUGEPAGES = 200
READY_TIMEOUT = 30
TIMEOUT = 100


def log(msg=""):
    e2e.log(msg)


def wait_for(proc, pattern, timeout, what, also=()):
    """Wait until proc's log matches pattern; fail if it (or one of `also`) exits."""
    t0 = time.monotonic()
    while True:
        if re.search(pattern, proc.log_text()):
            return
        for p in (proc, *also):
            if not p.running():
                raise e2e.TestFailure(f"{p.label} exited with {p.popen.returncode} while waiting for "
                                      f"{what}:\n{p.tail(20)}")
        if time.monotonic() - t0 > timeout:
            raise e2e.TestFailure(f"{what}: not seen after {timeout:.0f} s:\n{proc.tail(20)}")
        time.sleep(0.1)


def l4lbd_stats(prefix):
    p = e2e.run([e2e.L4LBCTL, "--file-prefix", prefix, "stats", "--json"], check=False, timeout=20)
    if p.returncode != 0:
        raise e2e.TestFailure(f"l4lbctl stats failed ({p.returncode}): {(p.stderr or p.stdout).strip()[-300:]}")
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        raise e2e.TestFailure(f"l4lbctl stats --json printed no JSON: {p.stdout[:300]!r}") from e


def stop(run, proc):
    """SIGTERM, wait; returns the exit code (SIGKILLed: negative)."""
    rc = proc.stop(signal.SIGTERM, timeout=15)
    if proc.hung:
        log(f"{proc.label} did not stop within 15 s of SIGTERM; its threads:")
        for t in proc.hung:
            log(f"  {t}")
    run.finished(proc)
    return rc


def check(stats, report, steering):
    problems = []
    w = report["warmup"]
    m = report["measure"]
    log(f"generator: warm-up {w['opened']}/{w['flows']} flows; sent {m['tx_packets']} at "
        f"{m['tx_pps'] / 1e3:.0f} kpps, to backends {m['forwarded']}, back to clients {m['returned']}, "
        f"lost {m['lost']}, answers dropped {m['answer_drops']}, unsent {m['unsent']}; "
        f"p99 loop latency {m['latency_ns']['p99'] / 1e3:.0f} us")
    if report.get("queues") != WORKERS:
        problems.append(f"the generator ran with {report.get('queues')} queues, expected {WORKERS}")
    if w["opened"] != FLOWS:
        problems.append(f"warm-up opened {w['opened']} of {FLOWS} flows")
    if m["tx_packets"] <= 0 or m["returned"] <= 0:
        problems.append(f"no traffic: sent {m['tx_packets']}, returned {m['returned']}")
    if m["lost"] != 0:
        problems.append(f"lost {m['lost']} of {m['tx_packets']} packets (loss ratio {m['loss_ratio']:.6f})")
    if m["answer_drops"] or m["unsent"] or m["alloc_failures"]:
        problems.append(f"generator-side drops: answers {m['answer_drops']}, unsent {m['unsent']}, "
                        f"alloc failures {m['alloc_failures']}")

    workers = sorted(stats["workers"], key=lambda x: x["worker"])
    if len(workers) != WORKERS:
        problems.append(f"l4lbctl lists {len(workers)} workers, expected {WORKERS}")
    rx = sum(x["rx_packets"] for x in workers)
    out = sum(x["handoffs_out"] for x in workers)
    into = sum(x["handoffs_in"] for x in workers)
    created = sum(x["flows_created"] for x in workers)
    log(f"hand-off ratio: {out} hand-offs / {rx} rx packets = {out / rx if rx else 0:.3f} "
        f"(expected about 0.25: half of the replies, which are half of the packets)")
    for x in workers:
        i = x["worker"]
        pairs = ", ".join(f"to {j}: {x.get(f'handoff_to_{j}', 0)}" for j in range(WORKERS) if j != i)
        log(f"  worker {i}: rx {x['rx_packets']} ({x['rx_packets'] / rx if rx else 0:.1%}), forward "
            f"{x['forward_packets']}, reverse {x['reverse_packets']}, flows_created {x['flows_created']}, "
            f"handoffs_out {x['handoffs_out']} ({pairs}), handoffs_in {x['handoffs_in']}, "
            f"ratio {x['handoffs_out'] / x['rx_packets'] if x['rx_packets'] else 0:.3f}")
        drops = {k: v for k, v in x.get("drops", {}).items() if v}
        if drops:
            log(f"  worker {i} drops: {drops}")
    log(f"steering: {steering}")

    if not any(x["handoffs_out"] > 0 for x in workers):
        problems.append("no hand-offs at all (handoffs_out is 0 on every worker)")
    if out != into:
        problems.append(f"sum of handoffs_out {out} != sum of handoffs_in {into}")
    for x in workers:
        j = x["worker"]
        sent_to_j = sum(y.get(f"handoff_to_{j}", 0) for y in workers if y["worker"] != j)
        if sent_to_j != x["handoffs_in"]:
            problems.append(f"worker {j}: handoffs_in {x['handoffs_in']} but the others' handoff_to_{j} "
                            f"add up to {sent_to_j}")
    full = sum(x.get("drops", {}).get("handoff_full", 0) for x in workers)
    if full:
        problems.append(f"{full} handoff_full drops")
    if created != FLOWS:
        problems.append(f"flows_created summed over the workers is {created}, expected {FLOWS}")
    if any(x["flows_created"] == 0 for x in workers):
        problems.append("a worker owns no flow: the generator's SYNs did not use both queues")
    if "rte_flow steers" in steering:
        problems.append("l4lbd reports rte_flow steering on memif; hand-offs are not exercised")
    return problems


def body(_lab):
    e2e.require_root()
    for b in (e2e.L4LBD, PKTGEN):
        if not Path(b).exists():
            raise e2e.TestFailure(f"{b} does not exist (build with ninja -C build)")
    chk = e2e.run([e2e.L4LBD, "--check", "--config", CONFIG], check=False)
    if chk.returncode != 0:
        raise e2e.TestFailure(f"l4lbd --check rejects {CONFIG.name}: {(chk.stderr or chk.stdout).strip()}")

    run = bl.BenchRun()
    dut = gen = None
    problems = []
    try:
        free, run.pool_before = bl.ensure_hugepages_free(HUGEPAGES)
        run.save()
        if free < HUGEPAGES:
            raise e2e.TestFailure(f"{free} free 2 MiB hugepages, need {HUGEPAGES}")
        run.up()
        workdir = run.sock_dir
        sock = workdir / "memif.sock"
        memif = f"socket={sock},socket-abstract=no,rsize={MEMIF_LOG2_RING}"
        lb_prefix = run.prefix("lb")
        dut = run.spawn("l4lbd", [e2e.L4LBD, "--lcores", LB_LCORES, "--file-prefix", lb_prefix, "--no-pci",
                                  "--vdev", f"net_memif0,role=server,{memif},mac={bc.DUT_MAC}",
                                  "--", "--config", CONFIG],
                        workdir / "l4lbd.log", netns=run.netns, prefix=lb_prefix)
        wait_for(dut, re.escape(e2e.DAEMON_READY_LINE), READY_TIMEOUT, "l4lbd ready")
        steering = next((ln.split("info ", 1)[-1] for ln in dut.log_text().splitlines() if "steering" in ln),
                        "(no steering line in the l4lbd log)")

        report_path = workdir / "pktgen.json"
        gen_prefix = run.prefix("gen")
        args = ["--queues", WORKERS, "--mode", "established", "--proto", "tcp", "--flows", FLOWS,
                "--vip", f"{bc.VIP}:{bc.VIP_PORT}", "--clients", bc.CLIENTS, "--rate", RATE,
                "--warmup-rate", RATE, "--duration", DURATION, "--dst-mac", bc.DUT_MAC, "--json", report_path,
                "--progress", 1, "--link-timeout", 20, "--hold"]
        if WINDOW:
            args += ["--window", WINDOW]
        log(f"l4lb-pktgen --queues {WORKERS}: {FLOWS} flows at {RATE / 1e3:.0f} kpps for {DURATION:g} s"
            + (f", window {WINDOW}" if WINDOW else ", open loop"))
        gen = run.spawn("l4lb-pktgen", [PKTGEN, "--lcores", GEN_LCORES, "--file-prefix", gen_prefix, "--no-pci",
                                        "--vdev", f"net_memif0,role=client,{memif},mac={bc.GEN_MAC}", "--"]
                        + args, workdir / "pktgen.log", prefix=gen_prefix)
        wait_for(gen, r"holding the port", 30 + DURATION, "l4lb-pktgen's report", also=(dut,))
        for line in gen.log_text().splitlines():
            if line.startswith("progress ") or line.startswith("  "):
                log(f"  | {line}")
        stats = l4lbd_stats(lb_prefix)
        report = json.loads(report_path.read_text())
        problems += check(stats, report, steering)

        # l4lbd first: the memif PMD may crash a process polling a ring
        # whose peer disconnects; the generator is idle (--hold) by now.
        rc = stop(run, dut)
        log("l4lbd: " + " | ".join(ln.split("info ", 1)[-1] for ln in dut.log_text().splitlines()
                                   if re.search(r"info worker \d+: rx", ln)))
        dut = None
        if rc != 0:
            problems.append(f"l4lbd exited with {rc} after SIGTERM, expected 0")
        rc = stop(run, gen)
        gen = None
        if rc != 0:
            problems.append(f"l4lb-pktgen exited with {rc} after SIGTERM, expected 0")
    except BaseException:
        for p in (dut, gen):
            if p is not None and p.log_text():
                log(f"---- tail of {p.label} log ----\n{p.tail(25)}")
        raise
    finally:
        for p in (dut, gen):        # the DUT first, as above
            if p is not None:
                stop(run, p)
        for problem in run.down():
            problems.append(f"teardown: {problem}")
    if problems:
        raise e2e.TestFailure(f"{len(problems)} problem(s): " + "; ".join(problems))


if __name__ == "__main__":
    e2e.run_test(NAME, body, topology=False, timeout=TIMEOUT)
