"""Client-side helpers of the e2e tests: a line-driven helper process
(LineSession, tcp_session), wrk's output (wrk_result, wrk_problems) and a
curl loop with per-request times (CurlLoop). Tests reach them through
l4lb_e2e."""
import collections
import re
import subprocess

from l4lb_e2e import NETCLIENT, PY, VIP, TestFailure


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



def tcp_session(lab, label="tcp-session", port=7, to=None):
    """A LineSession on one long-lived TCP connection from the client to
    VIP:port, or to `to` (ADDR:PORT) (`netclient.py tcp-session`, usually to
    the tcp_echo servers): its first line is "connected LOCALPORT" or why
    not; ask("send TEXT") answers "ok ..." while the connection works."""
    return LineSession(lab, label, [PY, NETCLIENT, "tcp-session", "--to", to or f"{VIP}:{port}"])


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
