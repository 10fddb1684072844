"""deploys/dns.py on the rehearsal lab through inventory/lab.py: BIND on dc1 (primary) and dns2 (secondary)
in their namespaces, reached over the admin link. Dry run, apply, second apply with no change; the CAS
array record is put back afterwards so other lab tests see the lab as it came up (a lab another run already
moved to the VIP is only checked for the no-op, and left as found).
Needs root and the lab (the session `lab` fixture brings it up)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update
import pytest

from lab.context import Lab

pytestmark = [pytest.mark.lab]

REPO = Path(__file__).resolve().parents[3]
LABEL = "DNS outlook.corp.example to the VIP"


def _deploy(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(Path(sys.executable).with_name("pyinfra")), "inventory/lab.py", "deploys/dns.py",
            "--limit", "dns", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
                          env={**os.environ, "PYINFRA_PROGRESS": "off"})


def _answer(server: str, fqdn: str) -> tuple[int, list[str]] | None:
    response = dns.query.tcp(dns.message.make_query(fqdn, "A"), server, timeout=3)
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.A:
            return rrset.ttl, sorted(r.address for r in rrset)
    return None


def _row(stderr: str, label: str) -> list[str]:
    for line in stderr.splitlines():
        if line.strip().startswith(label):
            return line.strip()[len(label):].split()
    raise AssertionError(f"no row {label!r} in:\n{stderr}")


def _restore(creds: dict[str, Any], fqdn: str, seed: tuple[int, list[str]]) -> None:
    key = dns.tsig.Key(creds["tsig_name"], creds["tsig_secret"], creds["tsig_algorithm"])
    update = dns.update.UpdateMessage(creds["zone"] + ".", keyring=key)
    update.replace(fqdn + ".", seed[0], "A", *seed[1])
    assert dns.query.tcp(update, creds["primary"], timeout=3).rcode() == dns.rcode.NOERROR


def test_repoint_cas_array_on_the_lab(lab: Lab) -> None:
    """From the seed: dry run, apply, no-op, then the seed is put back. If another run already moved the
    record to the VIP, only the no-op half is checked and the lab is left as found."""
    creds = lab.credentials()["dns"]
    fqdn = lab.topology.cas_array_fqdn
    servers = (creds["primary"], creds["secondary"])
    vip = "10.0.0.28"
    found = _answer(creds["primary"], fqdn)
    assert found is not None and found[1] in ([lab.topology.cas_array_address], [vip]), found
    if found[1] == [vip]:
        dry = _deploy("--dry")
        assert dry.returncode == 0 and _row(dry.stderr, LABEL) == ["-", "-"], dry.stderr
        again = _deploy("-y")
        assert again.returncode == 0, again.stderr
        assert _row(again.stderr, "Grand total") == ["1", "-", "-", "1"], again.stderr
        assert [_answer(s, fqdn) for s in servers] == [found] * 2
        return
    seed = found
    try:
        dry = _deploy("--dry", "--diff")
        assert dry.returncode == 0, dry.stderr
        assert f"- {fqdn} A {seed[1][0]} (ttl {seed[0]})" in dry.stderr
        assert f"+ {fqdn} A {vip} (ttl {seed[0]})" in dry.stderr
        assert _row(dry.stderr, LABEL) == ["1", "(@exha-dns/dc1)", "-"]
        assert [_answer(s, fqdn) for s in servers] == [seed, seed], "--dry changed the zone"

        first = _deploy("-y")
        assert first.returncode == 0, first.stderr
        assert _row(first.stderr, "Grand total") == ["1", "1", "-", "-"]
        assert [_answer(s, fqdn) for s in servers] == [(seed[0], [vip])] * 2

        second = _deploy("-y")
        assert second.returncode == 0, second.stderr
        assert _row(second.stderr, "Grand total") == ["1", "-", "-", "1"]
    finally:
        _restore(creds, fqdn, seed)
