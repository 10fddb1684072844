"""The @exha-winrm connector against the real WinRM simulator on loopback, through the pyinfra CLI: a
fact over HTTPS and over HTTP, and each connection failure as one line naming the host and the cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness import Peer, free_port, run_pyinfra, write_inventory
from winrm_peers import WinRMPeer, start_winrm

FACT = "roles.exchange.facts.MailboxDatabases"


@pytest.fixture
def ex1(tmp_path: Path, peers: list[Peer]) -> WinRMPeer:
    return start_winrm(tmp_path, peers, "ex13-1", "127.0.0.23", "exchange",
                       ["--exchange-servers", "EX13-1,EX13-2"])


def fact(tmp_path: Path, data: dict[str, object], *args: str) -> tuple[int, str, str]:
    inv = write_inventory(tmp_path / "inv", {"exchange": [("@exha-winrm/ex13-1", data)]})
    run = run_pyinfra(tmp_path, inv, "fact", FACT, *args)
    return run.rc, run.stdout, run.stderr


def error_line(stderr: str, needle: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln.strip() for ln in stderr.splitlines() if needle in ln]
    assert len(lines) == 1, stderr
    return lines[0]


def test_fact_over_http(tmp_path: Path, peers: list[Peer]) -> None:
    sim = start_winrm(tmp_path, peers, "ex13-2", "127.0.0.24", "exchange", http=True)
    data = sim.host_data(winrm_scheme="http", winrm_port=sim.http_port, winrm_ca_file=None)
    rc, out, err = fact(tmp_path, data, "--json")
    assert rc == 0, err
    assert [d["identity"] for d in json.loads(out)[FACT]["@exha-winrm/ex13-1"]] == ["DB01"]


def test_untrusted_certificate(tmp_path: Path, ex1: WinRMPeer) -> None:
    from lab.pki import ensure_ca

    other_ca = ensure_ca(tmp_path / "other-ca")
    rc, _, err = fact(tmp_path, ex1.host_data(winrm_ca_file=str(other_ca.cert)))
    assert rc == 1
    line = error_line(err, "cannot connect")
    assert line.endswith(f"@exha-winrm/ex13-1: cannot connect: TLS verification of "
                         f"https://{ex1.address}:{ex1.port}/wsman failed (certificate verify failed); "
                         "set winrm_ca_file to the CA that signed the WinRM certificate"), line
    assert ex1.scripts() == []


def test_nothing_listening(tmp_path: Path) -> None:
    port = free_port("127.0.0.23")
    rc, _, err = fact(tmp_path, {"winrm_host": "127.0.0.23", "winrm_port": port, "winrm_username": "u",
                                 "winrm_password": "p"})
    assert rc == 1
    line = error_line(err, "cannot connect")
    assert line.endswith(f"@exha-winrm/ex13-1: cannot connect: no WinRM service at "
                         f"https://127.0.0.23:{port}/wsman (Connection refused)"), line


@pytest.mark.parametrize(("data", "message"), [
    ({"winrm_password": "p"}, "winrm_username is not set; give the WinRM user in the host data"),
    ({"winrm_username": "u"}, "winrm_password is not set; give the WinRM password in the host data"),
    ({"winrm_username": "u", "winrm_password": "p", "winrm_scheme": "ftp"},
     "winrm_scheme is 'ftp'; use https or http"),
    ({"winrm_username": "u", "winrm_password": "p", "winrm_transport": "kerberos"},
     "winrm_transport is 'kerberos'; use basic or ntlm"),
], ids=["no-user", "no-password", "scheme", "transport"])
def test_bad_settings(tmp_path: Path, data: dict[str, object], message: str) -> None:
    rc, _, err = fact(tmp_path, {"winrm_host": "127.0.0.23", **data})
    assert rc == 1
    assert error_line(err, "cannot connect").endswith(f"@exha-winrm/ex13-1: cannot connect: {message}")
