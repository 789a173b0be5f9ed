#!/usr/bin/env python3
"""e2e: config reload (DESIGN section 6) on a running l4lbd.

l4lbd runs with a copy of configs/reload_base.yaml (web :8080 and echo :7 on
b1..b3, no probes); the test rewrites that file and reloads.

(a) valid reloads
  - 8 long-lived TCP connections to the echo VIP are opened first; each must
    keep echoing, on the same backend (per `l4lbctl flows --list`), after
    every reload below.
  - `l4lbctl reload` with reload_added.yaml: a fourth backend on each VIP
    (web: b4 = http_server "b4" on 10.99.0.23:8081; echo: 10.99.0.23:8007
    with weight 8, so most of echo's Maglev slots, and most open
    connections' hashes, now point to it). l4lbctl exits 0, `backends` lists
    4+4, 200 curls all succeed and some are answered by b4, and new echo
    connections go to 10.99.0.23:8007.
  - SIGHUP with reload_removed.yaml (web without b1): 100 curls all
    succeed, none answered by b1, some by b4.
(b) invalid reloads, each derived from reload_removed.yaml: bad address,
    unknown key, duplicate backend. `l4lbctl reload` exits non-zero and
    prints the key and the line, the whole reason that l4lbd logs; so does
    a SIGHUP (in the log). Meanwhile a
    curl loop runs: no request fails, the backend set stays as it was, and
    the long-lived connections still echo."""
import json
import re
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

BASE = e2e.CONFIG_DIR / "reload_base.yaml"
ADDED = e2e.CONFIG_DIR / "reload_added.yaml"
REMOVED = e2e.CONFIG_DIR / "reload_removed.yaml"
SESSIONS = 8


def backend_set(lab):
    return sorted((r["vip"], r["backend"]) for r in lab.backends())


def expected_set(config_text):
    """(vip, addr:port) pairs of a config file in the layout of ours."""
    out, vip = [], None
    for line in config_text.splitlines():
        m = re.match(r"\s*- name: (\S+)", line)
        if m:
            vip = m.group(1)
        m = re.search(r"\{address: ([\d.]+), port: (\d+)[,}]", line)
        if m and vip:
            out.append((vip, f"{m.group(1)}:{m.group(2)}"))
    return sorted(out)


def session_backends(lab, ports):
    """client port -> backend addr:port of our echo flows, from flows --list."""
    p = lab.ctl("flows", "--list", "--json")
    found = {}
    for w in json.loads(p.stdout)["workers"]:
        for line in w.get("flows", []):
            parts = line.split()   # proto client vip snat backend state
            if len(parts) >= 5 and parts[2] == f"{e2e.VIP}:7":
                port = int(parts[1].rsplit(":", 1)[1])
                if port in ports:
                    found[port] = parts[4]
    return found


class Echoes:
    """The long-lived connections to the echo VIP."""

    def __init__(self, lab, n, label="echo-session"):
        self.lab = lab
        self.sessions = []
        for i in range(n):
            s = e2e.tcp_session(lab, f"{label}-{i}")
            first = s.expect()
            if not first.startswith("connected"):
                raise e2e.TestFailure(f"long-lived connection {i} could not open: {first}")
            s.port = int(first.split()[1])
            self.sessions.append(s)
        self.home = None

    def check(self, when):
        """Each connection echoes, on the backend it started on."""
        bad = []
        for i, s in enumerate(self.sessions):
            answer = s.ask(f"send conn {i} {when}")
            if not answer.startswith("ok"):
                bad.append(f"connection {i} (port {s.port}): {answer}")
        where = session_backends(self.lab, {s.port for s in self.sessions})
        if self.home is None:
            self.home = where
        moved = {p: (self.home.get(p), where.get(p)) for p in self.home if where.get(p) != self.home.get(p)}
        spread = {}
        for b in where.values():
            spread[b] = spread.get(b, 0) + 1
        e2e.log(f"long-lived connections {when}: {len(self.sessions) - len(bad)}/{len(self.sessions)} echo, "
                f"on backends {dict(sorted(spread.items()))}" + (f", MOVED {moved}" if moved else ""))
        if moved:
            bad.append(f"flows changed backend: {moved}")
        return bad

    def close(self):
        for s in self.sessions:
            s.close()


def wait_log(lab, pattern, count_before, deadline_s=10):
    t_end = time.monotonic() + deadline_s
    while time.monotonic() < t_end:
        lines = [line for line in lab.daemon_log.read_text(errors="replace").splitlines() if pattern in line]
        if len(lines) > count_before:
            return lines[-1]
        time.sleep(0.1)
    return None


def log_count(lab, pattern):
    return sum(1 for line in lab.daemon_log.read_text(errors="replace").splitlines() if pattern in line)


def invalid_variants(text):
    """(what, text, 1-based line, key that must be named) from reload_removed.yaml."""
    lines = text.splitlines()

    def variant(what, needle, replacement, key):
        i = next(n for n, line in enumerate(lines) if needle in line)
        bad = list(lines)
        bad[i] = bad[i].replace(needle, replacement)
        return what, "\n".join(bad) + "\n", i + 1, key

    return [
        variant("bad address", "{address: 10.99.0.22, port: 8080}", "{address: 10.99.0.300, port: 8080}",
                "vips[0].backends[0].address"),
        variant("unknown key", "{address: 10.99.0.23, port: 8081}", "{address: 10.99.0.23, port: 8081, wieght: 2}",
                "vips[0].backends[2].wieght"),
        variant("duplicate backend", "{address: 10.99.0.23, port: 8081}", "{address: 10.99.0.22, port: 8080}",
                "vips[0].backends[2]"),
    ]


def body(lab):
    problems = []
    config = lab.install_config(BASE.read_text())
    # The fourth backends, listening before they are configured.
    lab.start_server("http_server", 8081, on="b3", name="b4")
    lab.start_server("tcp_echo", 8007, on="b3", name="b3-8007")
    e2e.log("servers: http_server b4 on 10.99.0.23:8081, tcp_echo on 10.99.0.23:8007 (b3's namespace)")
    lab.start_daemon(config)
    lab.wait_vip("http", 8080)
    lab.wait_vip("tcp-echo", 7)

    echoes = Echoes(lab, SESSIONS)
    problems += echoes.check("before any reload")
    counts, failures = lab.curl_many(60)
    e2e.log(f"60 curls before reloading: {dict(counts)}, {len(failures)} failed")
    if failures or counts.get("b4"):
        problems.append(f"before reload: {len(failures)} curl failures, b4 answers {counts.get('b4', 0)}")

    # (a1) l4lbctl reload: add a fourth backend to each VIP.
    lab.install_config(ADDED.read_text())
    t0 = time.monotonic()
    p = lab.ctl("reload", check=False)
    e2e.log(f"l4lbctl reload (reload_added.yaml): exit {p.returncode} in {time.monotonic() - t0:.2f} s: "
            f"{(p.stdout + p.stderr).strip()}")
    if p.returncode != 0:
        problems.append(f"valid reload rejected: {(p.stdout + p.stderr).strip()}")
    now, want = backend_set(lab), expected_set(ADDED.read_text())
    e2e.log(f"backends after reload: {len(now)} ({', '.join(f'{v}/{b}' for v, b in now)})")
    if now != want:
        problems.append(f"after reload backends are {now}, expected {want}")
    problems += echoes.check("after l4lbctl reload (+1 backend per VIP)")
    fresh = Echoes(lab, 4, label="echo-fresh")
    fresh.check("opened after the reload")
    on_new = sum(1 for b in fresh.home.values() if b == "10.99.0.23:8007")
    fresh.close()
    if not on_new:
        problems.append(f"none of 4 new echo connections went to the added 10.99.0.23:8007 "
                        f"(weight 8 of 11): {fresh.home}")
    counts, failures = lab.curl_many(200)
    e2e.log(f"200 curls after adding b4: {dict(sorted(counts.items()))}, {len(failures)} failed")
    if failures:
        problems.append(f"{len(failures)} of 200 curls failed after reload, e.g. {failures[0]}")
    if not counts.get("b4"):
        problems.append(f"no new connection reached the added backend b4: {dict(counts)}")

    # (a2) SIGHUP: remove b1 from web.
    lab.install_config(REMOVED.read_text())
    before = log_count(lab, "config reloaded")
    lab.daemon.send_signal(signal.SIGHUP)
    line = wait_log(lab, "config reloaded", before)
    e2e.log(f"SIGHUP (reload_removed.yaml): {line.split(' ', 3)[-1] if line else 'no reload in the log within 10 s'}")
    if not line:
        problems.append("SIGHUP: no 'config reloaded' in the log within 10 s")
    now, want = backend_set(lab), expected_set(REMOVED.read_text())
    if now != want:
        problems.append(f"after SIGHUP backends are {now}, expected {want}")
    problems += echoes.check("after SIGHUP reload (-b1 on web)")
    counts, failures = lab.curl_many(100)
    e2e.log(f"100 curls after removing b1: {dict(sorted(counts.items()))}, {len(failures)} failed")
    if failures:
        problems.append(f"{len(failures)} of 100 curls failed after SIGHUP reload, e.g. {failures[0]}")
    if counts.get("b1"):
        problems.append(f"{counts['b1']} curls answered by removed b1")
    if not counts.get("b4"):
        problems.append(f"b4 got none of 100 curls after SIGHUP reload: {dict(counts)}")

    # (b) invalid reloads while traffic runs.
    good = REMOVED.read_text()
    good_set = backend_set(lab)
    loop = e2e.CurlLoop(lab, connect_timeout=3, max_time=5)
    try:
        time.sleep(0.5)
        for what, text, line_no, key in invalid_variants(good):
            lab.install_config(text)
            rejected_before = log_count(lab, "reload rejected")
            p = lab.ctl("reload", check=False)
            out = (p.stdout + p.stderr).strip()
            e2e.log(f"l4lbctl reload, {what} ({key} on line {line_no}): exit {p.returncode}: {out}")
            if p.returncode == 0:
                problems.append(f"{what}: l4lbctl reload exited 0")
            if key not in out or not re.search(rf":{line_no}:", out):
                problems.append(f"{what}: output does not name "
                                + " and ".join(x for x, miss in ((key, key not in out),
                                                                 (f"line {line_no}", not re.search(rf":{line_no}:", out)))
                                               if miss) + f": {out!r}")
            logged = wait_log(lab, "reload rejected", rejected_before, 5)
            if not logged:
                problems.append(f"{what}: no 'reload rejected' in l4lbd's log")
            else:
                # l4lbctl must print the whole reason l4lbd logged, not a cut one.
                reason = logged.split("running config stays: ", 1)[-1]
                printed = out.split("reload failed: ", 1)[-1]
                if printed != reason:
                    problems.append(f"{what}: l4lbctl printed {len(printed)} characters of the "
                                    f"{len(reason)}-character reason l4lbd logged: {printed!r} vs {reason!r}")
            if backend_set(lab) != good_set:
                problems.append(f"{what}: backend set changed to {backend_set(lab)}")
            time.sleep(0.3)
        # The same through SIGHUP: rejected in the log, config stays.
        what, text, line_no, key = invalid_variants(good)[0]
        lab.install_config(text)
        before = log_count(lab, "reload rejected")
        lab.daemon.send_signal(signal.SIGHUP)
        line = wait_log(lab, "reload rejected", before)
        e2e.log(f"SIGHUP, {what}: {line.split(' ', 3)[-1] if line else 'nothing in the log within 10 s'}")
        if not line or key not in line or f":{line_no}:" not in line:
            problems.append(f"SIGHUP with {what}: log does not say rejected with {key} and line {line_no}: {line!r}")
        if backend_set(lab) != good_set:
            problems.append(f"SIGHUP with {what}: backend set changed to {backend_set(lab)}")
        time.sleep(0.5)
    finally:
        results = loop.stop()
        lab.install_config(good)
    failed = [r for r in results if not r.ok]
    by = {}
    for r in results:
        if r.ok:
            by[r.backend] = by.get(r.backend, 0) + 1
    e2e.log(f"curl loop during the invalid reloads: {len(results)} requests, {len(failed)} failed, "
            f"answered by {dict(sorted(by.items()))}")
    if failed:
        problems.append(f"{len(failed)} of {len(results)} requests failed during invalid reloads, "
                        f"e.g. {failed[0].text[:100]}")
    if len(results) < 10:
        problems.append(f"only {len(results)} requests during the invalid reloads")
    if by.get("b1"):
        problems.append(f"removed b1 answered {by['b1']} requests after an invalid reload")
    problems += echoes.check("after the invalid reloads")
    p = lab.ctl("reload", check=False)
    e2e.log(f"l4lbctl reload with the valid file restored: exit {p.returncode}: {(p.stdout + p.stderr).strip()}")
    if p.returncode != 0:
        problems.append(f"reload of the restored valid file failed: {(p.stdout + p.stderr).strip()}")
    echoes.close()
    lab.finish(problems)


if __name__ == "__main__":
    # l4lbd is started by body, on a copy of the config that it rewrites.
    e2e.run_test("reload", body, servers=[("http_server", 8080), ("tcp_echo", 7)], timeout=150)
