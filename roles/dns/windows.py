"""Windows DNS provider: A records on a Windows DNS server over WinRM (DnsServer PowerShell module).

The fact `WindowsARecord` and the operation `a_record` mirror the RFC 2136 provider's
`dns.a_record(zone, record, addresses, ttl)`, so a deploy can pick either provider per site; this one
runs on an `@exha-winrm` host (the domain controller, dc1).

    pyinfra inventory/lab.py fact roles.dns.windows.WindowsARecord zone=corp.example record=outlook \
        --limit windows_dns
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Generator, Iterable
from typing import Any, TypedDict

from pyinfra import host
from pyinfra.api import operation

from roles.api import show_diff
from roles.errors import OperationInputError
from roles.winrm.facts import PowerShellFact
from roles.winrm.powershell import TO_JSON, as_list, quote

DEFAULT_TTL = 3600
MAX_TTL = 2147483647
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+):(\d+)(?:\.\d+)?$")
STRICT = "$ErrorActionPreference = 'Stop'"


class ARecordSet(TypedDict):
    """The A records of one name: sorted addresses and their TTL in seconds."""

    ttl: int
    addresses: list[str]


# -- input checks ------------------------------------------------------------------------------
def check_zone(zone: object) -> str:
    text = str(zone or "").strip().rstrip(".").lower()
    if not text or not all(_LABEL.match(p) for p in text.split(".")):
        raise OperationInputError(f"{zone!r} is not a DNS zone name", field="zone")
    return text


def check_record(record: object, zone: str) -> str:
    """The record's name relative to the zone ("@" for the apex). A name ending in "." is absolute and
    must lie inside the zone; a relative name may end in the zone's name."""
    raw = str(record or "").strip().lower()
    absolute, text = raw.endswith("."), raw.rstrip(".")
    if text in ("@", zone):
        return "@"
    inside = text.endswith("." + zone)
    text = text.removesuffix("." + zone)
    if (absolute and not inside) or not text or not all(_LABEL.match(p) for p in text.split(".")):
        raise OperationInputError(f"{record!r} is not a record name in zone {zone}", field="record")
    return text


def check_addresses(addresses: object) -> list[str]:
    items: Iterable[Any] = [addresses] if isinstance(addresses, str) else addresses  # type: ignore[assignment]
    try:
        out = {str(ipaddress.IPv4Address(str(a).strip())) for a in items}
    except (ipaddress.AddressValueError, TypeError) as e:
        raise OperationInputError(f"{addresses!r} is not a list of IPv4 addresses ({e})",
                                  field="addresses") from e
    return sorted(out, key=lambda a: ipaddress.IPv4Address(a))


def check_ttl(ttl: object) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
        raise OperationInputError(f"{ttl!r} is not a TTL in seconds (1-{MAX_TTL})", field="ttl")
    return ttl


# -- PowerShell --------------------------------------------------------------------------------
def get_script(zone: str, record: str) -> str:
    return (f"Get-DnsServerResourceRecord -ZoneName {quote(zone)} -Name {quote(record)} -RRType A"
            " -ErrorAction SilentlyContinue"
            " | Select-Object HostName,"
            "@{Name='Address';Expression={$_.RecordData.IPv4Address.IPAddressToString}},"
            "@{Name='Ttl';Expression={[int]$_.TimeToLive.TotalSeconds}}" + TO_JSON)


def _timespan(ttl: int) -> str:
    """A TTL as a PowerShell TimeSpan literal argument ([d.]hh:mm:ss)."""
    days, rest = divmod(ttl, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}.{hours:02}:{minutes:02}:{seconds:02}" if days else f"{hours:02}:{minutes:02}:{seconds:02}"


def add_lines(zone: str, record: str, addresses: list[str], ttl: int) -> list[str]:
    return [f"Add-DnsServerResourceRecordA -ZoneName {quote(zone)} -Name {quote(record)}"
            f" -IPv4Address {quote(a)} -TimeToLive {_timespan(ttl)}" for a in addresses]


def remove_lines(zone: str, record: str, addresses: list[str]) -> list[str]:
    return [f"Remove-DnsServerResourceRecord -ZoneName {quote(zone)} -Name {quote(record)} -RRType A"
            f" -RecordData {quote(a)} -Force" for a in addresses]


def _ttl_seconds(value: Any) -> int:
    """TimeToLive as seconds: an int, a "hh:mm:ss" string, or a serialised TimeSpan object."""
    if isinstance(value, dict):
        value = value.get("TotalSeconds")
    if isinstance(value, str) and ":" in value:
        match = _TIMESPAN.match(value.strip())
        if not match:
            raise ValueError(f"TimeToLive {value!r} is not a time span")
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return days * 86400 + hours * 3600 + minutes * 60 + seconds
    return int(float(value))


def _address(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("IPAddressToString") or value.get("IPv4Address")
    return str(ipaddress.IPv4Address(str(value)))


class WindowsARecord(PowerShellFact[ARecordSet | None]):
    """Returns the A records of `record` in `zone` on this Windows DNS server, or None if it has none.

    {"ttl": 3600, "addresses": ["10.0.0.23"]}
    """

    def command(self, zone: str, record: str) -> str:
        zone_ = check_zone(zone)
        return get_script(zone_, check_record(record, zone_))

    def parse(self, data: Any) -> ARecordSet | None:
        records = as_list(data)
        if not records:
            return None
        addresses = sorted({_address(r["Address"]) for r in records}, key=ipaddress.IPv4Address)
        return ARecordSet(ttl=min(_ttl_seconds(r["Ttl"]) for r in records), addresses=addresses)


@operation()
def a_record(zone: str, record: str, addresses: list[str] | str,
             ttl: int = DEFAULT_TTL) -> Generator[str, None, None]:
    """
    Ensure `record` in `zone` has exactly these A records on a Windows DNS server.

    + zone: the zone the server hosts, e.g. corp.example
    + record: the name relative to the zone ("outlook"; "@" for the apex)
    + addresses: the IPv4 addresses it must resolve to; an empty list removes its A records
    + ttl: seconds

    Missing addresses are added before stale ones are removed, so the name keeps resolving; a TTL
    change replaces the set.

    **Example:**

    .. code:: python

        windows.a_record(zone="corp.example", record="outlook", addresses=["10.0.0.28"], ttl=300)
    """
    zone = check_zone(zone)
    record = check_record(record, zone)
    wanted = check_addresses(addresses)
    ttl = check_ttl(ttl)
    current = host.get_fact(WindowsARecord, zone=zone, record=record)
    have = list(current["addresses"]) if current else []
    label = f"{record}.{zone}/A" if record != "@" else f"{zone}/A"
    if not wanted and not have:
        host.noop(f"{label} already absent")
        return
    if wanted and current and have == wanted and current["ttl"] == ttl:
        host.noop(f"{label} already {', '.join(wanted)} (ttl {ttl})")
        return
    if current and wanted and current["ttl"] != ttl:
        lines = remove_lines(zone, record, have) + add_lines(zone, record, wanted, ttl)
    else:
        lines = (add_lines(zone, record, [a for a in wanted if a not in have], ttl)
                 + remove_lines(zone, record, [a for a in have if a not in wanted]))
    show_diff(host, label,
              [f"{a} ttl {current['ttl']}" for a in have] if current else ["(absent)"],
              [f"{a} ttl {ttl}" for a in wanted] or ["(absent)"])
    yield "\n".join((STRICT, *lines))
