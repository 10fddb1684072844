"""Exchange operations: decisions (noop, the exact PowerShell to yield, input errors) from JSON cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import check_operation, params, run_operation, load_cases

from roles.exchange import operations as exchange

HERE = Path(__file__).parent / "operations"


@pytest.mark.parametrize("case", params(HERE / "client_access_array"))
def test_client_access_array(case):
    check_operation(exchange.client_access_array, case)


@pytest.mark.parametrize("case", params(HERE / "rpc_client_access_server"))
def test_rpc_client_access_server(case):
    check_operation(exchange.rpc_client_access_server, case)


@pytest.mark.parametrize("case", params(HERE / "static_rpc_ports"))
def test_static_rpc_ports(case):
    check_operation(exchange.static_rpc_ports, case)


def test_restart_only_with_its_port():
    """A service is restarted in the same script as its own port change, never on its own."""
    for case in load_cases(HERE / "static_rpc_ports"):
        if "commands" not in case.data:
            continue
        commands, _ = run_operation(exchange.static_rpc_ports, case)
        text = "\n".join(commands)
        assert ("Restart-Service -Name MSExchangeRPC" in text) == ("MSExchangeRPC\\ParametersSystem" in text)
        assert ("Restart-Service -Name MSExchangeAB" in text) == ("MSExchangeAB\\Parameters" in text)
