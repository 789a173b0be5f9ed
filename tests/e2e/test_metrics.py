#!/usr/bin/env python3
"""e2e: the Prometheus endpoint (configs/health.yaml: metrics.listen
127.0.0.1:9100, scraped with curl inside the appliance namespace).

  - the text parses (every sample line is `name{labels} value`, every family
    has # TYPE), and the series below exist with the right labels: per VIP
    and direction, per backend of the web VIP, per worker, drops by reason,
    hand-offs (declared; with one worker there is no from/to pair), mbufs,
    reloads by result, health changes;
  - after load (60 curls, one connection each, then wrk for 3 s):
    l4lb_packets_total in both directions and l4lb_vip_flows_created_total
    increased (the latter by at least the 60 new connections), the flows of
    every backend add up to the VIP's, l4lb_backend_up is 1 for each
    (healthy) backend, and a valid reload counts in
    l4lb_config_reloads_total{result="applied"};
  - `l4lbctl stats` shows the port's rx_nombuf and the mbufs in use;
  - GET /healthz answers 200 "ok" (every worker runs the snapshot in force),
    an unknown path 404 and POST /metrics 405.
Prints the first 30 l4lb_ samples."""
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "health.yaml"
LISTEN = "127.0.0.1:9100"
BACKEND_KEYS = [f"{addr}:8080" for _, addr in e2e.BACKENDS]
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

# family -> label sets (dicts) that must each be present
REQUIRED = {
    "l4lb_packets_total": [{"vip": "web", "direction": d} for d in ("forward", "reverse")],
    "l4lb_bytes_total": [{"vip": "web", "direction": d} for d in ("forward", "reverse")],
    "l4lb_vip_flows_created_total": [{"vip": "web"}],
    "l4lb_backend_up": [{"vip": "web", "backend": b} for b in BACKEND_KEYS],
    "l4lb_backend_weight": [{"vip": "web", "backend": b} for b in BACKEND_KEYS],
    "l4lb_backend_flows_active": [{"vip": "web", "backend": b} for b in BACKEND_KEYS],
    "l4lb_backend_flows_created_total": [{"vip": "web", "backend": b} for b in BACKEND_KEYS],
    "l4lb_backend_probe_latency_seconds": [{"vip": "web", "backend": b} for b in BACKEND_KEYS],
    "l4lb_flows_active": [{"worker": "0"}],
    "l4lb_drops_total": [{"reason": r} for r in ("no_backend", "truncated_ipv4", "tx_full")],
    # from != to only: with one worker (our config) the family is declared
    # (# TYPE) without samples.
    "l4lb_handoffs_total": [],
    "l4lb_mbufs_in_use": [{}],
    "l4lb_config_reloads_total": [{"result": r} for r in ("applied", "rejected")],
    "l4lb_health_changes_total": [],   # present; labels not prescribed
}


def parse(text):
    """-> (samples {(name, frozenset(labels)): value}, types {family: type}, bad lines)."""
    samples, types, bad = {}, {}, []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) == 4:
                types[parts[2]] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            bad.append(line)
            continue
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples, types, bad


def pick(samples, name, **labels):
    want = set(labels.items())
    return {k: v for k, v in samples.items() if k[0] == name and want <= set(k[1])}


def value(samples, name, **labels):
    found = pick(samples, name, **labels)
    if len(found) != 1:
        raise e2e.TestFailure(f"expected one {name}{labels}, found {len(found)}")
    return next(iter(found.values()))


def check_series(samples, types):
    problems = []
    names = {n for n, _ in samples}
    for family, label_sets in REQUIRED.items():
        if family not in names and family not in types:
            problems.append(f"no {family}")
            continue
        if family not in types:
            problems.append(f"{family} has no # TYPE line")
        for labels in label_sets:
            if not pick(samples, family, **labels):
                have = sorted(dict(k[1]) for k in samples if k[0] == family)[:4]
                problems.append(f"no {family} with labels {labels} (have e.g. {have})")
    for family, t in types.items():
        if family.endswith("_total") and t != "counter":
            problems.append(f"{family} is a {t}, expected counter")
    return problems


def http(lab, path, method="GET"):
    """-> (status, body) of one request from inside the appliance namespace."""
    p = e2e.run(["ip", "netns", "exec", lab.ns_lb, "curl", "-sS", "--noproxy", "*", "-m", "10", "-X", method,
                 "-o", "-", "-w", "\n%{http_code}", f"http://{LISTEN}{path}"], check=False, timeout=15)
    text, _, code = p.stdout.rpartition("\n")
    return int(code or 0), text


def check_endpoints(lab):
    problems = []
    for method, path, want in (("GET", "/healthz", 200), ("GET", "/nope", 404), ("POST", "/metrics", 405)):
        status, text = http(lab, path, method)
        e2e.log(f"{method} {path}: {status} {text.strip()!r:.80}")
        if status != want:
            problems.append(f"{method} {path} answered {status}, expected {want}")
        if path == "/healthz" and text != "ok\n":
            problems.append(f"GET /healthz body {text!r}, expected 'ok\\n'")
    return problems


def body(lab):
    problems = []
    lab.wait_backends_up("web")
    text0 = lab.metrics(LISTEN)
    s0, types, bad = parse(text0)
    lines = [line for line in text0.splitlines() if line.startswith("l4lb_")]
    e2e.log(f"scrape 1: {len(text0)} bytes, {len(s0)} samples in {len(types)} families; first 30 l4lb_ samples:")
    for line in lines[:30]:
        e2e.log(f"  {line}")
    if bad:
        problems.append(f"{len(bad)} unparsable lines, e.g. {bad[0]!r}")
    problems += check_series(s0, types)
    problems += check_endpoints(lab)
    if problems:
        raise e2e.TestFailure("; ".join(problems))

    counts, failures = lab.curl_many(60)
    e2e.log(f"load: 60 curls: {dict(sorted(counts.items()))}, {len(failures)} failed")
    p = lab.in_client(["wrk", "-t1", "-c8", "-d3s", "--timeout", "5s", f"http://{e2e.VIP}:8080/"],
                      check=False, timeout=30)
    m = re.search(r"(\d+) requests in", p.stdout)
    e2e.log(f"load: wrk -t1 -c8 -d3s: {m.group(1) if m else '?'} requests, exit {p.returncode}")
    p = lab.ctl("reload", check=False)
    e2e.log(f"l4lbctl reload (same file): exit {p.returncode}: {(p.stdout + p.stderr).strip()}")

    s1, types1, bad1 = parse(lab.metrics(LISTEN))
    if bad1:
        problems.append(f"scrape 2: {len(bad1)} unparsable lines, e.g. {bad1[0]!r}")
    problems += [f"scrape 2: {p}" for p in check_series(s1, types1)]

    def delta(name, **labels):
        return value(s1, name, **labels) - value(s0, name, **labels)

    fwd, rev = (delta("l4lb_packets_total", vip="web", direction=d) for d in ("forward", "reverse"))
    fwd_b, rev_b = (delta("l4lb_bytes_total", vip="web", direction=d) for d in ("forward", "reverse"))
    flows = delta("l4lb_vip_flows_created_total", vip="web")
    per_backend = {b: delta("l4lb_backend_flows_created_total", vip="web", backend=b) for b in BACKEND_KEYS}
    ups = {b: value(s1, "l4lb_backend_up", vip="web", backend=b) for b in BACKEND_KEYS}
    weights = {b: value(s1, "l4lb_backend_weight", vip="web", backend=b) for b in BACKEND_KEYS}
    applied = delta("l4lb_config_reloads_total", result="applied")
    total_flows = value(s1, "l4lb_vip_flows_created_total", vip="web")
    total_per_backend = sum(value(s1, "l4lb_backend_flows_created_total", vip="web", backend=b)
                            for b in BACKEND_KEYS)
    e2e.log(f"measured deltas: packets forward +{fwd:.0f} reverse +{rev:.0f}, bytes forward +{fwd_b:.0f} "
            f"reverse +{rev_b:.0f}, vip flows created +{flows:.0f}, per backend "
            f"{ {b: int(v) for b, v in per_backend.items()} }, reloads applied +{applied:.0f}")
    e2e.log(f"after load: backend_up {ups}, backend_weight {weights}, flows created total "
            f"{total_flows:.0f} (vip) vs {total_per_backend:.0f} (sum of backends)")
    for name, d in (("forward packets", fwd), ("reverse packets", rev), ("forward bytes", fwd_b),
                    ("reverse bytes", rev_b)):
        if d <= 0:
            problems.append(f"{name} did not increase under load (+{d:.0f})")
    if flows < 60:
        problems.append(f"l4lb_vip_flows_created_total rose by {flows:.0f}, less than the 60 new connections")
    if any(v <= 0 for v in per_backend.values()):
        problems.append(f"some backend's flows_created did not increase: {per_backend}")
    if total_per_backend != total_flows:
        problems.append(f"backends' flows_created add up to {total_per_backend:.0f}, the VIP's is {total_flows:.0f}")
    if any(v != 1 for v in ups.values()):
        problems.append(f"l4lb_backend_up not 1 for every healthy backend: {ups}")
    if applied != 1:
        problems.append(f"l4lb_config_reloads_total{{result=\"applied\"}} rose by {applied:.0f} after one reload")

    # The same accounting through l4lbctl: the port's rx_nombuf and the pool.
    port = json.loads(lab.ctl("stats", "--json").stdout).get("port", {})
    e2e.log(f"l4lbctl stats --json port: {port}")
    missing = [k for k in ("port_rx_nombuf", "mbufs_in_use", "mbufs_total") if k not in port]
    if missing:
        problems.append(f"l4lbctl stats --json has no port {missing}")
    elif not 0 < port["mbufs_in_use"] <= port["mbufs_total"]:
        problems.append(f"l4lbctl stats: mbufs in use {port['mbufs_in_use']} of {port['mbufs_total']}")
    text = lab.ctl("stats").stdout
    if "rx_nombuf" not in text:
        problems.append("l4lbctl stats (text) does not show the port's rx_nombuf")
    lab.finish(problems)


if __name__ == "__main__":
    e2e.run_test("metrics", body, config=CONFIG, servers=[("http_server", 8080)], probe=("http", 8080),
                 timeout=120)
