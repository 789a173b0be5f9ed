"""Network namespaces, the links between them and the processes run inside
them: shared by the e2e harness (tests/e2e/l4lb_e2e.py) and the benchmark
lab (tools/lib/bench_lab.py).

A run (Run) writes down what it is about to create in a state file under its
own directory (/run/l4lb-e2e, /run/l4lb-bench) before creating it: the
namespaces, the processes with their start times (a pid can be reused), the
DPDK file prefixes. teardown() works from that record alone, so a later run,
`tools/demo --clean` or `tools/bench --clean` can remove what an interrupted
run left, and nothing that belongs to anyone else.

Every function here needs root (ip netns, sysctl inside namespaces).
"""
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

from l4lb_procs import alive, proc_start_time, signal_pid, wait_dead

DPDK_RUN_DIR = Path("/var/run/dpdk")
HUGEPAGE_DIR = Path("/dev/hugepages")
NETNS_DIR = Path("/run/netns")

# A process stopped by teardown gets this long after SIGTERM before SIGKILL:
# patient ones (a DPDK process releasing its port and hugepages) longer.
PATIENT_STOP_S, OTHER_STOP_S = 10, 3


class CommandFailed(RuntimeError):
    """A command exited non-zero or timed out; the message has its output."""


def run(cmd, check=True, timeout=60, input=None):
    """Run cmd (any items, made strings), capture its output as text. With
    check, a non-zero exit or a timeout raises CommandFailed."""
    argv = [str(c) for c in cmd]
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                           stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise CommandFailed(f"command timed out after {timeout}s: {' '.join(argv)}") from e
    if check and p.returncode != 0:
        raise CommandFailed(f"command failed ({p.returncode}): {' '.join(argv)}\n"
                            f"{p.stdout.strip()}\n{p.stderr.strip()}".rstrip())
    return p


# ---------------------------------------------------------------- namespaces and links

def exists(ns):
    return (NETNS_DIR / ns).exists()


def inside(ns, cmd):
    """The argv that runs cmd inside namespace ns (ns None: here)."""
    return (["ip", "netns", "exec", ns] if ns else []) + [str(c) for c in cmd]


def sysctl(ns, *settings):
    """Set sysctls ("net.ipv4.ip_forward=1", ...) inside namespace ns."""
    run(inside(ns, ["sysctl", "-q", "-w", *settings]))


def add(ns):
    """Create namespace ns with lo up and no IPv6 (new interfaces inherit
    "default", so none of them gets IPv6 either: no router solicitations or
    DAD in captures and counters)."""
    run(["ip", "netns", "add", ns])
    sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    run(["ip", "-n", ns, "link", "set", "lo", "up"])


def add_bridge(ns, name):
    """A bridge that forwards at once (no STP, no forwarding delay), up, with
    ARP off: it has no address, and with ARP on it would answer for the
    addresses its namespace owns on other interfaces and steal their traffic."""
    run(["ip", "-n", ns, "link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
    run(["ip", "-n", ns, "link", "set", name, "arp", "off", "up"])
    sysctl(ns, f"net.ipv4.conf.{name}.arp_ignore=8")


def add_veth(ns, name, peer_ns, peer_name="eth0", bridge=None):
    """A veth pair: `name` in ns, `peer_name` in peer_ns. With bridge, `name`
    becomes a port of that bridge in ns and is set up; the peer stays down
    until address() configures it."""
    run(["ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", peer_name, "netns", peer_ns])
    if bridge:
        run(["ip", "-n", ns, "link", "set", name, "master", bridge, "up"])


def address(ns, dev, cidr, gateway=None):
    """Give dev in ns the address cidr ("10.99.0.10/24"), set it up, and
    route everything else via gateway if one is given."""
    run(["ip", "-n", ns, "addr", "add", cidr, "dev", dev])
    run(["ip", "-n", ns, "link", "set", dev, "up"])
    if gateway:
        run(["ip", "-n", ns, "route", "add", "default", "via", gateway, "dev", dev])


def plug_tap(ns, dev, bridge):
    """Make the kernel side of a DPDK TAP port (dev, in ns) a port of bridge.
    The TAP PMD gives its kernel side the port's own MAC; as a bridge port
    that MAC would become a "local" fdb entry and frames for the DPDK
    process would stop at the bridge instead of entering the TAP. What MAC
    the kernel side has does not matter to what the PMD receives, so it gets
    a random local one (and no ARP of its own) first."""
    if run(["ip", "-n", ns, "link", "show", dev], check=False).returncode != 0:
        raise CommandFailed(f"there is no {dev} interface in {ns}")
    mac = "02:1b:%02x:%02x:%02x:%02x" % tuple(random.randrange(256) for _ in range(4))
    run(["ip", "-n", ns, "link", "set", dev, "address", mac, "arp", "off"])
    sysctl(ns, f"net.ipv4.conf.{dev}.arp_ignore=8")
    run(["ip", "-n", ns, "link", "set", dev, "master", bridge, "up"])


def kill_strays(ns):
    """SIGKILL whatever still runs inside namespace ns (in a namespace of our
    own, we started it) and wait for it; returns the pids."""
    if not exists(ns):
        return []
    p = run(["ip", "netns", "pids", ns], check=False)
    stray = [int(x) for x in p.stdout.split() if x.isdigit()]
    for pid in stray:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if stray:
        wait_dead([(pid, proc_start_time(pid)) for pid in stray], 3)
    return stray


def delete(ns):
    """Delete namespace ns (its links go with it); returns a problem or None."""
    if not exists(ns):
        return None
    p = run(["ip", "netns", "del", ns], check=False)
    return f"ip netns del {ns}: {p.stderr.strip()}" if p.returncode != 0 else None


def remove_dpdk_files(prefix):
    """The runtime directory and hugepage files of a DPDK --file-prefix, which
    a process killed by SIGKILL leaves behind."""
    shutil.rmtree(DPDK_RUN_DIR / prefix, ignore_errors=True)
    for f in glob.glob(str(HUGEPAGE_DIR / f"{prefix}map_*")):
        try:
            os.unlink(f)
        except OSError:
            pass


# ---------------------------------------------------------------- processes

def start(label, cmd, ns=None, logfile=None, pipes=False, stderr_pipe=False):
    """Start cmd (inside ns if given) in a session of its own, so that a
    terminal's Ctrl-C reaches only the harness, which then stops it. Output
    goes to logfile (appended), or with pipes=True to text pipes on
    stdin/stdout (stderr joined); stderr_pipe=True keeps stderr a separate
    byte pipe beside the log. Returns the Popen with .label and .start (its
    start time, None if it died at once). `ip netns exec` execs the
    command, so the pid is the command's own."""
    argv = inside(ns, cmd)
    if pipes:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
    else:
        out = open(logfile, "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.PIPE if stderr_pipe else subprocess.STDOUT,
                             start_new_session=True)
        out.close()
    p.label = label
    p.start = None
    for _ in range(100):
        p.start = proc_start_time(p.pid)
        if p.start is not None or p.poll() is not None:
            break
        time.sleep(0.01)
    return p


# ---------------------------------------------------------------- runs and their records

class Run:
    """What one run created, recorded in STATE_DIR/SFX.json before each part
    is created. Subclasses add their own fields to state() and call save()
    once their attributes exist."""

    def __init__(self, state_dir, names_for):
        """names_for(sfx): the namespaces a run with that suffix would create;
        a suffix is taken while any of them exists or its state file does."""
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.sfx = self._reserve_suffix(names_for)
        self.namespaces = []
        self.prefixes = []
        self.children = []      # Popen objects from start_process(), with .label and .start

    def _reserve_suffix(self, names_for):
        for _ in range(100):
            sfx = f"{random.randrange(16**4):04x}"
            if any(exists(ns) for ns in names_for(sfx)):
                continue
            try:
                fd = os.open(state_file(self.state_dir, sfx), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue
            os.close(fd)
            return sfx
        raise RuntimeError("could not find a free run suffix")

    def state(self):
        return {
            "sfx": self.sfx, "owner_pid": os.getpid(), "owner_start": proc_start_time(os.getpid()),
            "namespaces": self.namespaces, "prefixes": self.prefixes,
            "pids": [{"pid": p.pid, "start": p.start, "label": p.label} for p in self.children],
        }

    def save(self):
        path = state_file(self.state_dir, self.sfx)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state(), indent=1))
        os.replace(tmp, path)

    def add_namespace(self, ns):
        """Create namespace ns (see add()), recorded first: teardown skips
        the ones that do not exist."""
        self.namespaces.append(ns)
        self.save()
        add(ns)

    def add_prefix(self, prefix):
        if prefix not in self.prefixes:
            self.prefixes.append(prefix)
            self.save()
        return prefix

    def start_process(self, label, cmd, ns=None, logfile=None, pipes=False, stderr_pipe=False):
        """start() a process and record it, so teardown stops it."""
        p = start(label, cmd, ns=ns, logfile=logfile, pipes=pipes, stderr_pipe=stderr_pipe)
        self.children.append(p)
        self.save()
        return p

    def forget(self, popen):
        """Drop an exited process from the record (its pid may be reused)."""
        self.children = [p for p in self.children if p is not popen]
        self.save()


def state_file(state_dir, sfx):
    return Path(state_dir) / f"{sfx}.json"


def load_records(state_dir):
    """Every run recorded under state_dir, oldest suffix first."""
    states = []
    for path in sorted(Path(state_dir).glob("*.json")) if Path(state_dir).exists() else []:
        try:
            states.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return states


def owner_alive(state):
    return alive(state.get("owner_pid", 0), state.get("owner_start"))


def teardown(state, state_dir, patient=lambda label: label == "l4lbd", say=None, cleanup=None):
    """Remove everything a run recorded: its processes (the patient ones first,
    SIGTERM, then SIGKILL), anything else still inside its namespaces, the
    namespaces, the DPDK files of its prefixes once none of its processes
    lives, then cleanup(state) if given, and last the state file. Returns
    the problems found (empty when everything went away; the state file
    stays otherwise, so a later clean-up tries again)."""
    say = say or (lambda msg: None)
    procs = state.get("pids", [])
    first = [(p["pid"], p["start"]) for p in procs if patient(p["label"])]
    rest = [(p["pid"], p["start"]) for p in procs if not patient(p["label"])]
    for group, grace in ((first, PATIENT_STOP_S), (rest, OTHER_STOP_S)):
        for pid, start_time in group:
            signal_pid(pid, start_time, signal.SIGTERM)
        survivors = wait_dead(group, grace)
        if survivors:
            labels = sorted({p["label"] for p in procs if (p["pid"], p["start"]) in survivors})
            say(f"{', '.join(labels)} did not stop within {grace} s of SIGTERM: SIGKILL")
        for pid, start_time in survivors:
            signal_pid(pid, start_time, signal.SIGKILL)
        wait_dead(survivors, 5)
    problems = []
    for ns in state.get("namespaces", []):
        stray = kill_strays(ns)
        if stray:
            say(f"killed stray processes in {ns}: {stray}")
        problem = delete(ns)
        if problem:
            problems.append(problem)
    everyone = first + rest
    # Records written before the prefixes list held a single "prefix".
    prefixes = state.get("prefixes") or ([state["prefix"]] if state.get("prefix") else [])
    if not any(alive(pid, start_time) for pid, start_time in everyone):
        for prefix in prefixes:
            remove_dpdk_files(prefix)
    if cleanup:
        cleanup(state)
    for pid, start_time in everyone:
        if alive(pid, start_time):
            problems.append(f"process {pid} survived SIGKILL")
    if not problems:
        state_file(state_dir, state["sfx"]).unlink(missing_ok=True)
    return problems
