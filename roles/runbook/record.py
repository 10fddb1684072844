"""Journal operations: each one runs just before the role operation that changes an item (DNS record, ASA
object, Exchange settings), reads the item's current value and, when a change is pending, writes it to the
runbook journal first. Converged items are a noop, so a converged run journals nothing.

With host data `runbook_snapshot` (the runbook's plan, a --dry run) they also record every item's current
value in that snapshot file, changed or not, for `exha runbook apply` to check that nothing moved since.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pyinfra import host
from pyinfra.api import FunctionCommand, operation

from roles.asa.facts import NetworkObject
from roles.dns.facts import ARecord
from roles.dns.records import addresses_of, record_fqdn, zone_name
from roles.exchange.facts import ClientAccessArrays, MailboxDatabases, RpcStaticPorts
from roles.runbook import journal


def _snapshot(key: str, value: Any) -> None:
    path = host.data.get("runbook_snapshot")
    if path:
        journal.snapshot_put(path, f"{host.name} {key}", value)


def _append(state: Any, host: Any, path: str, items: list[dict[str, Any]]) -> bool:
    """Execute time: write each pending item's prior value to the journal (before the change op runs)."""
    for item in items:
        journal.append(path, host=host.name, **item)
    return True


def _record(items: list[dict[str, Any]]) -> Generator[FunctionCommand, None, None]:
    path = host.data.get("runbook_journal")
    if not items:
        host.noop("nothing pending, nothing to journal")
        return
    if not path:
        host.noop("no runbook journal for this run")
        return
    yield FunctionCommand(_append, (str(path), items), {})


@operation()
def dns_record(zone: str, record: str, addresses: list[str], ttl: int | None = None
               ) -> Generator[FunctionCommand, None, None]:
    """
    Journal an A record's current value (TTL and addresses) before dns.a_record changes it.

    + zone / record / addresses / ttl: as for dns.a_record
    """
    z = zone_name(zone)
    fqdn = record_fqdn(z, record)
    current = host.get_fact(ARecord, zone=z, record=record)
    desired = {"ttl": ttl if ttl is not None else (current["ttl"] if current else 3600),
               "addresses": addresses_of(addresses)}
    _snapshot(f"dns.a_record {fqdn}", current)
    pending = [] if current == desired else [
        {"step": "dns", "kind": "dns.a_record", "item": fqdn, "target": {"zone": z, "record": record},
         "prior": current, "desired": desired}]
    yield from _record(pending)


@operation()
def asa_objects(object_names: list[str], address: str, save: bool = True) -> Generator[FunctionCommand, None, None]:
    """
    Journal ASA network objects (running and startup config) before asa.network_object changes them.

    + object_names: the objects, e.g. ["EXCH-SMTP", "EXCH-HTTPS"]
    + address: the host address they are about to get
    + save: whether the change also saves (then an unsaved object counts as pending)
    """
    pending = []
    for obj in object_names:
        fact = host.get_fact(NetworkObject, object_name=obj)
        running, startup = fact["running"], fact["startup"]
        _snapshot(f"asa.network_object {obj}", {"running": running, "startup": startup})
        changed = running is None or (running["kind"], running["value"]) != ("host", address)
        if changed or (save and running != startup):
            pending.append({"step": "asa", "kind": "asa.network_object", "item": obj,
                            "target": {"object_name": obj}, "prior": {"running": running, "startup": startup},
                            "desired": {"kind": "host", "value": address}})
    yield from _record(pending)


@operation()
def exchange_settings(fqdn: str, array: str | None, server: str, rpc_port: int, ab_port: int
                      ) -> Generator[FunctionCommand, None, None]:
    """
    Journal the Exchange settings deploys/exchange.py sets: the CAS array FQDN (when `array` is given, on
    the organisation's host), the RPC Client Access server of this server's databases, the static RPC ports.

    + fqdn: the CAS array FQDN the deploy sets
    + array: the array's name, or None on hosts that do not own the organisation-wide setting
    + server: this Exchange server's name (its databases are journaled)
    + rpc_port / ab_port: the static ports the deploy sets
    """
    pending: list[dict[str, Any]] = []
    if array:
        arrays = host.get_fact(ClientAccessArrays)
        current = next((a for a in arrays if a["name"].lower() == array.lower()), None)
        prior = None if current is None else {"identity": current["name"], "fqdn": current["fqdn"]}
        _snapshot(f"exchange.cas_array {array}", prior)
        if prior is None or prior["fqdn"].rstrip(".").lower() != fqdn.lower():
            pending.append({"step": "exchange", "kind": "exchange.cas_array", "item": array,
                            "target": {"identity": array}, "prior": prior, "desired": {"fqdn": fqdn}})
    short = server.split(".")[0].lower()
    for db in host.get_fact(MailboxDatabases):
        if db["server"].split(".")[0].lower() != short:
            continue
        _snapshot(f"exchange.database {db['identity']}", db["rpc_client_access_server"])
        if db["rpc_client_access_server"].rstrip(".").lower() != fqdn.lower():
            pending.append({"step": "exchange", "kind": "exchange.database", "item": db["identity"],
                            "target": {"database": db["identity"]}, "prior": db["rpc_client_access_server"],
                            "desired": fqdn})
    ports = host.get_fact(RpcStaticPorts)
    prior_ports = {"rpc_port": ports["rpc_port"], "ab_port": ports["ab_port"]}
    _snapshot("exchange.rpc_ports", prior_ports)
    if prior_ports != {"rpc_port": rpc_port, "ab_port": ab_port}:
        pending.append({"step": "exchange", "kind": "exchange.rpc_ports", "item": "rpc_ports", "target": {},
                        "prior": prior_ports, "desired": {"rpc_port": rpc_port, "ab_port": ab_port}})
    yield from _record(pending)
