"""Full before/after snapshots of what the deploy changes, read straight from the lab's devices (not
through the toolkit): the DNS zone by AXFR, the ASA's running and startup config, Exchange's CAS settings."""

from __future__ import annotations

import json
from typing import Any

import dns.name
import dns.query
import dns.tsig
import dns.zone
import winrm
from netmiko import ConnectHandler

RPC = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeRPC\ParametersSystem"
AB = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeAB\Parameters"
JSON = " | ConvertTo-Json -Compress"


def zone(creds: dict[str, Any], server: str) -> list[str]:
    """The whole zone by AXFR (TSIG-signed) from `server`, one sorted line per record. The SOA serial is
    blanked: every dynamic update raises it, a rollback included, and nothing else may differ."""
    key = dns.tsig.Key(creds["tsig_name"], creds["tsig_secret"], creds.get("tsig_algorithm") or "hmac-sha256")
    z = dns.zone.from_xfr(dns.query.xfr(server, creds["zone"], keyring={key.name: key}, keyname=key.name,
                                        keyalgorithm=key.algorithm, timeout=5, lifetime=15))
    lines = []
    for line in z.to_text(relativize=True).splitlines():
        words = line.split()
        if len(words) > 4 and words[3] == "SOA":
            words[6] = "SERIAL"
        lines.append(" ".join(words))
    return sorted(lines)


def asa(creds: dict[str, Any]) -> dict[str, str]:
    """The ASA's full running and startup configuration."""
    s = ConnectHandler(device_type="cisco_asa", host=creds["host"], port=creds["port"],
                       username=creds["username"], password=creds["password"], secret=creds["enable_secret"])
    try:
        return {"running": s.send_command("show running-config"), "startup": s.send_command("show startup-config")}
    finally:
        s.disconnect()


def asa_set(creds: dict[str, Any], lines: list[str]) -> None:
    """Change the ASA by hand (a manual drift), running-config only."""
    s = ConnectHandler(device_type="cisco_asa", host=creds["host"], port=creds["port"],
                       username=creds["username"], password=creds["password"], secret=creds["enable_secret"])
    try:
        s.send_config_set(lines)
    finally:
        s.disconnect()


def ps_json(creds: dict[str, Any], script: str) -> Any:
    """Independent read: run `script` on a lab WinRM endpoint (TLS verified), parse its JSON output."""
    session = winrm.Session(f"https://{creds['host']}:{creds['port']}/wsman",
                            auth=(creds["username"], creds["password"]), transport="basic",
                            server_cert_validation="validate", ca_trust_path=creds["ca_file"], proxy=None)
    r = session.run_ps(script)
    assert r.status_code == 0, r.std_err.decode(errors="replace")
    text = r.std_out.decode().strip()
    return json.loads(text) if text else None


def exchange(all_creds: dict[str, Any], hosts: list[str]) -> dict[str, Any]:
    """CAS arrays, every mailbox database's RPC Client Access server and each server's static RPC ports."""
    first = all_creds[f"winrm-{hosts[0]}"]
    out: dict[str, Any] = {
        "arrays": ps_json(first, "Get-ClientAccessArray | Select-Object Name,Fqdn" + JSON),
        "databases": ps_json(first, "Get-MailboxDatabase | Select-Object Name,RpcClientAccessServer" + JSON)}
    for h in hosts:
        creds = all_creds[f"winrm-{h}"]
        out[h] = {"rpc": ps_json(creds, f"Get-ItemProperty -Path '{RPC}' | Select-Object 'TCP/IP Port'" + JSON),
                  "ab": ps_json(creds, f"Get-ItemProperty -Path '{AB}' | Select-Object RpcTcpPort" + JSON)}
    return out


def everything(all_creds: dict[str, Any]) -> dict[str, Any]:
    d = all_creds["dns"]
    return {"zone": zone(d, d["primary"]), "zone_secondary": zone(d, d["secondary"]),
            "asa": asa(all_creds["asa1"]), "exchange": exchange(all_creds, ["ex13-1", "ex13-2"])}


def seed_journal(lab: Any, path: Any) -> None:
    """A runbook journal whose prior values are the lab's seed (lab/topology.toml [seed], the lab's zone TTL,
    Exchange's seed: each database handing out its own server, dynamic RPC ports), so `exha runbook rollback`
    on it puts a lab that someone converged back to its seed state through the toolkit's own restore path."""
    from roles.runbook import journal

    topo = lab.topology
    dns_host = topo.by_role("dns-primary")[0].name
    journal.append(path, step="dns", host=f"@exha-dns/{dns_host}", kind="dns.a_record",
                   item=topo.cas_array_fqdn, target={"zone": topo.domain, "record": topo.cas_array_fqdn.split(".")[0]},
                   prior={"ttl": 3600, "addresses": [topo.cas_array_address]}, desired=None)
    asa_host = topo.by_role("asa")[0].name
    for obj, address in topo.asa_objects.items():
        journal.append(path, step="asa", host=f"@exha-asa/{asa_host}", kind="asa.network_object", item=obj,
                       target={"object_name": obj}, prior={"running": {"kind": "host", "value": address, "nat": []},
                                                           "startup": None}, desired=None)
    servers = [h for h in topo.by_role("exchange")]
    creds = lab.credentials()
    dbs = ps_json(creds[f"winrm-{servers[0].name}"], "Get-MailboxDatabase | Select-Object Name,Server" + JSON)
    for h in servers:
        for db in dbs if isinstance(dbs, list) else [dbs]:
            if str(db["Server"]).split(".")[0].lower() == h.fqdn.split(".")[0].lower():
                journal.append(path, step="exchange", host=f"@exha-winrm/{h.name}", kind="exchange.database",
                               item=db["Name"], target={"database": db["Name"]}, prior=h.fqdn, desired=None)
        journal.append(path, step="exchange", host=f"@exha-winrm/{h.name}", kind="exchange.rpc_ports",
                       item="rpc_ports", target={}, prior={"rpc_port": None, "ab_port": None}, desired=None)
