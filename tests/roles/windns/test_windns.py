"""Windows DNS provider: the WindowsARecord fact and the a_record operation, from JSON fixture cases."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from harness import check_fact, check_operation, params

from roles.dns import windows

HERE = Path(__file__).parent


@pytest.mark.parametrize("case", params(HERE / "facts" / "WindowsARecord"))
def test_windows_a_record_fact(case):
    check_fact(windows.WindowsARecord, case)


@pytest.mark.parametrize("case", params(HERE / "operations" / "a_record"))
def test_a_record(case):
    check_operation(windows.a_record, case)


def test_signature_matches_rfc2136_provider():
    """A deploy can swap providers: same leading parameters and defaults as dns.a_record."""
    from roles.dns import operations as rfc2136

    mine = inspect.signature(windows.a_record._inner).parameters
    theirs = inspect.signature(rfc2136.a_record._inner).parameters
    assert list(mine) == list(theirs)[:len(mine)] == ["zone", "record", "addresses", "ttl"]
    assert all(mine[p].default == theirs[p].default for p in mine)
