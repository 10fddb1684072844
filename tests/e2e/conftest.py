"""The end-to-end tests change the shared lab (DNS, ASA, Exchange), so they run after every other test of the
run, and put the lab's seed state back at the end (tests/e2e/test_exchange_ha_lab.py)."""

from __future__ import annotations

import pytest

HERE = "tests/e2e/"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Move this folder's lab tests to the end of the run, keeping their own order."""
    lab_tests = [i for i in items if HERE in i.nodeid and i.get_closest_marker("lab")]
    if lab_tests:
        items[:] = [i for i in items if i not in lab_tests] + lab_tests
