#!/usr/bin/env python3
"""e2e: `wrk -t2 -c32 -d10s` against the VIP over keep-alive connections:
no socket errors (connect/read/write/timeout), no non-2xx/3xx answers."""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

URL = f"http://{e2e.VIP}:8080/"


def body(lab):
    cmd = ["wrk", "-t2", "-c32", "-d10s", "--timeout", "5s", URL]
    e2e.log("client: " + " ".join(cmd))
    p = lab.in_client(cmd, check=False, timeout=60)
    out = p.stdout + p.stderr
    e2e.log(out.rstrip())
    lab.print_stats()
    if p.returncode != 0:
        raise e2e.TestFailure(f"wrk exited with {p.returncode}")
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = dict(zip(("connect", "read", "write", "timeout"),
                      map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    requests = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(m.group(1)) if m else 0.0
    e2e.log(f"measured: {requests} requests, {rps:.0f} requests/s, "
            f"socket errors {errors or 'none'}, non-2xx/3xx {non2xx}")
    if any(errors.values()):
        raise e2e.TestFailure(f"socket errors {errors}")
    if non2xx:
        raise e2e.TestFailure(f"{non2xx} non-2xx/3xx responses")
    if requests < 100:
        raise e2e.TestFailure(f"only {requests} requests completed in 10 s")


if __name__ == "__main__":
    e2e.run_test("wrk", body, config=e2e.CONFIG_DIR / "http.yaml",
                 servers=[("http_server", 8080)], probe=("http", 8080))
