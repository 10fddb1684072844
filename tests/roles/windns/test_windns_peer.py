"""The Windows DNS provider through the pyinfra CLI against the WinRM simulator's domain controller,
whose DnsServer cmdlets change a real BIND zone on loopback: dry run, apply, idempotence, bad zone, 401."""

from __future__ import annotations

import json
from pathlib import Path

from harness import run_pyinfra, write_inventory
from winrm_peers import Bind, WinRMPeer, a_rrset

DEPLOY = """from pyinfra import host
from roles.dns import windows

if "windows_dns" in host.groups:
    windows.a_record(name="CAS array to the VIP", zone={zone!r}, record="outlook",
                     addresses={addresses!r}{ttl})
"""


def deploy(tmp_path: Path, zone: str = "corp.example", addresses: tuple[str, ...] = ("10.0.0.28",),
           ttl: int | None = None) -> Path:
    path = tmp_path / "windns_deploy.py"
    path.write_text(DEPLOY.format(zone=zone, addresses=list(addresses), ttl=f", ttl={ttl}" if ttl else ""))
    return path


def inventory(tmp_path: Path, dc1: WinRMPeer, **over: object) -> Path:
    return write_inventory(tmp_path / "inv", {"windows_dns": [("@exha-winrm/dc1", dc1.host_data(**over))]})


def server_view(dc1: WinRMPeer) -> list[tuple[str, int]]:
    """outlook's A records as the Windows cmdlets report them (plain pywinrm, not the toolkit)."""
    recs = dc1.ps("Get-DnsServerResourceRecord -ZoneName corp.example -Name outlook -RRType A"
                  " | ConvertTo-Json -Compress")
    recs = recs if isinstance(recs, list) else [recs]
    return sorted((r["RecordData"]["IPv4Address"], r["TimeToLive"]["TotalSeconds"]) for r in recs)


def test_dry_apply_idempotent(tmp_path: Path, bind: Bind, dc1: WinRMPeer) -> None:
    inv, dep = inventory(tmp_path, dc1), deploy(tmp_path)
    assert a_rrset(bind, "outlook") == (3600, ["10.0.0.23"])

    dry = run_pyinfra(tmp_path, inv, dep, "--dry", "--diff")
    assert dry.rc == 0, dry.output
    assert "- outlook.corp.example A 10.0.0.23 (ttl 3600)" in dry.output
    assert "+ outlook.corp.example A 10.0.0.28 (ttl 3600)" in dry.output
    assert a_rrset(bind, "outlook") == (3600, ["10.0.0.23"])          # untouched
    assert dc1.write_lines() == []

    first = run_pyinfra(tmp_path, inv, dep, "-y")
    assert first.rc == 0, first.output
    assert a_rrset(bind, "outlook") == (3600, ["10.0.0.28"])          # what clients now resolve
    assert server_view(dc1) == [("10.0.0.28", 3600)]
    # one record replaced by another in one step: the name resolved throughout
    assert dc1.write_lines() == [
        "Set-DnsServerResourceRecord -ZoneName 'corp.example' -OldInputObject $old -NewInputObject $new"]

    second = run_pyinfra(tmp_path, inv, dep, "-y", "--json")
    assert second.rc == 0, second.output
    totals = json.loads(second.stdout)["results"]["totals"]
    assert (totals["success"], totals["no_change"], totals["error"]) == (0, 1, 0), totals
    assert len(dc1.write_lines()) == 1
    print(f"\nwindows dns no-op apply (1 host, 1 op): {second.seconds:.2f} s")


def test_ttl_and_second_address(tmp_path: Path, bind: Bind, dc1: WinRMPeer) -> None:
    inv = inventory(tmp_path, dc1)
    run = run_pyinfra(tmp_path, inv, deploy(tmp_path, addresses=("10.0.0.28", "10.0.0.29"), ttl=300), "-y")
    assert run.rc == 0, run.output
    assert a_rrset(bind, "outlook") == (300, ["10.0.0.28", "10.0.0.29"])
    again = run_pyinfra(tmp_path, inv, deploy(tmp_path, addresses=("10.0.0.28", "10.0.0.29"), ttl=300),
                        "--dry", "--diff")
    assert again.rc == 0 and "Will change" not in again.output, again.output


def test_zone_not_served_is_one_line(tmp_path: Path, bind: Bind, dc1: WinRMPeer) -> None:
    run = run_pyinfra(tmp_path, inventory(tmp_path, dc1), deploy(tmp_path, zone="other.example"), "-y")
    assert run.rc != 0
    lines = [ln for ln in run.output.splitlines() if "rejected by device" in ln]
    assert len(lines) == 1, run.output
    assert ("@exha-winrm/dc1: command \"Get-DnsServerResourceRecord -ZoneName 'other.example' -Name '@' "
            "-RRType SOA | Out-Null\" rejected by device") in lines[0]
    assert lines[0].strip().endswith("Get-DnsServerResourceRecord : Failed to get the zone information for "
                                     "other.example on server DC1."), run.output
    assert "Traceback" not in run.output
    assert dc1.write_lines() == [] and a_rrset(bind, "outlook") == (3600, ["10.0.0.23"])


def test_wrong_password_is_one_line(tmp_path: Path, bind: Bind, dc1: WinRMPeer) -> None:
    run = run_pyinfra(tmp_path, inventory(tmp_path, dc1, winrm_password="wrong"), deploy(tmp_path), "-y")
    assert run.rc != 0
    lines = [ln for ln in run.output.splitlines() if "authentication failed" in ln]
    assert len(lines) == 1 and "@exha-winrm/dc1: authentication failed:" in lines[0], run.output
    assert "refused user 'Administrator' (HTTP 401)" in lines[0]
    assert "Traceback" not in run.output
    assert dc1.scripts() == [] and a_rrset(bind, "outlook") == (3600, ["10.0.0.23"])
