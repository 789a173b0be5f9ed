"""Processes the test and bench harnesses start: recognise them by pid and
start time (a pid can be reused), signal, reap and wait for them. Shared by
tests/e2e/l4lb_e2e.py and tools/lib/bench_lab.py."""
import os
import time


def proc_start_time(pid):
    """Start time (clock ticks since boot) of a live, non-zombie pid, else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    rest = stat.rsplit(")", 1)[1].split()
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[19])


def alive(pid, start):
    return start is not None and proc_start_time(pid) == start


def signal_pid(pid, start, sig):
    if alive(pid, start):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_dead(procs, timeout):
    """procs: list of (pid, start). Wait until none is alive; return survivors."""
    deadline = time.monotonic() + timeout
    while True:
        for pid, _ in procs:
            reap(pid)
        left = [(p, s) for p, s in procs if alive(p, s)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)
