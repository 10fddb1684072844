"""Exchange facts read over WinRM: CAS arrays, mailbox databases and the static RPC ports."""

from __future__ import annotations

from typing import Any

from roles.exchange import powershell as ps
from roles.exchange.model import ClientAccessArray, MailboxDatabase, RpcPorts
from roles.winrm.facts import PowerShellFact
from roles.winrm.powershell import as_list, parse_json_documents


def _text(value: Any) -> str:
    """A property as text: Exchange objects may serialise as strings or as {"Name"/"Domain": ...}."""
    if value is None:
        return ""
    if isinstance(value, dict):
        for key in ("Name", "Domain", "DistinguishedName", "value"):
            if key in value and isinstance(value[key], str):
                return value[key]
        raise ValueError(f"cannot read a name from {value!r}")
    return str(value)


def _port(value: Any, label: str) -> int | None:
    """A registry port value (DWORD int or REG_SZ text); None when unset."""
    if value is None or value == "":
        return None
    try:
        port = int(str(value).strip())
    except ValueError as e:
        raise ValueError(f"{label} is {value!r}, not a port number") from e
    return port


class ClientAccessArrays(PowerShellFact[list[ClientAccessArray]]):
    """Returns the Client Access arrays (`Get-ClientAccessArray`).

    [ClientAccessArray(name="outlook", fqdn="outlook.corp.example", site="Default-First-Site-Name")]
    """

    command = ps.GET_CLIENT_ACCESS_ARRAYS

    @staticmethod
    def default() -> list[ClientAccessArray]:
        return []

    def parse(self, data: Any) -> list[ClientAccessArray]:
        return [ClientAccessArray(name=_text(o["Name"]), fqdn=_text(o["Fqdn"]), site=_text(o.get("Site")))
                for o in as_list(data)]


class MailboxDatabases(PowerShellFact[list[MailboxDatabase]]):
    """Returns the mailbox databases (`Get-MailboxDatabase`) with their RPC Client Access server.

    [MailboxDatabase(identity="DB01", rpc_client_access_server="EX13-1.corp.example", server="EX13-1")]
    """

    command = ps.GET_MAILBOX_DATABASES

    @staticmethod
    def default() -> list[MailboxDatabase]:
        return []

    def parse(self, data: Any) -> list[MailboxDatabase]:
        return [MailboxDatabase(identity=_text(o["Identity"]),
                                rpc_client_access_server=_text(o.get("RpcClientAccessServer")),
                                server=_text(o.get("Server")))
                for o in as_list(data)]


class RpcStaticPorts(PowerShellFact[RpcPorts]):
    """Returns the static RPC ports from the registry: MSExchangeRPC `TCP/IP Port` and MSExchangeAB
    `RpcTcpPort`; None for a port left dynamic.

    RpcPorts(rpc_port=60000, ab_port=60001)
    """

    command = ps.GET_RPC_STATIC_PORTS

    @staticmethod
    def default() -> RpcPorts:
        return RpcPorts(rpc_port=None, ab_port=None)

    def decode(self, output: list[str]) -> Any:
        return parse_json_documents(output)  # one line per registry key

    def parse(self, data: Any) -> RpcPorts:
        values: dict[str, Any] = {}
        for obj in as_list(data):
            values.update({k.lower(): v for k, v in obj.items()})
        return RpcPorts(rpc_port=_port(values.get(ps.RPC_VALUE.lower()), ps.RPC_VALUE),
                        ab_port=_port(values.get(ps.AB_VALUE.lower()), ps.AB_VALUE))
