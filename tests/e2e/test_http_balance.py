#!/usr/bin/env python3
"""e2e: 300 HTTP requests (one curl process and connection each) from the
client to the VIP 10.99.0.100:8080 all succeed, and each of the three
backends answers between 20 % and 47 % of them."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

N = 300
LOW, HIGH = 20.0, 47.0


def body(lab):
    counts, failures = lab.curl_many(N)
    answered = sum(counts.values())
    e2e.log(f"{answered} of {N} requests answered; spread:")
    e2e.log(e2e.spread_table(counts, answered or 1))
    lab.print_stats()
    if failures:
        raise e2e.TestFailure(f"{len(failures)} of {N} requests failed, first: {failures[0]}")
    if answered != N:
        raise e2e.TestFailure(f"only {answered} of {N} answers named a backend")
    names = [n for n, _ in e2e.BACKENDS]
    unexpected = set(counts) - set(names)
    if unexpected:
        raise e2e.TestFailure(f"answers from unknown backends {sorted(unexpected)}")
    for name in names:
        share = 100.0 * counts.get(name, 0) / N
        if not LOW <= share <= HIGH:
            raise e2e.TestFailure(f"backend {name} got {share:.1f}% of requests, "
                                  f"outside [{LOW:.0f}%, {HIGH:.0f}%]")


if __name__ == "__main__":
    e2e.run_test("http_balance", body, config=e2e.CONFIG_DIR / "http.yaml",
                 servers=[("http_server", 8080)], probe=("http", 8080))
