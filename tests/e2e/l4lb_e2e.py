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

class Lab(netns.Run):
    """One topology: namespaces, bridge, veths, backend servers, l4lbd."""

    def __init__(self, kind="test", label="", dnat=False):
        super().__init__(STATE_DIR, lambda sfx: (f"l4lb-lb-{sfx}", f"l4lb-c-{sfx}"))
        self.kind = kind
        self.label = label
        # dnat=True: client 10.98.0.10/24 routed via 10.98.0.1, backends
        # routed via 10.99.0.1 (see the module docstring).
        self.dnat = dnat
        self.client_addr = DNAT_CLIENT_ADDR if dnat else CLIENT_ADDR
        self.client_gateway = DNAT_CLIENT_GATEWAY if dnat else None
        self.backend_gateway = DNAT_BACKEND_GATEWAY if dnat else None
        self.ns_lb = f"l4lb-lb-{self.sfx}"
        self.ns_client = f"l4lb-c-{self.sfx}"
        self.ns_backend = {name: f"l4lb-{name}-{self.sfx}" for name, _ in BACKENDS}
        self.prefix = f"l4lb-{self.sfx}"
        self.prefixes.append(self.prefix)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"l4lb-{kind}-{self.sfx}-"))
        self.daemon = None
        self.daemon_log = self.workdir / "l4lbd.log"
        self.config = None
        self.keep = False
        self.keep_logs = False
        self.save()

    # -- bookkeeping
    def state(self):
        return super().state() | {
            "kind": self.kind, "label": self.label,
            "tag": os.environ.get("L4LB_E2E_TAG"),
            "keep": self.keep, "keep_logs": self.keep_logs, "prefix": self.prefix,
            "workdir": str(self.workdir), "daemon_log": str(self.daemon_log),
            "config": str(self.config) if self.config else None,
        }

    def spawn(self, label, ns, cmd, logfile=None, pipes=False):
        """Start cmd inside namespace ns as a child in its own session (so a
        terminal Ctrl-C reaches only the harness, which then stops it);
        recorded, so teardown stops it. Output goes to logfile (default
        WORKDIR/LABEL.log), or with pipes=True to text pipes."""
        return self.start_process(label, cmd, ns=ns, logfile=logfile or self.workdir / f"{label}.log",
                                  pipes=pipes)

    def add_namespace(self, ns):
        """Create (and record) one more namespace, e.g. a router's."""
        with failures_as_test_failure():
            super().add_namespace(ns)

    # -- topology
    def up(self):
        log(f"topology: suffix {self.sfx}, appliance namespace {self.ns_lb}, logs in {self.workdir}")
        peers = [("vc", self.ns_client, self.client_addr, self.client_gateway)]
        peers += [(f"v{name}", self.ns_backend[name], addr, self.backend_gateway)
                  for name, addr in BACKENDS]
        with failures_as_test_failure():
            for ns in [self.ns_lb] + [p[1] for p in peers]:
                super().add_namespace(ns)
            # br0 has no address, but the appliance namespace owns 10.99.0.1
            # and the VIP (on l4lbk0): add_bridge turns its ARP off.
            netns.add_bridge(self.ns_lb, "br0")
            for veth, ns, addr, gateway in peers:
                netns.add_veth(self.ns_lb, veth, ns, "eth0", bridge="br0")
                netns.address(ns, "eth0", f"{addr}/{PREFIXLEN}", gateway)
        if self.dnat:
            log(f"topology: dnat layout, client {self.client_addr}/{PREFIXLEN} via {self.client_gateway}, "
                f"backends via {self.backend_gateway}")

    def start_servers(self, kind, port):
        """Start servers/<kind>.py (http_server, tcp_echo, udp_echo) on every backend."""
        script = SERVERS_DIR / f"{kind}.py"
        started = []
        for name, addr in BACKENDS:
            pidfile = self.workdir / f"{kind}-{name}-{port}.pid"
            p = self.spawn(f"{kind}-{name}", self.ns_backend[name],
                           [PY, script, "--bind", addr, "--port", port, "--name", name,
                            "--pidfile", pidfile],
                           logfile=self.workdir / f"{kind}-{name}-{port}.log")
            started.append((p, pidfile))
        deadline = time.monotonic() + 15
        for p, pidfile in started:
            while not pidfile.exists():
                if p.poll() is not None:
                    raise TestFailure(f"{p.label} on port {port} exited with {p.returncode}: "
                                      + self.tail(self.workdir / f"{p.label}-{port}.log", 10))
                if time.monotonic() > deadline:
                    raise TestFailure(f"{p.label} on port {port} not listening after 15 s")
                time.sleep(0.05)
        log(f"servers: {kind} on port {port} in {', '.join(n for n, _ in BACKENDS)}")

    def install_config(self, text, name="l4lb.yaml"):
        """Write config text to WORKDIR/name, replacing any earlier one
        atomically (a reload never reads half a file); returns the path, for
        start_daemon and later reloads."""
        path = self.workdir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return path

    def start_daemon(self, config, ready_timeout=45, lcores=None):
        """Start l4lbd in the appliance namespace, wait for 'l4lbd ready', then
        plug its TAP dp0 into br0. `lcores` like "0,1" (-l) or, to put
        several lcores on one CPU, "0@0,1@1,2@1" (--lcores)."""
        if not L4LBD.exists():
            raise TestFailure(f"{L4LBD} not built")
        self.config = Path(config).resolve()
        if os.environ.get(OLD_KEYS_ENV):
            text = self.config.read_text()
            old = old_keys_config(text)
            if old != text:
                path = self.workdir / f"{self.config.stem}.old-keys.yaml"
                path.write_text(old)
                gone = [k for k in NEW_KEYS if re.search(r"\b" + k + ":", text)]
                log(f"{OLD_KEYS_ENV}: l4lbd runs on {path}, {self.config.name} without {', '.join(gone)}")
                self.config = path
        lcores = lcores or LCORES
        lcore_args = ["--lcores", lcores] if "@" in lcores else ["-l", lcores]
        cmd = [L4LBD, *lcore_args, "--file-prefix", self.prefix, "--no-pci",
               "--vdev", "net_tap0,iface=dp0", "--", "--config", self.config]
        log(f"l4lbd: ip netns exec {self.ns_lb} {' '.join(map(str, cmd))}")
        t0 = time.monotonic()
        # A restart in the same lab appends to the log: only this run's part counts.
        offset = self.daemon_log.stat().st_size if self.daemon_log.exists() else 0
        self.daemon = self.spawn("l4lbd", self.ns_lb, cmd, logfile=self.daemon_log)
        while True:
            text = self.daemon_log.read_bytes()[offset:].decode(errors="replace") if self.daemon_log.exists() else ""
            if DAEMON_READY_LINE in text:
                break
            if self.daemon.poll() is not None:
                raise TestFailure(f"l4lbd exited with {self.daemon.returncode} before '{DAEMON_READY_LINE}'")
            if time.monotonic() - t0 > ready_timeout:
                raise TestFailure(f"no '{DAEMON_READY_LINE}' from l4lbd after {ready_timeout} s")
            time.sleep(0.1)
        log(f"l4lbd: ready after {time.monotonic() - t0:.1f} s (pid {self.daemon.pid})")
        with failures_as_test_failure():
            netns.plug_tap(self.ns_lb, "dp0", "br0")
        if offset:
            # A restarted l4lbd's port has a new MAC: the client's and the
            # backends' neighbour entries still name the old one, which the
            # exception path's kernel would not take for its own.
            for ns in [self.ns_client, *self.ns_backend.values()]:
                run(["ip", "-n", ns, "neigh", "flush", "all"], check=False)

    def stop_daemon(self, timeout=10):
        """SIGTERM l4lbd, wait up to timeout s, then SIGKILL. Returns its exit
        code (negative signal number if killed)."""
        p = self.daemon
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"l4lbd did not exit within {timeout} s of SIGTERM: SIGKILL")
                p.kill()
                p.wait()
        log(f"l4lbd: exited with {p.returncode}")
        return p.returncode

    def down(self):
        """Tear everything down; returns a list of problems (leftovers)."""
        for p in self.children:
            if p.label != "l4lbd" and p.stdin and p.poll() is None:
                try:
                    p.stdin.close()
                except OSError:
                    pass
        self.save()
        problems = teardown(self.state())
        for p in self.children:
            try:
                p.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
            for f in (p.stdout,):
                if f:
                    f.close()
        left = [ns for ns in self.namespaces if netns.exists(ns)]
        if left:
            problems.append(f"namespaces left: {left}")
        if not self.keep_logs and not problems:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    # -- helpers for tests
    def in_client(self, cmd, **kw):
        return run(["ip", "netns", "exec", self.ns_client] + [str(c) for c in cmd], **kw)

    def wait_vip(self, kind="http", port=8080, deadline=20):
        """Poll from the client until VIP:port answers (neighbours are resolved
        only after dp0 is plugged in)."""
        t0 = time.monotonic()
        p = self.in_client([PY, NETCLIENT, "probe", "--kind", kind, "--to", f"{VIP}:{port}",
                            "--deadline", deadline], check=False, timeout=deadline + 15)
        if p.returncode != 0:
            raise TestFailure(f"VIP {VIP}:{port} ({kind}) does not answer: {p.stdout.strip()} {p.stderr.strip()}")
        log(f"vip: {VIP}:{port} ({kind}) answers after {time.monotonic() - t0:.1f} s")

    def curl_many(self, n, url=f"http://{VIP}:8080/"):
        """n curl requests from the client, each its own process/connection.
        Returns (Counter of backend name -> answers, list of failures)."""
        script = ('for i in $(seq "$1"); do '
                  'out=$(curl -sS --noproxy "*" --fail -m 5 "$2" 2>&1); rc=$?; '
                  'if [ $rc -eq 0 ]; then printf "%s\\n" "$out"; '
                  'else printf "ERR rc=%s %s\\n" "$rc" "$(printf %s "$out" | tr "\\n" " ")"; fi; '
                  'done')
        p = self.in_client(["bash", "-c", script, "curl_many", n, url], timeout=30 + n * 6)
        counts, failures = collections.Counter(), []
        for line in p.stdout.splitlines():
            if line.startswith("backend="):
                counts[line.split()[0].split("=", 1)[1]] += 1
            elif line.strip():
                failures.append(line.strip())
        return counts, failures

    def stats(self):
        """l4lbctl stats --json -> dict (raises TestFailure if unavailable)."""
        if not L4LBCTL.exists():
            raise TestFailure(f"{L4LBCTL} does not exist")
        p = run([L4LBCTL, "--file-prefix", self.prefix, "stats", "--json"], check=False, timeout=15)
        if p.returncode != 0:
            raise TestFailure(f"l4lbctl stats failed ({p.returncode}): {p.stderr.strip()[-500:]}")
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise TestFailure(f"l4lbctl stats --json printed no JSON: {p.stdout[:300]!r}") from e

    def print_stats(self):
        """Print the total counters, best effort (for the record)."""
        try:
            t = self.stats()["total"]
        except (TestFailure, KeyError, TypeError) as e:
            log(f"stats: unavailable ({str(e).splitlines()[0]})")
            return
        keys = ["rx_packets", "tx_packets", "forward_packets", "reverse_packets",
                "slow_path_packets", "flows_created", "flows_expired", "flows_closed",
                "flows_active"]
        log("stats: " + " ".join(f"{k}={t.get(k)}" for k in keys))
        drops = {k: v for k, v in (t.get("drops") or {}).items() if v}
        log(f"stats: drops {drops if drops else 'none'}")

    @staticmethod
    def tail(path, n=40):
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    # -- helpers for the health, reload, drain, metrics and pdump tests
    def start_server(self, kind, port, on, name=None, addr=None, extra=()):
        """Start one servers/<kind>.py in backend namespace `on` (b1, b2, b3),
        bound to addr (default: that backend's address), answering as `name`
        (default: on), with extra arguments; wait until it listens. Used to
        restart a killed server or to add one on another port. Returns its
        Popen (pid = the server's pid)."""
        name = name or on
        addr = addr or dict(BACKENDS)[on]
        pidfile = self.workdir / f"{kind}-{name}-{port}.pid"
        pidfile.unlink(missing_ok=True)   # a killed server leaves its file
        logfile = self.workdir / f"{kind}-{name}-{port}.log"
        p = self.spawn(f"{kind}-{name}", self.ns_backend[on],
                       [PY, SERVERS_DIR / f"{kind}.py", "--bind", addr, "--port", port,
                        "--name", name, "--pidfile", pidfile, *extra], logfile=logfile)
        deadline = time.monotonic() + 15
        while not pidfile.exists():
            if p.poll() is not None:
                raise TestFailure(f"{kind} {name} on {addr}:{port} exited with {p.returncode}: "
                                  + self.tail(logfile, 10))
            if time.monotonic() > deadline:
                raise TestFailure(f"{kind} {name} on {addr}:{port} not listening after 15 s")
            time.sleep(0.05)
        return p

    def server_pid(self, kind, name, port):
        """pid of the server start_servers/start_server started (from its pid file)."""
        return int((self.workdir / f"{kind}-{name}-{port}.pid").read_text())

    def ctl(self, *args, check=True, timeout=15):
        """Run tools/l4lbctl --file-prefix <ours> ARGS; returns the CompletedProcess."""
        return run([L4LBCTL, "--file-prefix", self.prefix, *args], check=check, timeout=timeout)

    def backends(self, vip=None):
        """l4lbctl backends [VIP] --json -> list of row dicts."""
        p = self.ctl("backends", *([vip] if vip else []), "--json")
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise TestFailure(f"l4lbctl backends --json printed no JSON: {p.stdout[:300]!r}") from e

    def vips(self):
        """l4lbctl vips --json -> list of row dicts."""
        p = self.ctl("vips", "--json")
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise TestFailure(f"l4lbctl vips --json printed no JSON: {p.stdout[:300]!r}") from e

    def metrics(self, listen="127.0.0.1:9100", timeout=10):
        """GET /metrics from inside the appliance namespace -> text."""
        p = run(["ip", "netns", "exec", self.ns_lb, "curl", "-sS", "--noproxy", "*", "--fail",
                 "-m", timeout, f"http://{listen}/metrics"], check=False, timeout=timeout + 5)
        if p.returncode != 0:
            raise TestFailure(f"GET http://{listen}/metrics failed ({p.returncode}): {p.stderr.strip()}")
        return p.stdout

    def wait_backends_up(self, vip, deadline=15):
        """Poll l4lbctl until every backend of `vip` is up (health probes need
        `rise` successes); return the rows, or raise with the last ones."""
        t_end = time.monotonic() + deadline
        while True:
            rows = self.backends(vip)
            if rows and all(r["state"] == "up" for r in rows):
                return rows
            if time.monotonic() > t_end:
                raise TestFailure(f"not every backend of {vip} up after {deadline} s: "
                                  + ", ".join(f"{r['backend']} {r['state']} ({r.get('last_error')})"
                                              for r in rows))
            time.sleep(0.1)

    def finish(self, problems):
        """The common end of a test body: print the counters, stop l4lbd
        (a hang or a non-zero exit is one more problem), and fail with every
        problem collected."""
        self.print_stats()
        try:
            self.stop_daemon_checked()
        except TestFailure as e:
            problems.append(str(e))
        if problems:
            raise TestFailure("; ".join(problems))

    def stop_daemon_checked(self, timeout=10):
        """SIGTERM l4lbd and require exit code 0 within timeout s. If it hangs,
        first log what each of its threads is doing (state, kernel wait
        channel and stack, gdb backtraces when gdb is installed), then let
        stop_daemon SIGKILL it; raises TestFailure unless it exited with 0."""
        p = self.daemon
        if p is None or p.poll() is not None:
            rc = self.stop_daemon()
        else:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"l4lbd (pid {p.pid}) still running {timeout} s after SIGTERM; its threads:")
                for task in sorted(glob.glob(f"/proc/{p.pid}/task/*")):
                    def read(name, task=task):
                        try:
                            return Path(task, name).read_text(errors="replace").strip()
                        except OSError as e:
                            return f"({e.strerror})"
                    state = read("stat").rsplit(")", 1)[-1].split()[:1]
                    log(f"  tid {Path(task).name} {read('comm')} state {state} wchan {read('wchan')}")
                    for line in read("stack").splitlines()[:12]:
                        log(f"      {line}")
                if shutil.which("gdb"):
                    g = run(["gdb", "-p", p.pid, "-batch", "-ex", "thread apply all bt 25"],
                            check=False, timeout=60)
                    log("\n".join(line for line in g.stdout.splitlines()
                                  if line.startswith(("Thread", "#"))))
            rc = self.stop_daemon(timeout=1)
        if rc != 0:
            raise TestFailure(f"l4lbd exited with {rc} after SIGTERM, expected 0")
        return rc


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
             dnat=False, lcores=None):
    """Build the topology, start servers [(kind, port)], l4lbd with config and
    wait for probe=(kind, port) to answer; run body(lab); stop l4lbd and
    require exit code 0; tear down. With topology=False, just run body(None).
    dnat=True builds the routed DNAT layout (Lab(dnat=True)); lcores is passed
    to start_daemon (e.g. "0@0,1@1,2@1" for two workers on 2 CPUs).
    Prints PASS/FAIL as the last line and exits 0/1."""
    install_signal_handlers()
    signal.alarm(timeout)
    lab, reason = None, None
    t0 = time.monotonic()
    try:
        if topology:
            require_root()
            lab = Lab(kind="test", label=name, dnat=dnat)
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
            if lab.daemon is not None:
                log(f"---- tail of l4lbd log ({lab.daemon_log}) ----")
                log(lab.tail(lab.daemon_log, 40))
                log("---- end of l4lbd log ----")
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



# ---------------------------------------------------------------- line sessions

class LineSession:
    """A helper process in the client namespace driven one line at a time over
    stdin/stdout, e.g. `netclient.py tcp-session` (one long-lived connection):
    expect() returns its next output line, ask(line) sends a line and returns
    the answer. Started through lab.spawn, so teardown stops it."""

    def __init__(self, lab, label, cmd):
        import queue
        import threading
        self.label = label
        self.proc = lab.spawn(label, lab.ns_client, cmd, pipes=True)
        self.lines = queue.Queue()
        self._empty = queue.Empty
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, timeout=10):
        try:
            line = self.lines.get(timeout=timeout)
        except self._empty:
            raise TestFailure(f"{self.label}: helper silent for {timeout} s") from None
        if line is None:
            self.lines.put(None)
            raise TestFailure(f"{self.label}: helper exited ({self.proc.poll()})")
        return line

    def ask(self, line, timeout=10):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except OSError as e:
            raise TestFailure(f"{self.label}: helper gone ({e})") from None
        return self.expect(timeout)

    def close(self):
        """Best effort: ask the helper to close its connection and exit."""
        try:
            self.proc.stdin.write("close\n")
            self.proc.stdin.flush()
            self.expect(5)
        except (OSError, TestFailure):
            pass



def tcp_session(lab, label="tcp-session", port=7):
    """A LineSession on one long-lived TCP connection from the client to
    VIP:port (`netclient.py tcp-session`, usually to the tcp_echo servers):
    its first line is "connected LOCALPORT" or why not; ask("send TEXT")
    answers "ok ..." while the connection works."""
    return LineSession(lab, label, [PY, NETCLIENT, "tcp-session", "--to", f"{VIP}:{port}"])


WrkResult = collections.namedtuple("WrkResult", "rc requests rps errors non2xx")


def wrk_result(rc, out):
    """What a wrk run printed (its exit code rc, its output out): requests
    completed, requests/s, socket errors by kind ({} when it printed none)
    and non-2xx/3xx answers."""
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    requests = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(m.group(1)) if m else 0.0
    return WrkResult(rc, requests, rps, errors, non2xx)


def wrk_problems(w, seconds, at_least=100):
    """A wrk run through the VIP must exit 0 with no socket error, no
    non-2xx/3xx answer and at least `at_least` requests in its `seconds`."""
    problems = []
    if w.rc != 0:
        problems.append(f"wrk exited with {w.rc}")
    if any(w.errors.values()):
        problems.append(f"wrk socket errors {w.errors}")
    if w.non2xx:
        problems.append(f"wrk: {w.non2xx} non-2xx/3xx responses")
    if w.requests < at_least:
        problems.append(f"wrk: only {w.requests} requests completed in {seconds:g} s")
    return problems


CurlResult = collections.namedtuple("CurlResult", "start end ok backend text")


class CurlLoop:
    """Load generator: curl after curl (each its own connection, so each a new
    flow) from the client namespace until stop(), with short timeouts. Every
    request is recorded with wall-clock (time.time()) start and end, so a test
    can count failures before and after an event it timed."""

    SCRIPT = ('while [ ! -e "$1" ]; do t0=$EPOCHREALTIME; '
              'out=$(curl -sS --noproxy "*" --fail --connect-timeout "$3" -m "$4" "$2" 2>&1); rc=$?; '
              'printf "%s %s %s %s\\n" "$t0" "$EPOCHREALTIME" "$rc" "$(printf %s "$out" | tr "\\n" " ")"; '
              'done')

    def __init__(self, lab, url=f"http://{VIP}:8080/", connect_timeout=1, max_time=2, label="curl-loop"):
        self.stopfile = lab.workdir / f"{label}.stop"
        self.logfile = lab.workdir / f"{label}.log"
        self.stopfile.unlink(missing_ok=True)
        self.proc = lab.spawn(label, lab.ns_client,
                              ["bash", "-c", self.SCRIPT, label, self.stopfile, url,
                               connect_timeout, max_time], logfile=self.logfile)
        self.max_time = max_time

    def results(self):
        """The requests finished so far (CurlResult; backend is b1.. or None)."""
        out = []
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return out
        for line in text.splitlines():
            parts = line.split(" ", 3)
            if len(parts) < 3:
                continue
            try:
                start, end, rc = float(parts[0]), float(parts[1]), int(parts[2])
            except ValueError:
                continue
            body = parts[3] if len(parts) > 3 else ""
            backend = None
            if rc == 0 and body.startswith("backend="):
                backend = body.split()[0].split("=", 1)[1]
            out.append(CurlResult(start, end, rc == 0 and backend is not None, backend,
                                  body if rc == 0 else f"rc={rc} {body}"))
        return out

    def stop(self):
        """Let the request in flight finish, stop the loop; return results()."""
        self.stopfile.touch()
        try:
            self.proc.wait(self.max_time + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.results()


if __name__ == "__main__":
    sys.exit(main())
