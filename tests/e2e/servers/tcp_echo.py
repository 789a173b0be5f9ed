#!/usr/bin/env python3
"""TCP echo test backend (asyncio, stdlib only): every byte received is sent
back on the same connection; connections may stay idle for as long as the
client likes.

Usage: tcp_echo.py --bind 10.99.0.21 --port 7 --name b1 [--pidfile F]
The pid file is written once the socket listens, so its existence means ready.
"""
import asyncio

import serve


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
        await serve.close_quietly(writer)


async def listen(args):
    server = await asyncio.start_server(echo, args.bind, args.port, reuse_address=True, backlog=1024)

    async def stop():
        server.close()
        await server.wait_closed()

    return stop


if __name__ == "__main__":
    serve.main("tcp_echo", __doc__, 7, listen)
