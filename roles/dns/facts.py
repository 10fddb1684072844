"""Facts read from a zone's primary nameserver: one A rrset, and the zone's nameservers.

From the command line::

    pyinfra inventory/lab.py fact roles.dns.facts.ARecord zone=corp.example record=outlook --limit dns
    pyinfra inventory/lab.py fact roles.dns.facts.ZoneNameservers zone=corp.example --limit dns
"""

from __future__ import annotations

from typing import Any

from roles.api import ApiCall, JsonFact
from roles.dns.records import ARecordState


class ARecord(JsonFact["ARecordState | None"]):
    """Returns the A rrset of `record` in `zone` as the primary answers it (TCP, TSIG-signed), or None::

        {"ttl": 3600, "addresses": ["10.0.0.23"]}
    """

    @staticmethod
    def default() -> None:
        return None

    def command(self, zone: str, record: str) -> ApiCall:
        return ApiCall("dns.a_record", zone=zone, record=record)

    def parse(self, data: Any) -> ARecordState | None:
        if data is None:
            return None
        return {"ttl": int(data["ttl"]), "addresses": [str(a) for a in data["addresses"]]}


class ZoneNameservers(JsonFact[dict[str, list[str]]]):
    """Returns the zone's NS set with each nameserver's addresses, as the primary holds them::

        {"dc1.corp.example": ["10.0.0.10"], "dns2.corp.example": ["10.0.0.11"]}
    """

    @staticmethod
    def default() -> dict[str, list[str]]:
        return {}

    def command(self, zone: str) -> ApiCall:
        return ApiCall("dns.zone_nameservers", zone=zone)

    def parse(self, data: Any) -> dict[str, list[str]]:
        return {str(k): [str(a) for a in v] for k, v in dict(data or {}).items()}


class ServedARecord(JsonFact[dict[str, Any]]):
    """Returns what every nameserver in the zone's NS set answers for `record` (unsigned queries)::

        {"10.0.0.10": {"ttl": 3600, "addresses": ["10.0.0.28"]},
         "10.0.0.11": {"ttl": 3600, "addresses": ["10.0.0.23"]}}     # secondary not caught up yet

    A server that has no A rrset gives None; one that cannot be asked gives the error text.
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {}

    def command(self, zone: str, record: str) -> ApiCall:
        return ApiCall("dns.served_a", zone=zone, record=record)

    def parse(self, data: Any) -> dict[str, Any]:
        return dict(data or {})
