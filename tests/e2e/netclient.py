#!/usr/bin/env python3
"""Client-side helper for the e2e tests; runs inside the client namespace
(`ip netns exec <client-ns> python3 netclient.py ...`). Stdlib only.

  probe --kind http|tcp-echo|udp-echo --to ADDR:PORT [--deadline S]
      Retry until the service answers correctly once (exit 0) or the deadline
      passes (exit 1). Prints the number of attempts and the last error.
  udp --to ADDR:PORT [--flows F] [--count C] [--timeout S]
      From F sockets (F source ports, so F flows), send C datagrams each with a
      unique payload, wait for each echo; print one JSON object with the
      counts. Exit 0 only if every datagram came back unchanged.
  tcp-session --to ADDR:PORT
      Open one TCP connection and keep it; read commands from stdin, one per
      line, answer one line each on stdout:
        send TEXT  -> "ok <local-port>" once TEXT+"\\n" came back unchanged,
                      "err <reason>" otherwise
        close      -> "closed", then exit
      EOF on stdin closes the connection too.
"""
import argparse
import json
import socket
import sys
import time
import uuid


def addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def recv_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)}/{n} bytes")
        buf += chunk
    return buf


def probe_once(kind, target, timeout=1.0):
    if kind == "udp-echo":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            payload = b"probe-" + uuid.uuid4().hex.encode()
            s.sendto(payload, target)
            data, _ = s.recvfrom(65536)
            if data != payload:
                raise ValueError(f"bad echo {data[:40]!r}")
            return
    with socket.create_connection(target, timeout=timeout) as s:
        s.settimeout(timeout)
        if kind == "tcp-echo":
            payload = b"probe-" + uuid.uuid4().hex.encode() + b"\n"
            s.sendall(payload)
            if recv_exactly(s, len(payload)) != payload:
                raise ValueError("bad echo")
            return
        s.sendall(f"GET / HTTP/1.1\r\nHost: {target[0]}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            raise ValueError(f"bad http answer {data[:40]!r}")


def cmd_probe(args):
    target = addr(args.to)
    deadline = time.monotonic() + args.deadline
    attempts, last = 0, "none"
    while True:
        attempts += 1
        try:
            probe_once(args.kind, target)
            print(f"probe {args.kind} {args.to}: ok after {attempts} attempt(s)")
            return 0
        except (OSError, ValueError) as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            print(f"probe {args.kind} {args.to}: no answer after {attempts} attempts, last error {last}")
            return 1
        time.sleep(0.3)


def cmd_udp(args):
    target = addr(args.to)
    socks = []
    result = {"sent": 0, "ok": 0, "wrong": 0, "lost": 0, "flows": args.flows, "errors": []}
    try:
        for _ in range(args.flows):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(args.timeout)
            s.bind(("0.0.0.0", 0))
            socks.append(s)
        for i in range(args.count):
            for f, s in enumerate(socks):
                payload = f"dgram flow={f} seq={i} {uuid.uuid4().hex}".encode()
                s.sendto(payload, target)
                result["sent"] += 1
                try:
                    data, peer = s.recvfrom(65536)
                except socket.timeout:
                    result["lost"] += 1
                    result["errors"].append(f"flow {f} seq {i}: no echo within {args.timeout}s")
                    continue
                if data == payload and peer == target:
                    result["ok"] += 1
                else:
                    result["wrong"] += 1
                    result["errors"].append(f"flow {f} seq {i}: got {data[:60]!r} from {peer}")
    finally:
        for s in socks:
            s.close()
    result["errors"] = result["errors"][:10]
    print(json.dumps(result))
    return 0 if result["ok"] == result["sent"] else 1


def cmd_tcp_session(args):
    target = addr(args.to)
    try:
        sock = socket.create_connection(target, timeout=5)
    except OSError as e:
        print(f"err connect: {e}", flush=True)
        return 1
    sock.settimeout(5)
    port = sock.getsockname()[1]
    print(f"connected {port}", flush=True)
    try:
        for line in sys.stdin:
            cmd, _, text = line.rstrip("\n").partition(" ")
            if cmd == "close":
                break
            if cmd != "send":
                print(f"err unknown command {cmd!r}", flush=True)
                continue
            payload = (text + "\n").encode()
            try:
                sock.sendall(payload)
                got = recv_exactly(sock, len(payload))
            except OSError as e:
                print(f"err {type(e).__name__}: {e}", flush=True)
                continue
            if got == payload:
                print(f"ok {port}", flush=True)
            else:
                print(f"err echo mismatch: {got[:60]!r}", flush=True)
    finally:
        sock.close()
    print("closed", flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description="e2e client helper")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--kind", choices=["http", "tcp-echo", "udp-echo"], required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--deadline", type=float, default=20)
    p = sub.add_parser("udp")
    p.add_argument("--to", required=True)
    p.add_argument("--flows", type=int, default=5)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--timeout", type=float, default=2)
    p = sub.add_parser("tcp-session")
    p.add_argument("--to", required=True)
    args = ap.parse_args()
    return {"probe": cmd_probe, "udp": cmd_udp, "tcp-session": cmd_tcp_session}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
