"""Exchange facts: PowerShell commands and ConvertTo-Json parsing, from JSON fixture cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import check_fact, params

from roles.exchange import powershell as ps
from roles.exchange.facts import ClientAccessArrays, MailboxDatabases, RpcStaticPorts

HERE = Path(__file__).parent / "facts"


@pytest.mark.parametrize("case", params(HERE / "ClientAccessArrays"))
def test_client_access_arrays(case):
    check_fact(ClientAccessArrays, case)


@pytest.mark.parametrize("case", params(HERE / "MailboxDatabases"))
def test_mailbox_databases(case):
    check_fact(MailboxDatabases, case)


@pytest.mark.parametrize("case", params(HERE / "RpcStaticPorts"))
def test_rpc_static_ports(case):
    check_fact(RpcStaticPorts, case)


@pytest.mark.parametrize("fact", [ClientAccessArrays, MailboxDatabases, RpcStaticPorts])
def test_fact_scripts_end_in_json(fact):
    assert fact.command.endswith("| ConvertTo-Json -Compress")


def test_port_registry_locations():
    assert "MSExchangeRPC\\ParametersSystem" in ps.GET_RPC_STATIC_PORTS
    assert "'TCP/IP Port'" in ps.GET_RPC_STATIC_PORTS
    assert "MSExchangeAB\\Parameters" in ps.GET_RPC_STATIC_PORTS
