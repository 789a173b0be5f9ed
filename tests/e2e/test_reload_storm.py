#!/usr/bin/env python3
"""e2e (issue 8): 100 invalid reloads in a row under load.

l4lbd runs configs/reload_base.yaml (web :8080 and echo :7 on b1..b3). Four
long-lived echo connections are opened and a curl loop runs against the web
VIP. Then 100 reloads of broken variants of the file (cycling through bad
address, unknown key, duplicate backend, bad YAML, port out of range) go
through `l4lbctl reload`. Every one must exit non-zero naming its key, the
log must hold exactly one rejection line per reload, the running config
must stay (same backends), no request of the curl
loop may fail, and every long-lived connection must still echo on the
backend it started on."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402
from test_reload import BASE, Echoes, log_count  # noqa: E402

RELOADS = 100


def variants(text):
    lines = text.splitlines()

    def replace(needle, replacement, key):
        i = next(n for n, line in enumerate(lines) if needle in line)
        bad = list(lines)
        bad[i] = bad[i].replace(needle, replacement)
        return "\n".join(bad) + "\n", key

    return [
        replace("{address: 10.99.0.22, port: 8080}", "{address: 10.99.0.300, port: 8080}", "address"),
        replace("{address: 10.99.0.22, port: 8080}", "{address: 10.99.0.22, port: 8080, wieght: 2}", "wieght"),
        replace("{address: 10.99.0.22, port: 8080}", "{address: 10.99.0.21, port: 8080}", "duplicate backend"),
        replace("{address: 10.99.0.22, port: 8080}", "{address: [10.99.0.22, port: 8080}", "YAML syntax error"),
        replace("{address: 10.99.0.22, port: 8080}", "{address: 10.99.0.22, port: 70000}", "port"),
    ]


def body(lab):
    problems = []
    base = BASE.read_text()
    config = lab.install_config(base)
    lab.start_daemon(config)
    lab.wait_vip("http", 8080)
    lab.wait_vip("tcp-echo", 7)
    echoes = Echoes(lab, 4)
    problems += echoes.check("before the reloads")
    backends_before = sorted((r["vip"], r["backend"]) for r in lab.backends())
    rejected_before = log_count(lab, "reload rejected")

    loop = e2e.CurlLoop(lab, connect_timeout=3, max_time=5)
    bad = variants(base)
    t0 = time.monotonic()
    for i in range(RELOADS):
        text, key = bad[i % len(bad)]
        lab.install_config(text)
        p = lab.ctl("reload", check=False)
        out = (p.stdout + p.stderr).strip()
        if p.returncode == 0 or key not in out or "l4lb.yaml:" not in out:
            problems.append(f"reload {i} ({key}): exit {p.returncode}, said {out!r}")
    elapsed = time.monotonic() - t0
    lab.install_config(base)
    results = loop.stop()
    failed = [r for r in results if not r.ok]
    e2e.log(f"{RELOADS} invalid reloads in {elapsed:.1f} s; curl loop meanwhile: {len(results)} requests, "
            f"{len(failed)} failed")
    if not results:
        problems.append("the curl loop made no request")
    if failed:
        problems.append(f"{len(failed)} requests failed during the reloads, e.g. {failed[0].text}")
    time.sleep(0.5)
    rejected = log_count(lab, "reload rejected") - rejected_before
    e2e.log(f"log: {rejected} 'reload rejected' lines for {RELOADS} rejected reloads")
    if rejected != RELOADS:
        problems.append(f"{rejected} rejection lines logged for {RELOADS} rejected reloads (want one each)")
    backends_after = sorted((r["vip"], r["backend"]) for r in lab.backends())
    if backends_after != backends_before:
        problems.append(f"backends changed: {backends_before} -> {backends_after}")
    problems += echoes.check("after 100 invalid reloads")
    echoes.close()
    if problems:
        raise e2e.TestFailure("; ".join(problems[:5]))


if __name__ == "__main__":
    # l4lbd is started by body, on a copy of the config that it rewrites.
    e2e.run_test("reload_storm", body, servers=[("http_server", 8080), ("tcp_echo", 7)], timeout=200)
