#!/usr/bin/env python3
"""e2e: every row of a large table reaches l4lbctl (DESIGN section 8).

DPDK telemetry holds at most 256 entries and 16 KiB of JSON per answer and
drops what is past either without a word, so /l4lb/vips and
/l4lb/backends answer in pages. l4lbd runs a config of its own (written to
the lab's directory) with 300 VIPs of one backend each and a VIP "big" of
300 backends: 301 VIPs, 600 backends, no health probes. Checks:
  - `l4lbctl vips --json`: 301 rows, every name once, in config order;
  - `l4lbctl backends --json`: 600 rows, every (vip, backend) once;
  - `l4lbctl backends big --json`: its 300 backends;
  - the text forms print a header and one line per row;
  - `l4lbctl stats` and `status` still answer (exit 0);
  - after a reload that adds a VIP whose 150-byte name no telemetry string
    holds, `l4lbctl vips` exits 1 naming the limit instead of printing a
    cut name.
Prints the row counts and how long each listing took."""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

SMALL_VIPS = 300
BIG_BACKENDS = 300
BACKEND_ADDRESSES = [addr for _, addr in e2e.BACKENDS]


LONG_NAME = "long_" + "x" * 145


def config_text(extra_vip=False):
    lines = [
        "# written by tests/e2e/test_many_rows.py",
        "dataplane: {workers: 1, flows_per_worker: 65536, mbufs: 16384}",
        "ports:",
        "  - {name: net_tap0, address: 10.99.0.1/24, kernel_iface: l4lbk0}",
        "vips:",
    ]
    # Small Maglev tables: 601 VIPs' worth of memory is not what is tested.
    for i in range(SMALL_VIPS):
        backend = BACKEND_ADDRESSES[i % len(BACKEND_ADDRESSES)]
        lines += [f"  - name: v{i:03d}",
                  f"    address: {e2e.VIP}",
                  f"    port: {10000 + i}",
                  "    table_size: 7",
                  "    snat: [10.99.0.1]",
                  f"    backends: [{{address: {backend}, port: {20000 + i}}}]"]
    lines += ["  - name: big",
              f"    address: {e2e.VIP}",
              "    port: 8080",
              "    table_size: 1009",
              "    snat: [10.99.0.1]",
              "    backends:"]
    for j in range(BIG_BACKENDS):
        backend = BACKEND_ADDRESSES[j % len(BACKEND_ADDRESSES)]
        lines.append(f"      - {{address: {backend}, port: {30000 + j}}}")
    if extra_vip:
        lines += [f"  - name: {LONG_NAME}",
                  f"    address: {e2e.VIP}",
                  "    port: 9999",
                  "    table_size: 7",
                  "    snat: [10.99.0.1]",
                  f"    backends: [{{address: {BACKEND_ADDRESSES[0]}, port: 9999}}]"]
    lines.append("logging: {level: info}")
    return "\n".join(lines) + "\n"


def listing(lab, *args):
    t0 = time.monotonic()
    p = lab.ctl(*args, check=False, timeout=60)
    took = time.monotonic() - t0
    if p.returncode != 0:
        raise e2e.TestFailure(f"l4lbctl {' '.join(args)}: exit {p.returncode}: {(p.stdout + p.stderr).strip()[:300]}")
    return p.stdout, took


def body(lab):
    problems = []
    path = lab.workdir / "many_rows.yaml"
    path.write_text(config_text())
    lab.start_daemon(path)

    want_vips = [f"v{i:03d}" for i in range(SMALL_VIPS)] + ["big"]
    out, took = listing(lab, "vips", "--json")
    names = [r["name"] for r in json.loads(out)]
    e2e.log(f"l4lbctl vips --json: {len(names)} rows in {took:.2f} s (config: {len(want_vips)})")
    if names != want_vips:
        missing = sorted(set(want_vips) - set(names))
        problems.append(f"vips: {len(names)} rows of {len(want_vips)}; missing e.g. {missing[:5]}")

    want_backends = [(f"v{i:03d}", f"{BACKEND_ADDRESSES[i % 3]}:{20000 + i}") for i in range(SMALL_VIPS)]
    want_big = [("big", f"{BACKEND_ADDRESSES[j % 3]}:{30000 + j}") for j in range(BIG_BACKENDS)]
    out, took = listing(lab, "backends", "--json")
    got = [(r["vip"], r["backend"]) for r in json.loads(out)]
    e2e.log(f"l4lbctl backends --json: {len(got)} rows in {took:.2f} s (config: {len(want_backends + want_big)})")
    if got != want_backends + want_big:
        problems.append(f"backends: {len(got)} rows of {len(want_backends + want_big)}")

    out, took = listing(lab, "backends", "big", "--json")
    got = [(r["vip"], r["backend"]) for r in json.loads(out)]
    e2e.log(f"l4lbctl backends big --json: {len(got)} rows in {took:.2f} s")
    if got != want_big:
        problems.append(f"backends big: {len(got)} rows of {len(want_big)}")

    for args, rows in ((("vips",), len(want_vips)), (("backends",), len(want_backends + want_big))):
        out, _ = listing(lab, *args)
        lines = out.strip().splitlines()
        e2e.log(f"l4lbctl {' '.join(args)}: {len(lines)} lines, last: {lines[-1][:100] if lines else ''}")
        if len(lines) != rows + 1:
            problems.append(f"l4lbctl {' '.join(args)} printed {len(lines)} lines, expected {rows} rows and a header")

    for args in (("stats",), ("status",)):
        listing(lab, *args)

    path.write_text(config_text(extra_vip=True))
    lab.ctl("reload")
    p = lab.ctl("vips", check=False)
    e2e.log(f"l4lbctl vips with a {len(LONG_NAME)}-byte VIP name: exit {p.returncode}: "
            f"{(p.stdout + p.stderr).strip()[:200]}")
    if p.returncode == 0 or "telemetry limit" not in p.stderr:
        problems.append(f"l4lbctl vips with a {len(LONG_NAME)}-byte name: exit {p.returncode}, "
                        f"expected 1 and 'telemetry limit' on stderr")
    lab.finish(problems)


if __name__ == "__main__":
    e2e.run_test("many_rows", body, timeout=180)
