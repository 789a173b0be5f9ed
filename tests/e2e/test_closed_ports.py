#!/usr/bin/env python3
"""e2e (issue 13): a VIP address exposes only the ports its VIPs serve.

The appliance's kernel owns the VIP address (on l4lbk0, so that it answers
ARP and ping), and whatever listens on 0.0.0.0 there would be reachable
through the VIP unless l4lbd stops it. Here socat listens in the
appliance's namespace on 0.0.0.0:2222 (TCP, says "listener-2222") and
0.0.0.0:2223 (UDP, answers "listener-2223"); the only VIP is
10.99.0.100:8080 (FNAT, three http backends).

Control, each phase: the listeners answer on the appliance's own address
10.99.0.1 (the exception path works, the listeners are alive); curl to
VIP:8080 works; ping to the VIP is answered.

Phase drop (configs/closed_ports.yaml: closed_vip_ports left at its
default, drop):
  - TCP connect to VIP:2222 and VIP:22 (nothing listens there) time out;
  - UDP to VIP:2223 gets no answer and no ICMP error;
  - `nmap -sS` of ports 22,80,443,2222,2223,3000,8080,9100 of the VIP from
    the client: 8080 open, every other one filtered;
  - the drop reason closed_vip_port grows.
Phase reject (configs/closed_ports_reject.yaml: closed_vip_ports: reject;
l4lbd restarted):
  - TCP connect to VIP:2222 and VIP:22 is refused (a RST) within 1 s;
  - UDP to VIP:2223 is refused (ICMP port unreachable) within 1 s, with no
    answer from the listener;
  - `nmap -sS -p 1-3000,8080,9100` of the VIP: 8080 open, all the rest
    closed;
  - closed_port_rejects grows by one answer per probe (answered, not dropped)."""
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile  # noqa: E402
import l4lb_e2e as e2e  # noqa: E402

CONFIG_DROP = e2e.CONFIG_DIR / "closed_ports.yaml"
CONFIG_REJECT = e2e.CONFIG_DIR / "closed_ports_reject.yaml"
REASON = "closed_vip_port"
SMALL_SCAN = "22,80,443,2222,2223,3000,8080,9100"
FULL_SCAN = "1-3000,8080,9100"

# Runs in the client namespace: one TCP or UDP attempt, one JSON line.
# udp: an unconnected socket sees an answer from any source address (the
# listener may answer from the appliance's primary address); a connected
# one sees ICMP port unreachable as ECONNREFUSED.
PROBE = r'''
import json, socket, sys, time
kind, host, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
out = {}
t0 = time.monotonic()
try:
    if kind == "tcp":
        s = socket.create_connection((host, port), timeout=timeout)
        s.settimeout(timeout)
        try:
            data = s.recv(100)
        except OSError:
            data = b""
        out = {"result": "connected", "data": data.decode(errors="replace").strip()}
    else:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.settimeout(timeout)
        a.sendto(b"hello", (host, port))
        try:
            data, peer = a.recvfrom(100)
            out = {"result": "answered", "data": data.decode(errors="replace").strip(), "from": peer[0]}
        except OSError:
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            b.settimeout(timeout)
            b.connect((host, port))
            t0 = time.monotonic()
            b.send(b"hello")
            try:
                data = b.recv(100)
                out = {"result": "answered", "data": data.decode(errors="replace").strip()}
            except ConnectionRefusedError:
                out = {"result": "refused"}
except ConnectionRefusedError:
    out = {"result": "refused"}
except (TimeoutError, socket.timeout):
    out = {"result": "timeout"}
except OSError as e:
    out = {"result": "error", "error": str(e)}
if not out:
    out = {"result": "timeout"}
out["seconds"] = round(time.monotonic() - t0, 3)
print(json.dumps(out))
'''


def probe(lab, kind, host, port, timeout=2.0):
    p = lab.in_client([e2e.PY, "-c", PROBE, kind, host, port, timeout], check=False, timeout=30)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"result": "error", "error": (p.stdout + p.stderr).strip()[-200:]}


def nmap(lab, ports, scan_delay=None):
    """{port: state} from `nmap -sS` of the VIP, ports not listed taking the
    'Ignored State'; and the seconds it took. `scan_delay` (between probes)
    keeps a scan under l4lbd's reject rate limit (1000 answers a second per
    worker, bursts of 100), past which closed ports look filtered, as they
    should. Not --max-rate: that is an average, and nmap catches up after a
    stall (a loaded CI machine) with a burst past the limit's."""
    t0 = time.monotonic()
    rate = ["--scan-delay", scan_delay] if scan_delay else []
    p = lab.in_client(["nmap", "-n", "-Pn", "-sS", "-T4", "--max-retries", "1", *rate, "-p", ports, "-oG", "-",
                       e2e.VIP], check=False, timeout=120)
    took = time.monotonic() - t0
    line = next((x for x in p.stdout.splitlines() if "Ports:" in x), "")
    states = {int(m.group(1)): m.group(2) for m in re.finditer(r"(\d+)/(\w+(?:\|\w+)?)/tcp", line)}
    m = re.search(r"Ignored State: (\S+) \((\d+)\)", line)
    ignored = m.group(1) if m else None
    wanted = set()
    for part in ports.split(","):
        lo, _, hi = part.partition("-")
        wanted.update(range(int(lo), int(hi or lo) + 1))
    full = {port: states.get(port, ignored) for port in sorted(wanted)}
    if not line:
        e2e.log(f"nmap printed no Ports line (exit {p.returncode}): {(p.stdout + p.stderr).strip()[-300:]}")
    return full, took


def summary(states):
    by = {}
    for port, state in states.items():
        by.setdefault(state, []).append(port)
    return {s: (ports if len(ports) <= 10 else f"{len(ports)} ports") for s, ports in by.items()}


def start_listeners(lab):
    lab.spawn("socat-tcp-2222", lab.ns_lb,
              ["socat", "TCP4-LISTEN:2222,fork,reuseaddr", "SYSTEM:echo listener-2222"])
    lab.spawn("socat-udp-2223", lab.ns_lb,
              ["socat", "UDP4-RECVFROM:2223,fork", "SYSTEM:echo listener-2223"])
    deadline = time.monotonic() + 10
    while True:
        tcp = e2e.run(["ip", "netns", "exec", lab.ns_lb, "ss", "-ltnH", "sport = :2222"]).stdout
        udp = e2e.run(["ip", "netns", "exec", lab.ns_lb, "ss", "-lunH", "sport = :2223"]).stdout
        if "0.0.0.0:2222" in tcp and "0.0.0.0:2223" in udp:
            break
        if time.monotonic() > deadline:
            raise e2e.TestFailure(f"socat listeners not up in {lab.ns_lb}: {tcp!r} {udp!r}")
        time.sleep(0.1)
    e2e.log(f"listeners in {lab.ns_lb}: socat on 0.0.0.0:2222/tcp and 0.0.0.0:2223/udp")


def phase(lab, mode, config):
    problems = []
    lab.start_daemon(config)
    lab.wait_vip("http", 8080)
    before = hostile.totals(lab)

    # Control: the appliance's own address reaches the listeners.
    own_tcp = probe(lab, "tcp", e2e.LB_ADDR, 2222)
    own_udp = probe(lab, "udp", e2e.LB_ADDR, 2223)
    e2e.log(f"[{mode}] control, {e2e.LB_ADDR}:2222/tcp -> {own_tcp}; {e2e.LB_ADDR}:2223/udp -> {own_udp}")
    if own_tcp.get("data") != "listener-2222" or own_udp.get("data") != "listener-2223":
        problems.append(f"[{mode}] control: the listeners do not answer on {e2e.LB_ADDR}: {own_tcp} {own_udp}")

    for port in (2222, 22):
        r = probe(lab, "tcp", e2e.VIP, port)
        e2e.log(f"[{mode}] TCP connect to {e2e.VIP}:{port} -> {r}")
        if mode == "drop" and r["result"] != "timeout":
            problems.append(f"[drop] TCP {e2e.VIP}:{port}: {r['result']} {r.get('data', '')!r}, expected a timeout")
        if mode == "reject" and (r["result"] != "refused" or r["seconds"] > 1.0):
            problems.append(f"[reject] TCP {e2e.VIP}:{port}: {r['result']} after {r['seconds']} s "
                            f"{r.get('data', '')!r}, expected refused within 1 s")
    r = probe(lab, "udp", e2e.VIP, 2223, timeout=1.5)
    e2e.log(f"[{mode}] UDP to {e2e.VIP}:2223 -> {r}")
    if mode == "drop" and r["result"] != "timeout":
        problems.append(f"[drop] UDP {e2e.VIP}:2223: {r['result']} {r.get('data', '')!r}, expected no answer")
    if mode == "reject" and (r["result"] != "refused" or r["seconds"] > 1.0):
        problems.append(f"[reject] UDP {e2e.VIP}:2223: {r['result']} after {r['seconds']} s "
                        f"{r.get('data', '')!r}, expected ICMP port unreachable within 1 s")

    scan = SMALL_SCAN if mode == "drop" else FULL_SCAN
    states, took = nmap(lab, scan, scan_delay=None if mode == "drop" else "2ms")
    e2e.log(f"[{mode}] nmap -sS -p {scan} {e2e.VIP} ({took:.1f} s): {summary(states)}")
    closed_state = "filtered" if mode == "drop" else "closed"
    if states.get(8080) != "open":
        problems.append(f"[{mode}] nmap: the VIP's port 8080 is {states.get(8080)}, expected open")
    wrong = {p: s for p, s in states.items() if p != 8080 and s != closed_state}
    if wrong:
        problems.append(f"[{mode}] nmap: ports not {closed_state}: {summary(wrong)}")

    p = lab.in_client(["ping", "-c", "3", "-i", "0.2", "-W", "1", e2e.VIP], check=False, timeout=20)
    m = re.search(r"(\d+) received", p.stdout)
    e2e.log(f"[{mode}] ping {e2e.VIP}: {m.group(0) if m else p.stdout.strip()[-100:]}")
    if not m or int(m.group(1)) < 3:
        problems.append(f"[{mode}] ping to the VIP: {m.group(0) if m else 'no answer'} of 3")
    counts, failures = lab.curl_many(10)
    e2e.log(f"[{mode}] 10 curls to VIP:8080: {dict(counts)}, {len(failures)} failed")
    if failures:
        problems.append(f"[{mode}] {len(failures)} of 10 curls to VIP:8080 failed: {failures[0]}")

    after = hostile.totals(lab)
    grown = hostile.drop_delta(before, after, REASON)
    e2e.log(f"[{mode}] drops during the phase: {hostile.nonzero_drops(before, after) or 'none'}; "
            f"slow-path packets +{hostile.delta(before, after, 'slow_path_packets')}")
    rejects = hostile.delta(before, after, "closed_port_rejects")
    e2e.log(f"[{mode}] closed_port_rejects +{rejects}")
    if REASON not in (after.get("drops") or {}):
        problems.append(f"[{mode}] l4lbctl stats has no drop reason {REASON}")
    elif mode == "drop" and grown <= 0:
        problems.append(f"[{mode}] drop reason {REASON} did not grow")
    elif mode == "reject" and rejects < 3000:
        # Answered, not dropped: each probe of the scan got its RST (the scan
        # stays under the rate limit), plus the connects and the UDP probe.
        problems.append(f"[{mode}] only {rejects} closed-port answers (closed_port_rejects), "
                        f"expected one per probe of the scan")
    lab.print_stats()
    try:
        lab.stop_daemon_checked()
    except e2e.TestFailure as e:
        problems.append(f"[{mode}] {e}")
    return problems


def body(lab):
    start_listeners(lab)
    problems = phase(lab, "drop", CONFIG_DROP)
    try:
        problems += phase(lab, "reject", CONFIG_REJECT)
    except e2e.TestFailure as e:   # e.g. an l4lbd that refuses the key
        problems.append(f"[reject] {e}")
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    # l4lbd is started by body, once per phase.
    e2e.run_test("closed_ports", body, servers=[("http_server", 8080)], timeout=150)
