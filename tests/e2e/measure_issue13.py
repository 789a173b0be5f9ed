#!/usr/bin/env python3
"""By-hand measurement (not part of tools/test) of issue 13's figures, on a
config of defaults: one worker, one SNAT address (10.99.0.1), the default
SNAT range and timeouts, three http backends, the harness's TAP topology.

    python3 tests/e2e/measure_issue13.py [burst] [clients] [--seconds S] [--rate R]
    L4LBD=/path/to/other/l4lbd python3 tests/e2e/measure_issue13.py ...

burst:   hping3 -S from the client for 4 s, 20 us apart (about 30,000 SYNs here) from
         incrementing source ports (the client's kernel answers each SYN-ACK
         with a RST), then 20 curls, 2 s each: how many fail, and
         snat_exhausted.
clients: 64 client addresses opening short HTTP connections (connect, GET,
         read, close: the client closes first) at R a second (default 600)
         for S seconds (default 100): requests ok and failed, and
         snat_exhausted.
The config has only keys every l4lbd version reads, so the same file runs
the code before and after the change (L4LBD selects the binary)."""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile  # noqa: E402
import l4lb_e2e as e2e  # noqa: E402

CONFIG_TEXT = """
dataplane: {workers: 1, flows_per_worker: 1048576, mbufs: 16384, idle_sleep_us: 100}
ports:
  - {name: net_tap0, address: 10.99.0.1/24, kernel_iface: l4lbk0}
vips:
  - name: web
    address: 10.99.0.100
    port: 8080
    protocol: tcp
    mode: fnat
    snat: [10.99.0.1]
    backends:
      - {address: 10.99.0.21, port: 8080}
      - {address: 10.99.0.22, port: 8080}
      - {address: 10.99.0.23, port: 8080}
logging: {level: info}
metrics: {listen: 127.0.0.1:9100}
"""
SOURCES = [f"10.99.0.{i}" for i in range(150, 214)]
DRIVER = Path(__file__).resolve().parent / "many_clients.py"


def burst(lab):
    before = hostile.totals(lab)
    h = hostile.Hping(lab, "hping3-burst", ["-S", "-p", "8080", "-s", "2000", "-c", "300000", "-i", "u20",
                                            "-q", e2e.VIP])
    sent, _ = h.wait(4.0)
    time.sleep(0.5)
    counts, failures = lab.curl_many(20)
    after = hostile.totals(lab)
    return {"syns_sent": sent, "rx": hostile.delta(before, after, "rx_packets"),
            "flows_created": hostile.delta(before, after, "flows_created"),
            "curls": 20, "curls_failed": len(failures),
            "snat_exhausted": hostile.drop_delta(before, after, "snat_exhausted"),
            "flows_evicted": hostile.delta(before, after, "flows_evicted"),
            "first_failure": failures[0] if failures else None}


def clients(lab, seconds, rate):
    batch = "".join(f"addr add {a}/{e2e.PREFIXLEN} dev eth0\n" for a in SOURCES)
    e2e.run(["ip", "netns", "exec", lab.ns_client, "ip", "-batch", "-"], input=batch)
    before = hostile.totals(lab)
    p = lab.in_client([e2e.PY, str(DRIVER), "--to", f"{e2e.VIP}:8080", "--sources", ",".join(SOURCES),
                       "--rate", str(rate), "--seconds", str(seconds), "--timeout", "3", "--threads", "128"],
                      check=False, timeout=seconds * 4 + 120)
    after = hostile.totals(lab)
    try:
        result = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = {"driver_output": (p.stdout + p.stderr)[-500:]}
    keep = {k: result[k] for k in ("ok", "failed", "rate", "latency_ms") if k in result}
    return {**keep, "snat_exhausted": hostile.drop_delta(before, after, "snat_exhausted"),
            "flows_evicted": hostile.delta(before, after, "flows_evicted")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="*", choices=["burst", "clients"], default=["burst", "clients"])
    ap.add_argument("--seconds", type=int, default=100)
    ap.add_argument("--rate", type=int, default=600)
    args = ap.parse_args()
    config = Path(f"/tmp/measure-issue13-{time.time_ns()}.yaml")
    config.write_text(CONFIG_TEXT)
    results = {"l4lbd": str(e2e.L4LBD)}

    def body(lab):
        if "burst" in args.what:
            results["burst"] = burst(lab)
            e2e.log(f"burst: {results['burst']}")
            time.sleep(5)
        if "clients" in args.what:
            results["clients"] = clients(lab, args.seconds, args.rate)
            e2e.log(f"clients: {results['clients']}")
        lab.finish([])

    try:
        e2e.run_test("measure_issue13", body, config=config, servers=[("http_server", 8080)],
                     probe=("http", 8080), timeout=args.seconds * 4 + 400)
    finally:
        config.unlink(missing_ok=True)
        print(json.dumps(results))


if __name__ == "__main__":
    main()
