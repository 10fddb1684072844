"""The simulators as lab services on a scratch lab (own prefix and addresses): `lab up` starts them in
their hosts' namespaces, status checks the ports for real, credentials are stable across restarts,
netmiko and pywinrm reach them over the lab network, and `lab down` leaves nothing behind."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest
import winrm
from netmiko import ConnectHandler

from lab.asa_sim.component import AsaComponent
from lab.components import Loaded, bring_up, collect_status, leftovers, tear_down
from lab.context import Lab
from lab.dns import DnsComponent
from lab.network import NetworkComponent, lab_namespaces
from lab.topology import load_topology
from lab.winrm_sim.component import WinRMComponent
from tests.lab.conftest import scratch_toml

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, routes)"),
    pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning"),
]
PREFIX, NET = "exhs-", "10.86.0"  # a range no other scratch lab uses
STACK = Loaded((NetworkComponent(), DnsComponent(), AsaComponent(), WinRMComponent()), ())


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Lab]:
    path = tmp_path / "topology.toml"
    seed = f'asa_objects = {{ "EXCH-SMTP" = "{NET}.23", "EXCH-HTTPS" = "{NET}.23" }}\n'
    path.write_text(scratch_toml(prefix=PREFIX, net=NET) + seed)
    lab = Lab(load_topology(path), state_dir=tmp_path / "state", cache_dir=tmp_path / "cache")
    yield lab
    tear_down(lab, STACK)


def test_simulators_as_lab_services(scratch: Lab) -> None:
    lab = scratch
    bring_up(lab, STACK)
    statuses = [s for s in collect_status(lab, STACK) if s.service.startswith(("asa", "winrm"))]
    assert len(statuses) == 1 + 2 * 3 and all(s.state == "up" for s in statuses), statuses
    creds = lab.credentials()
    asa, dc1 = creds["asa1"], creds["winrm-dc1"]
    assert (
        asa["host"] == f"{NET}.1"
        and dc1["scheme"] == "https"
        and {"winrm-ex13-1", "winrm-ex13-2"} <= set(creds)
    )

    with ConnectHandler(
        device_type="cisco_asa",
        host=asa["host"],
        port=asa["port"],
        username=asa["username"],
        password=asa["password"],
        secret=asa["enable_secret"],
        fast_cli=True,
    ) as conn:
        objects = conn.send_command("show running-config object network")
        nat = conn.send_command("show running-config nat")
    assert objects.splitlines() == [
        "object network EXCH-SMTP",
        f" host {NET}.23",
        "object network EXCH-HTTPS",
        f" host {NET}.23",
    ]
    assert " nat (inside,outside) static 198.51.100.25" in nat.splitlines()

    s = winrm.Session(
        f"https://{dc1['host']}:{dc1['port']}/wsman",
        auth=(dc1["username"], dc1["password"]),
        transport="basic",
        server_cert_validation="validate",
        ca_trust_path=dc1["ca_file"],
    )
    r = s.run_ps(
        f"Add-DnsServerResourceRecordA -ZoneName corp.example -Name exha-sim-test -IPv4Address {NET}.28"
    )
    assert r.status_code == 0, r.std_err
    q = dns.message.make_query("exha-sim-test.corp.example", "A")
    answer = dns.query.udp(q, creds["dns"]["primary"], timeout=3)
    assert [rd.address for rrset in answer.answer for rd in rrset] == [f"{NET}.28"]

    ex = creds["winrm-ex13-2"]
    s2 = winrm.Session(
        f"http://{ex['host']}:{ex['http_port']}/wsman",
        auth=(ex["username"], ex["password"]),
        transport="basic",
    )
    arr = json.loads(s2.run_ps("Get-ClientAccessArray | ConvertTo-Json").std_out)
    assert arr["Members"] == ["EX13-1", "EX13-2"] and arr["Fqdn"] == "outlook.corp.example"

    # restart: the same credentials, state kept
    for c in (WinRMComponent(), AsaComponent()):
        c.stop(lab)
    for c in (AsaComponent(), WinRMComponent()):
        c.start(lab)
    assert lab.credentials()["asa1"] == asa and lab.credentials()["winrm-dc1"] == dc1
    assert all(s.state == "up" for s in collect_status(lab, STACK) if s.service.startswith(("asa", "winrm")))

    assert tear_down(lab, STACK) == []
    assert leftovers(lab) == [] and lab_namespaces(PREFIX) == []
    after = [s for s in collect_status(lab, STACK) if s.service.startswith(("asa", "winrm"))]
    assert after and all(s.state == "down" for s in after)
