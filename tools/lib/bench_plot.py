#!/usr/bin/env python3
"""Draws tools/bench's plot: Mpps vs concurrent flows, one line per scenario,
the baseline (testpmd macswap, same run) as a dashed horizontal line.

    bench_plot.py RESULTS.json OUT.png

Run by tools/bench with an interpreter that has matplotlib (Debian's
python3-matplotlib is for /usr/bin/python3)."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, out):
    doc = json.load(open(src))
    rows = [r for r in doc["rows"] if r["status"] == "ok"]
    meta = doc.get("meta", {})
    fig, ax = plt.subplots(figsize=(9, 5.6))
    markers = {"established": "o", "new": "s", "reverse": "^"}
    for k, scenario in enumerate(("established", "new", "reverse")):
        pts = sorted((r for r in rows if r["scenario"] == scenario), key=lambda r: r["flows"])
        if not pts:
            continue
        xs = [r["flows"] for r in pts]
        ys = [r["mpps"] for r in pts]
        ax.plot(xs, ys, marker=markers.get(scenario, "o"), label=scenario)
        for r in pts:
            if r["nat"] == "dnat":
                ax.annotate("dnat", (r["flows"], r["mpps"]), textcoords="offset points",
                            xytext=(6, (8, -12, -12)[k]), fontsize=8)
    base = [r for r in rows if r["scenario"] == "baseline"]
    runs = meta.get("baseline_runs_mpps") or [r["mpps"] for r in base]
    if base:
        ax.axhline(base[0]["mpps"], linestyle="--", color="grey",
                   label=f"baseline: testpmd macswap, median of {len(runs)} runs ({base[0]['mpps']:.2f} Mpps)")
    if len(runs) > 1:
        ax.axhspan(min(runs), max(runs), color="grey", alpha=0.12,
                   label=f"baseline range {min(runs):.2f}-{max(runs):.2f} (each case's ratio uses the run before it)")
    ax.set_xscale("log")
    ax.set_xlabel("concurrent flows")
    ax.set_ylabel("Mpps through the DUT (both directions, 1 worker)")
    rate = meta.get("rate_limit_pps") or 0
    ax.set_title(f"l4lbd over memif, {meta.get('frame_len', '?')}-byte frames, "
                 f"{'rate limit %.2f Mpps' % (rate / 1e6) if rate else 'no rate limit'} "
                 f"({meta.get('started', '')})", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100, format="png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
