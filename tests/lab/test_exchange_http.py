"""The Exchange stand-in's HTTP decisions, without sockets: which path answers what."""

from __future__ import annotations

import pytest

from lab.exchange_standin.http import BadRequest, Identity, parse_head, respond

ME = Identity("EX13-1", "EX13-1.corp.example")


def _get(path: str, maintenance: bool = False, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = parse_head(f"{method} {path} HTTP/1.1\r\nHost: outlook.corp.example\r\n".encode())
    r = respond(req, ME, "10.0.0.100", "https", maintenance)
    return r.status, r.headers, r.body


@pytest.mark.parametrize(
    "path,status",
    [
        ("/owa/healthcheck.htm", 200),
        ("/ECP/HealthCheck.htm", 200),
        ("/ews/healthcheck.htm", 200),
        ("/mapi/healthcheck.htm", 200),
        ("/rpc/healthcheck.htm", 200),
        ("/oab/healthcheck.htm", 200),
        ("/Microsoft-Server-ActiveSync/healthcheck.htm", 200),
        ("/autodiscover/healthcheck.htm", 200),
        ("/owa/", 302),
        ("/owa", 302),
        ("/ecp/", 302),
        ("/", 302),
        ("/owa/auth/logon.aspx?x=1", 200),
        ("/ews/exchange.asmx", 401),
        ("/EWS/Exchange.asmx", 401),
        ("/Microsoft-Server-ActiveSync", 401),
        ("/rpc/rpcproxy.dll", 401),
        ("/autodiscover/autodiscover.xml", 401),
        ("/mapi/emsmdb/", 401),
        ("/powershell", 401),
        ("/iisstart.htm", 404),
        ("/foo/healthcheck.htm", 404),
    ],
)
def test_paths(path: str, status: int) -> None:
    got, headers, _ = _get(path)
    assert got == status
    assert headers["X-FEServer"] == "EX13-1" and headers["X-Exha-Peer"] == "10.0.0.100"


def test_health_body_names_server_and_maintenance_gives_503() -> None:
    assert _get("/owa/healthcheck.htm")[2] == b"200 OK<br/>EX13-1.corp.example"
    assert _get("/owa/healthcheck.htm", maintenance=True)[0] == 503
    assert _get("/ews/exchange.asmx", maintenance=True)[0] == 401


def test_logon_redirect_keeps_host_and_target() -> None:
    _, headers, _ = _get("/ecp/")
    assert headers["Location"] == (
        "https://outlook.corp.example/owa/auth/logon.aspx?url=https://outlook.corp.example/ecp/&reason=0"
    )


def test_head_and_keep_alive_encoding() -> None:
    req = parse_head(b"HEAD /owa/healthcheck.htm HTTP/1.0\r\nHost: x\r\n")
    assert not req.keep_alive
    raw = respond(req, ME, "10.0.0.100", "https", False).encode(req.keep_alive, head_only=True)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert (
        body == b""
        and f"Content-Length: {len('200 OK<br/>EX13-1.corp.example')}".encode() in head
        and b"Connection: close" in head
    )
    assert parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n").keep_alive


@pytest.mark.parametrize(
    "raw", [b"GARBAGE", b"GET /x SPDY/3\r\n", b"GET x HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nNoColonHere\r\n"]
)
def test_bad_request_heads(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_head(raw)


def test_unsupported_method() -> None:
    assert _get("/owa/", method="DELETE")[0] == 405
