"""Parsed Exchange state: the typed records the facts return and the operations compare (plain dicts,
so they print with `pyinfra … fact --json` and load straight from test fixtures)."""

from __future__ import annotations

from typing import TypedDict


class ClientAccessArray(TypedDict):
    """One `Get-ClientAccessArray` object."""

    name: str
    fqdn: str
    site: str


class MailboxDatabase(TypedDict):
    """One `Get-MailboxDatabase` object: the fields the CAS array change touches."""

    identity: str
    rpc_client_access_server: str
    server: str


class RpcPorts(TypedDict):
    """The static RPC ports in the registry; None where the value is not set (dynamic ports)."""

    rpc_port: int | None
    ab_port: int | None
