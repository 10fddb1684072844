"""The stand-in's listeners: SMTP (aiosmtpd) on 25, HTTPS on 443 and HTTP on 80, and line
responders on the RPC ports; mail is stored under the server's state folder."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import signal
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from lab.exchange_standin.http import MAX_HEAD, BadRequest, Identity, parse_head, respond

SMTP_PORT = 25
HTTP_PORT = 80
HTTPS_PORT = 443
RPC_PORTS = (135, 60000, 60001)
SMTP_IDENT = "Microsoft ESMTP MAIL Service ready"
IDLE_TIMEOUT = 120.0


@dataclass(frozen=True)
class Settings:
    identity: Identity
    folder: Path
    cert: Path
    key: Path
    bind: str = "0.0.0.0"
    access_log: bool = False  # one line per HTTP request; off so load tests do not pay for it

    @property
    def maintenance_flag(self) -> Path:
        return self.folder / "maintenance"

    @property
    def mail_folder(self) -> Path:
        return self.folder / "mail"


class MailStore:
    """aiosmtpd handler: accept every message and keep it as <n>.eml plus <n>.json (envelope)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.mail_folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        stamp = f"{time.time_ns()}"
        folder = self.settings.mail_folder
        peer = str(session.peer[0]) if session.peer else "?"
        content = envelope.original_content or b""
        received = (
            f"Received: from {session.host_name} ([{peer}]) by "
            f"{self.settings.identity.fqdn}; {email.utils.formatdate()}\r\n"
        ).encode()
        (folder / f"{stamp}.eml").write_bytes(received + content)
        (folder / f"{stamp}.json").write_text(
            json.dumps(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "peer": peer,
                    "helo": session.host_name,
                    "server": self.settings.identity.name,
                }
            )
            + "\n"
        )
        print(
            f"smtp {peer} from={envelope.mail_from} to={','.join(envelope.rcpt_tos)}", flush=True
        )
        return f"250 2.6.0 <{stamp}@{self.settings.identity.fqdn}> Queued mail for delivery"


async def _serve_http(
    settings: Settings, scheme: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    peer = writer.get_extra_info("peername")[0]
    try:
        while True:
            try:
                raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            try:
                req = parse_head(raw[:-4])
                if req.content_length:
                    await reader.readexactly(req.content_length)
            except BadRequest:
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                return
            resp = respond(req, settings.identity, peer, scheme, settings.maintenance_flag.exists())
            writer.write(resp.encode(req.keep_alive, head_only=req.method == "HEAD"))
            await writer.drain()
            if settings.access_log:
                print(f"{scheme} {peer} {req.method} {req.target} {resp.status}", flush=True)
            if not req.keep_alive:
                return
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def _serve_rpc(
    settings: Settings, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """A line responder: names the server and port, then echoes each line it gets."""
    name = settings.identity.name
    try:
        writer.write(f"{name} rpc/{port} ready\r\n".encode())
        await writer.drain()
        while line := await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT):
            writer.write(f"{name}: {line.decode(errors='replace').rstrip()}\r\n".encode())
            await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


def _tls(settings: Settings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(settings.cert, settings.key)
    return ctx


async def serve(settings: Settings) -> None:
    """Run every listener until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    tls = _tls(settings)
    store = MailStore(settings)
    ident = settings.identity
    servers: list[asyncio.AbstractServer] = [
        await loop.create_server(
            lambda: SMTP(
                store, hostname=ident.fqdn, ident=SMTP_IDENT, tls_context=tls, require_starttls=False
            ),
            settings.bind,
            SMTP_PORT,
            reuse_address=True,
        ),
        await asyncio.start_server(
            lambda r, w: _serve_http(settings, "https", r, w),
            settings.bind,
            HTTPS_PORT,
            ssl=tls,
            reuse_address=True,
            limit=MAX_HEAD,
        ),
        await asyncio.start_server(
            lambda r, w: _serve_http(settings, "http", r, w),
            settings.bind,
            HTTP_PORT,
            reuse_address=True,
            limit=MAX_HEAD,
        ),
    ]
    for port in RPC_PORTS:
        servers.append(
            await asyncio.start_server(
                functools.partial(_serve_rpc, settings, port), settings.bind, port, reuse_address=True
            )
        )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"{ident.name} ({ident.fqdn}) serving smtp/{SMTP_PORT} https/{HTTPS_PORT} http/{HTTP_PORT} "
        f"rpc/{','.join(map(str, RPC_PORTS))}",
        flush=True,
    )
    await stop.wait()
    for s in servers:
        s.close()
    print(f"{ident.name} stopped", flush=True)


def settings_from(args: Any) -> Settings:
    return Settings(
        Identity(args.name, args.fqdn),
        Path(args.folder),
        Path(args.cert),
        Path(args.key),
        access_log=bool(args.access_log),
    )
