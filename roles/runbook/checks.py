"""Post-checks seen from the admin host, as a client sees the site: an SMTP session through the VIP (which
Exchange server answered), and the CAS array name as every nameserver of the zone answers it."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rdatatype


@dataclass(frozen=True)
class Check:
    """One post-check: what was checked, whether it held, and what was seen."""

    name: str
    ok: bool
    detail: str


def inventory_data(inventory: str) -> dict[str, dict[str, Any]]:
    """{host name: its data} from the inventory file, without connecting (site values included)."""
    from pyinfra.api import Config, State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    with ctx_state.use(State(check_for_changes=False)):
        inv = make_inventory(inventory, cwd=os.getcwd())
        with ctx_state.use(State(inventory=inv, config=Config())):
            return {h.name: dict(h.data.dict()) for h in inv}


def smtp_session(address: str, port: int = 25, helo: str = "admin.corp.example",
                 timeout: float = 5.0) -> list[str]:
    """A short SMTP session (greeting, EHLO, QUIT) to address:port; the transcript, `C:`/`S:` prefixed."""
    lines = [f"connect {address}:{port}"]
    with socket.create_connection((address, port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        reader = conn.makefile("rb")

        def reply() -> list[str]:
            got: list[str] = []
            while True:
                raw = reader.readline(1024)
                if not raw:
                    raise ConnectionError("connection closed before a full reply")
                text = raw.decode(errors="replace").rstrip("\r\n")
                got.append(text)
                if len(text) < 4 or text[3] != "-":
                    return got

        lines += [f"S: {t}" for t in reply()]
        for command in (f"EHLO {helo}", "QUIT"):
            lines.append(f"C: {command}")
            conn.sendall(command.encode() + b"\r\n")
            lines += [f"S: {t}" for t in reply()]
    return lines


def smtp_server_name(transcript: list[str]) -> str:
    """The server name in the 220 greeting ("220 EX13-1.corp.example Microsoft ESMTP …" -> EX13-1.corp.example)."""
    greeting = next((ln[3:] for ln in transcript if ln.startswith("S: 220")), "")
    words = greeting.split()
    return words[1] if len(words) > 1 else ""


def smtp_check(vip: str, exchange_names: list[str]) -> Check:
    """SMTP through the VIP reaches one of the Exchange servers."""
    try:
        transcript = smtp_session(vip)
    except OSError as e:
        return Check(f"SMTP via {vip}:25", False, f"no session: {e.strerror or e}")
    server = smtp_server_name(transcript)
    ok = server.split(".")[0].lower() in {n.split(".")[0].lower() for n in exchange_names}
    return Check(f"SMTP via {vip}:25", ok, f"answered by {server or 'no 220 greeting'}")


def resolve(fqdn: str, server: str, timeout: float = 3.0) -> list[str]:
    """The A addresses `server` answers for `fqdn` (UDP, no recursion), sorted."""
    query = dns.message.make_query(fqdn.rstrip(".") + ".", dns.rdatatype.A)
    response = dns.query.udp(query, server, timeout=timeout)
    return sorted(r.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for r in rrset)


def dns_checks(fqdn: str, want: str, nameservers: list[str]) -> list[Check]:
    """`fqdn` answers exactly `want` on each nameserver."""
    out = []
    for ns in nameservers:
        try:
            got = resolve(fqdn, ns)
        except (dns.exception.DNSException, OSError) as e:
            out.append(Check(f"{fqdn} on {ns}", False, f"no answer: {type(e).__name__}"))
            continue
        out.append(Check(f"{fqdn} on {ns}", got == [want], f"A {', '.join(got) or '(none)'}"))
    return out


def zone_nameservers(zone: str, primary: str, timeout: float = 3.0) -> list[str]:
    """Addresses of the zone's NS set, as the primary answers it (the primary itself when that fails)."""
    try:
        names = dns.query.udp(dns.message.make_query(zone + ".", dns.rdatatype.NS), primary, timeout=timeout)
        targets = sorted({r.target.to_text() for rrset in names.answer if rrset.rdtype == dns.rdatatype.NS
                          for r in rrset})
        addresses = sorted({a for t in targets for a in resolve(t, primary, timeout)})
    except (dns.exception.DNSException, OSError):
        return [primary]
    return addresses or [primary]
