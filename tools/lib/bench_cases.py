"""tools/bench's cases: what each one runs, the l4lbd config it needs and the
memory that takes.

Addresses (all on memif, never on a real network):
  generator port   MAC 02:4c:42:00:00:01: clients 10.100.0.0/16 and, in
                   its answering role, the backends 10.99.0.21-24
  DUT port         MAC 02:4c:42:00:00:02: l4lbd (10.99.0.1/24, VIP
                   10.99.0.100:8080/tcp) or dpdk-testpmd (macswap)
l4lbd gets static `neighbors` mapping every backend to the generator's MAC,
so no ARP is needed; it sends replies to clients back to the source MAC of
their packets, which is also the generator's.
"""
import math

GEN_MAC = "02:4c:42:00:00:01"
DUT_MAC = "02:4c:42:00:00:02"
LB_ADDRESS = "10.99.0.1/24"
VIP = "10.99.0.100"
VIP_PORT = 8080
BACKENDS = ["10.99.0.21", "10.99.0.22", "10.99.0.23", "10.99.0.24"]
CLIENTS = "10.100.0.0/16"
# FNAT source addresses: 10.99.0.128 .. 10.99.0.191 (l4lbd holds at most 64).
SNAT_FIRST = (10, 99, 0, 128)
SNAT_MAX_ADDRESSES = 64
SNAT_PORT_MIN, SNAT_PORT_MAX = 1024, 65535
SNAT_PORTS = SNAT_PORT_MAX - SNAT_PORT_MIN + 1
FNAT_MAX_FLOWS = SNAT_MAX_ADDRESSES * SNAT_PORTS
LB_MBUFS = 16384
GEN_MBUFS = 32768
TESTPMD_MBUFS = 16384

# What a case costs in 2 MiB hugepages, estimated high. l4lbd measured about
# 200 B per flow (the 64-byte entry, rte_hash with two 16-byte keys per flow in
# an extendable table, the free list); 256 B leaves room. Mbufs are about
# 2.3 KB each; 64 MiB covers each process's own EAL heap.
BYTES_PER_FLOW = 256
BYTES_PER_MBUF = 2304
BASE_BYTES = 64 << 20
PAGE = 2 << 20

SCENARIOS = {
    "established": "client->VIP packets on flows opened in the warm-up (flow-table hits), answered by "
                   "the generator as the backend: l4lbd forwards and reverse-NATs every packet",
    "new": "every client packet a TCP SYN of a fresh 5-tuple (flow insert, Maglev pick, SNAT port), "
           "refused by the backend with RST+ACK (reverse lookup, flow closed)",
    "reverse": "backend->client packets only, on flows opened in the warm-up with the NAT'd tuples "
               "learned there: l4lbd's reverse path alone",
}


def human(n):
    for unit, size in (("M", 1_000_000), ("K", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def pages_for(nbytes):
    return int(math.ceil(nbytes / PAGE))


class Case:
    """One measurement: a scenario at a flow count, on l4lbd or testpmd."""

    def __init__(self, scenario, flows, nat="fnat", new_budget=0):
        self.scenario = scenario          # baseline | established | new | reverse
        self.flows = flows
        self.nat = nat                    # fnat | dnat | "-" for the baseline
        self.new_budget = new_budget      # new: fresh connections in the measured phase
        self.skip_reason = None

    @property
    def name(self):
        return f"{self.scenario} {human(self.flows)}" + (f" ({self.nat})" if self.nat not in ("-", "fnat") else "")

    @property
    def dut(self):
        return "testpmd" if self.scenario == "baseline" else "l4lbd"

    def table_capacity(self):
        want = self.flows + (self.new_budget if self.scenario == "new" else 0)
        return max(1024, int(want * 1.02) + 1024)

    def snat_addresses(self):
        return min(SNAT_MAX_ADDRESSES, max(1, math.ceil(self.table_capacity() / SNAT_PORTS)))

    def hugepages(self):
        gen = pages_for(BASE_BYTES + GEN_MBUFS * BYTES_PER_MBUF)
        if self.dut == "testpmd":
            return gen + pages_for(BASE_BYTES + TESTPMD_MBUFS * BYTES_PER_MBUF)
        return gen + pages_for(BASE_BYTES + LB_MBUFS * BYTES_PER_MBUF + self.table_capacity() * BYTES_PER_FLOW)

    def pktgen_args(self, rate, window, duration, size, json_path):
        args = ["--flows", self.flows, "--vip", f"{VIP}:{VIP_PORT}", "--clients", CLIENTS,
                "--size", size, "--rate", rate, "--warmup-rate", rate, "--window", window,
                "--duration", duration, "--dst-mac", DUT_MAC, "--json", json_path,
                "--progress", 1, "--link-timeout", 30, "--hold"]
        if self.scenario in ("baseline", "established"):
            args += ["--mode", "established"]
        elif self.scenario == "new":
            args += ["--mode", "new", "--count", self.new_budget]
        elif self.scenario == "reverse":
            args += ["--mode", "established", "--from-backend"]
        return [str(a) for a in args]

    def l4lbd_config(self):
        """The l4lbd YAML for this case (DESIGN §9 keys only)."""
        cap = self.table_capacity()
        lines = [
            f"# tools/bench case: {self.name}",
            "dataplane:",
            "  workers: 1",
            f"  flows_per_worker: {cap}",
            f"  mbufs: {LB_MBUFS}",
            f"  snat_port_range: [{SNAT_PORT_MIN}, {SNAT_PORT_MAX}]",
            "ports:",
            f"  - {{name: net_memif0, address: {LB_ADDRESS}, kernel_iface: l4lbk0}}",
            "vips:",
            "  - name: bench",
            f"    address: {VIP}",
            f"    port: {VIP_PORT}",
            "    protocol: tcp",
            f"    mode: {self.nat}",
        ]
        if self.nat == "fnat":
            a, b, c, d = SNAT_FIRST
            snat = [f"{a}.{b}.{c}.{d + i}" for i in range(self.snat_addresses())]
            lines.append(f"    snat: [{', '.join(snat)}]")
        lines.append("    backends:")
        lines += [f"      - {{address: {b}, port: {VIP_PORT}}}" for b in BACKENDS]
        lines.append("neighbors:")
        lines += [f'  - {{address: {b}, mac: "{GEN_MAC}"}}' for b in BACKENDS]
        # Nothing may expire while a case runs: flows leave l4lbd's table only
        # by timeout, and the tables are sized to hold every flow of the case.
        lines.append("timeouts: {tcp_syn_s: 3600, tcp_established_s: 3600, tcp_closing_s: 3600, udp_s: 3600}")
        lines.append("logging: {level: info}")
        return "\n".join(lines) + "\n"


def plan(scenarios, flow_counts, new_budget, nat, repeat=1):
    """`repeat` rounds of plan_round(): round-robin, so slow drift of the
    machine spreads over every case instead of landing on one."""
    rounds = [plan_round(scenarios, flow_counts, new_budget, nat) for _ in range(max(1, repeat))]
    for r, cases in enumerate(rounds):
        for c in cases:
            c.round = r
    return [c for cases in rounds for c in cases]


def plan_round(scenarios, flow_counts, new_budget, nat):
    """Cases in run order: scenario x flows, each right after a baseline run
    of its own. The speed of a shared VM drifts (testpmd alone has measured
    12.6 and 22.4 Mpps minutes apart), so a ratio is only fair against a
    baseline measured next to it."""
    cases = []
    for scenario in scenarios:
        for flows in flow_counts:
            budget = new_budget if scenario == "new" else 0
            c = Case(scenario, flows, "fnat", budget)
            if nat == "dnat" or (nat == "auto" and c.table_capacity() > FNAT_MAX_FLOWS * 0.98):
                c.nat = "dnat"
            elif nat == "fnat" and c.table_capacity() > FNAT_MAX_FLOWS * 0.98:
                c.skip_reason = (f"FNAT holds at most {SNAT_MAX_ADDRESSES} SNAT addresses x {SNAT_PORTS} ports "
                                 f"= {FNAT_MAX_FLOWS} flows in l4lbd; use --nat auto or dnat")
            if not c.skip_reason:
                cases.append(Case("baseline", min(flow_counts), "-"))
            cases.append(c)
    return cases or [Case("baseline", min(flow_counts), "-")]
