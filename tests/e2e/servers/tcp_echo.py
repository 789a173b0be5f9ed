#!/usr/bin/env python3
"""TCP echo test backend (asyncio, stdlib only): every byte received is sent
back on the same connection; connections may stay idle for as long as the
client likes.

Usage: tcp_echo.py --bind 10.99.0.21 --port 7 --name b1 [--pidfile F]
The pid file is written once the socket listens, so its existence means ready.
"""
import argparse
import asyncio
import os
import signal
import sys


async def echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
            await writer.wait_closed()
        except Exception:  # noqa: BLE001 - peer may be gone already
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=7)
    ap.add_argument("--name", default=os.uname().nodename)
    ap.add_argument("--pidfile")
    args = ap.parse_args()

    server = await asyncio.start_server(echo, args.bind, args.port,
                                        reuse_address=True, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.pidfile:
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, args.pidfile)
    print(f"tcp_echo {args.name} listening on {args.bind}:{args.port}", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except OSError as e:
        print(f"tcp_echo: {e}", file=sys.stderr)
        sys.exit(1)
