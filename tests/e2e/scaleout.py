"""The scale-out lab (DESIGN §12): two l4lbd appliances behind a router that
learns the VIPs from both by BGP and spreads connections over them by ECMP.

    client 10.98.0.10 --- router (BIRD, ECMP on the 5-tuple)
                            | 10.99.0.254 on bridge "lan"
        +-------------------+------------------+------------+
    appliance a           appliance b        b1, b2, b3 (10.99.0.21-23)
    10.99.0.1             10.99.0.2          default route via the router
    l4lbd + BIRD          l4lbd + BIRD

Each appliance is a namespace holding l4lbd (its TAP dp0 bridged to an
uplink veth into "lan"), its kernel interface l4lbk0 with the appliance's
address, and a BIRD that announces what l4lbd writes to its routes file
over a BGP session to the router (AS 65001 -> AS 65000) that runs through
l4lbd's exception path. The router's BIRD merges equal routes into one
multipath kernel route. VIPs live in 10.97.0.0/24, which nothing but BGP
routes: without an announcement they are unreachable.

DNAT (VIP 10.97.0.102, dnat_reverse: stateless): each appliance's BIRD
also announces a default route (config/bird.example.conf's dnat_return),
which the router keeps in table 100 only; a rule sends what the backends
send from the LAN through it, so their replies return through either
appliance, whichever the router's hash picks, and are translated there.

As a module: ScaleoutLab (an e2e.Lab: same record, teardown and helpers).
As a program: `scaleout.py [--keep]` builds the lab, prints how to use it
and, with --keep, leaves it up (`l4lb_e2e.py clean` removes it)."""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402
import netns  # noqa: E402

ROUTER_ADDR = "10.99.0.254"
ROUTER_AS, APPLIANCE_AS = 65000, 65001
CLIENT_NET_GW = "10.98.0.1"
APPLIANCES = {"a": "10.99.0.1", "b": "10.99.0.2"}
VIP = "10.97.0.100"
VIP_SOLO = "10.97.0.101"   # only appliance a serves it (the health-gating test)
VIP_DNAT = "10.97.0.102"   # DNAT web and echo, dnat_reverse: stateless
RETURN_TABLE = 100         # the router's table for the backends' replies
BACKEND_NET = "10.99.0.20/30"  # b1-b3 (10.99.0.21-23)
PORT = 8080
SOLO_PORT = 8081
ECHO_PORT = 7   # VIP echo (tcp_echo on b1-b3): long-lived connections
BIRD = "/usr/sbin/bird"

ROUTER_BIRD = """log stderr all;
router id {router};
protocol device {{ scan time 1; }}
# One kernel route per prefix with a next hop per appliance announcing it.
# The appliances' default route is the backends' return path (DNAT): kept
# out of the main table, in table 100 that the backends' replies use.
ipv4 table dnat_return;
protocol kernel {{
  ipv4 {{ import none; export where net != 0.0.0.0/0; }};
  merge paths on;
}}
protocol pipe {{
  table master4; peer table dnat_return;
  import none; export where net = 0.0.0.0/0;
}}
protocol kernel {{
  ipv4 {{ table dnat_return; import none; export all; }};
  kernel table {return_table};
  merge paths on;
}}
template bgp appliance {{
  local {router} as {router_as};
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;
  ipv4 {{ import all; export none; }};
}}
# BFD for the sessions that ask for it ("bfd on" below): 3 x 100 ms.
protocol bfd {{
  interface "lan" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }};
}}
{peers}
"""

EXAMPLE_BIRD = e2e.REPO / "config" / "bird.example.conf"


def appliance_bird(address, routes, bfd):
    """An appliance's BIRD config: config/bird.example.conf (the operator's
    example, so the lab runs exactly what it shows) with this appliance's
    address, its routes file, BFD on or off and the log on stderr."""
    text = EXAMPLE_BIRD.read_text()
    for old, new in (("log syslog all;", "log stderr all;"), ("10.99.0.1", address),
                     ("/run/l4lb/bird-routes.conf", str(routes)), ("bfd on;", f"bfd {bfd};"),
                     ("10.99.0.254", ROUTER_ADDR)):
        if old not in text:
            raise e2e.TestFailure(f"{EXAMPLE_BIRD} no longer holds '{old}', which the lab replaces")
        text = text.replace(old, new)
    # The lab runs DNAT behind both appliances: the return route is on.
    block = re.search(r"^#protocol static dnat_return \{\n(?:#.*\n)*?#\}\n", text, re.M)
    if not block:
        raise e2e.TestFailure(f"{EXAMPLE_BIRD} no longer holds the commented dnat_return protocol")
    text = text.replace(block.group(0), re.sub(r"^#", "", block.group(0), flags=re.M))
    return text



def vip_yaml(name, address, port, nat, backends=("10.99.0.21", "10.99.0.22", "10.99.0.23")):
    """One VIP of the lab, health-checked every 200 ms: `nat` is "snat: [A]"
    (FNAT from the appliance's address) or DNAT's keys."""
    lines = [f"  - name: {name}", f"    address: {address}", f"    port: {port}", f"    {nat}",
             "    health: {type: tcp, interval_ms: 200, timeout_ms: 150, rise: 1, fall: 2}", "    backends:"]
    lines += [f"      - {{address: {b}, port: {port}}}" for b in backends]
    return "\n".join(lines) + "\n"


def appliance_config(name, address, workdir, solo=True, extra_dataplane=""):
    """l4lbd's config for one appliance: VIPs web and echo (FNAT) and
    dnat-web and dnat-echo (DNAT, dnat_reverse: stateless) on both, VIP solo
    (a backend on b1 port 8081 only) on appliance a when `solo`;
    bgp.appliances names the other appliance."""
    others = ", ".join(a for n, a in APPLIANCES.items() if n != name)
    fnat = f"snat: [{address}]"
    dnat = "mode: dnat\n    dnat_reverse: stateless"
    vips = (vip_yaml("web", VIP, PORT, fnat) + vip_yaml("echo", VIP, ECHO_PORT, fnat)
            + vip_yaml("dnat-web", VIP_DNAT, PORT, dnat) + vip_yaml("dnat-echo", VIP_DNAT, ECHO_PORT, dnat)
            + (vip_yaml("solo", VIP_SOLO, SOLO_PORT, fnat, backends=("10.99.0.21",)) if solo else ""))
    return f"""# scale-out lab, appliance {name}
dataplane: {{workers: 1, flows_per_worker: 65536, mbufs: 8192, idle_sleep_us: 100{extra_dataplane}}}
ports:
  - {{name: net_tap0, address: {address}/24, gateway: {ROUTER_ADDR}, kernel_iface: l4lbk0}}
vips:
{vips}timeouts: {{tcp_syn_s: 3, tcp_established_s: 300, tcp_fin_wait_s: 3, tcp_time_wait_s: 3}}
logging: {{level: info}}
bgp:
  enabled: true
  bird_socket: {workdir}/bird-{name}.ctl
  routes_file: {workdir}/routes-{name}.conf
  peers: [{ROUTER_ADDR}]
  appliances: [{others}]
  withdraw_wait_ms: 500
"""


class Appliance:
    def __init__(self, lab, name, address):
        self.name = name
        self.address = address
        self.ns = f"l4lb-{name}-{lab.sfx}"
        self.prefix = f"l4lb-{lab.sfx}-{name}"
        self.daemon = None
        self.bird = None
        self.log = lab.workdir / f"l4lbd-{name}.log"
        self.bird_socket = lab.workdir / f"bird-{name}.ctl"
        self.routes_file = lab.workdir / f"routes-{name}.conf"
        self.config = None


class ScaleoutLab(e2e.Lab):
    """The topology of the module docstring; appliances start with
    start_appliance(name)."""

    def __init__(self, label="scaleout", bfd=("a",)):
        """bfd: the appliances whose BGP session runs BFD (both ends)."""
        super().__init__(kind="test", label=label)
        self.bfd = set(bfd)
        self.ns_router = f"l4lb-r-{self.sfx}"
        self.appliances = {n: Appliance(self, n, a) for n, a in APPLIANCES.items()}
        for a in self.appliances.values():
            self.prefixes.append(a.prefix)
        self.client_addr = "10.98.0.10"
        self.router_bird = None
        self.save()

    def up(self):
        e2e.log(f"topology: scale-out lab, suffix {self.sfx}, router {self.ns_router}, logs in {self.workdir}")
        with e2e.failures_as_test_failure():
            for ns in [self.ns_router, self.ns_client, *self.ns_backend.values(),
                       *(a.ns for a in self.appliances.values())]:
                super(e2e.Lab, self).add_namespace(ns)
            r = self.ns_router
            # ECMP on the packet's 5-tuple, as a router on the wire hashes.
            # Not policy 1: for a packet that already carries a socket's
            # hash (the client's and backends' packets arrive by veth with
            # theirs) it takes that, and TCP draws a new one at every
            # retransmission timeout, so a connection would change paths.
            netns.sysctl(r, "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=3",
                         "net.ipv4.fib_multipath_hash_fields=0x0037")
            # The router's LAN: a bridge with an address (ARP on: it owns 10.99.0.254).
            netns.run(["ip", "-n", r, "link", "add", "lan", "type", "bridge", "stp_state", "0", "forward_delay", "0"])
            netns.run(["ip", "-n", r, "addr", "add", f"{ROUTER_ADDR}/24", "dev", "lan"])
            netns.run(["ip", "-n", r, "link", "set", "lan", "up"])
            netns.add_veth(r, "vc", self.ns_client, "eth0")
            netns.address(r, "vc", f"{CLIENT_NET_GW}/24")
            netns.address(self.ns_client, "eth0", f"{self.client_addr}/24", CLIENT_NET_GW)
            for name, addr in e2e.BACKENDS:
                netns.add_veth(r, f"v{name}", self.ns_backend[name], "eth0", bridge="lan")
                netns.address(self.ns_backend[name], "eth0", f"{addr}/24", ROUTER_ADDR)
            # DNAT: the backends' replies to clients go back through the
            # appliances (the return table BIRD fills), not straight out.
            netns.run(["ip", "-n", r, "rule", "add", "iif", "lan", "from", BACKEND_NET,
                       "lookup", str(RETURN_TABLE), "pref", "100"])
            for a in self.appliances.values():
                # dp0 (l4lbd's TAP) joins br0, which the uplink joins too.
                netns.add_bridge(a.ns, "br0")
                netns.add_veth(r, f"v{a.name}", a.ns, "up0", bridge="lan")
                netns.run(["ip", "-n", a.ns, "link", "set", "up0", "master", "br0", "up"])
        peers = "\n".join(f"protocol bgp {n} from appliance {{ neighbor {a} as {APPLIANCE_AS}; "
                          f"bfd {'on' if n in self.bfd else 'off'}; }}"
                          for n, a in APPLIANCES.items())
        conf = self.workdir / "bird-router.conf"
        conf.write_text(ROUTER_BIRD.format(router=ROUTER_ADDR, router_as=ROUTER_AS, peers=peers,
                                           return_table=RETURN_TABLE))
        self.router_bird = self.spawn("bird-router", self.ns_router,
                                      [BIRD, "-f", "-c", conf, "-s", self.workdir / "bird-router.ctl",
                                       "-P", self.workdir / "bird-router.pid"])
        e2e.log(f"router: BIRD (AS {ROUTER_AS}) peering with {', '.join(APPLIANCES.values())} (AS {APPLIANCE_AS})")

    def start_appliance(self, name, solo=True, ready_timeout=45, extra_dataplane=""):
        """Start l4lbd (lcores 0,1) and then BIRD in appliance `name`'s namespace."""
        a = self.appliances[name]
        a.config = self.install_config(appliance_config(name, a.address, self.workdir, solo, extra_dataplane),
                                       name=f"l4lb-{name}.yaml")
        cmd = [e2e.L4LBD, "-l", "0,1", "--file-prefix", a.prefix, "--no-pci",
               "--vdev", "net_tap0,iface=dp0", "--", "--config", a.config]
        offset = a.log.stat().st_size if a.log.exists() else 0
        a.daemon = self.spawn("l4lbd", a.ns, cmd, logfile=a.log)
        t0 = time.monotonic()
        while e2e.DAEMON_READY_LINE not in a.log.read_bytes()[offset:].decode(errors="replace"):
            if a.daemon.poll() is not None:
                raise e2e.TestFailure(f"l4lbd {name} exited with {a.daemon.returncode}: " + self.tail(a.log, 15))
            if time.monotonic() - t0 > ready_timeout:
                raise e2e.TestFailure(f"l4lbd {name}: not ready after {ready_timeout} s")
            time.sleep(0.1)
        with e2e.failures_as_test_failure():
            netns.plug_tap(a.ns, "dp0", "br0")
        if a.bird is None or a.bird.poll() is not None:
            conf = self.workdir / f"bird-{name}.conf"
            conf.write_text(appliance_bird(a.address, a.routes_file, "on" if name in self.bfd else "off"))
            a.bird = self.spawn(f"bird-{name}", a.ns, [BIRD, "-f", "-c", conf, "-s", a.bird_socket,
                                                       "-P", self.workdir / f"bird-{name}.pid"],
                                logfile=self.workdir / f"bird-{name}.log")
        e2e.log(f"appliance {name}: l4lbd ready after {time.monotonic() - t0:.1f} s (pid {a.daemon.pid}), BIRD up")
        return a

    def stop_appliance(self, name, sig=signal.SIGTERM, timeout=20):
        """Signal l4lbd of appliance `name`; wait for it. Returns its exit code."""
        a = self.appliances[name]
        if a.daemon is None:
            return None
        if a.daemon.poll() is None:
            a.daemon.send_signal(sig)
            try:
                a.daemon.wait(timeout)
            except subprocess.TimeoutExpired:
                e2e.log(f"l4lbd {name} did not exit within {timeout} s: SIGKILL")
                a.daemon.kill()
                a.daemon.wait()
        rc = a.daemon.returncode
        self.forget(a.daemon)
        if sig == signal.SIGKILL:
            netns.remove_dpdk_files(a.prefix)
        return rc

    # -- what the router and the appliances say
    def next_hops(self, prefix):
        """The router's kernel next hops for prefix (a sorted list, [] if no route)."""
        return self.next_hops_in([prefix])

    def next_hops_in(self, selector):
        p = netns.run(["ip", "-n", self.ns_router, "-j", "route", "show", *selector], check=False)
        if p.returncode != 0 or not p.stdout.strip():
            return []
        hops = []
        for route in json.loads(p.stdout):
            if "gateway" in route:
                hops.append(route["gateway"])
            for nh in route.get("nexthops", []):
                hops.append(nh["gateway"])
        return sorted(hops)

    def return_hops(self):
        """The router's next hops for the backends' replies (its return table)."""
        return self.next_hops_in(["table", str(RETURN_TABLE)])

    def wait_next_hops(self, prefix, want, deadline=30):
        """Wait until the router's next hops for prefix (RETURN_TABLE: its
        return table) are exactly `want`; returns the seconds it took, or
        raises."""
        t0 = time.monotonic()
        want = sorted(want)
        while True:
            hops = self.return_hops() if prefix == RETURN_TABLE else self.next_hops(prefix)
            if hops == want:
                return time.monotonic() - t0
            if time.monotonic() - t0 > deadline:
                raise e2e.TestFailure(f"router: {prefix} via {hops or 'nothing'} after {deadline} s, "
                                      f"expected {want or 'no route'}")
            time.sleep(0.02)

    def actl(self, name, *args, check=True, timeout=15):
        return e2e.run([e2e.L4LBCTL, "--file-prefix", self.appliances[name].prefix, *args], check=check,
                       timeout=timeout)

    def ajson(self, name, *args):
        p = self.actl(name, *args, "--json")
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise e2e.TestFailure(f"l4lbctl {' '.join(args)} on {name}: no JSON: {p.stdout[:200]!r}") from e

    def flows_created(self, name):
        return self.ajson(name, "stats")["total"]["flows_created"]

    def birdc(self, sock, command):
        p = netns.run(["birdc", "-s", sock, *command.split()], check=False, timeout=10)
        return p.stdout

    def log_failure(self):
        for a in self.appliances.values():
            e2e.log(f"---- tail of l4lbd {a.name} log ----\n" + self.tail(a.log, 25))

    def down(self):
        for a in self.appliances.values():
            if a.daemon is not None and a.daemon.poll() is None:
                self.stop_appliance(a.name)
        return super().down()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="leave the lab up (l4lb_e2e.py clean removes it)")
    args = ap.parse_args()
    e2e.require_root()
    lab = ScaleoutLab(label="scaleout-lab")
    ok = False
    try:
        lab.up()
        lab.start_servers("http_server", PORT)
        for name in lab.appliances:
            lab.start_appliance(name)
        took = lab.wait_next_hops(VIP, list(APPLIANCES.values()))
        print(f"router: {VIP} via {', '.join(lab.next_hops(VIP))} ({took:.1f} s)")
        print(f"try:  ip netns exec {lab.ns_client} curl http://{VIP}:{PORT}/")
        for name, a in lab.appliances.items():
            print(f"      tools/l4lbctl --file-prefix {a.prefix} routes    (appliance {name}, ns {a.ns})")
        print(f"      birdc -s {lab.workdir}/bird-router.ctl show route")
        ok = True
    finally:
        if args.keep:
            lab.keep = lab.keep_logs = True
            lab.save()
            print(f"lab kept (suffix {lab.sfx}); remove it with: tests/e2e/l4lb_e2e.py clean")
        else:
            problems = lab.down()
            if problems:
                print("teardown: " + "; ".join(problems))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
