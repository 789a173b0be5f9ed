#!/usr/bin/env python3
"""Short HTTP connections from many client addresses, for
test_many_clients.py; runs in the client namespace the test made (stdlib
only).

    many_clients.py --to ADDR:PORT --sources A1,A2,... --rate R --seconds S
                    [--timeout T] [--threads N]

Opens R connections a second for S seconds, the i-th bound to source
address A[i % len(A)] (port chosen by the kernel), each: connect, one
`GET / HTTP/1.1` (keep-alive), read the whole answer (Content-Length), then
close: the client closes first, as curl does. Prints one JSON object:
counts, achieved rate, latencies, answers per backend (the test servers
say `backend=NAME`), per source address, and the first failures."""
import argparse
import json
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def one(target, source, timeout):
    t0 = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect(target)
        s.sendall(f"GET / HTTP/1.1\r\nHost: {target[0]}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed after {len(data)} bytes of the head")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(body) < length:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed in the body")
            body += chunk
        if not head.startswith(b"HTTP/1.1 200"):
            raise ValueError(f"status {head.split(b' ', 2)[1:2]}")
        text = body.decode(errors="replace")
        backend = text.split()[0].split("=", 1)[1] if text.startswith("backend=") else None
        if backend is None:
            raise ValueError(f"unexpected body {text[:40]!r}")
        return True, backend, None, time.monotonic() - t0
    except (OSError, ValueError) as e:
        return False, None, f"{type(e).__name__}: {e}", time.monotonic() - t0
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--to", required=True)
    ap.add_argument("--sources", required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=64)
    args = ap.parse_args()
    host, _, port = args.to.rpartition(":")
    target = (host, int(port))
    sources = args.sources.split(",")
    total = int(args.rate * args.seconds)
    lock = threading.Lock()
    out = {"planned": total, "ok": 0, "failed": 0, "by_backend": {}, "by_source": {}, "failures": [],
           "latencies": []}

    def task(i):
        src = sources[i % len(sources)]
        ok, backend, err, took = one(target, src, args.timeout)
        with lock:
            out["latencies"].append(took)
            per = out["by_source"].setdefault(src, [0, 0])
            if ok:
                out["ok"] += 1
                out["by_backend"][backend] = out["by_backend"].get(backend, 0) + 1
                per[0] += 1
            else:
                out["failed"] += 1
                per[1] += 1
                if len(out["failures"]) < 10:
                    out["failures"].append(f"{src}: {err} after {took:.2f} s")

    start = time.monotonic()
    lag = 0.0
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        for i in range(total):
            due = start + i / args.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                lag = max(lag, now - due)
            pool.submit(task, i)
        sent_in = time.monotonic() - start
    lat = sorted(out.pop("latencies"))
    out["started_in_s"] = round(sent_in, 2)
    out["rate"] = round(total / sent_in, 1) if sent_in else 0
    out["max_lag_s"] = round(lag, 2)
    if lat:
        out["latency_s"] = {"p50": round(lat[len(lat) // 2], 4), "p99": round(lat[int(len(lat) * 0.99)], 4),
                            "max": round(lat[-1], 4), "over_1s": sum(1 for x in lat if x > 1.0)}
    print(json.dumps(out), flush=True)
    return 0 if out["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
