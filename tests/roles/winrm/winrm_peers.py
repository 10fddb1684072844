"""Real peers for the WinRM-driven roles' integration tests: the lab's WinRM simulator over HTTPS with a
throwaway CA, and BIND 9 on loopback for the Windows DNS provider; plus an independent pywinrm reader
and the simulator's command log.

Imported by the conftest files of tests/roles/exchange and tests/roles/windns.
"""

from __future__ import annotations

import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import winrm
from bindkit import Bind, prepare_bind
from harness import Peer, free_port

WRITE_CMDLETS = ("Set-", "New-", "Add-", "Remove-", "Restart-", "Start-", "Stop-")


@dataclass(frozen=True)
class WinRMPeer:
    """One simulated Windows host: how to reach it and where its state and command log live."""

    name: str
    address: str
    port: int
    username: str
    password: str
    ca_file: Path
    state: Path
    peer: Peer
    http_port: int | None = None

    def host_data(self, **over: Any) -> dict[str, Any]:
        data: dict[str, Any] = {"winrm_host": self.address, "winrm_port": self.port, "winrm_scheme": "https",
                                "winrm_username": self.username, "winrm_password": self.password,
                                "winrm_ca_file": str(self.ca_file)}
        data.update(over)
        return data

    def ps(self, script: str) -> Any:
        """Run PowerShell with plain pywinrm (independent of the toolkit) and decode its JSON output."""
        session = winrm.Session(f"https://{self.address}:{self.port}/wsman",
                                auth=(self.username, self.password),
                                transport="basic", server_cert_validation="validate",
                                ca_trust_path=str(self.ca_file), proxy=None)
        r = session.run_ps(script)
        assert r.status_code == 0, r.std_err.decode(errors="replace")
        text = r.std_out.decode().strip()
        return json.loads(text) if text else None

    def scripts(self) -> list[str]:
        """Every PowerShell script the host ran, in order, from its command log."""
        log = self.state / "commands.jsonl"
        if not log.exists():
            return []
        entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        return [e["script"] for e in entries if e.get("event") == "command" and e.get("script")]

    def write_lines(self) -> list[str]:
        """The statements of all scripts so far that change something (cmdlets with a write verb)."""
        return [line.strip() for s in self.scripts() for line in s.splitlines()
                if line.strip().startswith(WRITE_CMDLETS)]

    def snapshot(self) -> dict[str, bytes]:
        """The host's (and organization's) state files, to prove a run left them untouched."""
        return {p.name: p.read_bytes() for p in sorted(self.state.glob("*.json"))}


def start_winrm(tmp_path: Path, peers: list[Peer], name: str, address: str, role: str,
                extra: list[str] | None = None, env: dict[str, str] | None = None,
                http: bool = False) -> WinRMPeer:
    """`python -m lab.winrm_sim` for `name`: HTTPS with a certificate from a CA made for this test, and
    plain HTTP too if `http`."""
    from lab.pki import ensure_ca, issue_cert

    pki = tmp_path / "pki"
    ca = ensure_ca(pki)
    cert = issue_cert(ca, pki, name, [f"{name}.corp.example"], [address])
    port = free_port(address)
    http_port = free_port(address) if http else 0
    state = tmp_path / name
    password = secrets.token_urlsafe(12)
    argv = [sys.executable, "-m", "lab.winrm_sim", "--listen", address, "--http-port", str(http_port),
            "--https-port", str(port), "--cert", str(cert.cert), "--key", str(cert.key),
            "--state", str(state),
            "--username", "Administrator", "--role", role, "--server-name", name.upper(), *(extra or [])]
    peer = Peer(f"winrm-{name}", argv, address, port, tmp_path / f"{name}.log",
                {"WINRM_SIM_PASSWORD": password, **(env or {})})
    peers.append(peer.start())
    return WinRMPeer(name, address, port, "Administrator", password, ca.cert, state, peer, http_port or None)


# -- BIND 9 ----------------------------------------------------------------------------------------
def start_bind(tmp_path: Path, peers: list[Peer], address: str = "127.0.0.1") -> Bind:
    """A BIND 9 primary for corp.example on loopback that takes TSIG-signed RFC 2136 updates (BIND binds
    only addresses an interface holds, so 127.0.0.1 on a free port)."""
    argv, bind = prepare_bind(tmp_path / "bind", address, free_port(address))
    peers.append(Peer("named", argv, address, bind.port, tmp_path / "named.log").start())
    return bind


def a_rrset(bind: Bind, name: str) -> tuple[int, list[str]] | None:
    """(ttl, sorted addresses) of `name` as BIND answers it, read with dnspython (not the toolkit)."""
    import dns.message
    import dns.query
    import dns.rdatatype

    q = dns.message.make_query(f"{name}.{bind.zone}.", "A")
    resp = dns.query.tcp(q, bind.address, port=bind.port, timeout=5)
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.A:
            return rrset.ttl, sorted(r.address for r in rrset)
    return None
