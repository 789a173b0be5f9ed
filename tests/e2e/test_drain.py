#!/usr/bin/env python3
"""e2e: operator drain and enable (l4lbctl backend drain|enable, DESIGN 8).

A long-lived HTTP keep-alive connection to the web VIP is opened; its
backend X is read from the answer and checked against `l4lbctl flows
--list`. `l4lbctl backend drain web X`:
  - `backends` shows X draining with effective weight 0 and its flow still
    active;
  - the open connection keeps working, still answered by X;
  - none of 100 new connections (curl) goes to X, and none fails.
`l4lbctl backend enable web X`:
  - X is up with its configured weight again, and new connections reach it;
  - the long-lived connection still works.
At each step (all up, X drained, X enabled) the VIP's Maglev fingerprint,
`l4lbctl vips` column maglev (text and --json), equals what l4lb-maglev
prints for the same table size and the backends' effective weights
(DESIGN 5): the same when all are up and after enable, another while X is
drained (an operator override is per appliance, and shows)."""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "health.yaml"
N = 100

# The client side: one keep-alive connection; each "get" line sends
# GET / on it and prints "ok <local port> <status> <body>".
HTTP_SESSION = r'''
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    s = socket.create_connection((host, port), timeout=5)
except OSError as e:
    print("err connect: %s" % e, flush=True)
    sys.exit(1)
s.settimeout(5)
local = s.getsockname()[1]
f = s.makefile("rb")
print("connected %d" % local, flush=True)
for line in sys.stdin:
    if line.strip() == "close":
        break
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode())
        status = f.readline().decode().strip()
        length = 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.decode().partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        body = f.read(length).decode().strip()
        if not status:
            raise ConnectionError("connection closed")
        print("ok %d %s %s" % (local, status.replace(" ", "_"), body), flush=True)
    except (OSError, ValueError) as e:
        print("err %s" % e, flush=True)
s.close()
print("closed", flush=True)
'''


def row_of(lab, key):
    return next(r for r in lab.backends("web") if r["backend"] == key)


def flow_backend(lab, local_port):
    p = lab.ctl("flows", "--list", "--json")
    for w in json.loads(p.stdout)["workers"]:
        for line in w.get("flows", []):
            parts = line.split()   # proto client vip snat backend state
            if len(parts) >= 5 and parts[1] == f"{lab.client_addr}:{local_port}":
                return parts[4], parts[-1]
    return None, None


def web_fingerprint(lab, when, problems):
    """The web VIP's maglev column, checked against l4lb-maglev for the
    effective weights `l4lbctl backends` shows (read on both sides of the
    vips row, so a health change in between is seen and read again)."""
    for _ in range(3):
        before = {r["backend"]: r["effective_weight"] for r in lab.backends("web")}
        row = next(r for r in lab.vips() if r["name"] == "web")
        weights = {r["backend"]: r["effective_weight"] for r in lab.backends("web")}
        if weights == before:
            break
    # Given to l4lb-maglev in the reverse of the config's order: the
    # fingerprint is of the slots' backends, not of their list positions.
    given = dict(reversed(list(weights.items())))
    expected = e2e.maglev_fingerprint(row["table_size"], given)
    e2e.log(f"{when}: l4lbctl vips: web maglev {row.get('maglev')}; l4lb-maglev --table-size "
            f"{row['table_size']} for {given}: {expected}")
    if row.get("maglev") != expected:
        problems.append(f"{when}: l4lbctl vips shows maglev {row.get('maglev')}, l4lb-maglev prints {expected} "
                        f"for {weights} at table size {row['table_size']}")
    return row.get("maglev")


def body(lab):
    problems = []
    lab.wait_backends_up("web")
    all_up = web_fingerprint(lab, "all up", problems)
    text = lab.ctl("vips").stdout.splitlines()
    e2e.log("l4lbctl vips:\n  " + "\n  ".join(text))
    header = text[0].split() if text else []
    web = next((line.split() for line in text[1:] if line.split()[:1] == ["web"]), [])
    if "maglev" not in header or len(web) != len(header) or web[header.index("maglev")] != all_up:
        problems.append(f"l4lbctl vips (text) has no maglev column showing {all_up}")
    session = e2e.LineSession(lab, "http-session", [e2e.PY, "-c", HTTP_SESSION, e2e.VIP, 8080])
    first = session.expect()
    if not first.startswith("connected"):
        raise e2e.TestFailure(f"long-lived connection did not open: {first}")
    local = int(first.split()[1])

    def get(when):
        answer = session.ask("get")
        e2e.log(f"long-lived connection (port {local}) {when}: {answer}")
        parts = answer.split()
        if parts[0] != "ok" or parts[2] != "HTTP/1.1_200_OK" or not parts[3].startswith("backend="):
            raise e2e.TestFailure(f"long-lived connection broke {when}: {answer}")
        return parts[3].split("=", 1)[1]

    name = get("at start")
    addr = dict(e2e.BACKENDS)[name]
    key = f"{addr}:8080"
    flow_to, flow_state = flow_backend(lab, local)
    e2e.log(f"l4lbctl flows --list: client port {local} -> {flow_to} ({flow_state}); the server says {name}")
    if flow_to != key:
        problems.append(f"flows --list puts port {local} on {flow_to}, the answer came from {key}")

    p = lab.ctl("backend", "drain", "web", key, check=False)
    e2e.log(f"l4lbctl backend drain web {key}: exit {p.returncode}: {(p.stdout + p.stderr).strip()}")
    if p.returncode != 0:
        raise e2e.TestFailure(f"drain failed: {(p.stdout + p.stderr).strip()}")
    row = row_of(lab, key)
    e2e.log(f"{key} drained: state {row['state']}, weight {row['weight']}, admin_weight {row['admin_weight']}, "
            f"effective_weight {row['effective_weight']}, active_flows {row['active_flows']}")
    if row["state"] != "draining" or row["effective_weight"] != 0:
        problems.append(f"after drain {key} is {row['state']} with effective weight {row['effective_weight']}")
    if row["active_flows"] < 1:
        problems.append(f"after drain {key} shows {row['active_flows']} active flows; the long-lived one is open")
    if web_fingerprint(lab, f"{key} drained", problems) == all_up:
        problems.append(f"the maglev fingerprint stayed {all_up} with {key} drained")

    if get("after the drain") != name:
        problems.append(f"the long-lived connection moved away from {name} after the drain")
    new_before = row["new_flows"]
    counts, failures = lab.curl_many(N)
    new_after = row_of(lab, key)["new_flows"]
    e2e.log(f"{N} curls with {name} draining: {dict(sorted(counts.items()))}, {len(failures)} failed; "
            f"{name} new_flows {new_before} -> {new_after}")
    if counts.get(name):
        problems.append(f"{counts[name]} of {N} new connections went to drained {name}")
    if new_after != new_before:
        problems.append(f"drained {name}'s new_flows went {new_before} -> {new_after}")
    if failures:
        problems.append(f"{len(failures)} of {N} curls failed while {name} drained, e.g. {failures[0]}")
    if get(f"after {N} curls, still drained") != name:
        problems.append(f"the long-lived connection moved away from {name}")

    p = lab.ctl("backend", "enable", "web", key, check=False)
    e2e.log(f"l4lbctl backend enable web {key}: exit {p.returncode}: {(p.stdout + p.stderr).strip()}")
    if p.returncode != 0:
        problems.append(f"enable failed: {(p.stdout + p.stderr).strip()}")
    row = row_of(lab, key)
    e2e.log(f"{key} enabled: state {row['state']}, admin_weight {row['admin_weight']}, "
            f"effective_weight {row['effective_weight']}")
    if row["state"] != "up" or row["effective_weight"] != row["weight"]:
        problems.append(f"after enable {key} is {row['state']} with effective weight "
                        f"{row['effective_weight']} (configured {row['weight']})")
    if web_fingerprint(lab, f"{key} enabled", problems) != all_up:
        problems.append(f"the maglev fingerprint is not back to {all_up} after enable")
    counts, failures = lab.curl_many(N)
    e2e.log(f"{N} curls after enable: {dict(sorted(counts.items()))}, {len(failures)} failed")
    if not counts.get(name):
        problems.append(f"{name} got none of {N} new connections after enable")
    if failures:
        problems.append(f"{len(failures)} of {N} curls failed after enable, e.g. {failures[0]}")
    if get("after enable") != name:
        problems.append(f"the long-lived connection moved away from {name} after enable")

    # Unknown backend: refused with a message, nothing changes.
    p = lab.ctl("backend", "drain", "web", "10.99.0.99:8080", check=False)
    e2e.log(f"l4lbctl backend drain web 10.99.0.99:8080 (not configured): exit {p.returncode}: "
            f"{(p.stdout + p.stderr).strip()}")
    if p.returncode == 0:
        problems.append("draining an unknown backend exited 0")
    session.close()
    time.sleep(0.2)
    lab.finish(problems)


if __name__ == "__main__":
    e2e.run_test("drain", body, config=CONFIG, servers=[("http_server", 8080)], probe=("http", 8080),
                 timeout=150)
