"""tools/bench's lab: the processes, network namespace, memif sockets and
hugepages of one benchmark run, and their removal.

Everything a run creates is recorded in /run/l4lb-bench/SFX.json (namespace,
pids with their start times, DPDK file prefixes, socket directory) before it is
created, so that `tools/bench --clean` (and every later run) can remove what an
interrupted run left behind, and nothing else.
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

STATE_DIR = Path("/run/l4lb-bench")
DPDK_RUN_DIR = Path("/var/run/dpdk")
HUGEPAGE_DIR = Path("/dev/hugepages")
HUGEPAGE_POOL = Path("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")
PAGE_BYTES = 2 * 1024 * 1024


def log(msg=""):
    print(msg, flush=True)


# ---------------------------------------------------------------- processes

# proc_start_time, alive, signal_pid, reap, wait_dead
from l4lb_procs import alive, proc_start_time, reap, signal_pid, wait_dead  # noqa: E402,F401


def thread_states(pid):
    """One line per thread of pid: name, state, kernel wait channel and the
    top of its kernel stack (for reports on a process that does not stop)."""
    out = []
    for task in sorted(glob.glob(f"/proc/{pid}/task/*")):
        def read(name):
            try:
                return Path(task, name).read_text().strip()
            except OSError:
                return "?"
        state = read("stat").rsplit(")", 1)[-1].split()[0] if read("stat") != "?" else "?"
        stack = " <- ".join(line.split()[-1] for line in read("stack").splitlines()[:4])
        out.append(f"{read('comm')} state={state} wchan={read('wchan')} {stack}".strip())
    return out


def run(cmd, check=True, timeout=60):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\n"
                           f"{p.stdout.strip()}\n{p.stderr.strip()}".rstrip())
    return p


# ---------------------------------------------------------------- hugepages

def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def hugepages_free():
    return meminfo().get("HugePages_Free", 0)


def ensure_hugepages_free(pages):
    """Make at least `pages` 2 MiB pages free by growing the pool, never by
    more than half of MemAvailable. Returns (free pages now, pool size before
    or None if we did not touch it)."""
    free = hugepages_free()
    if free >= pages:
        return free, None
    try:
        before = int(HUGEPAGE_POOL.read_text())
    except OSError:
        return free, None
    grow = pages - free
    avail_pages = meminfo().get("MemAvailable", 0) * 1024 // PAGE_BYTES
    grow = min(grow, max(0, avail_pages // 2))
    if grow <= 0:
        return free, None
    try:
        HUGEPAGE_POOL.write_text(str(before + grow))
    except OSError:
        return hugepages_free(), None
    return hugepages_free(), before


def restore_hugepages(before):
    """Shrink the pool back to `before` pages (the kernel keeps pages in use)."""
    if before is None:
        return
    try:
        HUGEPAGE_POOL.write_text(str(before))
    except OSError:
        pass


def remove_dpdk_files(prefix):
    shutil.rmtree(DPDK_RUN_DIR / prefix, ignore_errors=True)
    for f in glob.glob(str(HUGEPAGE_DIR / f"{prefix}map_*")):
        try:
            os.unlink(f)
        except OSError:
            pass


# ---------------------------------------------------------------- the run

class Proc:
    """A child process in its own session, its log file, and its start time."""

    def __init__(self, label, popen, logfile, prefix=None):
        self.label = label
        self.popen = popen
        self.pid = popen.pid
        self.logfile = logfile
        self.prefix = prefix
        self.start = None
        for _ in range(100):
            self.start = proc_start_time(self.pid)
            if self.start is not None or popen.poll() is not None:
                break
            time.sleep(0.01)

    def running(self):
        return self.popen.poll() is None

    def log_text(self):
        try:
            return Path(self.logfile).read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n=30):
        lines = self.log_text().splitlines()
        return "\n".join(lines[-n:])

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal, wait, SIGKILL if needed. Returns the exit code (negative:
        killed by that signal; None: not even SIGKILL ended it within 60 s).
        When it has to SIGKILL, self.hung holds what its threads were doing."""
        self.hung = None
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.hung = thread_states(self.pid)
                self.popen.kill()
                try:
                    self.popen.wait(60)
                except subprocess.TimeoutExpired:
                    return None
        return self.popen.returncode


class BenchRun:
    def __init__(self):
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self.sfx = self._reserve_suffix()
        self.netns = f"l4lb-bench-{self.sfx}"
        self.sock_dir = STATE_DIR / self.sfx
        self.namespaces = []
        self.prefixes = []
        self.procs = []
        self.pool_before = None
        self.save()

    def _reserve_suffix(self):
        for _ in range(100):
            sfx = f"{random.randrange(16**4):04x}"
            if Path(f"/run/netns/l4lb-bench-{sfx}").exists():
                continue
            try:
                fd = os.open(STATE_DIR / f"{sfx}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue
            os.close(fd)
            return sfx
        raise RuntimeError("could not find a free run suffix")

    def state(self):
        return {
            "sfx": self.sfx, "owner_pid": os.getpid(), "owner_start": proc_start_time(os.getpid()),
            "namespaces": self.namespaces, "prefixes": self.prefixes, "sock_dir": str(self.sock_dir),
            "pool_before": self.pool_before,
            "pids": [{"pid": p.pid, "start": p.start, "label": p.label} for p in self.procs],
        }

    def save(self):
        path = STATE_DIR / f"{self.sfx}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state(), indent=1))
        os.replace(tmp, path)

    def prefix(self, role):
        p = f"l4lb-bench-{self.sfx}-{role}"
        if p not in self.prefixes:
            self.prefixes.append(p)
            self.save()
        return p

    def up(self):
        self.namespaces.append(self.netns)
        self.save()
        run(["ip", "netns", "add", self.netns])
        run(["ip", "netns", "exec", self.netns, "sysctl", "-q", "-w",
             "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        self.sock_dir.mkdir(parents=True, exist_ok=True)

    def spawn(self, label, cmd, logfile, netns=None, prefix=None, stderr_pipe=False):
        argv = (["ip", "netns", "exec", netns] if netns else []) + [str(c) for c in cmd]
        out = open(logfile, "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.PIPE if stderr_pipe else subprocess.STDOUT,
                             start_new_session=True)
        out.close()
        proc = Proc(label, p, logfile, prefix)
        self.procs.append(proc)
        self.save()
        return proc

    def finished(self, proc):
        """Forget a process that has exited and remove its DPDK files."""
        if proc.running():
            return
        if proc.prefix:
            remove_dpdk_files(proc.prefix)
        self.procs = [p for p in self.procs if p is not proc]
        self.save()

    def down(self):
        """Remove everything; returns a list of problems."""
        for p in list(self.procs):
            p.stop(signal.SIGTERM, timeout=10)
        problems = teardown(self.state())
        return problems


def teardown(state):
    problems = []
    procs = [(p["pid"], p["start"]) for p in state.get("pids", [])]
    for pid, start in procs:
        signal_pid(pid, start, signal.SIGTERM)
    for pid, start in wait_dead(procs, 10):
        signal_pid(pid, start, signal.SIGKILL)
    wait_dead(procs, 5)
    for ns in state.get("namespaces", []):
        if not Path(f"/run/netns/{ns}").exists():
            continue
        p = run(["ip", "netns", "pids", ns], check=False)
        stray = [int(x) for x in p.stdout.split() if x.isdigit()]
        for pid in stray:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if stray:
            wait_dead([(pid, proc_start_time(pid)) for pid in stray], 3)
        p = run(["ip", "netns", "del", ns], check=False)
        if p.returncode != 0:
            problems.append(f"ip netns del {ns}: {p.stderr.strip()}")
    for prefix in state.get("prefixes", []):
        remove_dpdk_files(prefix)
    if state.get("sock_dir"):
        shutil.rmtree(state["sock_dir"], ignore_errors=True)
    restore_hugepages(state.get("pool_before"))
    for pid, start in procs:
        if alive(pid, start):
            problems.append(f"process {pid} survived SIGKILL")
    if not problems:
        try:
            (STATE_DIR / f"{state['sfx']}.json").unlink()
        except FileNotFoundError:
            pass
    return problems


def clean_stale(quiet=False):
    """Tear down recorded runs whose owner process is gone."""
    n = 0
    for path in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.exists() else []:
        try:
            st = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if alive(st.get("owner_pid", 0), st.get("owner_start")):
            continue
        if not quiet:
            log(f"cleaning an interrupted bench run {st.get('sfx')} "
                f"(namespaces {', '.join(st.get('namespaces', [])) or 'none'})")
        for problem in teardown(st):
            log(f"  problem: {problem}")
        n += 1
    return n
