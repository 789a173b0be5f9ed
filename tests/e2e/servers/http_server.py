#!/usr/bin/env python3
"""HTTP/1.1 keep-alive test backend (asyncio, stdlib only).

    GET /        -> 200, body "backend=<name> addr=<bind>\n"
    GET /health  -> 200, body "ok\n" (or the status of --health-status /
                    --health-status-file, body "status <code>\n")
    anything else-> 404 (405 for methods other than GET/HEAD)

Connections are kept alive (HTTP/1.1 default) unless the client asks for
"Connection: close" or speaks HTTP/1.0 without "Connection: keep-alive".
Request bodies (Content-Length) are read and discarded; chunked request bodies
are refused with 411/close. Meant to stay correct under wrk with ~50
connections, not to be fast.

Usage: http_server.py --bind 10.99.0.21 --port 8080 --name b1 [--pidfile F]
                      [--health-status CODE] [--health-status-file F]
The pid file is written once the socket listens, so its existence means ready.
--health-status CODE makes /health answer CODE (default 200) while the port
stays open, e.g. 500 for a backend that is up at TCP level but unhealthy.
--health-status-file F: while F exists and holds a status code, /health
answers that code (read on every request; so a test can flip a running
server between healthy and unhealthy); otherwise --health-status applies.
"""
import asyncio

import serve

MAX_HEAD = 64 * 1024
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 411: "Length Required",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}


class Server:
    def __init__(self, name, addr, health_status=200, health_status_file=None):
        self.name = name
        self.addr = addr
        self.requests = 0
        self.health_status = health_status
        self.health_status_file = health_status_file

    def current_health_status(self):
        if self.health_status_file:
            try:
                with open(self.health_status_file) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                pass
        return self.health_status

    def route(self, method, target):
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, b"method not allowed\n"
        if path == "/":
            return 200, f"backend={self.name} addr={self.addr}\n".encode()
        if path == "/health":
            status = self.current_health_status()
            return status, (b"ok\n" if status == 200 else f"status {status}\n".encode())
        return 404, b"not found\n"

    async def handle(self, reader, writer):
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # peer closed between requests
                except asyncio.LimitOverrunError:
                    await self.send(writer, 431, b"", close=True)
                    return
                keep_alive = await self.one_request(reader, writer, head)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            await serve.close_quietly(writer)

    async def one_request(self, reader, writer, head):
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self.send(writer, 400, b"bad request\n", close=True)
            return False
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            key, sep, value = line.partition(":")
            if not sep:
                await self.send(writer, 400, b"bad header\n", close=True)
                return False
            headers[key.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            await self.send(writer, 411, b"chunked bodies not supported\n", close=True)
            return False
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            await self.send(writer, 400, b"bad content-length\n", close=True)
            return False
        if length > 0:
            await reader.readexactly(length)
        conn = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in conn
        else:
            keep_alive = "close" not in conn
        status, body = self.route(method, target)
        self.requests += 1
        await self.send(writer, status, body, close=not keep_alive,
                        head_only=(method == "HEAD"))
        return keep_alive

    async def send(self, writer, status, body, close, head_only=False):
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
                f"Server: l4lb-e2e/{self.name}\r\n"
                "Content-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n"
                "\r\n").encode()
        writer.write(head if head_only else head + body)
        await writer.drain()


def add_arguments(ap):
    ap.add_argument("--health-status", type=int, default=200,
                    help="status of GET /health (default 200)")
    ap.add_argument("--health-status-file",
                    help="if this file exists and holds a status code, /health answers it")


def check_arguments(ap, args):
    if not 100 <= args.health_status <= 599:
        ap.error("--health-status must be 100..599")


async def listen(args):
    srv = Server(args.name, args.bind, args.health_status, args.health_status_file)
    server = await asyncio.start_server(srv.handle, args.bind, args.port,
                                        reuse_address=True, backlog=1024, limit=MAX_HEAD)

    async def stop():
        server.close()
        await server.wait_closed()
        return f"{srv.requests} requests"

    return stop


if __name__ == "__main__":
    serve.main("http_server", __doc__, 8080, listen, add_arguments, check_arguments)
