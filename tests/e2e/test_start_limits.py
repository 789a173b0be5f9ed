#!/usr/bin/env python3
"""e2e (issue 13): l4lbd refuses at start, with the key and line, a config
the machine cannot carry, instead of failing halfway or running degraded:

  - flow tables that do not fit in DPDK memory: with --no-huge -m 256 and
    dataplane.flows_per_worker 4194304 (400 MiB of flow table), and with
    hugepages and 67108864 flows (6.3 GiB, more than this machine reserves):
    exit 1, stderr names dataplane.flows_per_worker and its line, and this
    happens before the exception interface or any worker is created;
  - more health probes than the hard RLIMIT_NOFILE can give a socket each
    (hard limit 256, 300 probed backends): exit 1, stderr names the first
    backend without room, vips[0].backends[N], and its line.

Each l4lbd runs in a network namespace of its own (unshare --net), so an
interface it might create touches nothing else. No topology."""
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

PREFIX = f"l4lb-limits-{os.getpid()}"
HUGE_FLOWS = 67108864   # the loader's maximum: 6.3 GiB of flow table


def config_text(flows, backends=1, probed=False):
    """Returns (text, line of flows_per_worker, line of the first backend)."""
    lines = ["# l4lbd start-limit test",
             "dataplane:",
             "  workers: 1",
             f"  flows_per_worker: {flows}",
             "  mbufs: 4096",
             "ports:",
             f"  - {{name: net_null0, address: 10.99.0.1/24, kernel_iface: l4lbl{os.getpid() % 100000}}}",
             "vips:",
             "  - name: web",
             "    address: 10.99.0.100",
             "    port: 8080",
             "    snat: [10.99.0.1]"]
    if probed:
        lines.append("    health: {type: tcp, interval_ms: 60000, timeout_ms: 500}")
    lines.append("    backends:")
    first_backend = len(lines) + 1
    lines += [f"      - {{address: 10.99.0.21, port: {1000 + i}}}" for i in range(backends)]
    return "\n".join(lines) + "\n", 4, first_backend


def l4lbd(config_path, eal, nofile=None, timeout=40):
    """Run l4lbd in its own network namespace; returns (exit code or None if
    it had to be stopped, stdout + stderr, stderr)."""
    cmd = ["unshare", "--net", e2e.L4LBD, "-l", "0,1", *eal, "--no-pci", "--vdev", "net_null0",
           "--file-prefix", PREFIX, "--", "--config", config_path]

    def limit():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    e2e.log(f"running: {' '.join(map(str, cmd))}" + (f" (RLIMIT_NOFILE {nofile})" if nofile else ""))
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=limit, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
        rc = None
    shutil.rmtree(e2e.DPDK_RUN_DIR / PREFIX, ignore_errors=True)
    for f in e2e.HUGEPAGE_DIR.glob(f"{PREFIX}map_*"):
        f.unlink(missing_ok=True)
    return rc, out + err, err


def check_refusal(what, rc, text, err, key, line, problems, before=None):
    """l4lbd must have exited 1 with stderr naming `key` at `line`, and
    printed nothing matching `before` (a step that must not be reached)."""
    first = next((l for l in err.splitlines() if "invalid config" in l), err.strip()[-300:])
    e2e.log(f"{what}: exit {rc}: {first[:400]}")
    if rc != 1:
        problems.append(f"{what}: exit {rc}, expected 1 (output: {text.strip()[-300:]!r})")
        return
    if not re.search(rf":{line}: {re.escape(key)}: ", err):
        problems.append(f"{what}: stderr does not name {key} on line {line}: {err.strip()[-400:]!r}")
    if before and re.search(before, text):
        problems.append(f"{what}: refused only after '{before}'")


def free_hugepage_bytes():
    try:
        free = int(Path("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read_text())
    except (OSError, ValueError):
        return 0
    return free * 2 * 1024 * 1024


def body(_lab):
    if not e2e.L4LBD.exists():
        raise e2e.TestFailure(f"{e2e.L4LBD} not built")
    problems = []
    with tempfile.TemporaryDirectory(prefix="l4lb-limits-") as tmp:
        path = Path(tmp) / "l4lb.yaml"

        text, flows_line, _ = config_text(4194304)
        path.write_text(text)
        rc, out, err = l4lbd(path, ["--no-huge", "-m", "256"])
        check_refusal("4194304 flows in 256 MiB without hugepages", rc, out, err,
                      "dataplane.flows_per_worker", flows_line, problems,
                      before="exception path|worker 0 on lcore")
        if "at most" not in err:
            problems.append("the memory refusal does not say how many flows would fit")

        if free_hugepage_bytes() > HUGE_FLOWS * 110:
            e2e.log(f"skipping the hugepage case: {free_hugepage_bytes() >> 20} MiB of hugepages free")
        else:
            text, flows_line, _ = config_text(HUGE_FLOWS)
            path.write_text(text)
            rc, out, err = l4lbd(path, [])
            check_refusal(f"{HUGE_FLOWS} flows with {free_hugepage_bytes() >> 20} MiB of hugepages free",
                          rc, out, err, "dataplane.flows_per_worker", flows_line, problems,
                          before="exception path|worker 0 on lcore")

        text, _, first_backend = config_text(65536, backends=300, probed=True)
        path.write_text(text)
        rc, out, err = l4lbd(path, ["--no-huge", "-m", "256"], nofile=256, timeout=20)
        m = re.search(r"vips\[0\]\.backends\[(\d+)\]", err)
        index = int(m.group(1)) if m else 0
        check_refusal("300 probes under a hard RLIMIT_NOFILE of 256", rc, out, err,
                      f"vips[0].backends[{index}]", first_backend + index, problems,
                      before="l4lbd ready")
        if rc == 1 and not m:
            problems.append("the descriptor refusal names no backend")
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    e2e.run_test("start_limits", body, topology=False, timeout=240)
