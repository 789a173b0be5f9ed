"""The e2e topology (l4lb_e2e.py's module docstring draws it): namespaces,
bridge, veths, backend servers and one l4lbd, recorded so that teardown
works from the record alone. Tests reach it as l4lb_e2e.Lab."""
import collections
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import netns
from l4lb_e2e import (BACKENDS, CLIENT_ADDR, DAEMON_READY_LINE, DNAT_BACKEND_GATEWAY, DNAT_CLIENT_ADDR,
                      DNAT_CLIENT_GATEWAY, L4LBCTL, L4LBD, LCORES, NETCLIENT, NEW_KEYS, OLD_KEYS_ENV, PREFIXLEN,
                      PY, SERVERS_DIR, STATE_DIR, VIP, TestFailure, failures_as_test_failure, log,
                      old_keys_config, run, teardown)


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

    def log_failure(self):
        """After a failed test, before teardown: the tail of l4lbd's log."""
        if self.daemon_log.exists():
            log(f"---- tail of l4lbd log ({self.daemon_log}) ----")
            log(self.tail(self.daemon_log, 40))
            log("---- end of l4lbd log ----")

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
