"""The simulated Windows hosts' state as JSON files: per host (registry values, services) and, for
Exchange, the organization's Active Directory objects (Client Access arrays, mailbox databases)
shared by every Exchange server. Read-modify-write happens under a file lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RPC_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeRPC\ParametersSystem"
AB_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeAB\Parameters"

SERVICES = {
    "exchange": [
        ("MSExchangeRPC", "Microsoft Exchange RPC Client Access"),
        ("MSExchangeAB", "Microsoft Exchange Address Book"),
        ("MSExchangeIS", "Microsoft Exchange Information Store"),
        ("MSExchangeTransport", "Microsoft Exchange Transport"),
        ("MSExchangeServiceHost", "Microsoft Exchange Service Host"),
        ("W3SVC", "World Wide Web Publishing Service"),
        ("WinRM", "Windows Remote Management (WS-Management)"),
    ],
    "dns": [
        ("DNS", "DNS Server"),
        ("NTDS", "Active Directory Domain Services"),
        ("Netlogon", "Netlogon"),
        ("WinRM", "Windows Remote Management (WS-Management)"),
    ],
}


@dataclass(frozen=True)
class HostIdentity:
    """Who the simulated host is."""

    role: str  # "exchange" or "dns"
    server_name: str  # EX13-1, DC1
    domain: str = "corp.example"
    exchange_servers: tuple[str, ...] = ()
    cas_array_fqdn: str = "outlook.corp.example"
    site: str = "Default-First-Site-Name"


@dataclass
class JsonStore:
    """A JSON document on disk, changed under an exclusive lock (shared by several simulators)."""

    path: Path
    initial: dict[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """Yield the document; it is written back when the block ends without an exception."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                doc = (
                    json.loads(self.path.read_text())
                    if self.path.exists()
                    else json.loads(json.dumps(self.initial))
                )
                yield doc
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any]:
        with self.edit() as doc:
            return json.loads(json.dumps(doc))


def initial_host_state(ident: HostIdentity) -> dict[str, Any]:
    """A host as the seed has it: Exchange's parameter keys exist but hold no static ports yet."""
    registry: dict[str, dict[str, Any]] = {}
    if ident.role == "exchange":
        registry = {RPC_KEY: {}, AB_KEY: {}}
    services = {
        name: {
            "DisplayName": display,
            "Status": "Running",
            "StartType": "Automatic",
            "Restarts": 0,
            "LastStart": None,
            "Effective": {},
        }
        for name, display in SERVICES.get(ident.role, [])
    }
    return {"server_name": ident.server_name, "registry": registry, "services": services}


def initial_org_state(ident: HostIdentity) -> dict[str, Any]:
    """The Exchange organization as the seed has it: one CAS array, one database per server whose
    RpcClientAccessServer still names the server itself."""
    servers = list(ident.exchange_servers or (ident.server_name,))
    label = ident.cas_array_fqdn.split(".")[0]
    return {
        "client_access_arrays": [
            {"Name": label, "Fqdn": ident.cas_array_fqdn, "Site": ident.site, "Members": servers}
        ],
        "mailbox_databases": [
            {"Name": f"DB{n:02d}", "Server": s, "RpcClientAccessServer": f"{s}.{ident.domain}"}
            for n, s in enumerate(servers, start=1)
        ],
        "domain": ident.domain,
    }
