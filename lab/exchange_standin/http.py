"""The stand-in's HTTP side without sockets: parse a request head, decide the answer an Exchange
2013 front end would give for that path (health pages, logon redirects, 401s for the APIs)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

# Virtual directories with a /<vdir>/healthcheck.htm page (Managed Availability's probe target).
HEALTH_VDIRS = ("owa", "ecp", "ews", "mapi", "rpc", "oab", "microsoft-server-activesync", "autodiscover")
# API virtual directories that ask for credentials, as IIS does before any Exchange code runs.
AUTH_VDIRS = ("ews", "mapi", "rpc", "oab", "microsoft-server-activesync", "autodiscover", "powershell")
# Browser virtual directories that send an anonymous visitor to the forms logon page.
FORMS_VDIRS = ("owa", "ecp")
MAX_HEAD = 64 * 1024


class BadRequest(ValueError):
    """The bytes are not an HTTP/1.x request head."""


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return conn == "keep-alive"
        return conn != "close"

    @property
    def content_length(self) -> int:
        try:
            return max(0, int(self.headers.get("content-length", "0")))
        except ValueError:
            raise BadRequest("bad Content-Length") from None


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self, keep_alive: bool, head_only: bool = False) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        hdrs = {
            **self.headers,
            "Content-Length": str(len(self.body)),
            "Connection": "keep-alive" if keep_alive else "close",
        }
        lines += [f"{k}: {v}" for k, v in hdrs.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else self.body)


def parse_head(raw: bytes) -> Request:
    """Parse a request head (request line + headers, ending in a blank line)."""
    try:
        text = raw.decode("latin-1")
        line, *rest = text.split("\r\n")
        method, target, version = line.split(" ")
    except ValueError:
        raise BadRequest("malformed request line") from None
    if not version.startswith("HTTP/1.") or not target.startswith("/"):
        raise BadRequest(f"unsupported request line {line!r}")
    headers: dict[str, str] = {}
    for h in rest:
        if not h:
            continue
        name, sep, value = h.partition(":")
        if not sep:
            raise BadRequest(f"malformed header {h!r}")
        headers[name.strip().lower()] = value.strip()
    return Request(method.upper(), target, version, headers)


@dataclass(frozen=True)
class Identity:
    """Who this stand-in is: NetBIOS-style name (EX13-1) and FQDN."""

    name: str
    fqdn: str


def _html(identity: Identity, title: str, text: str) -> bytes:
    return (
        f"<html><head><title>{title}</title></head><body><h1>{title}</h1>"
        f"<p>{text}</p><p>Server: {identity.fqdn}</p></body></html>"
    ).encode()


def respond(req: Request, identity: Identity, peer: str, scheme: str, maintenance: bool) -> Response:
    """The answer for one request. `maintenance` is the server's "offline" component state."""
    common = {
        "Server": "Microsoft-IIS/8.5",
        "X-FEServer": identity.name,
        "X-Powered-By": "ASP.NET",
        "request-id": str(uuid.uuid4()),
        "X-Exha-Peer": peer,
        "Cache-Control": "private",
    }
    html = {**common, "Content-Type": "text/html; charset=utf-8"}
    path = req.path.lower()
    parts = [p for p in path.split("/") if p]
    vdir = parts[0] if parts else ""
    host = req.headers.get("host", identity.fqdn)
    if req.method not in ("GET", "HEAD", "POST", "OPTIONS"):
        return Response(405, "Method Not Allowed", _html(identity, "405", "Method not allowed"), html)
    if len(parts) == 2 and parts[1] == "healthcheck.htm" and vdir in HEALTH_VDIRS:
        if maintenance:
            return Response(
                503,
                "Service Unavailable",
                _html(identity, "503", "Service Unavailable (server component offline)"),
                html,
            )
        return Response(200, "OK", f"200 OK<br/>{identity.fqdn}".encode(), html)
    if not parts:
        return Response(
            302,
            "Found",
            _html(identity, "Object moved", "/owa/"),
            {**html, "Location": f"{scheme}://{host}/owa/"},
        )
    if vdir == "owa" and path.startswith("/owa/auth/logon.aspx"):
        return Response(200, "OK", _html(identity, "Outlook Web App", f"Sign in to {identity.name}"), html)
    if vdir in FORMS_VDIRS:
        target = f"{scheme}://{host}{req.path}"
        loc = f"{scheme}://{host}/owa/auth/logon.aspx?url={target}&reason=0"
        return Response(302, "Found", _html(identity, "Object moved", loc), {**html, "Location": loc})
    if vdir in AUTH_VDIRS:
        challenge = {**html, "WWW-Authenticate": f'Negotiate, NTLM, Basic realm="{host}"'}
        return Response(
            401,
            "Unauthorized",
            _html(identity, "401 - Unauthorized", f"{req.path} needs credentials"),
            challenge,
        )
    return Response(404, "Not Found", _html(identity, "404 - File or directory not found.", req.path), html)
