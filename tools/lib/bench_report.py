"""tools/bench's report: the table on the terminal, CSV, JSON and the PNG plot
(drawn by tools/lib/bench_plot.py with Debian's matplotlib, else gnuplot)."""
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

DEFINITIONS = {
    "mpps": "packets the DUT (l4lbd with 1 worker, or dpdk-testpmd for the baseline) delivered back to "
            "the generator per second during the measured window, both directions together: "
            "established/new count client->backend plus backend->client packets, reverse counts "
            "backend->client only. With one worker this is Mpps per worker.",
    "ratio": "mpps / base_mpps, where base_mpps is a baseline run made just before this case (dpdk-testpmd "
             "macswap on the same memif link, same generator, same lcore placement, same frame size and rate "
             "limit). Every case gets its own, because a shared VM's speed drifts within minutes; the "
             "baseline row shows the median of those runs, and meta.baseline_runs_mpps lists them all. "
             "With --repeat N each case runs N times round-robin; its row is the run with the median ratio, "
             "range is the lowest and highest ratio of its runs",
    "latency": "from the TSC stamp the generator wrote when building a packet to its return to a client "
               "address, TSC at receive minus stamp: established/new = client->DUT->backend(generator "
               "answers)->DUT->client, two DUT passes; reverse = backend->DUT->client, one pass; "
               "baseline = two testpmd passes. Percentiles are bucket upper bounds (<= 1.6 % high). Without a "
               "rate limit the DUT is saturated and latency includes queueing of up to `window` packets.",
    "loss": "packets the generator sent in the measured window that did not come back to a client "
            "address by the end of the drain (lost / sent)",
    "tx_mpps": "packets the generator originated per second (the offered load; answers excluded)",
    "seconds": "length of the measured sending window (new: until its budget of fresh connections was sent)",
    "window": "the generator keeps at most this many of its packets unanswered (closed loop), so at full "
              "rate the DUT is kept busy without overflowing the memif rings",
    "churn": "connections the generator completed (all 8 packets of each back through l4lbd: SYN, SYN+ACK, "
             "ACK, data, data+ACK, FIN+ACK, FIN+ACK, ACK; the client closes first) while its sending window "
             "was open, per second, with 1 worker: connections/s per worker. `steady` is the mean over the "
             "whole seconds after the first tcp_time_wait_s + 1 s sweep, when flows leave the table as fast "
             "as they come. Its Mpps and ratio count packets as for the other cases (8 per connection), "
             "against the testpmd run just before it; est Mpps/ratio is the established case at the fewest "
             "flows of the same round. The case fails if l4lbd counted any snat_exhausted drop. Its flows "
             "column is connections open at a time; latency is each connection's, SYN to last packet",
}

CSV_COLUMNS = ["scenario", "nat", "flows", "status", "mpps", "ratio", "base_mpps", "runs", "ratio_min",
               "ratio_max", "seconds", "tx_mpps", "forwarded_mpps",
               "returned_mpps", "p50_ns", "p99_ns", "p999_ns", "sent", "lost", "loss_ratio",
               "warmup_opened", "l4lbd_drops", "conn_per_s", "conn_per_s_steady", "conn_failed",
               "snat_exhausted", "est_mpps", "est_ratio", "steady_flows", "steady_ports_in_use", "reason"]


def fmt_flows(n):
    for unit, size in (("M", 1_000_000), ("K", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def ratio_range(r):
    if r.get("runs", 1) < 2 or r["scenario"] == "baseline":
        return "-"
    return f"{r['ratio_min']:.2f}-{r['ratio_max']:.2f}"


def table(rows):
    head = (f"{'scenario':<12} {'nat':<5} {'flows':>6} {'Mpps':>8} {'ratio':>6} {'range':>11} {'base':>7} {'secs':>5} {'tx Mpps':>8} "
            f"{'p50 us':>8} {'p99 us':>8} {'loss':>10}  status")
    out = [head, "-" * len(head)]
    for r in rows:
        if "mpps" not in r:
            out.append(f"{r['scenario']:<12} {r['nat']:<5} {fmt_flows(r['flows']):>6} {'-':>8} {'-':>6} {'-':>11} {'-':>7} {'-':>5} "
                       f"{'-':>8} {'-':>8} {'-':>8} {'-':>10}  {r['status']}: {r['reason']}")
            continue
        out.append(f"{r['scenario']:<12} {r['nat']:<5} {fmt_flows(r['flows']):>6} {r['mpps']:>8.3f} "
                   f"{r['ratio']:>6.3f} {ratio_range(r):>11} {r.get('base_mpps', 0):>7.2f} {r['seconds']:>5.1f} {r['tx_mpps']:>8.3f} {r['p50_ns'] / 1000:>8.1f} "
                   f"{r['p99_ns'] / 1000:>8.1f} "
                   f"{r['loss_ratio']:>10.2e}  {r['status']}" + (f" ({r['reason']})" if r.get("reason") else ""))
    return "\n".join(out)


def churn_table(rows):
    """The churn runs, each beside the established run (fewest flows) of its
    round, then the medians of each column over the runs that passed."""
    churn = [r for r in rows if r["scenario"] == "churn"]
    if not churn:
        return ""
    cols = [("conn/s", "conn_per_s", ",.0f", 9), ("steady", "conn_per_s_steady", ",.0f", 9),
            ("st.ratio", "steady_ratio", ".3f", 8), ("Mpps", "mpps", ".3f", 7), ("ratio", "ratio", ".3f", 6),
            ("est Mpps", "est_mpps", ".3f", 8), ("est ratio", "est_ratio", ".3f", 9),
            ("failed", "conn_failed", ".0f", 6), ("snat_exh", "snat_exhausted", ".0f", 8),
            ("flows", "steady_flows", ".0f", 8), ("ports used", "steady_ports_in_use", ".0f", 10)]

    def line(label, run, status):
        cells = []
        for _, key, fmt, width in cols:
            v = run.get(key)
            cells.append(format("-" if v is None else format(v, fmt), f">{width}"))
        return f"{label:<9} " + " ".join(cells) + f"  {status}"

    head = f"{'churn':<9} " + " ".join(format(name, f">{width}") for name, _, _, width in cols) + "  status"
    out = ["churn: connections/s per worker (steady: after the first tcp_time_wait_s + sweep; st.ratio: "
           "steady x 8 packets / testpmd), beside the established run at the fewest flows of the same "
           "round (est); flows and ports used: l4lbd, a second before the end", head, "-" * len(head)]
    for r in churn:
        runs = r.get("churn_runs") or [r]
        for run in runs:
            out.append(line(f"round {run.get('round', 0) + 1}", run, run.get("status")))
        good = [run for run in runs if run.get("status") == "ok"]
        if len(runs) > 1 and good:
            med = {}
            for _, key, _, _ in cols:
                vals = [run[key] for run in good if run.get(key) is not None]
                med[key] = statistics.median(vals) if vals else None
            out.append(line("median", med, f"{len(good)} of {len(runs)} ok"))
            lo = min(run["steady_ratio"] for run in good)
            hi = max(run["steady_ratio"] for run in good)
            out.append(f"{'':<9} steady ratio range {lo:.3f}-{hi:.3f}; conn/s range "
                       f"{min(run['conn_per_s_steady'] for run in good):,.0f}-"
                       f"{max(run['conn_per_s_steady'] for run in good):,.0f}")
        if r.get("reason"):
            out.append(f"{'':<9} {r['status']}: {r['reason']}")
    return "\n".join(out)


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in CSV_COLUMNS})


def write_json(path, meta, rows, cases_detail):
    doc = {"meta": meta, "definitions": DEFINITIONS, "rows": rows, "cases": cases_detail}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")


def plot(json_path, png_path):
    """Draw the PNG. Returns (True, how) or (False, why)."""
    script = HERE / "bench_plot.py"
    # Debian's python3-matplotlib is installed for /usr/bin/python3, which may
    # not be the python3 first on PATH.
    for py in dict.fromkeys(["/usr/bin/python3", sys.executable]):
        if not py or not os.path.exists(py):
            continue
        probe = subprocess.run([py, "-c", "import matplotlib"], capture_output=True)
        if probe.returncode != 0:
            continue
        p = subprocess.run([py, str(script), str(json_path), str(png_path)], capture_output=True, text=True,
                           timeout=120)
        if p.returncode == 0 and Path(png_path).exists():
            return True, f"matplotlib ({py})"
        return False, f"bench_plot.py failed: {p.stderr.strip()[-300:]}"
    if shutil.which("gnuplot"):
        return plot_gnuplot(json_path, png_path)
    return False, "no matplotlib (apt-get install python3-matplotlib) and no gnuplot"


def plot_gnuplot(json_path, png_path):
    doc = json.loads(Path(json_path).read_text())
    rows = [r for r in doc["rows"] if r["status"] == "ok"]
    base = [r for r in rows if r["scenario"] == "baseline"]
    scen = sorted({r["scenario"] for r in rows if r["scenario"] not in ("baseline", "churn")})
    data = Path(png_path).with_suffix(".dat")
    with open(data, "w") as f:
        for s in scen:
            f.write(f"# {s}\n")
            for r in sorted((r for r in rows if r["scenario"] == s), key=lambda r: r["flows"]):
                f.write(f"{r['flows']} {r['mpps']}\n")
            f.write("\n\n")
    plots = [f"'{data}' index {i} with linespoints title '{s}'" for i, s in enumerate(scen)]
    if base:
        plots.append(f"{base[0]['mpps']} with lines dashtype 2 title 'baseline: testpmd macswap'")
    script = (f"set terminal png size 900,560; set output '{png_path}'; set logscale x; "
              "set xlabel 'concurrent flows'; set ylabel 'Mpps (DUT, both directions)'; set key outside; "
              "plot " + ", ".join(plots) + "\n")
    p = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    data.unlink(missing_ok=True)
    if p.returncode == 0 and Path(png_path).exists():
        return True, "gnuplot"
    return False, f"gnuplot failed: {p.stderr.strip()[-300:]}"
