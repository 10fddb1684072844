"""Health checks: the rise/fall state machine from a table, and each probe kind against real servers."""

from __future__ import annotations

import asyncio
import socket
from typing import Callable

import pytest

from lb.config import HealthCheck
from lb.health import CheckState, observe, passive_down, probe
from lbkit import Net, Proc, free_port

# (results, rise, fall, expected up after each result)
TABLE = [
    ("+", 2, 3, "1"),                       # first result decides at once
    ("-", 2, 3, "0"),
    ("+---", 2, 3, "1110"),                 # fall 3
    ("+--+--", 2, 3, "111111"),             # a success resets the failure count
    ("-++", 2, 3, "001"),                   # rise 2
    ("-+-++", 2, 3, "00001"),
    ("+-", 1, 1, "10"),
    ("-+", 1, 1, "01"),
    ("+----+++", 3, 2, "11000001"),
]


@pytest.mark.parametrize(("results", "rise", "fall", "expected"), TABLE, ids=[t[0] + f"-r{t[1]}f{t[2]}" for t in TABLE])
def test_state_machine(results: str, rise: int, fall: int, expected: str) -> None:
    state = CheckState()
    got = ""
    for r in results:
        state = observe(state, r == "+", rise, fall)
        got += "1" if state.up else "0"
    assert got == expected


def test_passive_down_needs_rise_successes() -> None:
    state = observe(CheckState(), True, 2, 3)
    state = passive_down(state)
    assert not state.up
    state = observe(state, True, 2, 3)
    assert not state.up
    assert observe(state, True, 2, 3).up


def _run(check: HealthCheck, address: str, port: int) -> tuple[bool, str]:
    result = asyncio.run(probe(check, address, port))
    return result.ok, result.detail


def test_tcp_probe(net: Net) -> None:
    port = free_port(net.host(23))
    assert _run(HealthCheck(kind="tcp", timeout=1), net.host(23), port) == (False, "Connection refused")
    with socket.socket() as s:
        s.bind((net.host(23), port))
        s.listen()
        assert _run(HealthCheck(kind="tcp", timeout=1), net.host(23), port)[0]


def test_smtp_probe(net: Net, smtp_server: Callable[[str, int], Proc]) -> None:
    smtp_server(net.host(23), 2525)
    assert _run(HealthCheck(kind="smtp", timeout=2), net.host(23), 2525) == (True, "220")


def test_smtp_probe_rejects_a_wrong_banner(net: Net, backend: Callable[..., Proc]) -> None:
    backend("echo", "E", net.host(23), [2526])
    ok, detail = _run(HealthCheck(kind="smtp", timeout=2), net.host(23), 2526)
    assert not ok and "expected 220" in detail


def test_http_probe_codes(net: Net, backend: Callable[..., Proc], tmp_path: object) -> None:
    backend("http", "A", net.host(23), [8080])
    kemp = HealthCheck(kind="http", timeout=2)  # default accepted: 2xx, 301, 302, 401
    for path, ok in (("/status/200", True), ("/status/204", True), ("/status/301", True), ("/status/302", True),
                     ("/status/401", True), ("/status/403", False), ("/status/404", False),
                     ("/status/500", False), ("/status/503", False)):
        got, detail = _run(HealthCheck(kind="http", timeout=2, paths=(path,)), net.host(23), 8080)
        assert got is ok, (path, detail)
    assert _run(kemp, net.host(23), 8080)[0]


def test_https_probe_every_vdir(net: Net, backend: Callable[..., Proc], certs: tuple[str, str],
                                tmp_path: object) -> None:
    import pathlib

    flag = pathlib.Path(str(tmp_path)) / "down"
    backend("https", "A", net.host(23), [8443], "--cert", certs[0], "--key", certs[1], "--down-flag", str(flag))
    check = HealthCheck(kind="https", timeout=2, accepted_codes=((200, 200),),
                        paths=("/owa/healthcheck.htm", "/ecp/healthcheck.htm"))
    assert _run(check, net.host(23), 8443) == (True, "HTTP 200 on 2 path(s)")
    flag.write_text("")
    ok, detail = _run(check, net.host(23), 8443)
    assert not ok and "/owa/healthcheck.htm: HTTP 503 not accepted" in detail


def test_probe_timeout_on_a_silent_server(net: Net) -> None:
    with socket.socket() as s:
        s.bind((net.host(23), 0))
        s.listen()
        ok, detail = _run(HealthCheck(kind="smtp", timeout=0.3), net.host(23), s.getsockname()[1])
        assert not ok and detail == "timeout after 0.3s"
