"""The DNS role's facts, operations and update builder against JSON fixtures and dnspython (no server)."""

from __future__ import annotations

from pathlib import Path

import dns.rcode
import pytest
from harness import Case, check_fact, check_operation, params

from roles.dns import operations
from roles.dns.facts import ARecord, ServedARecord, ZoneNameservers
from roles.dns.records import build_update

HERE = Path(__file__).parent


@pytest.mark.parametrize("case", params(HERE / "facts" / "ARecord"))
def test_a_record_fact(case: Case) -> None:
    check_fact(ARecord, case)


@pytest.mark.parametrize("case", params(HERE / "facts" / "ZoneNameservers"))
def test_zone_nameservers_fact(case: Case) -> None:
    check_fact(ZoneNameservers, case)


@pytest.mark.parametrize("case", params(HERE / "facts" / "ServedARecord"))
def test_served_a_record_fact(case: Case) -> None:
    check_fact(ServedARecord, case)


@pytest.mark.parametrize("case", params(HERE / "operations" / "a_record"))
def test_a_record_op(case: Case) -> None:
    check_operation(operations.a_record, case)


@pytest.mark.parametrize("case", params(HERE / "operations" / "lower_ttl"))
def test_lower_ttl_op(case: Case) -> None:
    check_operation(operations.lower_ttl, case)


def test_update_guards_on_the_values_read() -> None:
    """The update carries a value-dependent prerequisite (TTL 0, class IN) and then replaces the rrset."""
    text = build_update("corp.example", "outlook.corp.example", ["10.0.0.23"], ["10.0.0.28"], 3600).to_text()
    prereq = text.split(";PREREQ")[1].split(";UPDATE")[0].split()
    update = text.split(";UPDATE")[1].split(";ADDITIONAL")[0].split()
    assert prereq == ["outlook.corp.example.", "0", "IN", "A", "10.0.0.23"]
    assert update == ["outlook.corp.example.", "ANY", "A", "outlook.corp.example.", "3600", "IN", "A",
                      "10.0.0.28"]


def test_update_for_a_new_record_requires_absence() -> None:
    text = build_update("corp.example", "mail.corp.example", None, ["10.0.0.28"], 300).to_text()
    assert text.split(";PREREQ")[1].split(";UPDATE")[0].split() == ["mail.corp.example.", "NONE", "A"]
    assert "opcode UPDATE" in text and f"rcode {dns.rcode.to_text(dns.rcode.NOERROR)}" in text
