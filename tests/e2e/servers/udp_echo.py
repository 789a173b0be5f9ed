#!/usr/bin/env python3
"""UDP echo test backend (asyncio, stdlib only): every datagram is sent back,
unchanged, to the address it came from.

Usage: udp_echo.py --bind 10.99.0.21 --port 5353 --name b1 [--pidfile F]
The pid file is written once the socket is bound, so its existence means ready.
"""
import argparse
import asyncio
import os
import signal
import sys


class Echo(asyncio.DatagramProtocol):
    def __init__(self):
        self.transport = None
        self.count = 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.count += 1
        self.transport.sendto(data, addr)

    def error_received(self, exc):
        pass  # e.g. ICMP port unreachable from a vanished client


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=5353)
    ap.add_argument("--name", default=os.uname().nodename)
    ap.add_argument("--pidfile")
    args = ap.parse_args()

    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        Echo, local_addr=(args.bind, args.port), reuse_port=False)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.pidfile:
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, args.pidfile)
    print(f"udp_echo {args.name} listening on {args.bind}:{args.port}", flush=True)
    try:
        await stop.wait()
    finally:
        transport.close()
    print(f"udp_echo {args.name} stopping after {proto.count} datagrams", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except OSError as e:
        print(f"udp_echo: {e}", file=sys.stderr)
        sys.exit(1)
