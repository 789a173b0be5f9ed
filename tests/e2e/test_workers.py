#!/usr/bin/env python3
"""e2e: l4lbd with several workers (DESIGN §4, flow ownership across cores).

For workers in {2, 3} x mode in {fnat, dnat}, each case in its own topology
(dnat: Lab(dnat=True), the client routed through the appliance) and with
tests/e2e/configs/workers_<W>_<mode>.yaml, l4lbd on W+1 lcores mapped onto
the machine's 2 CPUs:

  - 1000 HTTP requests with curl, each on its own TCP connection
    ("Connection: close", 25 URLs per curl process, 8 processes at a time):
    every one answered by a backend;
  - `wrk -t2 -c32 -d4s`: no socket errors, no non-2xx/3xx answers;
  - over the curl phase, flows_created summed over the workers goes up by
    exactly the number of connections made (the kernel reuses client ports,
    and a SYN on a tuple whose closed flow is still listed ends that flow
    and creates a new one), and the new flows listed are exactly the client
    tuples not listed before;
    over the wrk phase, flows_created goes up by the number of new flows
    listed plus the wrk connections on a tuple listed before, and the new
    flows are wrk's connections (sampled with ss while it runs)
    plus at most wrk's one test connection;
  - every flow lives on exactly one worker: in `l4lbctl flows --list`, each
    client ip:port (per VIP) appears once across all workers.

Printed for the record: hand-off ratio (handoffs_out / rx_packets) per phase,
per-worker split of flows_created, the daemon's 'steering' log line, wrk's
requests/s, non-zero drops, and whether each flow sits on the worker that
DESIGN §4 says owns it (FNAT: SNAT port slice, DNAT: client hash; reported,
not enforced, as the exact split is an implementation detail).
"""
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

NAME = "workers"
URL = f"http://{e2e.VIP}:8080/"
VIP_EP = f"{e2e.VIP}:8080"
N_CURL = 1000
CURL_PARALLEL = 8
CURL_BATCH = 25          # URLs per curl process
WRK_SECONDS = 4            # 32 connections kept busy: enough to spread flows over the workers
WRK = ["wrk", "-t2", "-c32", f"-d{WRK_SECONDS}s", "--timeout", "5s", URL]
CASES = [(2, "fnat"), (2, "dnat"), (3, "fnat"), (3, "dnat")]
if os.environ.get("L4LB_WORKERS_CASES"):      # e.g. "3:fnat,2:dnat", for debugging
    CASES = [(int(c.split(":")[0]), c.split(":")[1]) for c in os.environ["L4LB_WORKERS_CASES"].split(",")]
CURL_PARALLEL = int(os.environ.get("L4LB_WORKERS_PARALLEL", CURL_PARALLEL))
# N workers need N+1 lcores; the main (management) lcore alone on CPU 0.
LCORES = {2: "0@0,1@1,2@1", 3: "0@0,1@1,2@1,3@0"}
SNAT_PORT_RANGE = (10240, 32767)   # the default; the workers_* configs keep it
TOTAL_TIMEOUT = 270        # below tools/test's 300 s per e2e test


# ---------------------------------------------------------------- helpers

def flows_list(lab):
    """l4lbctl flows --list --json -> {worker: [parsed flow dict, ...]}."""
    p = e2e.run([e2e.L4LBCTL, "--file-prefix", lab.prefix, "flows", "--list", "--json"],
                check=False, timeout=60)
    if p.returncode != 0:
        raise e2e.TestFailure(f"l4lbctl flows --list failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    try:
        data = json.loads(p.stdout)
    except ValueError as e:
        raise e2e.TestFailure(f"l4lbctl flows --list --json printed no JSON: {p.stdout[:300]!r}") from e
    out = {}
    for w in data["workers"]:
        parsed = []
        for line in w.get("flows", []):
            f = line.split()
            if len(f) != 6:
                raise e2e.TestFailure(f"worker {w['worker']}: unexpected flow line {line!r}")
            parsed.append({"proto": f[0], "client": f[1], "vip": f[2], "snat": f[3],
                           "backend": f[4], "state": f[5], "line": line})
        out[w["worker"]] = parsed
    return out


def flow_ids(flows, client_ip):
    """(proto, client ip:port, vip) of every listed flow from client_ip to our VIP."""
    return {(f["proto"], f["client"], f["vip"]) for fl in flows.values() for f in fl
            if f["vip"] == VIP_EP and f["client"].rsplit(":", 1)[0] == client_ip}


def placement(flows):
    """-> ({(proto, client ip:port, vip): [worker, ...]}, the subset listed
    more than once). A flow listed twice, on one worker or on two, means a
    worker created state for a flow it does not own (DESIGN §4)."""
    where = collections.defaultdict(list)
    for w, fl in flows.items():
        for f in fl:
            where[(f["proto"], f["client"], f["vip"])].append(w)
    return where, {k: v for k, v in where.items() if len(v) > 1}


def totals(stats):
    """Counters summed over the per-worker entries (not trusting 'total')."""
    t = collections.Counter()
    for w in stats["workers"]:
        for k, v in w.items():
            if isinstance(v, int) and k != "worker":
                t[k] += v
        for k, v in (w.get("drops") or {}).items():
            t["drop_" + k] += v
    return t


def per_worker(stats, key):
    return [w.get(key, 0) for w in stats["workers"]]


def delta(a, b, key):
    return totals(b)[key] - totals(a)[key]


def handoff_ratio(a, b):
    rx = delta(a, b, "rx_packets")
    out = delta(a, b, "handoffs_out")
    return out, rx, (out / rx if rx else 0.0)


def fmix64(k):
    m = (1 << 64) - 1
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & m
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & m
    k ^= k >> 33
    return k


def wire_u32(ip):
    """An IPv4 address as l4lbd holds it: network-order bytes read as a
    little-endian uint32 (x86)."""
    return int.from_bytes(bytes(int(x) for x in ip.split(".")), "little")


def wire_u16(port):
    return int.from_bytes(int(port).to_bytes(2, "big"), "little")


def expected_owner(flow, mode, workers):
    """Owner per DESIGN §4 as l4lbd implements it today (flow_owner.h)."""
    if mode == "dnat":
        ip, port = flow["client"].rsplit(":", 1)
        return fmix64((wire_u32(ip) << 16) | wire_u16(port)) % workers
    port = int(flow["snat"].rsplit(":", 1)[1])
    lo, hi = SNAT_PORT_RANGE
    share = max(1, (hi - lo + 1) // workers)
    return min((port - lo) // share, workers - 1)


# curl_batch.sh URL OUTDIR FIRST LAST: requests FIRST..LAST in one curl process;
# body and a RESULT line per request go to OUTDIR/FIRST.out.
CURL_BATCH_SH = r"""#!/bin/bash
url=$1 out=$2 first=$3 last=$4
urls=()
for i in $(seq "$first" "$last"); do urls+=("$url?i=$i"); done
exec curl -sS --noproxy '*' --fail -m 10 -H 'Connection: close' \
    -w '\nRESULT %{http_code} %{num_connects} %{local_port} %{exitcode}\n' \
    "${urls[@]}" > "$out/$first.out" 2>&1
"""


def curl_parallel(lab, n, parallel, batch=CURL_BATCH):
    """n HTTP requests with curl from the client namespace, each on its own TCP
    connection: curl processes of `batch` URLs each, `parallel` at a time,
    sending "Connection: close" so every request opens a new connection
    (curl's num_connects says so, and is summed). Returns (Counter backend ->
    answers, failures, connections made, client ports of the successful
    requests)."""
    outdir = lab.workdir / "curl"
    outdir.mkdir(exist_ok=True)
    helper = lab.workdir / "curl_batch.sh"
    helper.write_text(CURL_BATCH_SH)
    ranges = "".join(f"{i} {min(i + batch - 1, n)}\n" for i in range(1, n + 1, batch))
    p = lab.in_client(["xargs", "-P", parallel, "-n", 2, "bash", helper, URL, outdir],
                      check=False, timeout=60 + n, input=ranges)
    counts, failures, connections, results, ports = collections.Counter(), [], 0, 0, []
    for f in sorted(outdir.glob("*.out")):
        backend, noise = None, []
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith("backend="):
                backend = line.split()[0].split("=", 1)[1]
            elif line.startswith("RESULT "):
                code, nconn, port, rc = line.split()[1:5]
                results += 1
                connections += int(nconn)
                if rc == "0" and code == "200" and backend:
                    counts[backend] += 1
                    ports.append(int(port))
                else:
                    failures.append(f"http {code} exit {rc} port {port} {' '.join(noise)}".strip())
                if int(nconn) != 1 and rc == "0":
                    failures.append(f"request from port {port} used {nconn} new connections, expected 1")
                backend, noise = None, []
            elif line.strip():
                noise.append(line.strip())
    if results != n:
        failures.append(f"{n - results} requests reported no result (curl exit {p.returncode}: "
                        f"{(p.stdout + p.stderr).strip()[-300:]})")
    if not failures:
        shutil.rmtree(outdir, ignore_errors=True)
    return counts, failures, connections, ports


def client_tuples(lab):
    """Client ip:port of the client's established TCP connections to the VIP."""
    p = lab.in_client(["ss", "-Htn", "state", "established"], check=False, timeout=10)
    found = set()
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) >= 4 and f[-1] == VIP_EP:
            found.add(f[-2])
    return found


def run_wrk(lab):
    """wrk in the background; its connections are sampled with ss while it
    runs (it prints no connection count). Returns
    (e2e.WrkResult, set of client ip:port seen)."""
    e2e.log("client: " + " ".join(WRK))
    p = subprocess.Popen(["ip", "netns", "exec", lab.ns_client, *WRK], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    seen = set()
    try:
        t0 = time.monotonic()
        for at in (1.0, 2.0, 3.0):  # wrk runs WRK_SECONDS
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            seen |= client_tuples(lab)
        out, _ = p.communicate(timeout=50)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    e2e.log("  " + out.rstrip().replace("\n", "\n  "))
    return e2e.wrk_result(p.returncode, out), seen


def settle(lab, seconds=1.0):
    """Let the last FIN/ACKs and hand-off rings drain before reading counters."""
    time.sleep(seconds)


Snapshot = collections.namedtuple("Snapshot", "stats flows ids")
Change = collections.namedtuple("Change", "created split new handoffs rx ratio")


def snapshot(lab, client_ip, drain=True):
    """The counters, the listed flows and the ids of the client's flows to
    our VIP; with drain, after settle()."""
    if drain:
        settle(lab)
    stats = lab.stats()
    flows = flows_list(lab)
    return Snapshot(stats, flows, flow_ids(flows, client_ip))


def change(a, b):
    """From snapshot a to b: flows created (in all and per worker), flows
    newly listed, and hand-offs against packets received."""
    split = [y - x for x, y in zip(per_worker(a.stats, "flows_created"), per_worker(b.stats, "flows_created"))]
    handoffs, rx, ratio = handoff_ratio(a.stats, b.stats)
    return Change(delta(a.stats, b.stats, "flows_created"), split, b.ids - a.ids, handoffs, rx, ratio)


# ---------------------------------------------------------------- one case

def body(lab, workers, mode, summary):
    problems = []
    client_ip = lab.client_addr

    steering = [line.strip() for line in lab.daemon_log.read_text(errors="replace").splitlines()
                if "steering" in line]
    summary["steering"] = steering[-1] if steering else "(no 'steering' line in the l4lbd log)"
    e2e.log(f"steering: {summary['steering']}")
    for line in lab.daemon_log.read_text(errors="replace").splitlines():
        if "rx/tx queues" in line:
            e2e.log(f"port: {line.strip()}")

    snap0 = snapshot(lab, client_ip, drain=False)
    if len(snap0.stats["workers"]) != workers:
        raise e2e.TestFailure(f"l4lbctl stats shows {len(snap0.stats['workers'])} workers, config says {workers}")
    ids0 = snap0.ids

    # -- phase 1: 1000 separate connections
    e2e.log(f"client: {N_CURL} curl requests to {URL}, each on its own connection "
            f"('Connection: close'), {CURL_BATCH} per curl process, {CURL_PARALLEL} processes in parallel")
    t0 = time.monotonic()
    counts, failures, connections, ports = curl_parallel(lab, N_CURL, CURL_PARALLEL)
    took = time.monotonic() - t0
    answered = sum(counts.values())
    e2e.log(f"curl: {answered} of {N_CURL} answered in {took:.1f} s "
            f"({answered / took:.0f}/s) over {connections} new TCP connections, {len(failures)} failed; by backend: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if failures:
        e2e.log(f"curl: first failures: {failures[:3]}")
        problems.append(f"{len(failures)} of {N_CURL} curl requests failed, first: {failures[0]}")
    elif answered != N_CURL:
        problems.append(f"only {answered} of {N_CURL} curl answers named a backend")
    snap1 = snapshot(lab, client_ip)
    ids1 = snap1.ids
    curl = change(snap0, snap1)
    created_curl, new_curl, split_curl = curl.created, curl.new, curl.split
    # Every connection is a new flow, also on a client port used again while
    # its earlier flow is still listed (closing): l4lbd ends that flow and
    # creates a fresh one (DESIGN §3, a SYN on a closing flow). The flows
    # listed that were not listed before are the distinct new tuples.
    used = {("tcp", f"{client_ip}:{port}", VIP_EP) for port in ports}
    expected = used - ids0
    reused = len(ports) - len(expected)
    e2e.log(f"curl phase: TCP connections made {connections}, distinct client ports {len(used)}, "
            f"{reused} reused a tuple still in the table -> {len(expected)} new tuples listed expected")
    e2e.log(f"curl phase: flows_created +{created_curl} (per worker {split_curl}), new flows listed {len(new_curl)}")
    e2e.log(f"curl phase: hand-offs {curl.handoffs} of {curl.rx} rx packets = {curl.ratio:.3f}")
    summary["curl_ratio"] = curl.ratio
    summary["curl_split"] = split_curl
    summary["curl_rate"] = answered / took if took else 0
    summary["reused"] = reused
    if created_curl != connections:
        problems.append(f"curl phase: flows_created went up by {created_curl}, expected one per connection, "
                        f"{connections} ({reused} on a tuple already in the table)")
    if new_curl != expected:
        missing, extra = sorted(expected - new_curl), sorted(new_curl - expected)
        problems.append(f"curl phase: the new flows listed ({len(new_curl)}) are not the connections made "
                        f"({len(expected)} new): {len(missing)} missing, e.g. {missing[:2]}, "
                        f"{len(extra)} unexpected, e.g. {extra[:2]}")

    # -- phase 2: wrk over keep-alive connections
    w, seen = run_wrk(lab)
    e2e.log(f"wrk: {w.requests} requests, {w.rps:.0f} requests/s, socket errors {w.errors or 'none'}, "
            f"non-2xx/3xx {w.non2xx}")
    summary["wrk_rps"] = w.rps
    problems += e2e.wrk_problems(w, WRK_SECONDS)
    snap2 = snapshot(lab, client_ip)
    s2, f2, ids2 = snap2
    wrk = change(snap1, snap2)
    created_wrk, new_wrk, split_wrk = wrk.created, wrk.new, wrk.split
    wrk_conns = {("tcp", c, VIP_EP) for c in seen}
    wrk_expected = wrk_conns - ids1
    e2e.log(f"wrk phase: {len(wrk_conns)} wrk connections seen with ss (+1 wrk test connection), "
            f"{len(wrk_conns & ids1)} on a tuple already in the table")
    e2e.log(f"wrk phase: flows_created +{created_wrk} (per worker {split_wrk}), new flows listed {len(new_wrk)}")
    e2e.log(f"wrk phase: hand-offs {wrk.handoffs} of {wrk.rx} rx packets = {wrk.ratio:.3f}")
    summary["wrk_ratio"] = wrk.ratio
    summary["wrk_conns"] = len(new_wrk)
    summary["reused"] += len(wrk_conns & ids1)
    # A wrk connection on a tuple still listed from the curl phase (closing)
    # ends that flow and creates one under the same tuple: created, not new.
    # wrk's own test connection, closed before ss looks, is either listed new
    # or, on such a tuple, created unseen.
    reused_wrk = len(wrk_conns & ids1)
    unseen = created_wrk - len(new_wrk) - reused_wrk
    if unseen not in (0, 1) or (unseen == 1 and new_wrk - wrk_expected):
        problems.append(f"wrk phase: flows_created went up by {created_wrk} but {len(new_wrk)} new flows are "
                        f"listed and {reused_wrk} tuples were reused")
    if len(wrk_conns) < 32:
        problems.append(f"wrk phase: ss saw only {len(wrk_conns)} established wrk connections, -c32 asks for 32")
    not_listed = wrk_conns - ids2
    if not_listed:
        problems.append(f"wrk phase: {len(not_listed)} wrk connections have no flow listed, "
                        f"e.g. {sorted(not_listed)[0]}")
    if not wrk_expected <= new_wrk or len(new_wrk - wrk_expected) > 1:
        problems.append(f"wrk phase: {len(new_wrk)} new flows listed, wrk's connections account for "
                        f"{len(wrk_expected)} (+ at most 1 test connection)")
    vanished = ids1 - ids2
    if vanished:
        problems.append(f"{len(vanished)} curl-phase flows vanished from the list during the wrk phase "
                        f"(tcp_closing_s is 120), e.g. {sorted(vanished)[0]}")

    # -- whole case: ownership
    where, dup = placement(f2)
    listed_total = sum(len(fl) for fl in f2.values())
    e2e.log(f"flows: {listed_total} listed, {len(where)} distinct client ip:port per VIP, "
            f"{len(dup)} on more than one worker; per worker "
            + ", ".join(f"w{w}={len(fl)}" for w, fl in sorted(f2.items())))
    if dup:
        (k, v), = list(dup.items())[:1]
        lines = [f"worker {w}: {f['line']}" for w in sorted(set(v)) for f in f2[w]
                 if (f["proto"], f["client"], f["vip"]) == k]
        problems.append(f"{len(dup)} flows exist on more than one worker, e.g. {k[1]} -> {k[2]} on "
                        f"workers {v}: {lines}")
    states = collections.Counter(f["state"] for fl in f2.values() for f in fl)
    e2e.log(f"flows: states {dict(states)}")
    misplaced = [(w, f) for w, fl in f2.items() for f in fl
                 if f["vip"] == VIP_EP and expected_owner(f, mode, workers) != w]
    basis = "client hash" if mode == "dnat" else "SNAT port slice"
    e2e.log(f"flows: {len(where) - len(misplaced)} of {len(where)} on the owner given by the {basis}"
            + (f"; e.g. worker {misplaced[0][0]} holds {misplaced[0][1]['line']}" if misplaced else ""))
    summary["misplaced"] = len(misplaced)

    created_all = per_worker(s2, "flows_created")
    out, rx, ratio = handoff_ratio({"workers": [{} for _ in range(workers)]}, s2)
    t2 = totals(s2)
    e2e.log(f"case: flows_created per worker {created_all} (total {sum(created_all)}, incl. the readiness probe)")
    e2e.log(f"case: hand-offs {out} of {rx} rx packets = {ratio:.3f}; handoffs_in {t2['handoffs_in']}; "
            + " ".join(f"w{w['worker']}:out={w.get('handoffs_out', 0)},in={w.get('handoffs_in', 0)}"
                       for w in s2["workers"]))
    drops = {k[5:]: v for k, v in t2.items() if k.startswith("drop_") and v}
    e2e.log(f"case: drops {drops or 'none'}")
    summary["ratio"] = ratio
    summary["split"] = created_all
    summary["drops"] = drops
    lab.print_stats()
    if problems:
        raise e2e.TestFailure("; ".join(problems))


def run_case(workers, mode):
    """Topology + l4lbd + body; returns (reason or None, summary)."""
    name = f"workers_{workers}_{mode}"
    e2e.log(f"\n======== {name}: {workers} workers, {mode}, lcores {LCORES[workers]} ========")
    summary = {"case": name}
    lab, reason = None, None
    t0 = time.monotonic()
    try:
        lab = e2e.Lab(kind="test", label=f"{NAME}-{name}", dnat=(mode == "dnat"))
        lab.up()
        lab.start_servers("http_server", 8080)
        lab.start_daemon(e2e.CONFIG_DIR / f"{name}.yaml", lcores=LCORES[workers])
        lab.wait_vip("http", 8080)
        body(lab, workers, mode, summary)
        rc = lab.stop_daemon()
        if rc != 0:
            raise e2e.TestFailure(f"l4lbd exited with {rc} after SIGTERM, expected 0")
    except e2e.TestFailure as e:
        reason = str(e)
    except e2e.Interrupted:
        e2e.log("interrupted here:")
        traceback.print_exc()
        sys.stderr.flush()
        raise
    except Exception as e:  # noqa: BLE001 - a harness bug is a failure too
        traceback.print_exc()
        reason = f"{type(e).__name__}: {e}"
    finally:
        if lab is not None:
            if reason is not None or sys.exc_info()[0] is not None:
                lab.keep_logs = True
                if lab.daemon is not None:
                    e2e.log(f"---- tail of l4lbd log ({lab.daemon_log}) ----")
                    e2e.log(lab.tail(lab.daemon_log, 30))
                    e2e.log("---- end of l4lbd log ----")
            problems = lab.down()
            if problems:
                reason = (reason + "; " if reason else "") + "teardown: " + "; ".join(problems)
            if lab.keep_logs:
                e2e.log(f"logs kept in {lab.workdir}")
    summary["seconds"] = time.monotonic() - t0
    e2e.log(f"({name}: {summary['seconds']:.1f} s) " + ("ok" if reason is None else f"FAILED: {reason}"))
    return reason, summary


def main():
    e2e.install_signal_handlers()
    signal.alarm(TOTAL_TIMEOUT)
    t0 = time.monotonic()
    failed, summaries = [], []
    try:
        e2e.require_root()
        for workers, mode in CASES:
            reason, summary = run_case(workers, mode)
            summaries.append(summary)
            if reason is not None:
                failed.append((summary["case"], reason))
    except e2e.TestFailure as e:
        failed.append(("setup", str(e)))
    except e2e.Interrupted as e:
        failed.append(("run", f"interrupted ({e})"))
    signal.alarm(0)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)

    e2e.log("\n======== summary ========")
    e2e.log(f"  {'case':<15} {'handoff':>8} {'(curl)':>7} {'(wrk)':>7}  {'flows_created per worker':<26}"
            f" {'curl/s':>7} {'wrk req/s':>9} {'wrk flows':>9} {'reused':>6} {'off-owner':>9}")
    for s in summaries:
        if "ratio" not in s:
            e2e.log(f"  {s['case']:<15} (no figures)")
            continue
        e2e.log(f"  {s['case']:<15} {s['ratio']:>8.3f} {s['curl_ratio']:>7.3f} {s['wrk_ratio']:>7.3f}  "
                f"{str(s['split']):<26} {s['curl_rate']:>7.0f} {s['wrk_rps']:>9.0f} {s['wrk_conns']:>9}"
                f" {s['reused']:>6}"
                f" {s['misplaced']:>9}")
    for s in summaries:
        if "steering" in s:
            e2e.log(f"  {s['case']:<15} {s['steering']}")
    e2e.log(f"({NAME}: {time.monotonic() - t0:.1f} s)")
    if not failed:
        e2e.log(f"PASS {NAME}")
        return 0
    for case, reason in failed[1:]:
        e2e.log(f"also failed: {case}: {reason.splitlines()[0]}")
    case, reason = failed[0]
    first, *rest = reason.splitlines() or [""]
    if rest:
        e2e.log("\n".join(rest))
    e2e.log(f"FAIL {NAME}: {case}: {first}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
