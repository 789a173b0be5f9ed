#!/usr/bin/env python3
"""e2e: the Debian package and its systemd unit (DESIGN section 11).

1. tools/package writes build/package/l4lb_VERSION_amd64.deb; this machine
   must not have l4lb installed already (the test would replace it). It
   packs the programs of the l4lbd under test (`--from-build`, the build
   directory of $L4LBD, build/ by default), which tools/test has just built:
   a release build of its own would cost the suite minutes and test meson,
   not the package. L4LB_PACKAGE_RELEASE=1 makes it run tools/package as a
   user would, with its release build in build-package/.
2. `apt-get install -y ./l4lb_VERSION_amd64.deb`; every file of the package
   is on disk with its packaged checksum (`dpkg --verify`), the programs are
   where DESIGN puts them, `l4lbd --help`, `l4lbctl --help`,
   `l4lb-maglev --help` and `l4lb-pktgen --help` work from PATH, and
   `man -w l4lbd` finds the page when the package has man pages.
3. `systemd-analyze verify` accepts the installed unit.
4. PID 1 is not systemd here, so the test runs the unit's own lines,
   parsed from the installed file, as systemd would: the variables from
   Environment= and /etc/default/l4lbd, with the lab's values for the config
   (a copy of config/demo.yaml), EAL arguments and file prefix; $VAR split
   into words, ${VAR} one word; ExecStart under the unit's
   CapabilityBoundingSet and NoNewPrivileges (setpriv), with NOTIFY_SOCKET
   pointing at a datagram socket the test binds and WATCHDOG_USEC=2 s.
   ExecStartPre lines exit 0; READY=1 arrives and curl reaches every backend
   through the VIP; WATCHDOG=1 arrives about every second; ExecReload exits
   0 and RELOADING=1 then READY=1 arrive; with a broken config ExecReload
   exits 1, the error names the key, and RELOADING=1 then READY=1 arrive
   again (the old config stays: curl still works); SIGTERM gives STOPPING=1
   and exit 0.
5. `apt-get purge -y l4lb` leaves none of the package's files behind.
6. Only with L4LB_PACKAGE_FRESH=1 (it downloads a minimal Debian 12 from the
   archive, about 40 s): in a fresh `mmdebstrap --variant=minbase bookworm`
   chroot, `apt-get install ./l4lb_VERSION_amd64.deb` pulls every
   dependency from the archive, and l4lbd --help, l4lbd --check on the
   packaged example config, l4lb-maglev, l4lbctl --help and
   l4lb-pktgen --help run there.
"""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

UNIT = Path("/lib/systemd/system/l4lbd.service")
DEFAULTS = Path("/etc/default/l4lbd")
EXPECTED_FILES = ["/usr/sbin/l4lbd", "/usr/bin/l4lbctl", "/usr/bin/l4lb-maglev", "/usr/bin/l4lb-pktgen",
                  str(UNIT), "/usr/libexec/l4lb/l4lb-prepare", str(DEFAULTS), "/etc/l4lb/l4lb.yaml"]
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def project_version():
    m = re.search(r"version\s*:\s*'([^']+)'", (e2e.REPO / "meson.build").read_text())
    return m.group(1)


class NotifySocket:
    """The supervisor's end: every datagram l4lbd sends, with its arrival time."""

    def __init__(self, path):
        self.path = path
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages = []   # (monotonic time, {KEY: VALUE})
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def since(self, index):
        with self.lock:
            return self.messages[index:]

    def count(self):
        with self.lock:
            return len(self.messages)

    def wait_for(self, key, start, timeout, proc=None):
        """The first message from index `start` on carrying key=1; returns
        its index. TestFailure after timeout s or if proc exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, (_, fields) in enumerate(self.since(start)):
                if fields.get(key) == "1":
                    return start + i
            if proc is not None and proc.poll() is not None:
                raise e2e.TestFailure(f"l4lbd exited with {proc.returncode} before {key}=1")
            time.sleep(0.05)
        raise e2e.TestFailure(f"no {key}=1 within {timeout} s; got {[f for _, f in self.since(start)]}")

    def close(self):
        self.sock.close()
        self.path.unlink(missing_ok=True)


def unit_service_section(text):
    """[Service] key -> list of values (keys may repeat)."""
    out, section = {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service" and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def environment_assignments(values):
    """Environment= lines: quoted words of NAME=VALUE."""
    env = {}
    for value in values:
        for word in shlex.split(value):
            name, _, val = word.partition("=")
            env[name] = val
    return env


def environment_file(path):
    """An EnvironmentFile: NAME=VALUE lines, # comments, quotes stripped."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        name, _, val = line.partition("=")
        words = shlex.split(val)
        env[name.strip()] = " ".join(words) if words else ""
    return env


def expand_command(line, env):
    """An Exec*= line as systemd runs it: the prefixes (- + @ ! :) off the
    program, ${VAR} as one word, $VAR split on whitespace."""
    argv = []
    for word in shlex.split(line):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            argv.extend(env.get(m.group(1), "").split())
            continue
        argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda g: env.get(g.group(1), ""), word))
    argv[0] = argv[0].lstrip("-+@!:")
    return argv


def plug_data_port(lab):
    """dp0 into br0, as Lab.start_daemon does once l4lbd is up."""
    e2e.netns.plug_tap(lab.ns_lb, "dp0", "br0")


def check_curl(lab, problems, when):
    counts, failures = lab.curl_many(30)
    e2e.log(f"{when}: 30 curls through the VIP: {dict(counts)}, {len(failures)} failed")
    if failures or len(counts) != 3:
        problems.append(f"{when}: curl answers {dict(counts)}, failures {failures[:3]}")


def install(deb, problems):
    if subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", "l4lb"],
                      capture_output=True, text=True).stdout == "installed":
        raise e2e.TestFailure("l4lb is already installed on this machine; the test would replace it")
    p = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", f"./{deb.name}"],
                       cwd=deb.parent, env=APT_ENV, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise e2e.TestFailure(f"apt-get install ./{deb.name} failed: {p.stdout[-800:]} {p.stderr[-800:]}")
    e2e.log(f"installed {deb.name}")
    missing = [f for f in EXPECTED_FILES if not Path(f).is_file()]
    if missing:
        problems.append(f"not installed: {missing}")
    verify = subprocess.run(["dpkg", "--verify", "l4lb"], capture_output=True, text=True)
    if verify.returncode != 0 or verify.stdout.strip():
        problems.append(f"dpkg --verify l4lb: {verify.stdout.strip()} {verify.stderr.strip()}")
    files = [f for f in subprocess.run(["dpkg", "-L", "l4lb"], capture_output=True, text=True).stdout.split()
             if Path(f).is_file()]
    e2e.log(f"dpkg --verify: all {len(files)} files of the package present with their checksums")
    man_pages = [f for f in files if f.startswith("/usr/share/man/")]
    for program in ("l4lbd", "l4lbctl", "l4lb-maglev", "l4lb-pktgen"):
        p = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin"))
        if p.returncode != 0 or "usage" not in (p.stdout + p.stderr).lower():
            problems.append(f"{program} --help from PATH: exit {p.returncode}: {(p.stdout + p.stderr)[:200]}")
    e2e.log("--help from PATH: l4lbd, l4lbctl, l4lb-maglev, l4lb-pktgen")
    if man_pages:
        p = subprocess.run(["man", "-w", "l4lbd"], capture_output=True, text=True)
        if p.returncode != 0 or not p.stdout.startswith("/usr/share/man/"):
            problems.append(f"man -w l4lbd: {p.stdout.strip()} {p.stderr.strip()}")
        e2e.log(f"man pages: {len(man_pages)}; man -w l4lbd: {p.stdout.strip()}")
    else:
        e2e.log("man pages: none in the package (docs/man absent), man -w not checked")
    args = ["systemd-analyze", "verify"] + ([] if man_pages else ["--man=no"]) + [str(UNIT)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    ours = [line for line in (p.stdout + p.stderr).splitlines() if "l4lbd.service" in line]
    if p.returncode != 0 or ours:
        problems.append(f"{' '.join(args)}: exit {p.returncode}: {ours or p.stderr.strip()}")
    e2e.log(f"{' '.join(args)}: exit {p.returncode}, {len(ours)} complaints about l4lbd.service")


def run_unit(lab, problems):
    service = unit_service_section(UNIT.read_text())
    for key in ("Type", "NotifyAccess", "ExecStart", "ExecReload", "WatchdogSec", "CapabilityBoundingSet"):
        if key not in service:
            raise e2e.TestFailure(f"{UNIT}: no {key}=")
    if service["Type"] != ["notify"] or service["NotifyAccess"] != ["main"]:
        problems.append(f"unit: Type={service['Type']} NotifyAccess={service['NotifyAccess']}")
    env = environment_assignments(service.get("Environment", []))
    env.update(environment_file(DEFAULTS))
    config = lab.workdir / "l4lb.yaml"
    config.write_text((e2e.REPO / "config" / "demo.yaml").read_text())
    have = int(Path("/proc/sys/vm/nr_hugepages").read_text())
    env.update(L4LBD_CONFIG=str(config), L4LB_FILE_PREFIX=lab.prefix,
               L4LBD_EAL_ARGS=f"-l {e2e.LCORES} --no-pci --vdev net_tap0,iface=dp0",
               # What is reserved already: l4lb-prepare checks, changes nothing.
               L4LB_HUGEPAGES=str(max(have, 128)))
    base_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env}

    def in_lb(argv):
        return ["ip", "netns", "exec", lab.ns_lb, "env", "-i"] + [f"{k}={v}" for k, v in base_env.items()] + argv

    for line in service.get("ExecStartPre", []):
        argv = expand_command(line, env)
        p = subprocess.run(in_lb(argv), capture_output=True, text=True, timeout=60)
        e2e.log(f"ExecStartPre {' '.join(argv)}: exit {p.returncode}: {(p.stdout + p.stderr).strip()}")
        if p.returncode != 0:
            raise e2e.TestFailure(f"ExecStartPre {' '.join(argv)} exited {p.returncode}")

    notify = NotifySocket(lab.workdir / "notify.sock")
    try:
        caps = service["CapabilityBoundingSet"][-1].split()
        bounding = "-all," + ",".join("+" + c.lower().removeprefix("cap_") for c in caps)
        setpriv = ["setpriv", f"--bounding-set={bounding}", "--inh-caps=-all"]
        if service.get("NoNewPrivileges", ["no"])[-1] == "yes":
            setpriv.append("--no-new-privs")
        argv = expand_command(service["ExecStart"][-1], env)
        e2e.log(f"ExecStart under {' '.join(setpriv)}: {' '.join(argv)}")
        cmd = ["env", "-i", *[f"{k}={v}" for k, v in base_env.items()], f"NOTIFY_SOCKET={notify.path}",
               "WATCHDOG_USEC=2000000", *setpriv, "--", *argv]
        lab.daemon = lab.spawn("l4lbd", lab.ns_lb, cmd, logfile=lab.daemon_log)
        t0 = time.monotonic()
        ready = notify.wait_for("READY", 0, 60, lab.daemon)
        e2e.log(f"READY=1 after {time.monotonic() - t0:.1f} s, STATUS={notify.since(ready)[0][1].get('STATUS')}")
        caps_line = next((line for line in Path(f"/proc/{lab.daemon.pid}/status").read_text().splitlines()
                          if line.startswith("CapEff")), "")
        e2e.log(f"l4lbd runs with {caps_line}")
        plug_data_port(lab)
        lab.wait_vip("http", 8080)
        check_curl(lab, problems, "after READY")

        # Watchdog: WATCHDOG_USEC 2 s, so a ping about every second.
        time.sleep(3.5)
        pings = [t for t, f in notify.since(ready) if f.get("WATCHDOG") == "1"]
        e2e.log(f"WATCHDOG=1: {len(pings)} since READY; gaps "
                f"{[round(b - a, 2) for a, b in zip(pings, pings[1:])]}")
        if len(pings) < 3 or any(b - a > 1.6 for a, b in zip(pings, pings[1:])):
            problems.append(f"watchdog: {len(pings)} pings, gaps {[round(b - a, 2) for a, b in zip(pings, pings[1:])]}")

        reload_argv = expand_command(service["ExecReload"][-1], env)
        for label, text, want_rc in (
                ("valid reload", config.read_text().replace("port: 8080}", "port: 8080, weight: 2}"), 0),
                ("refused reload", config.read_text() + "\nbogus_key: 1\n", 1)):
            config.write_text(text)
            start = notify.count()
            p = subprocess.run(in_lb(reload_argv), capture_output=True, text=True, timeout=30)
            out = (p.stdout + p.stderr).strip()
            e2e.log(f"ExecReload ({label}) {' '.join(reload_argv)}: exit {p.returncode}: {out[:200]}")
            if p.returncode != want_rc:
                problems.append(f"ExecReload ({label}): exit {p.returncode}, expected {want_rc}: {out[:300]}")
            if want_rc and "bogus_key" not in out:
                problems.append(f"ExecReload ({label}) does not name the key: {out[:300]}")
            reloading = notify.wait_for("RELOADING", start, 10)
            again = notify.wait_for("READY", reloading + 1, 10)
            fields = notify.since(reloading)[0][1]
            e2e.log(f"  RELOADING=1 (MONOTONIC_USEC={fields.get('MONOTONIC_USEC')}) then READY=1, "
                    f"STATUS={notify.since(again)[0][1].get('STATUS')}")
            if "MONOTONIC_USEC" not in fields:
                problems.append(f"{label}: RELOADING=1 without MONOTONIC_USEC")
        check_curl(lab, problems, "after the refused reload")

        start = notify.count()
        lab.daemon.send_signal(signal.SIGTERM)
        stopping = notify.wait_for("STOPPING", start, 10)
        lab.daemon.wait(15)
        e2e.log(f"SIGTERM: STOPPING=1 (STATUS={notify.since(stopping)[0][1].get('STATUS')}), "
                f"l4lbd exited with {lab.daemon.returncode}")
        if lab.daemon.returncode != 0:
            problems.append(f"l4lbd exited with {lab.daemon.returncode} after SIGTERM")
        lab.daemon = None
    finally:
        notify.close()


def purge(problems):
    p = subprocess.run(["apt-get", "purge", "-y", "-q", "l4lb"], env=APT_ENV, capture_output=True, text=True,
                       timeout=300)
    if p.returncode != 0:
        problems.append(f"apt-get purge l4lb: {p.stderr.strip()[-300:]}")
    left = [f for f in EXPECTED_FILES + ["/etc/l4lb"] if Path(f).exists()]
    if left:
        problems.append(f"left after purge: {left}")
    e2e.log(f"apt-get purge -y l4lb: exit {p.returncode}, {len(left)} files left")


def fresh_install(deb, problems):
    """Step 6: the package on a minimal Debian 12 it has never seen."""
    if subprocess.run(["sh", "-c", "command -v mmdebstrap"], capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "mmdebstrap"], env=APT_ENV, capture_output=True,
                       timeout=600)
    with tempfile.TemporaryDirectory(prefix="l4lb-fresh-") as tmp:
        root = Path(tmp) / "root"
        t0 = time.monotonic()
        p = subprocess.run(["mmdebstrap", "--variant=minbase", "bookworm", root], capture_output=True, text=True,
                           timeout=1200)
        if p.returncode != 0:
            problems.append(f"mmdebstrap: {p.stderr.strip()[-400:]}")
            return
        shutil.copy(deb, root / "tmp" / deb.name)
        script = (f"printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && "
                  f"apt-get update -q >/dev/null && apt-get install -y -q ./tmp/{deb.name} >/dev/null && "
                  "l4lbd --help >/dev/null && l4lbd --config /etc/l4lb/l4lb.yaml --check && "
                  "l4lb-maglev --backend 10.0.0.1:80 --table-size 7 | grep fingerprint && "
                  "l4lbctl --help >/dev/null && l4lb-pktgen --help >/dev/null")
        p = subprocess.run(["chroot", root, "sh", "-c", script], env=APT_ENV, capture_output=True, text=True,
                           timeout=1200)
        e2e.log(f"fresh Debian 12 (mmdebstrap minbase): install and run: exit {p.returncode} in "
                f"{time.monotonic() - t0:.0f} s: {' | '.join(p.stdout.strip().splitlines()[-3:])}")
        if p.returncode != 0:
            problems.append(f"on a fresh Debian 12: {(p.stdout + p.stderr).strip()[-600:]}")


def body(lab):
    problems = []
    t0 = time.monotonic()
    cmd = [str(e2e.REPO / "tools" / "package")]
    if os.environ.get("L4LB_PACKAGE_RELEASE") != "1":
        cmd += ["--from-build", str(e2e.L4LBD.parents[2])]  # <build>/src/daemon/l4lbd
    e2e.log("running: " + " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=3000)
    e2e.log(p.stdout.strip())
    if p.returncode != 0:
        raise e2e.TestFailure(f"tools/package exited {p.returncode}: {p.stderr.strip()[-800:]}")
    deb = e2e.REPO / "build" / "package" / f"l4lb_{project_version()}_amd64.deb"
    if not deb.is_file():
        raise e2e.TestFailure(f"tools/package wrote no {deb}")
    e2e.log(f"tools/package: {deb} in {time.monotonic() - t0:.0f} s")
    try:
        install(deb, problems)
        run_unit(lab, problems)
    finally:
        purge(problems)
    if os.environ.get("L4LB_PACKAGE_FRESH") == "1":
        fresh_install(deb, problems)
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    # With L4LB_PACKAGE_RELEASE=1, tools/package's release build takes minutes.
    e2e.run_test("package", body, servers=[("http_server", 8080)], timeout=1800)
