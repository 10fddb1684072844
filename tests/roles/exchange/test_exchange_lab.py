"""deploys/exchange.py on the rehearsal lab through inventory/lab.py: the lab's Exchange stand-ins
(WinRM simulators in their namespaces, reached over the admin link). Dry run, apply, second apply with
no change; the seed state is put back afterwards so other lab tests see the lab as it came up.
Needs root and the lab (the session `lab` fixture brings it up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.context import Lab
from tests.e2e.e2e_snapshots import ps_json

pytestmark = [pytest.mark.lab]

REPO = Path(__file__).resolve().parents[3]
RPC = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeRPC\ParametersSystem"
JSON = " | ConvertTo-Json -Compress"
AB = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeAB\Parameters"


def _deploy(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(Path(sys.executable).with_name("pyinfra")), "inventory/lab.py", "deploys/exchange.py",
            "--limit", "exchange", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
                          env={**os.environ, "PYINFRA_PROGRESS": "off"})


def _state(creds: dict[str, Any]) -> tuple[Any, ...]:
    dbs = ps_json(creds, "Get-MailboxDatabase | Select-Object Name,RpcClientAccessServer" + JSON)
    rpc = ps_json(creds, f"Get-ItemProperty -Path '{RPC}' | Select-Object 'TCP/IP Port'" + JSON)
    ab = ps_json(creds, f"Get-ItemProperty -Path '{AB}' | Select-Object RpcTcpPort" + JSON)
    databases = sorted((d["Name"], d["RpcClientAccessServer"]) for d in dbs)
    return databases, rpc["TCP/IP Port"], ab["RpcTcpPort"]


def _restore(all_creds: dict[str, Any], seed: dict[str, tuple[Any, ...]]) -> None:
    """Put the seed's databases and (dynamic) ports back."""
    for host, (dbs, rpc, ab) in seed.items():
        creds = all_creds[f"winrm-{host}"]
        for name, server in dbs:
            ps_json(creds, f"Set-MailboxDatabase -Identity '{name}' -RpcClientAccessServer '{server}'")
        for key, value, current in ((RPC, "TCP/IP Port", rpc), (AB, "RpcTcpPort", ab)):
            if current is None:
                ps_json(creds, f"Remove-ItemProperty -Path '{key}' -Name '{value}' -ErrorAction SilentlyContinue"
                           "\nexit 0")


def test_exchange_deploy_on_lab(lab: Lab) -> None:
    creds = lab.credentials()
    hosts = ["ex13-1", "ex13-2"]
    seed = {h: _state(creds[f"winrm-{h}"]) for h in hosts}
    try:
        dry = _deploy("--dry", "--diff")
        assert dry.returncode == 0, dry.stderr
        assert {h: _state(creds[f"winrm-{h}"]) for h in hosts} == seed          # untouched

        first = _deploy("-y")
        assert first.returncode == 0, first.stderr
        for h in hosts:
            dbs, rpc, ab = _state(creds[f"winrm-{h}"])
            assert {server for _, server in dbs} == {"outlook.corp.example"}
            assert (rpc, ab) == (60000, "60001")

        second = _deploy("-y", "--json")
        assert second.returncode == 0, second.stderr
        totals = json.loads(second.stdout)["results"]["totals"]
        assert (totals["success"], totals["error"]) == (0, 0), totals
        print(f"\nexchange no-op apply on the lab: {totals}")
    finally:
        _restore(creds, seed)
    assert {h: _state(creds[f"winrm-{h}"]) for h in hosts} == seed
