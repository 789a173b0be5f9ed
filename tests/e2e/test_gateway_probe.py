#!/usr/bin/env python3
"""e2e (issue 13): a backend outside the port's subnets, behind
ports[].gateway, can be probed and gets traffic.

The usual topology plus a router namespace on the bridge (10.99.0.254, the
port's gateway in configs/gateway.yaml) that forwards to a fourth backend
namespace in another subnet (10.97.0.21/24, default route via the router's
10.97.0.254). That backend runs the same http_server, answering as "rb".

  - every backend of the VIP, the routed one too, is up by its http probe
    within a few intervals (the probe leaves the exception interface for
    the gateway's MAC, not the backend's);
  - 60 requests through the VIP all succeed, and the routed backend
    answers some of them (its next hop, the gateway, is resolved)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402
import netns  # noqa: E402 - l4lb_e2e put tools/lib on the path

CONFIG = e2e.CONFIG_DIR / "gateway.yaml"
GATEWAY = "10.99.0.254"
REMOTE_GATEWAY = "10.97.0.254"
REMOTE = "10.97.0.21"
REQUESTS = 60


def add_router(lab):
    """Router and routed backend namespaces, recorded so teardown removes them."""
    ns_router, ns_remote = f"l4lb-r-{lab.sfx}", f"l4lb-rb-{lab.sfx}"
    for ns in (ns_router, ns_remote):
        lab.add_namespace(ns)
    with e2e.failures_as_test_failure():
        netns.add_veth(lab.ns_lb, "vr", ns_router, "eth0", bridge="br0")
        netns.address(ns_router, "eth0", f"{GATEWAY}/24")
        netns.add_veth(ns_router, "eth1", ns_remote, "eth0")
        netns.address(ns_router, "eth1", f"{REMOTE_GATEWAY}/24")
        netns.sysctl(ns_router, "net.ipv4.ip_forward=1")
        netns.address(ns_remote, "eth0", f"{REMOTE}/24", gateway=REMOTE_GATEWAY)
    e2e.log(f"topology: router {ns_router} ({GATEWAY} on br0, {REMOTE_GATEWAY}), "
            f"routed backend {ns_remote} ({REMOTE})")
    return ns_remote


def body(lab):
    ns_remote = add_router(lab)
    lab.ns_backend["rb"] = ns_remote
    lab.start_server("http_server", 8080, on="rb", addr=REMOTE)
    lab.start_daemon(CONFIG)
    lab.wait_vip("http", 8080)
    rows = lab.wait_backends_up("web", deadline=15)
    e2e.log("backends: " + ", ".join(f"{r['backend']} {r['state']} (probes {r['probes']}, "
                                     f"failures {r['probe_failures']})" for r in rows))
    counts, failures = lab.curl_many(REQUESTS)
    answered = sum(counts.values())
    e2e.log(f"{answered} of {REQUESTS} requests answered; spread:")
    e2e.log(e2e.spread_table(counts, answered or 1, names=["b1", "b2", "b3", "rb"]))
    problems = []
    if failures:
        problems.append(f"{len(failures)} of {REQUESTS} requests failed, first: {failures[0]}")
    if counts.get("rb", 0) == 0:
        problems.append(f"the routed backend {REMOTE} answered none of {answered} requests")
    lab.finish(problems)


if __name__ == "__main__":
    e2e.run_test("gateway_probe", body, servers=[("http_server", 8080)], timeout=180)
