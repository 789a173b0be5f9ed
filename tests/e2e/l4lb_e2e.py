#!/usr/bin/env python3
"""Shared harness for the l4lb end-to-end tests and for tools/demo.

Topology (all in namespaces created here, names carry a per-run suffix SFX):

    l4lb-c-SFX   client   eth0 10.99.0.10/24 ---+
    l4lb-b1-SFX  backend  eth0 10.99.0.21/24 ---+   veth pairs; the other end
    l4lb-b2-SFX  backend  eth0 10.99.0.22/24 ---+-- of each is a port of br0
    l4lb-b3-SFX  backend  eth0 10.99.0.23/24 ---+   in l4lb-lb-SFX
                                                |
    l4lb-lb-SFX  appliance:  br0 (no IP, ARP off) -- dp0 (TAP of l4lbd's
                 data port, the "wire")   l4lbk0 (l4lbd's exception path:
                 10.99.0.1/24 and the VIP 10.99.0.100, owned by the kernel)

With Lab(dnat=True) (or run_test(..., dnat=True)) the client sits in another
subnet, 10.98.0.10/24 with a default route via 10.98.0.1, and every backend
gets a default route via 10.99.0.1: a DNAT backend's reply, addressed to the
client itself, then goes back through the appliance. The config must put both
gateways on the port (`address: [10.99.0.1/24, 10.98.0.1/24]`) so that the
kernel behind l4lbk0 answers ARP for them. FNAT VIPs work there too.

l4lbd runs inside l4lb-lb-SFX with --file-prefix l4lb-SFX. Everything a run
creates is recorded in /run/l4lb-e2e/SFX.json (namespaces, pids with their
start times, DPDK prefix) so that `clean` / `clean-stale` can remove what an
interrupted run left, without touching anything else.

As a module: `run_test(...)` sets up, runs one test body, tears down and
prints `PASS name` / `FAIL name: reason` as the last line.
With L4LB_E2E_OLD_KEYS=1 l4lbd runs on its config without the keys of
issue 13 (old_keys_config), to measure an l4lbd from before them.
As a program (used by tools/demo and tools/test):
    l4lb_e2e.py demo [--keep] [-n N] [--config FILE]
    l4lb_e2e.py clean          # kept demos, plus runs whose owner died
    l4lb_e2e.py clean-stale    # only runs whose owner died
    l4lb_e2e.py list
    l4lb_e2e.py leftovers TAG  # runs started with L4LB_E2E_TAG=TAG that are
                               # still recorded: report, clean, exit 1
"""
import argparse
import collections
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Shared with tools/bench: processes by pid and start time (l4lb_procs), and
# namespaces, links and run records (netns).
sys.path.insert(0, str(REPO / "tools" / "lib"))
import netns  # noqa: E402
from l4lb_procs import alive, proc_start_time, reap, signal_pid, wait_dead  # noqa: E402,F401
from netns import DPDK_RUN_DIR, HUGEPAGE_DIR  # noqa: E402,F401

E2E_DIR = REPO / "tests" / "e2e"
SERVERS_DIR = E2E_DIR / "servers"
CONFIG_DIR = E2E_DIR / "configs"
NETCLIENT = E2E_DIR / "netclient.py"
L4LBD = Path(os.environ.get("L4LBD", REPO / "build" / "src" / "daemon" / "l4lbd"))
L4LBCTL = Path(os.environ.get("L4LBCTL", REPO / "tools" / "l4lbctl"))
L4LB_MAGLEV = Path(os.environ.get("L4LB_MAGLEV", REPO / "build" / "src" / "tools" / "l4lb-maglev"))
STATE_DIR = Path("/run/l4lb-e2e")

LB_ADDR = "10.99.0.1"
VIP = "10.99.0.100"
CLIENT_ADDR = "10.99.0.10"
# Lab(dnat=True): the client in its own subnet, routed through the appliance.
DNAT_CLIENT_ADDR = "10.98.0.10"
DNAT_CLIENT_GATEWAY = "10.98.0.1"   # an own address of the appliance
DNAT_BACKEND_GATEWAY = LB_ADDR
BACKENDS = [("b1", "10.99.0.21"), ("b2", "10.99.0.22"), ("b3", "10.99.0.23")]
PREFIXLEN = 24
LCORES = os.environ.get("L4LB_LCORES", "0,1")
DAEMON_READY_LINE = "l4lbd ready"

PY = sys.executable or "python3"

# Config keys issue 13 introduced. With L4LB_E2E_OLD_KEYS=1 in the
# environment, start_daemon runs l4lbd on a copy of its config without them
# (old_keys_config), so that a test written with them can show what an
# l4lbd from before them does with the same traffic.
OLD_KEYS_ENV = "L4LB_E2E_OLD_KEYS"
NEW_KEYS = ("closed_vip_ports", "snat_pools_per_worker", "tcp_syn_recv_s", "tcp_fin_wait_s",
            "tcp_time_wait_s", "tcp_close_s", "udp_unreplied_s", "snat_port_hold_s")
CLOSING_KEYS = ("tcp_fin_wait_s", "tcp_time_wait_s", "tcp_close_s", "snat_port_hold_s")


class TestFailure(Exception):
    """The test's expectation was not met; the message says what was measured."""


class Interrupted(BaseException):
    """SIGINT/SIGTERM/SIGHUP/alarm arrived; unwind and clean up."""


def log(msg):
    print(msg, flush=True)


def run(cmd, check=True, timeout=60, input=None):
    """Run a command, capture its output; raise TestFailure on error if check."""
    with failures_as_test_failure():
        return netns.run(cmd, check=check, timeout=timeout, input=input)


@contextlib.contextmanager
def failures_as_test_failure():
    """A command of the lab's set-up that fails is the test's failure."""
    try:
        yield
    except netns.CommandFailed as e:
        raise TestFailure(str(e)) from None


def maglev_fingerprint(table_size, weights):
    """The fingerprint l4lb-maglev --json prints for {"ADDR:PORT": weight}
    at `table_size` (16 hex digits): what `l4lbctl vips` must show as a VIP's
    maglev while exactly those backends are in service with those weights."""
    if not L4LB_MAGLEV.exists():
        raise TestFailure(f"{L4LB_MAGLEV} not built")
    p = run([L4LB_MAGLEV, "--table-size", table_size, "--json",
             *(a for key, w in weights.items() for a in ("--backend", f"{key}={w}"))], check=False)
    if p.returncode != 0:
        raise TestFailure(f"l4lb-maglev exited {p.returncode}: {p.stderr.strip()[:300]}")
    try:
        return json.loads(p.stdout)["fingerprint"]
    except (ValueError, KeyError) as e:
        raise TestFailure(f"l4lb-maglev --json printed no fingerprint: {p.stdout[:200]!r}") from e


def old_keys_config(text):
    """The config text without NEW_KEYS, for an l4lbd from before them.
    tcp_closing_s, which then covered every closing state and was also the
    only hold of a closed flow's SNAT port, becomes the longest of
    tcp_fin_wait_s / tcp_time_wait_s / tcp_close_s / snat_port_hold_s
    unless it is set (the setting that gives the same protection); the
    other keys have no older equivalent (tcp_syn_s covered syn_recv, udp_s
    all UDP, closed VIP ports went to the kernel) and are left out.
    Handles block style (one key a line) and one-line flow style ({a: 1})."""
    closing = [int(m.group(2)) for m in re.finditer(rf"\b({'|'.join(CLOSING_KEYS)}):\s*(\d+)", text)]
    need_closing = bool(closing) and not re.search(r"\btcp_closing_s:", text)
    keys = "|".join(NEW_KEYS)
    out = []
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        if not re.search(rf"\b({keys}):", code):
            out.append(line)
            continue
        code = re.sub(rf"(^|[{{,\s])({keys}):\s*[^,{{}}\s]+\s*,?", r"\1", code)
        code = re.sub(r",\s*}", "}", re.sub(r"{\s*,?\s*", "{", code)).rstrip()
        code = re.sub(r",\s+", ", ", code)
        if code.strip():
            out.append(code)
    if need_closing:
        value = max(closing)
        for i, line in enumerate(out):
            m = re.match(r"^(\s*)timeouts:\s*(\{?)", line)
            if not m:
                continue
            if m.group(2):
                out[i] = line.replace("{", f"{{tcp_closing_s: {value}, ", 1).replace(", }", "}")
            else:
                nxt = out[i + 1] if i + 1 < len(out) else ""
                indent = re.match(r"^(\s*)", nxt).group(1) or m.group(1) + "  "
                out.insert(i + 1, f"{indent}tcp_closing_s: {value}")
            break
        else:
            out.append(f"timeouts: {{tcp_closing_s: {value}}}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- state files

def state_path(sfx):
    return netns.state_file(STATE_DIR, sfx)


def load_states():
    return netns.load_records(STATE_DIR)


def teardown(state, quiet=False):
    """Remove everything a run recorded: processes (l4lbd first, SIGTERM then
    SIGKILL), anything else still inside its namespaces, the namespaces, the
    DPDK runtime dir and hugepage files of its prefix, the state file.
    Returns the list of problems found (empty when all went away)."""
    return netns.teardown(state, STATE_DIR, say=None if quiet else log)


def clean(include_kept, quiet=False):
    """Tear down recorded runs whose owner is gone (and kept demos if asked)."""
    cleaned = 0
    for st in load_states():
        if netns.owner_alive(st) or (st.get("keep") and not include_kept):
            continue
        if not quiet:
            log(f"cleaning {st.get('kind')} run {st['sfx']} (namespaces {', '.join(st.get('namespaces', []))})")
        for problem in teardown(st, quiet=quiet):
            log(f"  problem: {problem}")
        if st.get("workdir") and (st.get("keep") or not st.get("keep_logs")):
            shutil.rmtree(st["workdir"], ignore_errors=True)
        cleaned += 1
    return cleaned


# ---------------------------------------------------------------- the lab

def spread_table(counts, total, names=None):
    """Rows 'name addr answers share bar' for each backend."""
    names = names or [n for n, _ in BACKENDS]
    addrs = dict(BACKENDS)
    rows = [f"  {'backend':<8} {'address':<12} {'answers':>7} {'share':>7}"]
    for name in names:
        c = counts.get(name, 0)
        share = 100.0 * c / total if total else 0.0
        rows.append(f"  {name:<8} {addrs.get(name, '?'):<12} {c:>7} {share:>6.1f}%  "
                    + "#" * int(round(share / 2)))
    others = {k: v for k, v in counts.items() if k not in names}
    for name, c in others.items():
        rows.append(f"  {name:<8} {'?':<12} {c:>7} {100.0 * c / total:>6.1f}%  (unexpected)")
    return "\n".join(rows)


# ---------------------------------------------------------------- test runner

_signalled = False


def _on_signal(signum, _frame):
    global _signalled
    # Ignore repeats while we clean up (tools/test may forward the same ^C).
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    if not _signalled:
        _signalled = True
        raise Interrupted(signal.Signals(signum).name)


def _on_alarm(_signum, _frame):
    raise Interrupted("test timed out")


def install_signal_handlers():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    signal.signal(signal.SIGALRM, _on_alarm)


def require_root():
    if os.geteuid() != 0:
        raise TestFailure("needs root (network namespaces, hugepages)")


def run_test(name, body, *, config=None, servers=(), probe=None, timeout=240, topology=True,
             dnat=False, lcores=None, make_lab=None):
    """Build the topology, start servers [(kind, port)], l4lbd with config and
    wait for probe=(kind, port) to answer; run body(lab); stop l4lbd and
    require exit code 0; tear down. With topology=False, just run body(None).
    dnat=True builds the routed DNAT layout (Lab(dnat=True)); lcores is passed
    to start_daemon (e.g. "0@0,1@1,2@1" for two workers on 2 CPUs).
    make_lab: a topology of the test's own (a Lab subclass; its up() builds
    it). Prints PASS/FAIL as the last line and exits 0/1."""
    install_signal_handlers()
    signal.alarm(timeout)
    lab, reason = None, None
    t0 = time.monotonic()
    try:
        if topology:
            require_root()
            lab = make_lab() if make_lab else Lab(kind="test", label=name, dnat=dnat)
            lab.up()
            for kind, port in servers:
                lab.start_servers(kind, port)
            if config:
                lab.start_daemon(config, lcores=lcores)
                if probe:
                    lab.wait_vip(*probe)
        body(lab)
        if lab is not None and lab.daemon is not None:
            rc = lab.stop_daemon()
            if rc != 0:
                raise TestFailure(f"l4lbd exited with {rc} after SIGTERM, expected 0")
    except (TestFailure, netns.CommandFailed) as e:
        reason = str(e)
    except Interrupted as e:
        reason = f"interrupted ({e})"
    except Exception as e:  # noqa: BLE001 - a harness bug is a failure too
        traceback.print_exc()
        reason = f"{type(e).__name__}: {e}"
    signal.alarm(0)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    if lab is not None:
        if reason is not None:
            lab.keep_logs = True
            lab.log_failure()
        problems = lab.down()
        if problems:
            reason = (reason + "; " if reason else "") + "teardown: " + "; ".join(problems)
        if reason is not None:
            log(f"logs kept in {lab.workdir}")
    log(f"({name}: {time.monotonic() - t0:.1f} s)")
    if reason is None:
        log(f"PASS {name}")
        sys.exit(0)
    first, *rest = reason.splitlines() or [""]
    if rest:
        log("\n".join(rest))
    log(f"FAIL {name}: {first}")
    sys.exit(1)


# ---------------------------------------------------------------- demo / CLI

def demo(args):
    if os.geteuid() != 0:
        log("demo: needs root (network namespaces, hugepages)")
        return 1
    install_signal_handlers()
    signal.alarm(args.timeout)
    lab = Lab(kind="demo", label="demo")
    ok = False
    try:
        lab.up()
        lab.start_servers("http_server", 8080)
        lab.start_daemon(args.config)
        lab.wait_vip("http", 8080)
        log(f"\nsending {args.n} HTTP requests (one curl, one connection each) "
            f"from {lab.ns_client} to http://{VIP}:8080/ ...")
        t0 = time.monotonic()
        counts, failures = lab.curl_many(args.n)
        took = time.monotonic() - t0
        answered = sum(counts.values())
        log(f"\n{answered} of {args.n} requests answered in {took:.1f} s, by backend:")
        log(spread_table(counts, answered or 1))
        if failures:
            log(f"{len(failures)} failed, e.g. {failures[0]}")
        log("")
        lab.print_stats()
        ok = answered == args.n
        if args.keep:
            signal.alarm(0)
            lab.keep = True
            lab.save()
            log(f"""
The demo is still running (suffix {lab.sfx}). Try it by hand:
  ip netns exec {lab.ns_client} curl http://{VIP}:8080/
  ip netns exec {lab.ns_client} ping -c 3 {VIP}
  {L4LBCTL.relative_to(REPO)} --file-prefix {lab.prefix} stats
  ip netns exec {lab.ns_lb} ip -br addr     # br0, dp0, l4lbk0
  less {lab.daemon_log}
Clean up with:
  tools/demo --clean""")
            return 0 if ok else 1
    except (TestFailure, netns.CommandFailed) as e:
        log(f"demo failed: {e}")
        if lab.daemon is not None:
            log(f"---- tail of l4lbd log ----\n{lab.tail(lab.daemon_log, 30)}")
    except Interrupted as e:
        log(f"demo interrupted ({e})")
    signal.alarm(0)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    log("cleaning up ...")
    rc = lab.stop_daemon()
    if rc not in (None, 0):
        log(f"note: l4lbd exit code {rc} after SIGTERM (expected 0)")
    problems = lab.down()
    for p in problems:
        log(f"cleanup problem: {p}")
    log("done." if not problems else "cleanup incomplete.")
    return 0 if ok and not problems else 1


def main():
    ap = argparse.ArgumentParser(description="l4lb e2e harness")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="topology + l4lbd + N curl requests")
    d.add_argument("--keep", action="store_true", help="leave it running")
    d.add_argument("-n", type=int, default=300, help="requests to send (default 300)")
    d.add_argument("--config", default=str(REPO / "config" / "demo.yaml"))
    d.add_argument("--timeout", type=int, default=150, help="give up after this many seconds")
    sub.add_parser("clean", help="remove kept demos and runs whose owner died")
    sub.add_parser("clean-stale", help="remove only runs whose owner died")
    sub.add_parser("list", help="list recorded runs")
    lo = sub.add_parser("leftovers", help="clean runs of a finished tools/test test")
    lo.add_argument("tag")
    args = ap.parse_args()
    if args.cmd == "demo":
        return demo(args)
    if os.geteuid() != 0:
        log("needs root")
        return 1
    if args.cmd == "list":
        for st in load_states():
            owner = "running" if netns.owner_alive(st) else "owner gone"
            log(f"{st['sfx']} {st.get('kind')} {st.get('label')} keep={st.get('keep')} {owner} "
                f"namespaces={','.join(st.get('namespaces', []))}")
        return 0
    if args.cmd == "leftovers":
        found = [st for st in load_states() if st.get("tag") == args.tag]
        for st in found:
            log(f"leftover of {st.get('label')}: run {st['sfx']}, namespaces "
                f"{', '.join(ns for ns in st.get('namespaces', []) if netns.exists(ns)) or 'none'}"
                f", live pids {[p['pid'] for p in st.get('pids', []) if alive(p['pid'], p['start'])] or 'none'}")
            for problem in teardown(st):
                log(f"  problem: {problem}")
        return 1 if found else 0
    n = clean(include_kept=(args.cmd == "clean"), quiet=False)
    if args.cmd == "clean":
        log(f"cleaned {n} run(s)")
    return 0


if __name__ == "__main__":
    # As a program, hand over to the module proper: lab.py and clients.py
    # import it by name, so this file must not run as two modules at once.
    import l4lb_e2e
    sys.exit(l4lb_e2e.main())
else:
    # The topology and the client helpers live in their own modules; tests
    # use them as l4lb_e2e.Lab, l4lb_e2e.CurlLoop, ... Imported last: they
    # import this module's constants and helpers.
    from lab import Lab  # noqa: F401
    from clients import (CurlLoop, CurlResult, LineSession, WrkResult, tcp_session, wrk_problems,  # noqa: F401
                         wrk_result)
