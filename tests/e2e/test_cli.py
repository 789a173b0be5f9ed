#!/usr/bin/env python3
"""e2e: l4lbd's command line (DESIGN section 8):
  l4lbd --help                                -> exit 0, usage
  l4lbd -- --bogus                            -> exit != 0, usage
  l4lbd -- --config config/demo.yaml --check  -> exit 0 (and every e2e config)
  l4lbd -- --config BROKEN --check            -> exit 1, stderr names the
                                                 unknown key and its line
No topology, no hugepages needed."""
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

DEMO = e2e.REPO / "config" / "demo.yaml"


def l4lbd(*args):
    if not e2e.L4LBD.exists():
        raise e2e.TestFailure(f"{e2e.L4LBD} not built")
    return e2e.run([e2e.L4LBD, *args], check=False, timeout=60)


def show(p, n=6):
    text = (p.stdout + p.stderr).strip().splitlines()
    return " | ".join(text[:n])


def broken_copies(tmp):
    """(description, path, key, 1-based line) for configs with one unknown key."""
    lines = DEMO.read_text().splitlines()
    out = []
    # A misspelt key inside a backend entry.
    i = next(n for n, l in enumerate(lines) if "10.99.0.22" in l and "port:" in l)
    bad = list(lines)
    bad[i] = bad[i].replace("}", ", wieght: 2}")
    path = Path(tmp) / "typo-in-backend.yaml"
    path.write_text("\n".join(bad) + "\n")
    out.append(("misspelt backend key", path, "wieght", i + 1))
    # An unknown top-level key.
    bad = list(lines) + ["frobnicate: 1"]
    path = Path(tmp) / "unknown-top-level.yaml"
    path.write_text("\n".join(bad) + "\n")
    out.append(("unknown top-level key", path, "frobnicate", len(bad)))
    return out


def body(_lab):
    problems = []

    p = l4lbd("--help")
    ok = p.returncode == 0 and "usage" in (p.stdout + p.stderr).lower()
    e2e.log(f"l4lbd --help: exit {p.returncode}: {show(p, 3)}")
    if not ok:
        problems.append(f"--help: exit {p.returncode}, usage printed: "
                        f"{'usage' in (p.stdout + p.stderr).lower()}")

    p = l4lbd("--", "--bogus")
    ok = p.returncode != 0 and "usage" in (p.stdout + p.stderr).lower()
    e2e.log(f"l4lbd -- --bogus: exit {p.returncode}: {show(p, 3)}")
    if not ok:
        problems.append(f"-- --bogus: exit {p.returncode}, usage printed: "
                        f"{'usage' in (p.stdout + p.stderr).lower()}")

    for cfg in [DEMO] + sorted(e2e.CONFIG_DIR.glob("*.yaml")):
        p = l4lbd("--", "--config", cfg, "--check")
        e2e.log(f"l4lbd -- --config {cfg.relative_to(e2e.REPO)} --check: exit {p.returncode}")
        if p.returncode != 0:
            problems.append(f"--check {cfg.name}: exit {p.returncode}: {show(p)}")

    with tempfile.TemporaryDirectory(prefix="l4lb-cli-") as tmp:
        for what, path, key, line in broken_copies(tmp):
            p = l4lbd("--", "--config", path, "--check")
            names_key = key in p.stderr
            names_line = re.search(rf"(?<![\d.]){line}(?![\d.])", p.stderr) is not None
            e2e.log(f"{what} ('{key}' on line {line}): exit {p.returncode}, "
                    f"stderr: {p.stderr.strip()[:300]!r}")
            if p.returncode != 1:
                problems.append(f"{what}: exit {p.returncode}, expected 1")
            if not names_key or not names_line:
                where = " (it is in stdout)" if key in p.stdout else ""
                problems.append(f"{what}: stderr does not name "
                                + " and ".join(x for x, miss in (("the key " + key, not names_key),
                                                                 (f"line {line}", not names_line)) if miss)
                                + where)
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    e2e.run_test("cli", body, topology=False, timeout=180)
