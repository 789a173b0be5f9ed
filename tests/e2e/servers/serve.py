"""What the test backends in this directory (http_server, tcp_echo, udp_echo)
share: the command line every one takes (--bind, --port, --name, --pidfile),
the pid file written once the socket is bound (the harness takes its
existence for "ready"), a clean stop on SIGTERM or SIGINT, a line when it
listens and one when it stops, and exit 1 with the reason when it cannot
bind. Stdlib only: the servers run inside bare network namespaces."""
import argparse
import asyncio
import os
import signal
import sys


def main(kind, doc, default_port, listen, add_arguments=None, check_arguments=None):
    """Run server `kind` until SIGTERM/SIGINT. `doc` is its module docstring
    (the first line describes it in --help). `listen(args)` is a coroutine
    function that binds and returns `stop`, a coroutine function that
    closes what listen opened and returns what was served ("12 requests")
    or None. add_arguments(parser) adds the server's own options;
    check_arguments(parser, args) may refuse them with parser.error()."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--bind", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    ap.add_argument("--port", type=int, default=default_port, help=f"port (default {default_port})")
    ap.add_argument("--name", default=os.uname().nodename,
                    help="how it names itself in answers and logs (default: the host name)")
    ap.add_argument("--pidfile", help="written once the socket is bound, so its existence means ready")
    if add_arguments:
        add_arguments(ap)
    args = ap.parse_args()
    if check_arguments:
        check_arguments(ap, args)
    try:
        asyncio.run(_serve(kind, args, listen))
    except OSError as e:
        print(f"{kind}: {e}", file=sys.stderr)
        sys.exit(1)


async def _serve(kind, args, listen):
    stop = await listen(args)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    if args.pidfile:
        # Renamed into place, so the harness never reads a half-written pid.
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, args.pidfile)
    print(f"{kind} {args.name} listening on {args.bind}:{args.port}", flush=True)
    try:
        await stopping.wait()
    finally:
        served = await stop()
    print(f"{kind} {args.name} stopping" + (f" after {served}" if served else ""), flush=True)


async def close_quietly(writer):
    """Close a connection's stream whose peer may be gone already."""
    try:
        writer.close()
        await writer.wait_closed()
    except Exception:  # noqa: BLE001 - a reset or a closed socket is no news here
        pass
