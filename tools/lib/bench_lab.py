"""tools/bench's lab: the processes, network namespace, memif sockets and
hugepages of one benchmark run, and their removal.

Everything a run creates is recorded in /run/l4lb-bench/SFX.json (namespace,
pids with their start times, DPDK file prefixes, socket directory) before it is
created, so that `tools/bench --clean` (and every later run) can remove what an
interrupted run left behind, and nothing else.
"""
import glob
import shutil
import signal
import subprocess
from pathlib import Path

import netns
from netns import remove_dpdk_files

STATE_DIR = Path("/run/l4lb-bench")
HUGEPAGE_POOL = Path("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")
PAGE_BYTES = 2 * 1024 * 1024


def log(msg=""):
    print(msg, flush=True)


# ---------------------------------------------------------------- processes

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


# ---------------------------------------------------------------- the run

class Proc:
    """A child process in its own session, its log file, and its start time."""

    def __init__(self, label, popen, logfile, prefix=None):
        self.label = label
        self.popen = popen
        self.pid = popen.pid
        self.start = popen.start
        self.logfile = logfile
        self.prefix = prefix

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


class BenchRun(netns.Run):
    """One benchmark run: a namespace for the DUT, memif sockets, DPDK prefixes
    and processes, and the hugepage pool size to go back to."""

    def __init__(self):
        super().__init__(STATE_DIR, lambda sfx: (f"l4lb-bench-{sfx}",))
        self.netns = f"l4lb-bench-{self.sfx}"
        self.sock_dir = STATE_DIR / self.sfx
        self.procs = []
        self.pool_before = None
        self.save()

    def state(self):
        return super().state() | {"sock_dir": str(self.sock_dir), "pool_before": self.pool_before}

    def prefix(self, role):
        return self.add_prefix(f"l4lb-bench-{self.sfx}-{role}")

    def up(self):
        self.add_namespace(self.netns)
        self.sock_dir.mkdir(parents=True, exist_ok=True)

    def spawn(self, label, cmd, logfile, netns=None, prefix=None, stderr_pipe=False):
        popen = self.start_process(label, cmd, ns=netns, logfile=logfile, stderr_pipe=stderr_pipe)
        proc = Proc(label, popen, logfile, prefix)
        self.procs.append(proc)
        return proc

    def finished(self, proc):
        """Forget a process that has exited and remove its DPDK files."""
        if proc.running():
            return
        if proc.prefix:
            remove_dpdk_files(proc.prefix)
        self.procs = [p for p in self.procs if p is not proc]
        self.forget(proc.popen)

    def down(self):
        """Remove everything; returns a list of problems."""
        for p in list(self.procs):
            p.stop(signal.SIGTERM, timeout=10)
        return teardown(self.state())


def _remove_sockets_and_pages(state):
    if state.get("sock_dir"):
        shutil.rmtree(state["sock_dir"], ignore_errors=True)
    restore_hugepages(state.get("pool_before"))


def teardown(state):
    """Remove what a run recorded (netns.teardown: every process gets 10 s
    after SIGTERM, DPDK processes all), its memif sockets, and give the
    hugepages it added back."""
    return netns.teardown(state, STATE_DIR, patient=lambda _label: True, cleanup=_remove_sockets_and_pages)


def clean_stale(quiet=False):
    """Tear down recorded runs whose owner process is gone."""
    n = 0
    for st in netns.load_records(STATE_DIR):
        if netns.owner_alive(st):
            continue
        if not quiet:
            log(f"cleaning an interrupted bench run {st.get('sfx')} "
                f"(namespaces {', '.join(st.get('namespaces', [])) or 'none'})")
        for problem in teardown(st):
            log(f"  problem: {problem}")
        n += 1
    return n
