#!/usr/bin/env python3
"""e2e (issue 16): path-MTU discovery through the appliance. Every host has
a 1500-byte MTU, but two router hops on the way allow only 1280 bytes, so
the routers answer full-size packets with ICMP "fragmentation needed",
addressed to the packet's source: an address l4lbd wrote (the SNAT
address, the VIP) or, for DNAT, the client behind it. Only if l4lbd
translates those errors to the flow's other side do the endpoints learn
the smaller MTU.

    client 10.98.0.10 ---(1280 toward the client)--- R 10.99.0.254
                                                      | LAN (br0)
    appliance 10.99.0.1 (l4lbd) -----------------------+
                                                      |
    b1 10.96.0.21 ---(1280 toward b1)--- Rb 10.99.0.253 (default via the appliance)

VIPs: FNAT 10.97.0.100 and DNAT 10.97.0.101, port 9000 (b1 counts what it
receives: an upload) and 9001 (b1 sends 1 MiB: a download). R routes the
VIPs to the appliance; l4lbd reaches b1 through R, which passes it to Rb.

1. dataplane.icmp_errors: ignore: a 1 MiB upload and a 1 MiB download
   through each VIP stall (none completes within 6 s) and nothing is
   translated: without the translation the next step would fail. (First,
   because the endpoints keep a path MTU they have learnt for minutes.)
2. icmp_errors: translate (l4lbd restarted): the same four transfers
   complete; icmp_errors_translated grows.
"""
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402
import netns  # noqa: E402

SIZE = 1 << 20
VIPS = {"fnat": "10.97.0.100", "dnat": "10.97.0.101"}
UP, DOWN = 9000, 9001
B1 = "10.96.0.21"
TRANSFER_S = 6

CONFIG = """# test_pmtu
dataplane: {{workers: 1, flows_per_worker: 4096, mbufs: 8192, idle_sleep_us: 100, icmp_errors: {policy}}}
ports:
  - {{name: net_tap0, address: 10.99.0.1/24, gateway: 10.99.0.254, kernel_iface: l4lbk0}}
vips:
  - {{name: fnat-up, address: {fnat}, port: {up}, snat: [10.99.0.1], backends: [{{address: {b1}, port: {up}}}]}}
  - {{name: fnat-down, address: {fnat}, port: {down}, snat: [10.99.0.1], backends: [{{address: {b1}, port: {down}}}]}}
  - {{name: dnat-up, address: {dnat}, port: {up}, mode: dnat, backends: [{{address: {b1}, port: {up}}}]}}
  - {{name: dnat-down, address: {dnat}, port: {down}, mode: dnat, backends: [{{address: {b1}, port: {down}}}]}}
logging: {{level: info}}
"""


class PmtuLab(e2e.Lab):
    def __init__(self):
        super().__init__(kind="test", label="pmtu")
        self.ns_router = f"l4lb-r-{self.sfx}"
        self.ns_rb = f"l4lb-rb-{self.sfx}"
        self.ns_b1 = self.ns_backend["b1"]
        self.save()

    def up(self):
        e2e.log(f"topology: pmtu lab, suffix {self.sfx}, logs in {self.workdir}")
        r, rb, lb, c, b1 = self.ns_router, self.ns_rb, self.ns_lb, self.ns_client, self.ns_b1
        with e2e.failures_as_test_failure():
            for ns in (lb, r, rb, c, b1):
                super(e2e.Lab, self).add_namespace(ns)
            netns.add_bridge(lb, "br0")   # the LAN; dp0 joins it once l4lbd runs
            for ns, veth, addr in ((r, "vr", "10.99.0.254"), (rb, "vrb", "10.99.0.253")):
                netns.add_veth(lb, veth, ns, "lan", bridge="br0")
                netns.address(ns, "lan", f"{addr}/24")
                netns.sysctl(ns, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
                             "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                             "net.ipv4.conf.lan.rp_filter=0")
            netns.add_veth(r, "vc", c, "eth0")
            netns.address(r, "vc", "10.98.0.1/24")
            netns.address(c, "eth0", "10.98.0.10/24", "10.98.0.1")
            netns.add_veth(rb, "vb", b1, "eth0")
            netns.address(rb, "vb", "10.96.0.1/24")
            netns.address(b1, "eth0", f"{B1}/24", "10.96.0.1")
            # The narrow hops: a route MTU, so the router itself answers
            # "fragmentation needed" (all interfaces stay at 1500).
            netns.run(["ip", "-n", r, "route", "replace", "10.98.0.0/24", "dev", "vc", "src", "10.98.0.1",
                       "mtu", "lock", "1280"])
            netns.run(["ip", "-n", rb, "route", "replace", "10.96.0.0/24", "dev", "vb", "src", "10.96.0.1",
                       "mtu", "lock", "1280"])
            for vip in VIPS.values():
                netns.run(["ip", "-n", r, "route", "add", f"{vip}/32", "via", "10.99.0.1"])
            netns.run(["ip", "-n", r, "route", "add", "10.96.0.0/24", "via", "10.99.0.253"])
            # Rb sends what is not for the LAN (DNAT replies, its own ICMP
            # errors to clients) through the appliance.
            netns.run(["ip", "-n", rb, "route", "add", "default", "via", "10.99.0.1"])
        script_up = f"exec socat TCP-LISTEN:{UP},fork,reuseaddr SYSTEM:'wc -c'"
        script_down = f"exec socat TCP-LISTEN:{DOWN},fork,reuseaddr SYSTEM:'head -c {SIZE} /dev/zero'"
        self.spawn("sink", b1, ["bash", "-c", script_up])
        self.spawn("source", b1, ["bash", "-c", script_down])

    def transfers(self, timeout):
        """The four transfers at once, each bounded by `timeout` s ->
        {name: (completed, seconds, detail)}."""
        procs = {}
        for mode, vip in VIPS.items():
            up = (f"head -c {SIZE} /dev/zero | timeout {timeout} socat -t {timeout} - TCP:{vip}:{UP},"
                  f"connect-timeout=2")
            down = f"timeout {timeout} socat -u TCP:{vip}:{DOWN},connect-timeout=2 - | wc -c"
            for what, cmd in (("upload", up), ("download", down)):
                procs[f"{mode} {what}"] = (time.monotonic(), subprocess.Popen(
                    ["ip", "netns", "exec", self.ns_client, "bash", "-c", cmd], stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, text=True))
        out = {}
        for name, (t0, p) in procs.items():
            text, _ = p.communicate(timeout=timeout + 10)
            took = time.monotonic() - t0
            got = text.strip().splitlines()[-1] if text.strip() else ""
            out[name] = (got == str(SIZE), took, got or "nothing")
        return out

    def translated(self):
        return self.stats()["total"]["icmp_errors_translated"]


def run_phase(lab, policy, problems):
    lab.start_daemon(lab.install_config(CONFIG.format(policy=policy, fnat=VIPS["fnat"], dnat=VIPS["dnat"],
                                                      up=UP, down=DOWN, b1=B1), name=f"pmtu-{policy}.yaml"))
    # A restarted l4lbd's port has a new MAC, which the routers must learn.
    for ns in (lab.ns_router, lab.ns_rb):
        netns.run(["ip", "-n", ns, "neigh", "flush", "all"], check=False)
    # Neighbours (the gateway, b1's next hop) resolve within a second or so.
    deadline = time.monotonic() + 15
    while True:
        connect = f"exec 3<>/dev/tcp/{VIPS['fnat']}/{DOWN}"
        if lab.in_client(["timeout", "2", "bash", "-c", connect], check=False, timeout=10).returncode == 0:
            break
        if time.monotonic() > deadline:
            raise e2e.TestFailure(f"{VIPS['fnat']}:{DOWN} does not answer 15 s after l4lbd started")
        time.sleep(0.3)
    before = lab.translated()
    results = lab.transfers(TRANSFER_S if policy == "ignore" else 20)
    translated = lab.translated() - before
    for name, (ok, took, got) in results.items():
        e2e.log(f"[{policy}] {name} of {SIZE} bytes: {'complete' if ok else 'NOT complete'} in {took:.1f} s "
                f"({got})")
    e2e.log(f"[{policy}] ICMP errors translated: {translated}")
    drops = {k: v for k, v in (lab.stats()["total"].get("drops") or {}).items() if v}
    e2e.log(f"[{policy}] drops: {drops or 'none'}")
    if policy == "translate":
        failed = [n for n, r in results.items() if not r[0]]
        if failed:
            problems.append(f"transfers through the narrow hops failed with translation on: {failed}")
        if translated == 0:
            problems.append("no ICMP error was translated, yet the transfers needed them")
    else:
        done = [n for n, r in results.items() if r[0]]
        if done:
            problems.append(f"with icmp_errors: ignore, transfers still completed ({done}): "
                            "the test cannot tell whether translation matters")
        if translated:
            problems.append(f"with icmp_errors: ignore, {translated} ICMP errors were translated")
    rc = lab.stop_daemon()
    if rc != 0:
        problems.append(f"l4lbd ({policy}) exited {rc} after SIGTERM")
    lab.daemon = None  # stopped and checked here, not again by run_test


def run(lab):
    problems = []
    # Ignore first: once an endpoint has learnt the path's MTU it keeps it
    # for minutes, and the second phase would not need the errors.
    run_phase(lab, "ignore", problems)
    run_phase(lab, "translate", problems)
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    e2e.run_test("pmtu", run, make_lab=PmtuLab, timeout=150)
