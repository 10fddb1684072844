"""The WinRM listener: HTTP (5985) and HTTPS (5986) on /wsman with Basic authentication checked on
every request (401 otherwise), WS-Management dispatch, and the JSON-lines log of every command."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import socketserver
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lab.winrm_sim.cmdlets import Host
from lab.winrm_sim.shell import Result, run_command_line
from lab.winrm_sim.wsman import ShellService, WsmanError, fault, parse_request

LOG_FILE = "commands.jsonl"
MAX_BODY = 512 * 1024


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def check(self, header: str | None) -> str | None:
        """The user name if `header` is valid Basic authentication for these credentials."""
        if not header or not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user_ok = hmac.compare_digest(user.split("\\")[-1].lower().encode(), self.username.lower().encode())
        pass_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return user if user_ok and pass_ok else None


class CommandLog:
    """Appends one JSON object per request event to the log (passwords are never part of it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def write(self, **entry: Any) -> None:
        entry = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **entry}
        with self.lock, self.path.open("a") as f:
            f.write(json.dumps(entry) + "\n")


class WinRMApp:
    """Everything one simulated host serves; shared by its HTTP and HTTPS listeners."""

    def __init__(self, host: Host, creds: Credentials, log: CommandLog, address: str) -> None:
        self.host, self.creds, self.log = host, creds, log
        self.user = ""
        self.shells = ShellService(self._execute, address)

    def _execute(self, command: str, args: list[str]) -> Result:
        return run_command_line(self.host, command, args, self.creds.username)


def _handler(app: WinRMApp, scheme: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "Microsoft-HTTPAPI/2.0"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"", extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            if body:
                self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(405, extra={"Allow": "POST"})

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self.close_connection = True
                self._reply(413 if length > 0 else 400)
                return
            data = self.rfile.read(length) if length else b""
            if self.path.split("?")[0].rstrip("/").lower() != "/wsman":
                self._reply(404)
                return
            user = app.creds.check(self.headers.get("Authorization"))
            if user is None:
                app.log.write(
                    event="auth",
                    peer=self.client_address[0],
                    scheme=scheme,
                    ok=False,
                    user=_basic_user(self.headers.get("Authorization")),
                )
                self._reply(401, extra={"WWW-Authenticate": 'Basic realm="WSMAN"'})
                return
            if not data:
                self._reply(200)
                return
            relates = ""
            try:
                req = parse_request(data)
                relates = req.message_id

                def on_command(shell_id: str, line: str, result: Result) -> None:
                    app.log.write(
                        event="command",
                        peer=self.client_address[0],
                        scheme=scheme,
                        user=user,
                        shell=shell_id,
                        command=line if result.script is None else line[:80],
                        script=result.script,
                        exit_code=result.exit_code,
                        stderr=bool(result.stderr),
                    )

                body = app.shells.handle(req, on_command)
            except WsmanError as e:
                self._reply(500, fault(e, relates))
                return
            except Exception as e:  # a bug or an unreadable state file: a fault, not a dropped connection
                what = f"{type(e).__name__}: {e}"
                app.log.write(event="internal-error", error=what)
                err = WsmanError(2147500037, "w:InternalError", f"The WinRM simulator failed: {what}")
                self._reply(500, fault(err, relates))
                return
            self._reply(200, body)

    return Handler


def _basic_user(header: str | None) -> str:
    if not header or not header.lower().startswith("basic "):
        return ""
    try:
        return base64.b64decode(header[6:].strip()).decode(errors="replace").partition(":")[0]
    except (binascii.Error, ValueError):
        return ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse lookup of the address (no resolver traffic at all)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's own thread, so a slow TLS handshake holds up no one else."""
        if self.tls is not None:
            request.settimeout(30)
            request = self.tls.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that drops the connection or fails the handshake is not the server's error


def make_servers(
    app: WinRMApp,
    listen: str,
    http_port: int | None,
    https_port: int | None,
    cert: Path | None,
    key: Path | None,
) -> list[ThreadingHTTPServer]:
    """The listeners, bound and ready to serve."""
    servers: list[ThreadingHTTPServer] = []
    if http_port:
        servers.append(_Server((listen, http_port), _handler(app, "http")))
    if https_port:
        if cert is None or key is None:
            raise ValueError("--https-port needs --cert and --key")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(cert), str(key))
        srv = _Server((listen, https_port), _handler(app, "https"))
        srv.tls = tls
        servers.append(srv)
    return servers


def serve_forever(servers: list[ThreadingHTTPServer]) -> None:
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers[1:]]
    for t in threads:
        t.start()
    servers[0].serve_forever()
