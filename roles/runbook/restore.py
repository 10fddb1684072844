"""Rollback: put one journaled item back to its prior value with the roles' own operations (each checks the
device first, so restoring an already restored item is a noop and rollback is idempotent). The one value the
roles cannot set back, a static RPC port that was dynamic (absent) before, has its own operation here."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pyinfra import host
from pyinfra.api import operation

from roles.asa import operations as asa
from roles.dns import operations as dns
from roles.exchange import operations as exchange
from roles.exchange import powershell as ps
from roles.exchange.facts import RpcStaticPorts
from roles.runbook.journal import Entry
from roles.winrm.inputs import InputError
from roles.winrm.powershell import quote


def _remove(key: str, value: str, service: str) -> list[str]:
    return [f"Remove-ItemProperty -Path {quote(key)} -Name {quote(value)} -ErrorAction SilentlyContinue",
            f"Restart-Service -Name {service}"]


@operation()
def rpc_ports(rpc_port: int | None, ab_port: int | None) -> Generator[str, None, None]:
    """
    Set the static RPC ports back to what they were, None meaning "not set" (dynamic: value removed).

    + rpc_port: MSExchangeRPC `TCP/IP Port`, or None
    + ab_port: MSExchangeAB `RpcTcpPort`, or None
    """
    current = host.get_fact(RpcStaticPorts)
    lines: list[str] = []
    if current["rpc_port"] != rpc_port:
        lines += ps.set_rpc_port(rpc_port) if rpc_port is not None else _remove(ps.RPC_KEY, ps.RPC_VALUE,
                                                                                 ps.RPC_SERVICE)
    if current["ab_port"] != ab_port:
        lines += ps.set_ab_port(ab_port) if ab_port is not None else _remove(ps.AB_KEY, ps.AB_VALUE, ps.AB_SERVICE)
    if not lines:
        host.noop(f"static RPC ports already {rpc_port or 'dynamic'} / {ab_port or 'dynamic'}")
        return
    yield ps.script(*lines)


def _asa_address(running: dict[str, Any] | None) -> dict[str, Any]:
    if running is None:
        return {"present": False}
    kind, value = running["kind"], running["value"]
    if kind == "host":
        return {"host": value}
    if kind == "subnet":
        return {"subnet": value}
    if kind == "range":
        return {"ip_range": value}
    raise InputError(f"cannot restore an object of kind {kind!r} ({value})", field="prior.running")


@operation()
def journaled_item(entry: dict[str, Any], backup_dir: str = "backups/asa") -> Generator[Any, None, None]:
    """
    Set one journal entry's item back to its prior value, through the role operation that owns the item.
    One operation for every kind, so a rollback loop keeps the journal's order across hosts.

    + entry: the journal entry (roles.runbook.journal.Entry as a dict)
    + backup_dir: where the ASA keeps the object's config before the change
    """
    e = Entry(**entry)
    prior = e.prior
    if e.kind == "dns.a_record":
        if prior is None:
            raise InputError(f"{e.item} had no A record before; remove it by hand", field="prior")
        yield from dns.a_record._inner(zone=e.target["zone"], record=e.target["record"],
                                       addresses=prior["addresses"], ttl=prior["ttl"])
    elif e.kind == "asa.network_object":
        yield from asa.network_object._inner(object_name=e.item, save=True, backup_dir=backup_dir,
                                             **_asa_address(prior["running"]))
    elif e.kind == "exchange.cas_array":
        if prior is None:
            raise InputError(f"CAS array {e.item} did not exist before; remove it by hand", field="prior")
        yield from exchange.client_access_array._inner(identity=prior["identity"], fqdn=prior["fqdn"])
    elif e.kind == "exchange.database":
        yield from exchange.rpc_client_access_server._inner(server_fqdn=prior, database=e.item)
    elif e.kind == "exchange.rpc_ports":
        yield from rpc_ports._inner(rpc_port=prior["rpc_port"], ab_port=prior["ab_port"])
    else:
        raise InputError(f"unknown journal entry kind {e.kind!r}", field="kind")
