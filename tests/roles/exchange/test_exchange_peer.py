"""deploys/exchange.py through the pyinfra CLI against two simulated Exchange servers (the lab's WinRM
simulator over HTTPS on loopback): dry run, apply, idempotence, restarts only on port change, 401."""

from __future__ import annotations

import json
from pathlib import Path

from harness import ROOT, run_pyinfra, write_inventory
from winrm_peers import WinRMPeer

DEPLOY = ROOT / "deploys" / "exchange.py"
#: the site values deploys/exchange.py reads (the lab's site description gives the same names)
SITE = {"cas_array_name": "outlook", "cas_array_fqdn": "outlook.corp.example",
        "exchange_rpc_port": 60000, "exchange_ab_port": 60001}
RPC = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeRPC\ParametersSystem"
AB = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeAB\Parameters"


def inventory(tmp_path: Path, hosts: list[WinRMPeer], **over: object) -> Path:
    entries = [(f"@exha-winrm/{h.name}", {**SITE, **h.host_data(**over)}) for h in hosts]
    return write_inventory(tmp_path / "inv", {"exchange": entries})


def read_databases(host: WinRMPeer) -> dict[str, str]:
    dbs = host.ps("Get-MailboxDatabase | Select-Object Name,RpcClientAccessServer | ConvertTo-Json -Compress")
    return {d["Name"]: d["RpcClientAccessServer"] for d in (dbs if isinstance(dbs, list) else [dbs])}


def read_ports(host: WinRMPeer) -> tuple[object, object]:
    rpc = host.ps(f"Get-ItemProperty -Path '{RPC}' | Select-Object 'TCP/IP Port' | ConvertTo-Json -Compress")
    ab = host.ps(f"Get-ItemProperty -Path '{AB}' | Select-Object RpcTcpPort | ConvertTo-Json -Compress")
    return rpc["TCP/IP Port"], ab["RpcTcpPort"]


def restarts(host: WinRMPeer, service: str) -> int:
    return sum(line == f"Restart-Service -Name {service}" for line in host.write_lines())


def test_dry_apply_idempotent(tmp_path: Path, exchange_hosts: list[WinRMPeer]) -> None:
    ex1, ex2 = exchange_hosts
    inv = inventory(tmp_path, exchange_hosts)
    before = [h.snapshot() for h in exchange_hosts]

    dry = run_pyinfra(tmp_path, inv, DEPLOY, "--dry", "--diff")
    assert dry.rc == 0, dry.output
    # exactly the pending changes: each server's database, each server's ports; the array is already right
    for expected in ("- DB01: EX13-1.corp.example", "+ DB01: outlook.corp.example",
                     "- DB02: EX13-2.corp.example", "+ DB02: outlook.corp.example",
                     "- MSExchangeRPC TCP/IP Port: (dynamic)",
                     "+ MSExchangeRPC TCP/IP Port: 60000 (restarts MSExchangeRPC)",
                     "- MSExchangeAB RpcTcpPort: (dynamic)",
                     "+ MSExchangeAB RpcTcpPort: 60001 (restarts MSExchangeAB)"):
        assert dry.output.count(expected) == (2 if "Port" in expected else 1), (expected, dry.output)
    assert "Will change CAS array" not in dry.output
    assert [h.snapshot() for h in exchange_hosts] == before
    assert ex1.write_lines() == ex2.write_lines() == []
    assert ex1.password not in dry.output and ex2.password not in dry.output

    first = run_pyinfra(tmp_path, inv, DEPLOY, "-y")
    assert first.rc == 0, first.output
    # independent read with plain pywinrm
    assert read_databases(ex1) == {"DB01": "outlook.corp.example", "DB02": "outlook.corp.example"}
    assert read_ports(ex1) == read_ports(ex2) == (60000, "60001")
    for h in exchange_hosts:
        assert restarts(h, "MSExchangeRPC") == restarts(h, "MSExchangeAB") == 1
    writes_after_first = [h.write_lines() for h in exchange_hosts]
    # each server changed only its own database
    assert [ln for ln in writes_after_first[0] if ln.startswith("Set-MailboxDatabase")] == [
        "Set-MailboxDatabase -Identity 'DB01' -RpcClientAccessServer 'outlook.corp.example'"]
    assert [ln for ln in writes_after_first[1] if ln.startswith("Set-MailboxDatabase")] == [
        "Set-MailboxDatabase -Identity 'DB02' -RpcClientAccessServer 'outlook.corp.example'"]

    second = run_pyinfra(tmp_path, inv, DEPLOY, "-y", "--json")
    assert second.rc == 0, second.output
    assert [h.write_lines() for h in exchange_hosts] == writes_after_first   # zero changes on the servers
    results = json.loads(second.stdout)["results"]
    assert results["totals"]["success"] == 0 and results["totals"]["error"] == 0, results
    assert results["totals"]["no_change"] == 5, results   # 1 array op + 2 x (databases, ports)
    print(f"\nexchange no-op apply (2 hosts, 3 ops): {second.seconds:.2f} s")

    dry_again = run_pyinfra(tmp_path, inv, DEPLOY, "--dry", "--diff")
    assert dry_again.rc == 0 and "Will change" not in dry_again.output, dry_again.output


def test_restart_only_the_service_whose_port_changed(tmp_path: Path, exchange_hosts: list[WinRMPeer]) -> None:
    ex1, ex2 = exchange_hosts
    inv = inventory(tmp_path, exchange_hosts)
    assert run_pyinfra(tmp_path, inv, DEPLOY, "-y").rc == 0
    # drift on ex13-2's Address Book port only
    ex2.ps(f"New-ItemProperty -Path '{AB}' -Name RpcTcpPort -PropertyType String -Value '60005' -Force"
           " | Out-Null")
    assert read_ports(ex2) == (60000, "60005")

    run = run_pyinfra(tmp_path, inv, DEPLOY, "-y")
    assert run.rc == 0, run.output
    assert read_ports(ex2) == (60000, "60001")
    assert (restarts(ex2, "MSExchangeAB"), restarts(ex2, "MSExchangeRPC")) == (2, 1)
    assert (restarts(ex1, "MSExchangeAB"), restarts(ex1, "MSExchangeRPC")) == (1, 1)


def test_wrong_password_is_one_line_and_changes_nothing(tmp_path: Path,
                                                        exchange_hosts: list[WinRMPeer]) -> None:
    ex1 = exchange_hosts[0]
    inv = inventory(tmp_path, [ex1], winrm_password="not-the-password")
    before = ex1.snapshot()
    run = run_pyinfra(tmp_path, inv, DEPLOY, "-y")
    assert run.rc != 0
    expected = (f"@exha-winrm/ex13-1: authentication failed: https://{ex1.address}:{ex1.port}/wsman "
                "refused user 'Administrator' (HTTP 401); check winrm_username / winrm_password")
    lines = [ln for ln in run.output.splitlines() if "authentication failed" in ln]
    assert len(lines) == 1 and lines[0].strip().endswith(expected), run.output
    assert "Traceback" not in run.output and "not-the-password" not in run.output
    assert ex1.snapshot() == before and ex1.scripts() == []


def test_rejected_command_is_one_line(tmp_path: Path, exchange_hosts: list[WinRMPeer]) -> None:
    """A script the server rejects reports PowerShell's own message on one line and stops there."""
    ex1 = exchange_hosts[0]
    bad = tmp_path / "bad_fqdn.py"
    bad.write_text("from pyinfra.operations import server\nfrom roles.exchange import powershell as ps\n"
                   "server.shell(name='raw', commands=[ps.script("
                   "ps.set_rpc_client_access_server('DB01', 'not_a valid fqdn'),"
                   " 'Restart-Service -Name MSExchangeRPC')])\n")
    run = run_pyinfra(tmp_path, inventory(tmp_path, [ex1]), bad, "-y")
    assert run.rc != 0
    lines = [ln for ln in run.output.splitlines() if "rejected by device" in ln]
    assert len(lines) == 1, run.output
    assert lines[0].strip().endswith(
        "Set-MailboxDatabase : Cannot process argument transformation on parameter 'RpcClientAccessServer'. "
        "\"not_a valid fqdn\" isn't a valid fully qualified domain name."), run.output
    assert "Traceback" not in run.output
    assert read_databases(ex1)["DB01"] == "EX13-1.corp.example"
    # the script stopped at the failing cmdlet: the restart after it never ran
    services = json.loads((ex1.state / "host.json").read_text())["services"]
    assert services["MSExchangeRPC"]["Restarts"] == 0


def test_bad_input_is_one_line_and_changes_nothing(tmp_path: Path, exchange_hosts: list[WinRMPeer]) -> None:
    ex1 = exchange_hosts[0]
    bad = tmp_path / "bad_port.py"
    bad.write_text("from roles.exchange import operations as exchange\n"
                   "exchange.static_rpc_ports(name='ports', rpc_port=135)\n")
    inv = inventory(tmp_path, [ex1])
    for mode in ("--dry", "-y"):
        run = run_pyinfra(tmp_path, inv, bad, mode)
        assert run.rc == 1, run.output
        lines = [ln for ln in run.output.splitlines() if "rpc_port:" in ln]
        assert len(lines) == 1 and lines[0].endswith("rpc_port: 135 is not a port in 1024-65535"), run.output
        assert "Traceback" not in run.output
    assert ex1.write_lines() == [] and read_ports(ex1) == (None, None)


def test_site_values_drive_the_deploy(tmp_path: Path, exchange_hosts: list[WinRMPeer]) -> None:
    """The deploy takes the CAS array and ports from the site data, not from built-in defaults."""
    ex1 = exchange_hosts[0]
    inv = inventory(tmp_path, [ex1], cas_array_fqdn="casarray.corp.example", exchange_rpc_port=59531,
                    exchange_ab_port=59532)
    run = run_pyinfra(tmp_path, inv, DEPLOY, "-y")
    assert run.rc == 0, run.output
    assert ex1.ps("Get-ClientAccessArray | Select-Object Fqdn | ConvertTo-Json -Compress") == {
        "Fqdn": "casarray.corp.example"}
    assert read_databases(ex1)["DB01"] == "casarray.corp.example"
    assert read_ports(ex1) == (59531, "59532")


def test_limit_to_second_server_still_checks_the_array(tmp_path: Path,
                                                       exchange_hosts: list[WinRMPeer]) -> None:
    ex2 = exchange_hosts[1]
    ex2.ps("Set-ClientAccessArray -Identity outlook -Fqdn 'old.corp.example'")
    dry = run_pyinfra(tmp_path, inventory(tmp_path, exchange_hosts), DEPLOY, "--dry", "--diff",
                      "--limit", "@exha-winrm/ex13-2")
    assert dry.rc == 0, dry.output
    assert "[@exha-winrm/ex13-2] Will change CAS array outlook" in dry.output, dry.output
    assert "- fqdn: old.corp.example" in dry.output and "+ fqdn: outlook.corp.example" in dry.output
    assert "@exha-winrm/ex13-1" not in dry.output
