"""A records as data: name and address validation, the RFC 2136 update that replaces an rrset only if it
still holds what was read, and readable names for the rcodes a server answers with. Pure; no sockets."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TypedDict

import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.update

from roles.errors import OperationInputError

#: TTL for a record the operation creates when no ttl is given
DEFAULT_TTL = 3600


class ARecordState(TypedDict):
    """An A rrset: its TTL and sorted addresses."""

    ttl: int
    addresses: list[str]


def zone_name(zone: str) -> str:
    """The zone as an absolute name without the trailing dot, validated."""
    text = str(zone or "").strip().rstrip(".").lower()
    try:
        if not text:
            raise dns.exception.SyntaxError("empty")
        dns.name.from_text(text)
    except dns.exception.DNSException as e:
        raise OperationInputError(f"{zone!r} is not a DNS zone name ({e})", field="zone") from e
    return text


def record_fqdn(zone: str, record: str) -> str:
    """`record` (relative like `outlook`, `@`, or absolute inside the zone) as an fqdn without the dot."""
    z = zone_name(zone)
    text = str(record or "").strip().lower()
    if text in ("", "@"):
        return z
    if text.endswith("."):
        absolute = text.rstrip(".")
        if absolute != z and not absolute.endswith("." + z):
            raise OperationInputError(f"{record!r} is not inside zone {z}", field="record")
        return absolute
    try:
        dns.name.from_text(text, origin=None)
    except dns.exception.DNSException as e:
        raise OperationInputError(f"{record!r} is not a DNS name ({e})", field="record") from e
    return f"{text}.{z}"


def addresses_of(addresses: str | Iterable[str]) -> list[str]:
    """Validated IPv4 addresses, sorted numerically and without duplicates."""
    items = [addresses] if isinstance(addresses, str) else list(addresses)
    if not items:
        raise OperationInputError("give at least one IPv4 address", field="addresses")
    parsed = set()
    for item in items:
        try:
            parsed.add(ipaddress.IPv4Address(str(item).strip()))
        except ValueError as e:
            raise OperationInputError(f"{item!r} is not an IPv4 address", field="addresses") from e
    return [str(a) for a in sorted(parsed)]


def ttl_of(ttl: int | None, current: ARecordState | None) -> int:
    """The TTL to set: the given one, else the record's current one, else DEFAULT_TTL."""
    if ttl is None:
        return current["ttl"] if current else DEFAULT_TTL
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 2147483647:
        raise OperationInputError(f"expected seconds 0-2147483647, got {ttl!r}", field="ttl")
    return ttl


def describe(fqdn: str, state: ARecordState | None) -> str:
    if state is None:
        return f"{fqdn} A absent"
    return f"{fqdn} A {', '.join(state['addresses'])} (ttl {state['ttl']})"


def build_update(zone: str, fqdn: str, expected: list[str] | None, addresses: list[str], ttl: int,
                 keyring: object = None, keyname: str | None = None,
                 keyalgorithm: str | None = None) -> dns.update.UpdateMessage:
    """The update that sets `fqdn`'s A rrset, guarded by a prerequisite that it still holds `expected`
    (value-dependent "rrset exists", RFC 2136 2.4.2) or, for None, that it has no A rrset (2.4.3)."""
    kwargs = {}
    if keyring is not None:
        kwargs = {"keyring": keyring, "keyname": keyname, "keyalgorithm": keyalgorithm}
    update = dns.update.UpdateMessage(zone + ".", **kwargs)  # type: ignore[arg-type]
    name = dns.name.from_text(fqdn + ".")
    if expected is None:
        update.absent(name, dns.rdatatype.A)
    else:
        update.present(name, *(_a(a) for a in expected))
    update.replace(name, ttl, *(_a(a) for a in addresses))
    return update


def _a(address: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, address)


#: what an update's rcode means for the operator
UPDATE_RCODES = {
    dns.rcode.NXRRSET: "prerequisite failed: the record changed since it was read (concurrent change?); "
                       "nothing was overwritten, re-run to re-read it",
    dns.rcode.YXRRSET: "prerequisite failed: the record appeared since it was read (concurrent change?); "
                       "nothing was overwritten, re-run to re-read it",
    dns.rcode.NXDOMAIN: "prerequisite failed: the name vanished since it was read; re-run",
    dns.rcode.NOTAUTH: "server is not authoritative for the zone (NOTAUTH): zone not served here",
    dns.rcode.NOTZONE: "the name is outside the zone (NOTZONE)",
    dns.rcode.REFUSED: "update refused (REFUSED): the zone is not served here or its update policy "
                       "does not allow this key",
    dns.rcode.SERVFAIL: "server failure (SERVFAIL) applying the update",
}
