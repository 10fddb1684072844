"""The WinRM simulator driven by pywinrm's `Session.run_ps` / `run_cmd`, unchanged, over HTTP and
HTTPS on loopback; the DnsServer cmdlets against a real BIND."""

from __future__ import annotations

import json
from typing import Any

import dns.message
import dns.query
import dns.rdatatype
import pytest
import winrm
from winrm.exceptions import InvalidCredentialsError

from lab.winrm_sim.shell import CMD_NOT_FOUND
from tests.sim.conftest import Bind, WinRMHandle

RPC = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeRPC\ParametersSystem"
AB = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeAB\Parameters"


def ps(session: Any, script: str) -> Any:
    r = session.run_ps(script)
    assert r.status_code == 0, r.std_err.decode()
    return json.loads(r.std_out.decode()) if r.std_out.strip() else None


def test_client_access_array_get_and_set(exchange: WinRMHandle) -> None:
    s = exchange.session()
    before = ps(s, "Get-ClientAccessArray | ConvertTo-Json")
    assert (before["Name"], before["Fqdn"], before["Members"]) == (
        "outlook",
        "outlook.corp.example",
        ["EX13-1", "EX13-2"],
    )
    ps(s, "Set-ClientAccessArray -Identity outlook -Fqdn casarray.corp.example")
    after = ps(
        s, "Get-ClientAccessArray -Identity outlook | Select-Object Name,Fqdn | ConvertTo-Json -Compress"
    )
    assert after == {"Name": "outlook", "Fqdn": "casarray.corp.example"}


def test_mailbox_database_rpc_client_access_server(exchange: WinRMHandle) -> None:
    s = exchange.session()
    dbs = ps(s, "Get-MailboxDatabase | Select-Object Name,Server,RpcClientAccessServer | ConvertTo-Json")
    assert dbs == [
        {"Name": "DB01", "Server": "EX13-1", "RpcClientAccessServer": "EX13-1.corp.example"},
        {"Name": "DB02", "Server": "EX13-2", "RpcClientAccessServer": "EX13-2.corp.example"},
    ]
    ps(s, "Get-MailboxDatabase | Set-MailboxDatabase -RpcClientAccessServer outlook.corp.example")
    again = s.run_ps("Set-MailboxDatabase -Identity DB01 -RpcClientAccessServer outlook.corp.example")
    assert again.status_code == 0
    assert b"no settings of 'DB01' have been modified" in again.std_err  # Exchange's no-change warning
    values = ps(s, "Get-MailboxDatabase -Identity DB02 | ConvertTo-Json")
    assert values["RpcClientAccessServer"] == "outlook.corp.example"
    org = json.loads((exchange.state / "org.json").read_text())
    assert {d["RpcClientAccessServer"] for d in org["mailbox_databases"]} == {"outlook.corp.example"}


@pytest.mark.parametrize(
    ("key", "name", "value", "kind", "expected"),
    [
        pytest.param(RPC, "TCP/IP Port", "60000", "DWord", 60000, id="rpc-dword"),
        pytest.param(AB, "RpcTcpPort", "60001", "String", "60001", id="ab-string"),
    ],
)
def test_static_rpc_port_registry_values(
    exchange: WinRMHandle, key: str, name: str, value: str, kind: str, expected: object
) -> None:
    s = exchange.session()
    missing = s.run_ps(f"Get-ItemProperty -Path '{key}' -Name '{name}'")
    assert missing.status_code == 1 and f"Property {name} does not exist at path".encode() in missing.std_err
    ps(s, f"Set-ItemProperty -Path '{key}' -Name '{name}' -Value {value} -Type {kind}")
    got = ps(s, f"Get-ItemProperty -Path '{key}' -Name '{name}' | ConvertTo-Json")
    assert got[name] == expected
    assert got["PSChildName"] == key.rsplit("\\", 1)[1]


def test_services_and_restart(exchange: WinRMHandle) -> None:
    s = exchange.session()
    ps(s, f"Set-ItemProperty -Path '{RPC}' -Name 'TCP/IP Port' -Value 60000 -Type DWord")
    svc = ps(s, "Get-Service -Name MSExchangeRPC | ConvertTo-Json")
    assert (svc["Name"], svc["Status"], svc["DisplayName"]) == (
        "MSExchangeRPC",
        4,
        "Microsoft Exchange RPC Client Access",
    )
    ps(s, "Restart-Service -Name MSExchangeRPC,MSExchangeAB -Force")
    host = json.loads((exchange.state / "host.json").read_text())
    assert host["services"]["MSExchangeRPC"]["Restarts"] == 1
    assert host["services"]["MSExchangeRPC"]["Effective"] == {"TCP/IP Port": 60000}
    table = s.run_ps("Get-Service MSExchangeAB")
    assert table.std_out.decode().split()[:6] == [
        "Status",
        "Name",
        "DisplayName",
        "------",
        "----",
        "-----------",
    ]


def test_unknown_cmdlet_is_not_recognized(exchange: WinRMHandle) -> None:
    r = exchange.session().run_ps("Get-ExchangeServer | ConvertTo-Json")
    assert r.status_code == 1
    err = r.std_err.decode()
    assert err.startswith(
        "Get-ExchangeServer : The term 'Get-ExchangeServer' is not recognized as the name of a "
        "cmdlet, function, script file, or operable program."
    )
    assert "CommandNotFoundException" in err
    raw = exchange.session().run_cmd("powershell -encodedcommand " + _b64("Get-Nothing"))
    assert raw.std_err.startswith(b'#< CLIXML\r\n<Objs Version="1.1.0.1"')


def _b64(script: str) -> str:
    import base64

    return base64.b64encode(script.encode("utf_16_le")).decode()


def test_run_cmd(exchange: WinRMHandle) -> None:
    s = exchange.session()
    assert s.run_cmd("hostname").std_out == b"EX13-1\r\n"
    r = s.run_cmd("ipconfig", ["/all"])
    assert (r.status_code, r.std_err) == (
        9009,
        CMD_NOT_FOUND.format(name="ipconfig").encode(),
    )
    assert r.std_err.startswith(b"'ipconfig' is not recognized as an internal or external command,\r\n")


def test_wrong_password_is_401(exchange: WinRMHandle) -> None:
    with pytest.raises(InvalidCredentialsError):
        exchange.session(password="wrong").run_ps("Get-Service")
    entries = [json.loads(x) for x in (exchange.state / "commands.jsonl").read_text().splitlines()]
    assert {"event": "auth", "ok": False, "user": "Administrator"}.items() <= entries[-1].items()
    assert exchange.password not in (exchange.state / "commands.jsonl").read_text()


def test_https_with_the_lab_ca(exchange: WinRMHandle) -> None:
    got = ps(exchange.session(https=True), "Get-ClientAccessArray | Select-Object Fqdn | ConvertTo-Json")
    assert got == {"Fqdn": "outlook.corp.example"}
    untrusted = winrm.Session(
        f"https://{exchange.host}:{exchange.https_port}/wsman",
        auth=(exchange.username, exchange.password),
        transport="basic",
        server_cert_validation="validate",
        ca_trust_path=None,
    )
    import requests

    with pytest.raises(requests.exceptions.SSLError):
        untrusted.run_ps("Get-Service")


def test_every_command_is_logged(exchange: WinRMHandle) -> None:
    exchange.session().run_ps("Get-Service -Name WinRM | ConvertTo-Json -Compress")
    entries = [json.loads(x) for x in (exchange.state / "commands.jsonl").read_text().splitlines()]
    cmds = [e for e in entries if e["event"] == "command"]
    assert cmds[-1]["script"] == "Get-Service -Name WinRM | ConvertTo-Json -Compress"
    assert cmds[-1]["exit_code"] == 0


# -- DNS -------------------------------------------------------------------------------------------
def _resolve(bind: Bind, name: str) -> list[str]:
    q = dns.message.make_query(f"{name}.{bind.zone}", "A")
    r = dns.query.udp(q, bind.address, port=bind.port, timeout=3)
    return sorted(rd.address for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset)


def test_dns_get_record(dc1: WinRMHandle, bind: Bind) -> None:
    rec = ps(
        dc1.session(),
        "Get-DnsServerResourceRecord -ZoneName corp.example -Name outlook -RRType A | ConvertTo-Json",
    )
    assert (rec["HostName"], rec["RecordType"], rec["RecordData"]["IPv4Address"]) == (
        "outlook",
        "A",
        "10.0.0.23",
    )
    assert rec["TimeToLive"]["TotalSeconds"] == 3600
    deep = ps(
        dc1.session(),
        "Get-DnsServerResourceRecord -ZoneName corp.example -Name outlook -RRType A "
        "| ConvertTo-Json -Depth 4",
    )
    assert deep["RecordData"]["IPv4Address"]["IPAddressToString"] == "10.0.0.23"
    every = ps(dc1.session(), "Get-DnsServerResourceRecord -ZoneName corp.example | ConvertTo-Json")
    assert {(r["HostName"], r["RecordType"]) for r in every} >= {("@", "SOA"), ("@", "NS"), ("dc1", "A")}


def test_dns_set_record_moves_resolution(dc1: WinRMHandle, bind: Bind) -> None:
    assert _resolve(bind, "outlook") == ["10.0.0.23"]
    ps(
        dc1.session(),
        "$old = Get-DnsServerResourceRecord -ZoneName corp.example -Name outlook -RRType A\n"
        "$new = $old.Clone()\n"
        "$new.RecordData.IPv4Address = [ipaddress]'10.0.0.28'\n"
        "$new.TimeToLive = [timespan]'00:05:00'\n"
        "Set-DnsServerResourceRecord -ZoneName corp.example -OldInputObject $old -NewInputObject $new",
    )
    assert _resolve(bind, "outlook") == ["10.0.0.28"]
    rec = ps(
        dc1.session(),
        "Get-DnsServerResourceRecord -ZoneName corp.example -Name outlook -RRType A | ConvertTo-Json",
    )
    assert rec["TimeToLive"]["TotalSeconds"] == 300


def test_dns_add_and_remove_record(dc1: WinRMHandle, bind: Bind) -> None:
    s = dc1.session()
    ps(
        s,
        "Add-DnsServerResourceRecordA -ZoneName corp.example -Name autodiscover -IPv4Address 10.0.0.28 "
        "-TimeToLive 01:00:00",
    )
    assert _resolve(bind, "autodiscover") == ["10.0.0.28"]
    dup = s.run_ps(
        "Add-DnsServerResourceRecordA -ZoneName corp.example -Name autodiscover -IPv4Address 10.0.0.28"
    )
    assert dup.status_code == 1 and b"Failed to create resource record autodiscover" in dup.std_err
    assert b"WIN32 9711" in dup.std_err
    unforced = s.run_ps("Remove-DnsServerResourceRecord -ZoneName corp.example -Name autodiscover -RRType A")
    assert b"NonInteractive mode" in unforced.std_err and _resolve(bind, "autodiscover") == ["10.0.0.28"]
    ps(s, "Remove-DnsServerResourceRecord -ZoneName corp.example -Name autodiscover -RRType A -Force")
    assert _resolve(bind, "autodiscover") == []
    gone = s.run_ps("Get-DnsServerResourceRecord -ZoneName corp.example -Name autodiscover -RRType A")
    assert gone.status_code == 1 and b"Failed to get autodiscover record in corp.example zone" in gone.std_err


def test_dns_cmdlets_only_on_the_dns_role(exchange: WinRMHandle) -> None:
    r = exchange.session().run_ps("Get-DnsServerResourceRecord -ZoneName corp.example")
    assert r.status_code == 1 and b"is not recognized as the name of a cmdlet" in r.std_err
