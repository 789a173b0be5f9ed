#!/usr/bin/env python3
"""e2e: `wrk -t2 -c32 -d10s` against the VIP over keep-alive connections:
no socket errors (connect/read/write/timeout), no non-2xx/3xx answers."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

URL = f"http://{e2e.VIP}:8080/"
SECONDS = 10


def body(lab):
    cmd = ["wrk", "-t2", "-c32", f"-d{SECONDS}s", "--timeout", "5s", URL]
    e2e.log("client: " + " ".join(cmd))
    p = lab.in_client(cmd, check=False, timeout=60)
    out = p.stdout + p.stderr
    e2e.log(out.rstrip())
    lab.print_stats()
    w = e2e.wrk_result(p.returncode, out)
    e2e.log(f"measured: {w.requests} requests, {w.rps:.0f} requests/s, "
            f"socket errors {w.errors or 'none'}, non-2xx/3xx {w.non2xx}")
    problems = e2e.wrk_problems(w, SECONDS)
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    e2e.run_test("wrk", body, config=e2e.CONFIG_DIR / "http.yaml",
                 servers=[("http_server", 8080)], probe=("http", 8080))
