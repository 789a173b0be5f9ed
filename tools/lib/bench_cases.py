"""tools/bench's cases: what each one runs, the l4lbd config it needs and the
memory that takes.

Addresses (all on memif, never on a real network):
  generator port   MAC 02:4c:42:00:00:01: clients 10.100.0.0/16 and, in
                   its answering role, the backends 10.99.0.21-24 (churn:
                   10.99.0.21-36)
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
# churn: more backends, so that SNAT addresses x backends (the pools, each
# with every port of the range, DESIGN §3) hold the ports its rate needs.
CHURN_BACKENDS = [f"10.99.0.{21 + i}" for i in range(16)]
CLIENTS = "10.100.0.0/16"
# FNAT source addresses: 10.99.0.128 .. 10.99.0.191 (l4lbd holds at most 64).
SNAT_FIRST = (10, 99, 0, 128)
SNAT_MAX_ADDRESSES = 64
SNAT_PORT_MIN, SNAT_PORT_MAX = 1024, 65535
SNAT_PORTS = SNAT_PORT_MAX - SNAT_PORT_MIN + 1
FNAT_MAX_FLOWS = SNAT_MAX_ADDRESSES * SNAT_PORTS
SNAT_POOL_BYTES = SNAT_PORTS * 6 + 128  # l4lbd: 6 B per port of the worker's slice, plus the pool
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
    "churn": "whole TCP connections on fresh 5-tuples (SYN, SYN+ACK, ACK, data, data+ACK, FIN+ACK, FIN+ACK, "
             "ACK: 8 packets through l4lbd, the client closing first), at most `flows` open at a time, for at "
             "least 3x the longest closing timeout, so flows leave the table (and free their SNAT ports) as "
             "fast as they come; reports connections/s per worker, and fails on any snat_exhausted drop",
}

# churn: the timeouts of its config (seconds). Short, so that a run of a
# few seconds covers 3x the longest closing one and the table reaches the
# steady state where flows expire as fast as connections open.
CHURN_TIMEOUTS = {"tcp_syn_s": 2, "tcp_syn_recv_s": 2, "tcp_established_s": 60, "tcp_fin_wait_s": 2,
                  "tcp_time_wait_s": 2, "tcp_close_s": 1, "snat_port_hold_s": 2, "udp_s": 60,
                  "udp_unreplied_s": 2}
CHURN_CLOSING_S = max(CHURN_TIMEOUTS[k] for k in ("tcp_fin_wait_s", "tcp_time_wait_s", "tcp_close_s"))
# l4lbd sweeps the whole table once a second: a flow outlives its timeout by
# up to that much (DESIGN §3).
SWEEP_S = 1
# Connections open at a time in the churn generator: each holds at most two
# packets in the rings, so 8192 cannot overflow a 2^14-slot memif ring.
CHURN_IN_FLIGHT = 8192
# The offered rate: the generator opens at most this many connections a
# second; the table and the SNAT pools are sized for it (see churn_sizing()).
# Well above what one worker has carried on this shared VM (0.1-0.25 M/s,
# 2026-12), so the figure is l4lbd's, not the cap's; a run that comes within
# 5 % of it says so.
CHURN_MAX_CPS = 2_000_000
# A connection not complete this long after its SYN has failed. Not 1 s (the
# generator's default): on this shared VM a connection behind 16 K queued
# packets has taken over a second without anything being lost.
CHURN_CONN_TIMEOUT_S = 5
CLIENT_PACKETS_PER_CONN = 5  # SYN, ACK, data, FIN+ACK, ACK (the backend's 3 are answers)
PACKETS_PER_CONN = 8         # through l4lbd, both ends


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
        self.scenario = scenario          # baseline | established | new | reverse | churn
        self.flows = flows                # churn: connections open at a time
        self.nat = nat                    # fnat | dnat | "-" for the baseline
        self.new_budget = new_budget      # new: fresh connections in the measured phase
        self.skip_reason = None
        self.companion = False            # an established case run for a churn case's sake

    @property
    def name(self):
        if self.scenario == "churn":
            return "churn"
        return f"{self.scenario} {human(self.flows)}" + (f" ({self.nat})" if self.nat not in ("-", "fnat") else "")

    @property
    def dut(self):
        return "testpmd" if self.scenario == "baseline" else "l4lbd"

    def measure_seconds(self, duration):
        """churn runs at least 3x its longest closing timeout, so that flows
        have left the table (and given their ports back) several times over."""
        return max(duration, 3 * CHURN_CLOSING_S) if self.scenario == "churn" else duration

    def table_capacity(self):
        if self.scenario == "churn":
            return churn_sizing()["flows"]
        want = self.flows + (self.new_budget if self.scenario == "new" else 0)
        return max(1024, int(want * 1.02) + 1024)

    def backends(self):
        return CHURN_BACKENDS if self.scenario == "churn" else BACKENDS

    def snat_addresses(self):
        if self.scenario == "churn":
            return churn_sizing()["snat_addresses"]
        return min(SNAT_MAX_ADDRESSES, max(1, math.ceil(self.table_capacity() / SNAT_PORTS)))

    def snat_pools(self):
        """(SNAT address, backend) pairs: l4lbd's arena per worker, sized to
        what the config needs (its default, 1024 pools of every port of the
        range, would take 400 MB of hugepages)."""
        return self.snat_addresses() * len(self.backends()) if self.nat == "fnat" else 1

    def hugepages(self):
        gen = pages_for(BASE_BYTES + GEN_MBUFS * BYTES_PER_MBUF)
        if self.dut == "testpmd":
            return gen + pages_for(BASE_BYTES + TESTPMD_MBUFS * BYTES_PER_MBUF)
        return gen + pages_for(BASE_BYTES + LB_MBUFS * BYTES_PER_MBUF + self.table_capacity() * BYTES_PER_FLOW
                               + self.snat_pools() * SNAT_POOL_BYTES)

    def pktgen_args(self, rate, window, duration, size, json_path):
        common = ["--vip", f"{VIP}:{VIP_PORT}", "--clients", CLIENTS, "--size", size,
                  "--duration", self.measure_seconds(duration), "--dst-mac", DUT_MAC, "--json", json_path,
                  "--progress", 1, "--link-timeout", 30, "--hold"]
        if self.scenario == "churn":
            # --max-rate counts packets the generator originates: a
            # connection originates 5 (the backend's 3 are answers).
            cps = min(CHURN_MAX_CPS, rate // CLIENT_PACKETS_PER_CONN) if rate else CHURN_MAX_CPS
            return [str(a) for a in common + ["--mode", "churn", "--no-warmup", "--in-flight", self.flows,
                                              "--rate", max(1, cps), "--close", "client",
                                              "--conn-timeout", CHURN_CONN_TIMEOUT_S]]
        args = ["--flows", self.flows, "--rate", rate, "--warmup-rate", rate, "--window", window] + common
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
            f"  snat_pools_per_worker: {self.snat_pools()}",
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
        lines += [f"      - {{address: {b}, port: {VIP_PORT}}}" for b in self.backends()]
        lines.append("neighbors:")
        lines += [f'  - {{address: {b}, mac: "{GEN_MAC}"}}' for b in self.backends()]
        if self.scenario == "churn":
            # Flows leave the table by their closing timeouts, as fast as
            # they are made (churn_sizing() has the arithmetic).
            lines.append("timeouts: {" + ", ".join(f"{k}: {v}" for k, v in CHURN_TIMEOUTS.items()) + "}")
        else:
            # Nothing may expire while a case runs: flows leave l4lbd's table
            # only by timeout, and the tables are sized to hold every flow of
            # the case (the warm-up leaves its flows in syn_recv).
            lines.append("timeouts: {tcp_syn_s: 3600, tcp_syn_recv_s: 3600, tcp_established_s: 3600, "
                         "tcp_closing_s: 3600, udp_s: 3600}")
        lines.append("logging: {level: info}")
        return "\n".join(lines) + "\n"


def churn_sizing(cps=CHURN_MAX_CPS):
    """The churn case's table and SNAT pools for `cps` connections a second,
    and the arithmetic, for the report.

    A connection's flow (and its SNAT port) lives from its SYN through the
    time_wait timeout after the last FIN, plus up to one sweep (1 s): l4lbd
    ages the whole table once a second. The client closes first, so the port
    is free again as soon as the flow is gone (no snat_port_hold_s). So at
    the offered rate each SNAT pool (one per SNAT address x backend, each
    with every port of the range on the one worker) needs, on a fair share,

        cps x (tcp_time_wait_s + sweep) / (addresses x backends)

    ports; the config gives at least twice that (Maglev's and the address
    hash's shares are within a few per cent of fair, and a pool that runs
    short falls over to the backend's pool on the next address)."""
    hold_s = CHURN_TIMEOUTS["tcp_time_wait_s"] + SWEEP_S
    ports_needed = cps * hold_s
    backends = len(CHURN_BACKENDS)
    addresses = min(SNAT_MAX_ADDRESSES, max(1, math.ceil(2 * ports_needed / (SNAT_PORTS * backends))))
    pools = addresses * backends
    # The table: the same flows, plus the ones open, plus 1 s of slack.
    flows = int(cps * (hold_s + 1)) + CHURN_IN_FLIGHT + 1024
    return {"cps": cps, "hold_s": hold_s, "ports_needed": ports_needed, "backends": backends,
            "snat_addresses": addresses, "pools": pools, "ports_per_pool": SNAT_PORTS,
            "ports": pools * SNAT_PORTS, "per_pool_needed": ports_needed / pools, "flows": flows,
            "text": (f"{cps / 1e6:g} M conn/s offered x ({CHURN_TIMEOUTS['tcp_time_wait_s']} s time_wait + "
                     f"{SWEEP_S} s sweep) = {ports_needed / 1e6:g} M ports in use; {addresses} SNAT addresses x "
                     f"{backends} backends = {pools} pools x {SNAT_PORTS} ports = {pools * SNAT_PORTS / 1e6:.2f} M "
                     f"({ports_needed / pools:,.0f} per pool needed of {SNAT_PORTS:,}, "
                     f"{pools * SNAT_PORTS / ports_needed:.1f}x); flow table {flows / 1e6:.2f} M")}


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
        if scenario == "churn":
            continue
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
    if "churn" in scenarios:
        # Right after the established case at the fewest flows of the same
        # round, or with one of its own: the report puts the two side by side.
        churn = [Case("baseline", min(flow_counts), "-"), Case("churn", CHURN_IN_FLIGHT, "fnat")]
        at = next((i + 1 for i, c in enumerate(cases)
                   if c.scenario == "established" and c.flows == min(flow_counts) and not c.skip_reason), None)
        if at is None:
            companion = Case("established", min(flow_counts), "fnat")
            companion.companion = True
            churn += [Case("baseline", min(flow_counts), "-"), companion]
            at = len(cases)
        cases[at:at] = churn
    return cases or [Case("baseline", min(flow_counts), "-")]
