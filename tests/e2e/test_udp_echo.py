#!/usr/bin/env python3
"""e2e: a UDP VIP (10.99.0.100:5353 -> udp_echo on the backends) echoes every
datagram: 5 client sockets (5 flows) x 10 datagrams, each unique, all must
come back unchanged and from the VIP."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

FLOWS, COUNT = 5, 10


def body(lab):
    p = lab.in_client([e2e.PY, e2e.NETCLIENT, "udp", "--to", f"{e2e.VIP}:5353",
                       "--flows", FLOWS, "--count", COUNT, "--timeout", 2],
                      check=False, timeout=FLOWS * COUNT * 2 + 30)
    try:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        raise e2e.TestFailure(f"udp client printed no result: {p.stdout!r} {p.stderr!r}") from e
    e2e.log(f"measured: sent {r['sent']} datagrams on {r['flows']} flows, echoed {r['ok']}, "
            f"wrong {r['wrong']}, lost {r['lost']}")
    for err in r["errors"]:
        e2e.log(f"  {err}")
    lab.print_stats()
    if r["sent"] != FLOWS * COUNT or r["ok"] != r["sent"]:
        raise e2e.TestFailure(f"{r['ok']} of {r['sent']} datagrams echoed correctly")


if __name__ == "__main__":
    e2e.run_test("udp_echo", body, config=e2e.CONFIG_DIR / "udp.yaml",
                 servers=[("udp_echo", 5353)], probe=("udp-echo", 5353))
