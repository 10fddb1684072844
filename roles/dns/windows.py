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
from typing import Any

from pyinfra import host
from pyinfra.api import operation

from roles.api import show_diff
from roles.dns.records import ARecordState, addresses_of, describe, record_fqdn, ttl_of, zone_name
from roles.winrm.facts import PowerShellFact
from roles.winrm.inputs import one_line_input_errors
from roles.winrm.powershell import TO_JSON, as_list, quote

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+):(\d+)(?:\.\d+)?$")
STRICT = "$ErrorActionPreference = 'Stop'"


def relative_name(zone: str, record: str) -> str:
    """The record's name relative to the (validated) zone, "@" for the apex (as the DnsServer cmdlets
    take it)."""
    fqdn = record_fqdn(zone, record)
    return "@" if fqdn == zone else fqdn.removesuffix("." + zone)


# -- PowerShell --------------------------------------------------------------------------------
def get_script(zone: str, record: str) -> str:
    """Read one name's A records. The zone's SOA is read first, so a zone the server does not host stops
    with its error; a name with no A records prints nothing (that not-found error is silenced, exit 0)."""
    return "\n".join((
        STRICT,
        f"Get-DnsServerResourceRecord -ZoneName {quote(zone)} -Name '@' -RRType SOA | Out-Null",
        f"Get-DnsServerResourceRecord -ZoneName {quote(zone)} -Name {quote(record)} -RRType A"
        " -ErrorAction SilentlyContinue | Select-Object HostName,RecordType,RecordData,TimeToLive" + TO_JSON,
        "exit 0",
    ))


def _timespan(ttl: int) -> str:
    """A TTL as a PowerShell TimeSpan literal argument ([d.]hh:mm:ss)."""
    days, rest = divmod(ttl, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}.{hours:02}:{minutes:02}:{seconds:02}" if days else f"{hours:02}:{minutes:02}:{seconds:02}"


def replace_lines(zone: str, record: str, address: str, ttl: int) -> list[str]:
    """Replace a name's single A record in one step (Set-DnsServerResourceRecord with a changed copy):
    the name never stops resolving, and a record that changed since it was read makes the script fail."""
    return [f"$old = Get-DnsServerResourceRecord -ZoneName {quote(zone)} -Name {quote(record)} -RRType A",
            "$new = $old.Clone()",
            f"$new.RecordData.IPv4Address = [ipaddress]{quote(address)}",
            f"$new.TimeToLive = [timespan]{quote(_timespan(ttl))}",
            f"Set-DnsServerResourceRecord -ZoneName {quote(zone)} -OldInputObject $old -NewInputObject $new"]


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


def _address(record_data: Any) -> str:
    """RecordData.IPv4Address: text once ConvertTo-Json reaches its depth, else an IPAddress object."""
    value = record_data.get("IPv4Address") if isinstance(record_data, dict) else record_data
    if isinstance(value, dict):
        value = value.get("IPAddressToString")
    return str(ipaddress.IPv4Address(str(value)))


class WindowsARecord(PowerShellFact["ARecordState | None"]):
    """Returns the A records of `record` in `zone` on this Windows DNS server, or None if it has none.

    {"ttl": 3600, "addresses": ["10.0.0.23"]}
    """

    def command(self, zone: str, record: str) -> str:
        with one_line_input_errors():
            zone_ = zone_name(zone)
            return get_script(zone_, relative_name(zone_, record))

    def parse(self, data: Any) -> ARecordState | None:
        records = as_list(data)
        if not records:
            return None
        addresses = sorted({_address(r["RecordData"]) for r in records}, key=ipaddress.IPv4Address)
        return ARecordState(ttl=min(_ttl_seconds(r["TimeToLive"]) for r in records), addresses=addresses)


@operation()
def a_record(zone: str, record: str, addresses: str | Iterable[str],
             ttl: int | None = None) -> Generator[str, None, None]:
    """
    Make `record` in `zone` hold exactly these A records on a Windows DNS server (same shape as the
    RFC 2136 provider's `dns.a_record`).

    + zone: the zone the server hosts, e.g. corp.example
    + record: name relative to the zone (`outlook`), `@`, or absolute inside it (`outlook.corp.example.`)
    + addresses: one IPv4 address or a list of them
    + ttl: TTL in seconds; default keeps the record's TTL (3600 for a new record)

    One address replacing one address (the usual repoint) is a single Set-DnsServerResourceRecord, so
    the name never stops resolving. Otherwise missing addresses are added before stale ones are removed;
    a TTL change on several addresses replaces them (remove, then add).

    **Example:**

    .. code:: python

        windows.a_record(name="CAS array to the VIP", zone="corp.example", record="outlook",
                         addresses=["10.0.0.28"])
    """
    with one_line_input_errors():
        z = zone_name(zone)
        fqdn = record_fqdn(z, record)
        label = relative_name(z, record)
        wanted = addresses_of(addresses)
    current: ARecordState | None = host.get_fact(WindowsARecord, zone=z, record=label)
    with one_line_input_errors():
        desired: ARecordState = {"ttl": ttl_of(ttl, current), "addresses": wanted}
    if current == desired:
        host.noop(f"{fqdn} A already {', '.join(wanted)} (ttl {desired['ttl']})")
        return
    have = current["addresses"] if current else []
    if len(have) == 1 and len(wanted) == 1:
        lines = replace_lines(z, label, wanted[0], desired["ttl"])
    elif current and current["ttl"] != desired["ttl"]:
        lines = remove_lines(z, label, have) + add_lines(z, label, wanted, desired["ttl"])
    else:
        lines = (add_lines(z, label, [a for a in wanted if a not in have], desired["ttl"])
                 + remove_lines(z, label, [a for a in have if a not in wanted]))
    show_diff(host, f"{fqdn} A", [describe(fqdn, current)], [describe(fqdn, desired)])
    yield "\n".join((STRICT, *lines))
