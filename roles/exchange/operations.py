"""Exchange 2010 Client Access operations: check, then ensure, each setting a load balancer needs.

Each operation reads its fact, records a noop when the server already matches, otherwise prints a
before/after diff (under --diff) and yields ONE PowerShell script for the `@exha-winrm` connector.
"""

from __future__ import annotations

import re
from collections.abc import Generator

from pyinfra import host
from pyinfra.api import operation

from roles.api import show_diff
from roles.winrm.inputs import InputError
from roles.exchange import powershell as ps
from roles.exchange.facts import ClientAccessArrays, MailboxDatabases, RpcStaticPorts
from roles.exchange.model import MailboxDatabase

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
#: the Exchange Best Practices Analyzer flags static RPC ports below 1024 or above 65535
MIN_PORT, MAX_PORT = 1024, 65535


def _fqdn(value: object, field: str) -> str:
    text = str(value or "").rstrip(".")
    if "." not in text or len(text) > 253 or not all(_LABEL.match(p) for p in text.split(".")):
        raise InputError(f"{value!r} is not a fully qualified domain name", field=field)
    return text


def _nonempty(value: object, field: str) -> str:
    text = str(value or "").strip()
    if not text:
        raise InputError("must not be empty", field=field)
    return text


def _port(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_PORT <= value <= MAX_PORT:
        raise InputError(f"{value!r} is not a port in {MIN_PORT}-{MAX_PORT}", field=field)
    return value


@operation()
def client_access_array(identity: str, fqdn: str, site: str | None = None) -> Generator[str, None, None]:
    """
    Ensure the Client Access array `identity` exists with the given FQDN.

    + identity: the array's name (Get-ClientAccessArray Name)
    + fqdn: the FQDN Outlook uses for RPC Client Access, e.g. outlook.corp.example
    + site: Active Directory site; needed only to create a missing array

    **Example:**

    .. code:: python

        exchange.client_access_array(identity="outlook", fqdn="outlook.corp.example")
    """
    identity = _nonempty(identity, "identity")
    fqdn = _fqdn(fqdn, "fqdn")
    arrays = host.get_fact(ClientAccessArrays)
    current = next((a for a in arrays if a["name"].lower() == identity.lower()), None)
    if current is not None and current["fqdn"].rstrip(".").lower() == fqdn.lower():
        host.noop(f"CAS array {current['name']} already has fqdn {current['fqdn']}")
        return
    if current is None:
        if not site:
            raise InputError(f"CAS array {identity!r} does not exist on {host.name}; pass site= "
                                      "(the Active Directory site) to create it", field="site")
        show_diff(host, f"CAS array {identity}", ["(absent)"], [f"fqdn: {fqdn}", f"site: {site}"])
        yield ps.script(ps.new_client_access_array(identity, fqdn, site))
        return
    show_diff(host, f"CAS array {current['name']}", [f"fqdn: {current['fqdn']}"], [f"fqdn: {fqdn}"])
    yield ps.script(ps.set_client_access_array(current["name"], fqdn))


def _selected(databases: list[MailboxDatabase], database: str | None, server: str | None,
              host_name: str) -> list[MailboxDatabase]:
    chosen = databases
    if database is not None:
        chosen = [d for d in chosen if d["identity"].lower() == database.lower()]
        if not chosen:
            known = ", ".join(d["identity"] for d in databases) or "none"
            raise InputError(f"no mailbox database {database!r} on {host_name} (found: {known})",
                                      field="database")
    if server is not None:
        short = server.split(".")[0].lower()
        chosen = [d for d in chosen if d["server"].split(".")[0].lower() == short]
    return chosen


@operation()
def rpc_client_access_server(server_fqdn: str, database: str | None = None,
                             server: str | None = None) -> Generator[str, None, None]:
    """
    Ensure mailbox databases hand Outlook the CAS array FQDN as their RPC Client Access server.

    + server_fqdn: the FQDN to set, normally the CAS array's (outlook.corp.example)
    + database: only this database (Identity); default every database
    + server: only databases mounted on this Exchange server (name or FQDN)

    **Example:**

    .. code:: python

        exchange.rpc_client_access_server(server_fqdn="outlook.corp.example")
    """
    server_fqdn = _fqdn(server_fqdn, "server_fqdn")
    if database is not None:
        database = _nonempty(database, "database")
    chosen = _selected(host.get_fact(MailboxDatabases), database, server, host.name)
    pending = [d for d in chosen if d["rpc_client_access_server"].rstrip(".").lower() != server_fqdn.lower()]
    if not pending:
        names = ", ".join(d["identity"] for d in chosen) or "no databases"
        host.noop(f"RpcClientAccessServer already {server_fqdn} ({names})")
        return
    show_diff(host, "mailbox database RpcClientAccessServer",
              [f"{d['identity']}: {d['rpc_client_access_server'] or '(unset)'}" for d in pending],
              [f"{d['identity']}: {server_fqdn}" for d in pending])
    yield ps.script(*(ps.set_rpc_client_access_server(d["identity"], server_fqdn) for d in pending))


@operation()
def static_rpc_ports(rpc_port: int = 60000, ab_port: int = 60001) -> Generator[str, None, None]:
    """
    Ensure static ports for RPC Client Access (MSExchangeRPC) and the Address Book (MSExchangeAB);
    restarts only the service whose port changed.

    + rpc_port: MSExchangeRPC\\ParametersSystem `TCP/IP Port` (REG_DWORD)
    + ab_port: MSExchangeAB\\Parameters `RpcTcpPort` (REG_SZ)

    **Example:**

    .. code:: python

        exchange.static_rpc_ports(rpc_port=60000, ab_port=60001)
    """
    rpc_port = _port(rpc_port, "rpc_port")
    ab_port = _port(ab_port, "ab_port")
    if rpc_port == ab_port:
        raise InputError(f"{ab_port} is also rpc_port; use two different ports", field="ab_port")
    current = host.get_fact(RpcStaticPorts)
    lines: list[str] = []
    before: list[str] = []
    after: list[str] = []
    if current["rpc_port"] != rpc_port:
        lines += ps.set_rpc_port(rpc_port)
        before.append(f"{ps.RPC_SERVICE} {ps.RPC_VALUE}: {current['rpc_port'] or '(dynamic)'}")
        after.append(f"{ps.RPC_SERVICE} {ps.RPC_VALUE}: {rpc_port} (restarts {ps.RPC_SERVICE})")
    if current["ab_port"] != ab_port:
        lines += ps.set_ab_port(ab_port)
        before.append(f"{ps.AB_SERVICE} {ps.AB_VALUE}: {current['ab_port'] or '(dynamic)'}")
        after.append(f"{ps.AB_SERVICE} {ps.AB_VALUE}: {ab_port} (restarts {ps.AB_SERVICE})")
    if not lines:
        host.noop(f"static RPC ports already {rpc_port} ({ps.RPC_SERVICE}) / {ab_port} ({ps.AB_SERVICE})")
        return
    show_diff(host, "static RPC ports", before, after)
    yield ps.script(*lines)
