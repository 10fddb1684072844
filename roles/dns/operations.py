"""Operations on DNS zones served by an RFC 2136 primary: set an A record, lower its TTL ahead of a change.

Updates are TSIG-signed and guarded: the update only applies if the record still holds what was read, so
a concurrent change makes it fail instead of being overwritten. A change counts as done only once every
nameserver in the zone's NS set answers it; a record the primary holds but a nameserver does not answer
yet is not converged either (the operation then waits for it without updating).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable

from pyinfra import host
from pyinfra.api import operation

from roles.api import ApiCall, show_diff
from roles.dns.facts import ARecord, ServedARecord
from roles.dns.records import (ARecordState, addresses_of, describe, record_fqdn, ttl_of, zone_name)
from roles.errors import OperationInputError


@operation()
def a_record(
    zone: str,
    record: str,
    addresses: str | Iterable[str],
    ttl: int | None = None,
    verify_timeout: float | None = None,
) -> Generator[ApiCall, None, None]:
    """
    Make `record` in `zone` an A rrset holding exactly `addresses`.

    + zone: the zone, e.g. corp.example
    + record: name relative to the zone (`outlook`), `@`, or absolute inside it (`outlook.corp.example.`)
    + addresses: one IPv4 address or a list of them
    + ttl: TTL in seconds; default keeps the record's TTL (3600 for a new record)
    + verify_timeout: seconds to wait for every nameserver to answer the change (default: host data
      dns_verify_timeout, 30)

    Examples:

    .. code:: python

        dns.a_record(name="CAS array to the VIP", zone="corp.example", record="outlook",
                     addresses=["10.0.0.28"])
    """
    try:
        z = zone_name(zone)
        fqdn = record_fqdn(z, record)
        wanted = addresses_of(addresses)
        ttl_of(ttl, None)
    except OperationInputError as e:   # re-raised here: pyinfra names this module in its one-line error
        raise OperationInputError(e.cause, **e.fields) from None
    current: ARecordState | None = host.get_fact(ARecord, zone=z, record=record)
    desired: ARecordState = {"ttl": ttl_of(ttl, current), "addresses": wanted}
    if current == desired:
        served = host.get_fact(ServedARecord, zone=z, record=record)
        lagging = {server: answer for server, answer in served.items() if answer != desired}
        if not lagging:
            host.noop(f"{fqdn} A already {', '.join(wanted)} (ttl {desired['ttl']})")
            return
        # the primary has it but not every nameserver answers it yet: wait for them (no update)
        show_diff(host, f"{fqdn} A on the zone's nameservers",
                  [f"{server}: {answer if isinstance(answer, str) else describe(fqdn, answer)}"
                   for server, answer in lagging.items()],
                  [f"{server}: {describe(fqdn, desired)}" for server in lagging])
        params: dict[str, object] = {}
        if verify_timeout is not None:
            params["verify_timeout"] = float(verify_timeout)
        yield ApiCall("dns.verify_a", zone=z, record=record, addresses=wanted, ttl=desired["ttl"], **params)
        return
    yield from _replace(z, record, fqdn, current, desired, verify_timeout)


@operation()
def lower_ttl(
    zone: str,
    record: str,
    ttl: int,
    verify_timeout: float | None = None,
) -> Generator[ApiCall, None, None]:
    """
    Lower an A record's TTL (addresses unchanged), so a later change spreads within `ttl` seconds.
    Run it one old TTL before the change window; a record already at or below `ttl` is left alone.

    + zone: the zone, e.g. corp.example
    + record: name relative to the zone
    + ttl: the TTL to lower to, in seconds
    + verify_timeout: as for dns.a_record

    Examples:

    .. code:: python

        dns.lower_ttl(name="Short TTL before the window", zone="corp.example", record="outlook", ttl=60)
    """
    try:
        z = zone_name(zone)
        fqdn = record_fqdn(z, record)
        target_ttl = ttl_of(ttl, None)
    except OperationInputError as e:
        raise OperationInputError(e.cause, **e.fields) from None
    current: ARecordState | None = host.get_fact(ARecord, zone=z, record=record)
    if current is None:
        raise OperationInputError(f"{fqdn} has no A record to lower the TTL of", field="record")
    if current["ttl"] <= target_ttl:
        host.noop(f"{fqdn} A ttl already {current['ttl']} (at or below {target_ttl})")
        return
    yield from _replace(z, record, fqdn, current, {"ttl": target_ttl, "addresses": current["addresses"]},
                        verify_timeout)


def _replace(zone: str, record: str, fqdn: str, current: ARecordState | None, desired: ARecordState,
             verify_timeout: float | None) -> Generator[ApiCall, None, None]:
    before = [describe(fqdn, current)]
    show_diff(host, f"{fqdn} A", before, [describe(fqdn, desired)])
    params: dict[str, object] = {}
    if verify_timeout is not None:
        params["verify_timeout"] = float(verify_timeout)
    yield ApiCall("dns.replace_a", zone=zone, record=record, addresses=desired["addresses"],
                  ttl=desired["ttl"], expected=current["addresses"] if current else None, **params)
