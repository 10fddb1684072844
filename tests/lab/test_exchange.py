"""The Exchange stand-ins, reached from the admin host through the lab's routes: SMTP banner, EHLO,
STARTTLS and delivery; HTTPS virtual directories verified against the lab CA; RPC responders;
stopping/starting one server and its maintenance mode."""

from __future__ import annotations

import email.message
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.context import Lab
from lab.exchange import exchange_host, folder, server_name
from lab.topology import LabHost

HEALTH_VDIRS = ["owa", "ecp", "ews", "mapi", "rpc", "oab", "Microsoft-Server-ActiveSync", "autodiscover"]


@pytest.fixture(scope="module")
def exha(exha_run: Callable[..., Any]) -> Callable[..., Any]:
    return exha_run


@pytest.fixture(scope="module")
def servers(lab: Lab) -> list[LabHost]:
    return lab.topology.by_role("exchange")


@pytest.fixture(scope="module")
def tls(lab: Lab) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(lab.ca.cert))


def _client(host: LabHost, tls: ssl.SSLContext) -> httpx.Client:
    return httpx.Client(
        base_url=f"https://{host.address}",
        verify=tls,
        timeout=5,
        headers={"Host": host.fqdn},
        follow_redirects=False,
    )


def test_smtp_banner_ehlo_starttls_and_delivery(
    lab: Lab, servers: list[LabHost], tls: ssl.SSLContext
) -> None:
    for host in servers:
        with smtplib.SMTP(host.address, 25, timeout=5) as smtp:
            code, ehlo = smtp.ehlo("admin.corp.example")
            assert code == 250 and ehlo.decode().splitlines()[0] == host.fqdn
            assert smtp.has_extn("starttls")
            smtp.starttls(context=tls)  # the lab CA signed the server's certificate for its address
            subject = f"rehearsal {time.time_ns()}"
            msg = email.message.EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "admin@corp.example", "user@corp.example", subject
            msg.set_content("hello")
            assert smtp.send_message(msg) == {}
        stored = [p.read_text() for p in (folder(lab, host) / "mail").glob("*.eml")]
        assert any(subject in m and f"by {host.fqdn}" in m for m in stored), host.name


def test_smtp_banner_names_the_server(servers: list[LabHost]) -> None:
    for host in servers:
        with socket.create_connection((host.address, 25), timeout=5) as s:
            banner = s.makefile("rb").readline().decode().strip()
        assert banner == f"220 {host.fqdn} Microsoft ESMTP MAIL Service ready"


@pytest.mark.parametrize("vdir", HEALTH_VDIRS)
def test_health_pages_verified_against_lab_ca(servers: list[LabHost], tls: ssl.SSLContext, vdir: str) -> None:
    for host in servers:
        with _client(host, tls) as c:
            r = c.get(f"/{vdir}/healthcheck.htm")
        assert r.status_code == 200
        assert r.text == f"200 OK<br/>{host.fqdn}"
        assert r.headers["X-FEServer"] == server_name(host)


def test_exchange_paths_answer_like_exchange(lab: Lab, servers: list[LabHost], tls: ssl.SSLContext) -> None:
    for host in servers:
        with _client(host, tls) as c:
            owa = c.get("/owa/")
            assert owa.status_code == 302 and "/owa/auth/logon.aspx" in owa.headers["Location"]
            assert c.get("/owa/auth/logon.aspx").status_code == 200
            assert c.get("/ecp/").status_code == 302
            for path in (
                "/ews/exchange.asmx",
                "/Microsoft-Server-ActiveSync",
                "/rpc/rpcproxy.dll",
                "/autodiscover/autodiscover.xml",
                "/mapi/emsmdb/",
            ):
                r = c.get(path)
                assert r.status_code == 401, path
                assert "NTLM" in r.headers["WWW-Authenticate"]
                assert r.headers["X-FEServer"] == server_name(host) and host.fqdn in r.text
            assert c.get("/nonexistent").status_code == 404
            # Several requests on one kept-alive connection; the client seen is the admin address.
            assert c.get("/owa/healthcheck.htm").headers["X-Exha-Peer"] == lab.topology.admin_address


def test_rpc_ports_name_the_server(servers: list[LabHost]) -> None:
    for host in servers:
        for port in (135, 60000, 60001):
            with socket.create_connection((host.address, port), timeout=5) as s:
                f = s.makefile("rwb")
                assert f.readline().decode().strip() == f"{server_name(host)} rpc/{port} ready"
                f.write(b"ping\r\n")
                f.flush()
                assert f.readline().decode().strip() == f"{server_name(host)}: ping"


def _refused(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_stop_and_start_one_server(
    lab: Lab, servers: list[LabHost], tls: ssl.SSLContext, exha: Callable[..., Any]
) -> None:
    one, other = servers[0], servers[1]
    cp = exha("lab", "exchange", "stop", server_name(one))
    try:
        assert cp.returncode == 0, cp.stderr
        for port in (25, 443, 135):
            assert _refused(one.address, port), port
        with _client(other, tls) as c:
            assert c.get("/owa/healthcheck.htm").status_code == 200
        status = exha("lab", "status")
        assert status.returncode == 1
        assert any(
            line.split()[:2] == [one.name, "https"] and " down " in line
            for line in status.stdout.splitlines()
        )
    finally:
        cp = exha("lab", "exchange", "start", server_name(one).lower())
    assert cp.returncode == 0, cp.stderr
    with _client(one, tls) as c:
        assert c.get("/owa/healthcheck.htm").status_code == 200


def test_maintenance_turns_health_pages_503(
    lab: Lab, servers: list[LabHost], tls: ssl.SSLContext, exha: Callable[..., Any]
) -> None:
    host = servers[1]
    assert exha("lab", "exchange", "maintenance", server_name(host), "on").returncode == 0
    try:
        with _client(host, tls) as c:
            assert c.get("/owa/healthcheck.htm").status_code == 503
            assert c.get("/ews/healthcheck.htm").status_code == 503
            assert c.get("/owa/auth/logon.aspx").status_code == 200
    finally:
        assert exha("lab", "exchange", "maintenance", server_name(host), "off").returncode == 0
    with _client(host, tls) as c:
        assert c.get("/owa/healthcheck.htm").status_code == 200


def test_unknown_server_is_one_line_error(lab: Lab, exha: Callable[..., Any]) -> None:
    cp = exha("lab", "exchange", "stop", "EX99")
    assert cp.returncode == 1 and "Traceback" not in cp.stderr
    assert cp.stderr.strip().splitlines() == [cp.stderr.strip()]
    assert "EX99" in cp.stderr and "EX13-1" in cp.stderr


def test_lookup_by_either_name(lab: Lab) -> None:
    assert exchange_host(lab, "EX13-1") == exchange_host(lab, "ex13-1") == lab.topology.host("ex13-1")
    assert isinstance(folder(lab, lab.topology.host("ex13-1")), Path)
