"""Facts and operations of the balancer host role against JSON fixtures (no VM needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Case, check_fact, check_operation, params

from roles.balancer_host import facts, operations

HERE = Path(__file__).parent


@pytest.mark.parametrize("fact_name", ["FileText", "Addresses", "DefaultGateway", "Account"])
def test_facts(fact_name: str) -> None:
    from harness import load_cases

    for case in load_cases(HERE / "facts" / fact_name):
        check_fact(getattr(facts, fact_name), case)


@pytest.mark.parametrize("case", params(HERE / "operations" / "interface"))
def test_interface(case: Case) -> None:
    check_operation(operations.interface, case)


@pytest.mark.parametrize("case", params(HERE / "operations" / "vips"))
def test_vips(case: Case) -> None:
    check_operation(operations.vips, case)


@pytest.mark.parametrize("case", params(HERE / "operations" / "hostname"))
def test_hostname(case: Case) -> None:
    check_operation(operations.hostname, case)


@pytest.mark.parametrize("case", params(HERE / "operations" / "resolvers"))
def test_resolvers(case: Case) -> None:
    check_operation(operations.resolvers, case)
