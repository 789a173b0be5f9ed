#!/usr/bin/env python3
"""UDP echo test backend (asyncio, stdlib only): every datagram is sent back,
unchanged, to the address it came from.

Usage: udp_echo.py --bind 10.99.0.21 --port 5353 --name b1 [--pidfile F]
The pid file is written once the socket is bound, so its existence means ready.
"""
import asyncio

import serve


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


async def listen(args):
    transport, proto = await asyncio.get_running_loop().create_datagram_endpoint(
        Echo, local_addr=(args.bind, args.port), reuse_port=False)

    async def stop():
        transport.close()
        return f"{proto.count} datagrams"

    return stop


if __name__ == "__main__":
    serve.main("udp_echo", __doc__, 5353, listen)
