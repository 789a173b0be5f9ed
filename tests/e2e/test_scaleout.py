#!/usr/bin/env python3
"""e2e (issue 15): two appliances behind an ECMP router that learns the VIPs
from both through BIRD (tests/e2e/scaleout.py has the lab). Appliance a's
BGP session runs BFD (3 x 100 ms), b's does not (hold time 3 s).

1. The router learns VIP web (10.97.0.100/32) from both appliances: one
   kernel route with next hops 10.99.0.1 and 10.99.0.2.
2. Agreement: both show the same Maglev fingerprint for web.
3. Spread: 200 curls, each its own connection, all answered; both
   appliances' flows_created grew.
3b. DNAT (VIP 10.97.0.102, dnat_reverse: stateless; the router sends the
   backends' replies back through either appliance): 100 curls, all
   answered; both appliances opened flows and both translated replies of
   flows the other held.
4. Health-gated: VIP solo (10.97.0.101, on a only, one backend on b1:8081)
   is not announced while its backend is down and web is; it is announced
   (via a only) once the backend listens, and withdrawn again once it stops,
   within fall x interval (2 x 200 ms) plus BGP's propagation, measured;
   web keeps both next hops throughout.
5. `l4lbctl drain 20` on b under a curl loop, with 8 long-lived echo
   connections open through the VIP (ECMP puts some on each appliance):
   b passes new flows to a (bgp.appliances; redirected_packets grows) and
   keeps its next hop while its connections last; every echo works during
   the drain; once they close, b's next hop goes and b's l4lbd exits 0; no
   curl fails.
6. SIGKILL of an appliance under a curl loop, once with BFD (a) and once
   without (b, restarted): its next hop goes; the time from the kill to the
   withdrawal and the requests that failed are printed; every request
   started a second after the withdrawal succeeds. With a killed, 6 DNAT
   echo connections opened before the kill all still work afterwards.
"""
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402
import scaleout  # noqa: E402
from scaleout import APPLIANCES, ECHO_PORT, PORT, RETURN_TABLE, SOLO_PORT, VIP, VIP_DNAT, VIP_SOLO  # noqa: E402

URL = f"http://{VIP}:{PORT}/"
DNAT_URL = f"http://{VIP_DNAT}:{PORT}/"
BOTH = sorted(APPLIANCES.values())


def curls(lab, n, url=URL):
    """n curls from the client, each its own connection -> (answered, failures)."""
    script = ('for i in $(seq "$1"); do out=$(curl -sS --noproxy "*" --fail -m 3 "$2" 2>&1) '
              '&& echo ok || echo "ERR $out"; done')
    p = lab.in_client(["bash", "-c", script, "curls", n, url], timeout=30 + n * 4)
    lines = p.stdout.splitlines()
    return sum(1 for x in lines if x == "ok"), [x for x in lines if x != "ok"]


def split_results(results, event_t, settle_s=0.0):
    """Requests that started before event_t (+settle) and those started after."""
    before = [r for r in results if r.start < event_t + settle_s]
    after = [r for r in results if r.start >= event_t + settle_s]
    return before, after


def body(lab, problems, figures):
    took = lab.wait_next_hops(VIP, BOTH)
    e2e.log(f"1. router: {VIP} via {', '.join(lab.next_hops(VIP))}, {took:.1f} s after the last appliance started")

    fps = {n: {r["name"]: r["maglev"] for r in lab.ajson(n, "vips")}["web"] for n in APPLIANCES}
    e2e.log(f"2. Maglev fingerprints of web: {fps}")
    if len(set(fps.values())) != 1:
        problems.append(f"appliances disagree on web's Maglev table: {fps}")

    before = {n: lab.flows_created(n) for n in APPLIANCES}
    answered, failures = curls(lab, 200)
    created = {n: lab.flows_created(n) - before[n] for n in APPLIANCES}
    e2e.log(f"3. 200 curls: {answered} answered, flows created per appliance {created}")
    if answered != 200:
        problems.append(f"{200 - answered} of 200 curls through ECMP failed: {failures[:2]}")
    if min(created.values()) == 0:
        problems.append(f"ECMP sent no connection to one appliance: {created}")

    # 3b. DNAT: the backends' replies come back through either appliance.
    lab.wait_next_hops(VIP_DNAT, BOTH)
    lab.wait_next_hops(RETURN_TABLE, BOTH)
    stateless = {n: lab.ajson(n, "stats")["total"]["stateless_reverse_packets"] for n in APPLIANCES}
    before = {n: lab.flows_created(n) for n in APPLIANCES}
    answered, failures = curls(lab, 100, DNAT_URL)
    created = {n: lab.flows_created(n) - before[n] for n in APPLIANCES}
    stateless = {n: lab.ajson(n, "stats")["total"]["stateless_reverse_packets"] - stateless[n]
                 for n in APPLIANCES}
    figures["dnat_stateless_reverse"] = sum(stateless.values())
    e2e.log(f"3b. DNAT: 100 curls to {DNAT_URL}: {answered} answered; flows created per appliance {created}; "
            f"replies translated without a flow (the other appliance held it) {stateless}; "
            f"router's return table via {lab.return_hops()}")
    if answered != 100:
        problems.append(f"{100 - answered} of 100 DNAT curls through ECMP failed: {failures[:2]}")
    if min(created.values()) == 0 or min(stateless.values()) == 0:
        problems.append(f"DNAT replies did not return through both appliances: flows created {created}, "
                        f"translated without a flow {stateless}")

    # 4. health-gated announcement of solo (appliance a only).
    if lab.next_hops(VIP_SOLO):
        problems.append(f"{VIP_SOLO} is routed while its only backend is down: {lab.next_hops(VIP_SOLO)}")
    reason = {r["prefix"]: r["reason"] for r in lab.ajson("a", "routes")}.get(f"{VIP_SOLO}/32")
    e2e.log(f"4. solo with its backend down: router has no route; l4lbctl routes on a says '{reason}'")
    if reason != "no backend up":
        problems.append(f"l4lbctl routes on a gives solo's reason as {reason!r}, expected 'no backend up'")
    server = lab.start_server("http_server", SOLO_PORT, "b1")
    t0 = time.monotonic()
    up = lab.wait_next_hops(VIP_SOLO, [APPLIANCES["a"]], deadline=15)
    e2e.log(f"4. solo's backend listens: {VIP_SOLO} via a after {up:.2f} s (rise 1 x 200 ms + BGP)")
    t_kill = time.monotonic()
    server.kill()
    server.wait()
    lab.forget(server)
    gone = lab.wait_next_hops(VIP_SOLO, [], deadline=15)
    figures["health_withdraw_s"] = gone
    e2e.log(f"4. solo's backend stopped: {VIP_SOLO} withdrawn {gone:.2f} s later (fall 2 x interval 200 ms + BGP)")
    if gone > 3.0:
        problems.append(f"solo withdrawn only {gone:.2f} s after its backend stopped (fall x interval is 0.4 s)")
    if lab.next_hops(VIP) != BOTH:
        problems.append(f"web lost a next hop while solo was withdrawn: {lab.next_hops(VIP)}")
    del t0, t_kill

    # 5. drain b under load, with long-lived connections open through both.
    sessions = [e2e.tcp_session(lab, label=f"echo-{i}", to=f"{VIP}:{ECHO_PORT}") for i in range(8)]
    for s in sessions:
        line = s.expect()
        if not line.startswith("connected"):
            raise e2e.TestFailure(f"{s.label}: {line}")
    for s in sessions:
        if not s.ask("send before").startswith("ok"):
            problems.append(f"{s.label}: echo failed before the drain")
    on_b = len([f for w in lab.ajson("b", "flows", "--list")["workers"] for f in w.get("flows", [])
                if f"{VIP}:{ECHO_PORT} " in f + " "])
    loop = e2e.CurlLoop(lab, url=URL, connect_timeout=1, max_time=2, label="curl-drain")
    time.sleep(1.0)
    t_drain = time.time()
    p = lab.actl("b", "drain", "20", check=False)
    if p.returncode != 0:
        problems.append(f"l4lbctl drain on b: exit {p.returncode}: {p.stderr.strip()}")
    # b passes new flows to a and keeps its VIPs while its connections last.
    time.sleep(2.0)
    status = lab.ajson("b", "status")
    redirected = lab.ajson("b", "stats")["total"].get("redirected_packets", 0)
    hops_while = lab.next_hops(VIP)
    e2e.log(f"5. drain asked on b ({on_b} echo connections on it): 2 s later next hops {hops_while}, "
            f"draining={status.get('draining')}, flows left {status.get('drain_flows_left')}, "
            f"packets passed to a {redirected}")
    if hops_while != BOTH:
        problems.append(f"b withdrew while its connections were open: next hops {hops_while}")
    if status.get("draining") != 1:
        problems.append(f"b's status during the drain: draining={status.get('draining')}")
    if redirected == 0:
        problems.append("b passed no packet to a during its drain (redirected_packets 0)")
    echo_failed = [s.label for s in sessions if not s.ask("send during").startswith("ok")]
    for s in sessions:
        s.close()
    t_closed = time.time()
    withdrawn = lab.wait_next_hops(VIP, [APPLIANCES["a"]], deadline=15)
    t_withdrawn = t_closed + withdrawn
    rc = lab.appliances["b"].daemon.wait(20)
    exited = time.time() - t_drain
    time.sleep(1.0)
    results = loop.stop()
    lab.forget(lab.appliances["b"].daemon)
    during, after = split_results(results, t_withdrawn)
    failed = [r for r in results if not r.ok and r.end >= t_drain]
    figures["drain_withdraw_after_close_s"] = withdrawn
    figures["drain_failed"] = len(failed)
    e2e.log(f"5. echo connections during the drain: {len(sessions) - len(echo_failed)} of {len(sessions)} "
            f"worked; closed, then b's next hop gone {withdrawn:.2f} s later; b's l4lbd exited {rc} "
            f"{exited:.1f} s after l4lbctl drain; curls: {len(results)}, failed {len(failed)} "
            f"({len(during)} before the withdrawal, {len(after)} after)")
    if echo_failed:
        problems.append(f"echo connections broken by b's drain: {echo_failed}")
    if rc != 0:
        problems.append(f"b's l4lbd exited {rc} after its drain, expected 0")
    if failed:
        problems.append(f"{len(failed)} of {len(results)} curls failed during b's drain: {failed[0].text[:100]}")

    # 6. SIGKILL, with BFD (a) and without (b).
    lab.start_appliance("b", solo=False)
    lab.wait_next_hops(VIP, BOTH)
    for victim, survivor, how in (("a", "b", "BFD 3 x 100 ms"), ("b", "a", "hold time 3 s")):
        if victim == "b":
            lab.start_appliance("a")
            lab.wait_next_hops(VIP, BOTH)
            time.sleep(1.0)  # BFD up on the restarted session
        loop = e2e.CurlLoop(lab, url=URL, connect_timeout=1, max_time=2, label=f"curl-kill-{victim}")
        # DNAT connections open through both appliances: they survive the
        # kill (same Maglev choice on the survivor, tcp_miss: forward, and
        # replies translated there without a flow).
        dnat = [] if victim == "b" else [
            e2e.tcp_session(lab, label=f"dnat-echo-{i}", to=f"{VIP_DNAT}:{ECHO_PORT}") for i in range(6)]
        for s in dnat:
            line = s.expect()
            if not line.startswith("connected") or not s.ask("send before").startswith("ok"):
                problems.append(f"{s.label}: DNAT echo failed before the kill: {line}")
        time.sleep(1.0)
        t_kill = time.time()
        lab.stop_appliance(victim, sig=signal.SIGKILL)
        withdrawn = lab.wait_next_hops(VIP, [APPLIANCES[survivor]], deadline=15)
        if dnat:
            lab.wait_next_hops(RETURN_TABLE, [APPLIANCES[survivor]], deadline=15)
            survived = [s.label for s in dnat if s.ask("send after", timeout=15).startswith("ok")]
            for s in dnat:
                s.close()
            figures["kill_a_dnat_survived"] = f"{len(survived)}/{len(dnat)}"
            e2e.log(f"6. SIGKILL {victim}: DNAT echo connections working afterwards: {len(survived)} of {len(dnat)}")
            if len(survived) != len(dnat):
                problems.append(f"DNAT connections broken by {victim}'s loss: "
                                f"{sorted(set(s.label for s in dnat) - set(survived))}")
        time.sleep(1.5)
        results = loop.stop()
        window, after = split_results(results, t_kill + withdrawn, settle_s=1.0)
        failed = [r for r in window if not r.ok and r.end >= t_kill]
        failed_after = [r for r in after if not r.ok]
        figures[f"kill_{victim}_withdraw_s"] = withdrawn
        figures[f"kill_{victim}_failed"] = len(failed)
        e2e.log(f"6. SIGKILL {victim} ({how}): its next hop gone {withdrawn:.2f} s later; curls failed until then "
                f"(+1 s) {len(failed)} of {len(window)}, after {len(failed_after)} of {len(after)}")
        if failed_after:
            problems.append(f"after {victim}'s withdrawal {len(failed_after)} of {len(after)} curls failed: "
                            f"{failed_after[0].text[:100]}")
    lab.start_appliance("b", solo=False)


def run(lab):
    lab.start_servers("http_server", PORT)
    lab.start_servers("tcp_echo", ECHO_PORT)
    lab.start_appliance("a", solo=True)
    lab.start_appliance("b", solo=False)
    problems, figures = [], {}
    try:
        body(lab, problems, figures)
    finally:
        if figures:
            e2e.log("figures: " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in figures.items()))
    for name in APPLIANCES:
        rc = lab.stop_appliance(name)
        if rc not in (0, None):
            problems.append(f"l4lbd {name} exited {rc} after SIGTERM, expected 0")
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    e2e.run_test("scaleout", run, make_lab=lambda: scaleout.ScaleoutLab(label="scaleout", bfd=("a",)))
