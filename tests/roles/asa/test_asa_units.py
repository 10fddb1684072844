"""The ASA role's facts and operation against JSON fixtures (no device)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Case, check_fact, check_operation, params

from roles.asa import operations
from roles.asa.facts import NetworkObject, NetworkObjects

HERE = Path(__file__).parent


@pytest.mark.parametrize("case", params(HERE / "facts" / "NetworkObjects"))
def test_network_objects_fact(case: Case) -> None:
    check_fact(NetworkObjects, case)


@pytest.mark.parametrize("case", params(HERE / "facts" / "NetworkObject"))
def test_network_object_fact(case: Case) -> None:
    check_fact(NetworkObject, case)


@pytest.mark.parametrize("case", params(HERE / "operations" / "network_object"))
def test_network_object_op(case: Case) -> None:
    check_operation(operations.network_object, case)
