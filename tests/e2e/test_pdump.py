#!/usr/bin/env python3
"""e2e: packet capture with dpdk-pdump (l4lbd calls rte_pdump_init).

dpdk-pdump runs as a DPDK secondary process with l4lbd's --file-prefix and
captures port 0, rx and tx, every queue, into one pcap while 20 curls go
through the web VIP; it is stopped with SIGINT. `tcpdump -r` must then show
every leg of the full-NAT path of those connections:
  client -> VIP         (rx, forward)       10.99.0.10.* > 10.99.0.100.8080
  SNAT   -> backend     (tx, forward)       10.99.0.1.<snat port> > 10.99.0.2x.8080
  backend -> SNAT       (rx, reverse)       10.99.0.2x.8080 > 10.99.0.1.<snat port>
  VIP    -> client      (tx, reverse)       10.99.0.100.8080 > 10.99.0.10.*
with at least one client SYN to the VIP per curl. Afterwards l4lbd still
forwards (20 more curls) and exits cleanly."""
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "health.yaml"
PDUMP = shutil.which("dpdk-pdump") or "/usr/bin/dpdk-pdump"
SNAT_MIN, SNAT_MAX = 10240, 32767     # l4lbd's default snat_port_range
N = 20
READY = "capture for"                 # " core (0), capture for (1) tuples"


def body(lab):
    if not Path(PDUMP).exists():
        raise e2e.TestFailure(f"{PDUMP} not found (Debian package dpdk)")
    if not shutil.which("tcpdump"):
        raise e2e.TestFailure("tcpdump not installed (tools/lib/setup.sh installs it)")
    problems = []
    lab.wait_backends_up("web")
    pcap = lab.workdir / "capture.pcap"
    pdump_log = lab.workdir / "dpdk-pdump.log"
    # A secondary process: it maps l4lbd's hugepages and asks it over the
    # multi-process socket in /var/run/dpdk/<prefix>/ to copy port 0's
    # packets into a ring it drains into the pcap PMD. It runs in the
    # appliance namespace only to be recorded (and stopped) with the lab.
    # stdbuf -oL: its "capture for" line must reach the log before it exits.
    cmd = ["stdbuf", "-oL", PDUMP, "--file-prefix", lab.prefix, "-l", "0", "--no-pci", "--",
           "--pdump", f"port=0,queue=*,rx-dev={pcap},tx-dev={pcap}"]
    e2e.log("capture: " + " ".join(map(str, cmd)))
    pdump = lab.spawn("dpdk-pdump", lab.ns_lb, cmd, logfile=pdump_log)
    t0 = time.monotonic()
    while READY not in pdump_log.read_text(errors="replace"):
        if pdump.poll() is not None or time.monotonic() - t0 > 20:
            text = pdump_log.read_text(errors="replace").strip()
            raise e2e.TestFailure(f"dpdk-pdump {'exited with ' + str(pdump.returncode) if pdump.poll() is not None else 'not capturing after 20 s'}:\n{text[-1500:]}")
        time.sleep(0.1)
    e2e.log(f"capture: dpdk-pdump attached after {time.monotonic() - t0:.1f} s")

    counts, failures = lab.curl_many(N)
    e2e.log(f"{N} curls during the capture: {dict(sorted(counts.items()))}, {len(failures)} failed")
    if failures:
        problems.append(f"{len(failures)} of {N} curls failed during the capture, e.g. {failures[0]}")
    time.sleep(0.5)
    pdump.send_signal(signal.SIGINT)
    try:
        pdump.wait(15)
    except subprocess.TimeoutExpired:
        problems.append("dpdk-pdump did not exit within 15 s of SIGINT")
        pdump.kill()
        pdump.wait()
    text = pdump_log.read_text(errors="replace")
    stats = dict(re.findall(r"-packets (\w+):\s+(\d+)", text))
    e2e.log(f"capture: dpdk-pdump exited with {pdump.returncode}; its counters: {stats}")
    if pdump.returncode != 0:
        problems.append(f"dpdk-pdump exited with {pdump.returncode}")

    p = e2e.run(["tcpdump", "-nn", "-r", pcap], check=False, timeout=60)
    if p.returncode != 0:
        raise e2e.TestFailure(f"tcpdump -r {pcap} failed ({p.returncode}): {p.stderr.strip()}")
    lines = p.stdout.splitlines()
    vip, client = re.escape(e2e.VIP), re.escape(lab.client_addr)
    snat, backend = re.escape(e2e.LB_ADDR), r"10\.99\.0\.2\d"

    def matching(rx):
        return [line for line in lines if re.search(rx, line)]

    def snat_port(line, rx):
        m = re.search(rx, line)
        return m and SNAT_MIN <= int(m.group(1)) <= SNAT_MAX

    legs = {
        "client -> VIP": matching(rf"IP {client}\.\d+ > {vip}\.8080:"),
        "SNAT -> backend": [line for line in matching(rf"IP {snat}\.(\d+) > {backend}\.8080:")
                            if snat_port(line, rf"IP {snat}\.(\d+) >")],
        "backend -> SNAT": [line for line in matching(rf"IP {backend}\.8080 > {snat}\.(\d+):")
                            if snat_port(line, rf"> {snat}\.(\d+):")],
        "VIP -> client": matching(rf"IP {vip}\.8080 > {client}\.\d+:"),
    }
    syns = [line for line in legs["client -> VIP"] if "Flags [S]," in line]
    e2e.log(f"tcpdump -r: {len(lines)} packets in the capture; " +
            ", ".join(f"{k}: {len(v)}" for k, v in legs.items()) + f"; client SYNs to the VIP: {len(syns)}")
    for k, v in legs.items():
        if v:
            e2e.log(f"  e.g. {k}: {v[0]}")
    for k, v in legs.items():
        if not v:
            problems.append(f"no {k} packets in the capture")
    if len(syns) < N:
        problems.append(f"{len(syns)} client SYNs to the VIP captured, expected >= {N}")

    counts, failures = lab.curl_many(N)
    e2e.log(f"{N} curls after the capture ended: {dict(sorted(counts.items()))}, {len(failures)} failed")
    if failures:
        problems.append(f"{len(failures)} of {N} curls failed after the capture, e.g. {failures[0]}")
    lab.finish(problems)


if __name__ == "__main__":
    e2e.run_test("pdump", body, config=CONFIG, servers=[("http_server", 8080)], probe=("http", 8080),
                 timeout=120)
