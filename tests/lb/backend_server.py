"""A real back end for the balancer tests, run as its own process so a test can kill or freeze it.

    python backend_server.py http|https|echo NAME ADDRESS PORT[,PORT...] [--cert C --key K] [--down-flag F]

http/https: HTTP/1.1 with keep-alive; every response names the server (body and X-Server header);
  /<vdir>/healthcheck.htm answers 200 (503 while the --down-flag file exists); /owa/ answers 302;
  /status/NNN answers NNN; /bytes/N answers N bytes; /chunked/N answers N bytes in chunks; /bye answers,
  then closes the connection; /drop-next answers, then closes the connection unanswered at the next
  request; /upgrade switches protocols (101) and echoes lines. Request bodies (length or chunked) are read;
  X-Body gives their size and hash. HEAD answers carry no body.
echo: on connect sends "hello NAME LOCALPORT PEERIP\\n", then echoes every line back.
sink: on connect sends "ready NAME\\n" and ends its sending side at once, waits a second, then reads slowly
  (pausing between reads) until the client's end, and appends "BYTES SHA256" to the --report file.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import ssl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["http", "https", "echo", "sink"])
    ap.add_argument("name")
    ap.add_argument("address")
    ap.add_argument("ports")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--down-flag", default="")
    ap.add_argument("--report", default="")
    args = ap.parse_args()
    asyncio.run(serve(args))


async def serve(args: argparse.Namespace) -> None:
    ctx = None
    if args.kind == "https":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    servers = []
    for port in (int(p) for p in args.ports.split(",")):
        if args.kind == "echo":
            handler = echo(args.name)
        elif args.kind == "sink":
            handler = sink(args.name, args.report)
        else:
            handler = http(args.name, args.down_flag)
        if args.kind == "sink":  # a small receive buffer, so a slow reader pushes back on the balancer soon
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
            sock.bind((args.address, port))
            servers.append(await asyncio.start_server(handler, sock=sock, backlog=1024))
            continue
        servers.append(await asyncio.start_server(handler, args.address, port, ssl=ctx, reuse_address=True,
                                                  backlog=1024))
    await asyncio.Event().wait()


def echo(name: str):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        local = writer.get_extra_info("sockname")
        peer = writer.get_extra_info("peername")
        writer.write(f"hello {name} {local[1]} {peer[0]}\n".encode())
        try:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()
    return handle


def sink(name: str, report: str):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"ready {name}\n".encode())
        await writer.drain()
        writer.write_eof()
        await asyncio.sleep(1.0)
        digest, count = hashlib.sha256(), 0
        while chunk := await reader.read(65536):
            digest.update(chunk)
            count += len(chunk)
            await asyncio.sleep(0.002)
        with open(report, "a") as fh:
            fh.write(f"{count} {digest.hexdigest()}\n")
        writer.close()
    return handle


def http(name: str, down_flag: str):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        drop_next = False
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if drop_next:  # as if its idle timeout had closed the connection just as the request came
                    break
                line = head.split(b"\r\n", 1)[0].decode()
                method = line.split(" ")[0]
                path = line.split(" ")[1] if " " in line else "/"
                cookie = b""
                length, chunked = 0, False
                for h in head.split(b"\r\n")[1:]:
                    if h.lower().startswith(b"cookie:"):
                        cookie = h[7:].strip()
                    elif h.lower().startswith(b"content-length:"):
                        length = int(h[15:])
                    elif h.lower().startswith(b"transfer-encoding:") and b"chunked" in h.lower():
                        chunked = True
                received = await _body(reader, length, chunked)
                if path == "/upgrade":  # a protocol switch: from here on, echo lines
                    writer.write(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n"
                                 f"X-Server: {name}\r\n\r\n".encode())
                    while data := await reader.readline():
                        writer.write(data)
                        await writer.drain()
                    break
                status, body = 200, f"{name}\n".encode()
                if path.endswith("/healthcheck.htm"):
                    status = 503 if down_flag and os.path.exists(down_flag) else 200
                    body = f"200 OK {name}\n".encode() if status == 200 else b"down\n"
                elif path.startswith("/status/"):
                    status = int(path.split("/")[2])
                elif path.startswith("/bytes/"):
                    body = b"x" * int(path.split("/")[2])
                elif path == "/owa/":
                    status = 302
                close = b"connection: close" in head.lower()
                common = (f"HTTP/1.1 {status} X\r\nX-Server: {name}\r\nX-Cookie: {cookie.decode()}\r\n"
                          f"X-Body: {len(received)} {hashlib.sha256(received).hexdigest()[:16]}\r\n"
                          f"{'Connection: close' + chr(13) + chr(10) if close else ''}")
                if path.startswith("/chunked/"):  # the answer in chunks of at most 1000 bytes
                    data = b"y" * int(path.split("/")[2])
                    chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 1000]), data[i:i + 1000])
                                      for i in range(0, len(data), 1000))
                    writer.write(f"{common}Transfer-Encoding: chunked\r\n\r\n".encode() + chunks + b"0\r\n\r\n")
                else:
                    writer.write(f"{common}Content-Length: {len(body)}\r\n\r\n".encode() +
                                 (b"" if method == "HEAD" else body))
                await writer.drain()
                if close or path == "/bye":  # /bye: closes after answering, as a server's idle timeout does
                    break
                drop_next = path == "/drop-next"
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        writer.close()
    return handle


async def _body(reader: asyncio.StreamReader, length: int, chunked: bool) -> bytes:
    """A request's body: `length` bytes, or chunks until the last."""
    if not chunked:
        return await reader.readexactly(length) if length else b""
    out = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, up to the blank line
                pass
            return out
        out += await reader.readexactly(size)
        await reader.readexactly(2)


if __name__ == "__main__":
    main()
