"""Helpers shared by the issue-13 e2e tests (hostile and high-churn traffic
against FNAT and DNAT VIPs): counters before/after, hping3 runs, curl-loop
results by time window. Not a test itself (tools/test runs test_*.py)."""
import re
import signal
import time

import l4lb_e2e as e2e


def totals(lab):
    """The `total` object of `l4lbctl stats --json`."""
    return lab.stats()["total"]


def drop(t, reason):
    """A drop reason's count in a `total` object; 0 when l4lbd has no such
    reason (an l4lbd from before it was named)."""
    return (t.get("drops") or {}).get(reason, 0)


def delta(before, after, key):
    return after.get(key, 0) - before.get(key, 0)


def drop_delta(before, after, reason):
    return drop(after, reason) - drop(before, reason)


def nonzero_drops(before, after):
    """{reason: increase} of every drop reason that grew."""
    keys = set(before.get("drops") or {}) | set(after.get("drops") or {})
    grown = {k: drop_delta(before, after, k) for k in keys}
    return {k: v for k, v in sorted(grown.items()) if v}


class Hping:
    """One hping3 run in the client namespace (started through lab.spawn, so
    teardown stops it), its output in the lab's workdir."""

    def __init__(self, lab, label, args):
        self.label = label
        self.logfile = lab.workdir / f"{label}.log"
        self.start = time.time()
        self.proc = lab.spawn(label, lab.ns_client, ["hping3", *args], logfile=self.logfile)

    def wait(self, timeout):
        """Wait for hping3 to end, or interrupt it after `timeout` s (SIGINT:
        it still prints its statistics); returns (transmitted, received) from
        its closing statistics, or (None, None) if it printed none. hping3
        also ends once it has *received* -c packets, and it counts more
        than one answer per probe here, so callers that need N probes sent
        pass a larger -c and a timeout instead."""
        try:
            self.proc.wait(timeout)
        except Exception:  # noqa: BLE001 - TimeoutExpired: stop it, keep what it printed
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except Exception:  # noqa: BLE001
                self.proc.terminate()
                self.proc.wait(5)
        self.end = time.time()
        text = self.logfile.read_text(errors="replace")
        m = re.search(r"(\d+) packets transmitted, (\d+) packets received", text)
        return (int(m.group(1)), int(m.group(2))) if m else (None, None)

    def tail(self, n=5):
        return e2e.Lab.tail(self.logfile, n)


def window(results, t_from, t_to, in_flight=False):
    """Curl results that started in [t_from, t_to): (all, failed, by backend).
    With in_flight, also those started earlier but still running at t_from:
    a request connecting when a server died meets the dead server."""
    part = [r for r in results if (r.end if in_flight else r.start) >= t_from and r.start < t_to]
    by = {}
    for r in part:
        if r.ok:
            by[r.backend] = by.get(r.backend, 0) + 1
    return part, [r for r in part if not r.ok], dict(sorted(by.items()))


def describe(name, part, failed, by):
    rate = 100.0 * (len(part) - len(failed)) / len(part) if part else 0.0
    text = f"{name}: {len(part)} requests, {len(failed)} failed ({rate:.1f}% ok), answered by {by}"
    if failed:
        text += f"; first failure: {failed[0].text[:100]}"
    return text


def config_timeouts(path):
    """{key: seconds} of the `timeouts:` keys in a config file of ours."""
    return {k: int(v) for k, v in re.findall(r"\b(tcp_\w+_s|udp_\w*s|snat_port_hold_s):\s*(\d+)", path.read_text())}


def snat_range(path):
    m = re.search(r"snat_port_range:\s*\[(\d+),\s*(\d+)\]", path.read_text())
    return int(m.group(1)), int(m.group(2))
