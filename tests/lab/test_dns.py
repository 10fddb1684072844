"""BIND 9 in the lab: the seed zone on both servers, a TSIG-signed update on dc1 reaching dns2 by
NOTIFY and transfer, and updates without the key refused. Queries go through the admin link."""

from __future__ import annotations

import secrets
import time
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from lab.context import Lab
from lab.dns import DnsComponent

TRANSFER_WAIT = 10.0


def _a(server: str, name: str) -> tuple[list[str], int | None]:
    """A records (and their TTL) for `name` as `server` answers authoritatively."""
    r = dns.query.udp(dns.message.make_query(name, dns.rdatatype.A), server, timeout=2)
    assert r.rcode() == dns.rcode.NOERROR or r.rcode() == dns.rcode.NXDOMAIN
    for rrset in r.answer:
        if rrset.rdtype == dns.rdatatype.A:
            return sorted(rd.address for rd in rrset), rrset.ttl
    return [], None


def _wait_for(server: str, name: str, expected: list[str]) -> list[str]:
    deadline = time.monotonic() + TRANSFER_WAIT
    got, _ = _a(server, name)
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        got, _ = _a(server, name)
    return got


def _keyring(creds: dict[str, Any], secret: str | None = None) -> dict[dns.name.Name, dns.tsig.Key]:
    return dns.tsigkeyring.from_text(
        {creds["tsig_name"]: (creds["tsig_algorithm"], secret or creds["tsig_secret"])}
    )


@pytest.fixture(scope="module")
def creds(lab: Lab) -> dict[str, Any]:
    return lab.credentials()["dns"]


def test_credentials_shape(creds: dict[str, Any], lab: Lab) -> None:
    t = lab.topology
    assert creds["zone"] == t.domain
    assert creds["primary"] == t.by_role("dns-primary")[0].address
    assert creds["secondary"] == t.by_role("dns-secondary")[0].address
    assert creds["tsig_algorithm"] == "hmac-sha256" and creds["tsig_name"] and len(creds["tsig_secret"]) >= 40


def test_seed_zone_on_both_servers(creds: dict[str, Any], lab: Lab) -> None:
    t = lab.topology
    for server in (creds["primary"], creds["secondary"]):
        assert _a(server, f"{t.cas_array_fqdn}.") == ([t.cas_array_address], 3600)
        for h in t.by_role("exchange") + t.by_role("dns-primary"):
            assert _a(server, f"{h.fqdn}.")[0] == [h.address], (server, h.name)
        ns = dns.query.udp(dns.message.make_query(f"{t.domain}.", dns.rdatatype.NS), server, timeout=2)
        names = sorted(str(rd.target).lower() for rd in ns.answer[0])
        assert names == [f"dc1.{t.domain}.", f"dns2.{t.domain}."]


def test_signed_update_reaches_secondary(creds: dict[str, Any]) -> None:
    zone = creds["zone"]
    label = f"t-{secrets.token_hex(4)}"
    fqdn = f"{label}.{zone}."
    up = dns.update.UpdateMessage(zone, keyring=_keyring(creds), keyalgorithm=creds["tsig_algorithm"])
    up.replace(label, 300, "A", "10.0.0.99")
    assert dns.query.tcp(up, creds["primary"], timeout=5).rcode() == dns.rcode.NOERROR
    try:
        assert _a(creds["primary"], fqdn) == (["10.0.0.99"], 300)
        assert _wait_for(creds["secondary"], fqdn, ["10.0.0.99"]) == ["10.0.0.99"]
    finally:
        rm = dns.update.UpdateMessage(zone, keyring=_keyring(creds), keyalgorithm=creds["tsig_algorithm"])
        rm.delete(label)
        assert dns.query.tcp(rm, creds["primary"], timeout=5).rcode() == dns.rcode.NOERROR
    assert _wait_for(creds["secondary"], fqdn, []) == []


def test_update_without_key_is_refused(creds: dict[str, Any]) -> None:
    up = dns.update.UpdateMessage(creds["zone"])
    up.replace("nokey", 300, "A", "10.0.0.98")
    assert dns.query.tcp(up, creds["primary"], timeout=5).rcode() == dns.rcode.REFUSED
    assert _a(creds["primary"], f"nokey.{creds['zone']}.")[0] == []


def test_update_with_wrong_secret_is_rejected(creds: dict[str, Any]) -> None:
    wrong = "A" * 43 + "="
    up = dns.update.UpdateMessage(
        creds["zone"], keyring=_keyring(creds, wrong), keyalgorithm=creds["tsig_algorithm"]
    )
    up.replace("badkey", 300, "A", "10.0.0.97")
    with pytest.raises(dns.tsig.PeerBadSignature):
        dns.query.tcp(up, creds["primary"], timeout=5)
    assert _a(creds["primary"], f"badkey.{creds['zone']}.")[0] == []


def test_start_again_keeps_credentials_and_status_is_real(creds: dict[str, Any], lab: Lab) -> None:
    comp = DnsComponent()
    comp.start(lab)
    assert lab.credentials()["dns"] == creds
    states = {s.host: s for s in comp.status(lab)}
    assert states["dc1"].state == "up" and states["dns2"].state == "up"
    assert states["dc1"].detail.split("serial ")[1] == states["dns2"].detail.split("serial ")[1].split()[0]
