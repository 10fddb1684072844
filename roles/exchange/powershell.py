"""Exchange 2010 PowerShell as data: the read scripts behind the facts and the builders for the
change scripts the operations yield. Every read ends in `ConvertTo-Json -Compress`."""

from __future__ import annotations

from roles.winrm.powershell import TO_JSON, quote

#: registry homes of the static RPC ports (TechNet Wiki 864; checked by the Exchange BPA)
RPC_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeRPC\ParametersSystem"
RPC_VALUE = "TCP/IP Port"  # REG_DWORD
AB_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeAB\Parameters"
AB_VALUE = "RpcTcpPort"  # REG_SZ (a string, per the Exchange 2010 SP1 guidance)
RPC_SERVICE = "MSExchangeRPC"
AB_SERVICE = "MSExchangeAB"

#: stop at the first failing cmdlet so the exit status reports it
STRICT = "$ErrorActionPreference = 'Stop'"

GET_CLIENT_ACCESS_ARRAYS = (
    "Get-ClientAccessArray | Select-Object Name,Fqdn,Site" + TO_JSON
)
GET_MAILBOX_DATABASES = (
    "Get-MailboxDatabase | Select-Object Identity,RpcClientAccessServer,Server" + TO_JSON
)
#: one JSON line per registry key; a missing value reads as null, a missing key stops with an error
GET_RPC_STATIC_PORTS = "\n".join((
    STRICT,
    f"Get-ItemProperty -Path {quote(RPC_KEY)} | Select-Object {quote(RPC_VALUE)}" + TO_JSON,
    f"Get-ItemProperty -Path {quote(AB_KEY)} | Select-Object {quote(AB_VALUE)}" + TO_JSON,
))


def script(*lines: str) -> str:
    """A change script: stop on the first error, then the given lines."""
    return "\n".join((STRICT, *lines))


def set_client_access_array(identity: str, fqdn: str) -> str:
    return f"Set-ClientAccessArray -Identity {quote(identity)} -Fqdn {quote(fqdn)}"


def new_client_access_array(identity: str, fqdn: str, site: str) -> str:
    return f"New-ClientAccessArray -Name {quote(identity)} -Fqdn {quote(fqdn)} -Site {quote(site)}"


def set_rpc_client_access_server(database: str, fqdn: str) -> str:
    return f"Set-MailboxDatabase -Identity {quote(database)} -RpcClientAccessServer {quote(fqdn)}"


def set_rpc_port(port: int) -> list[str]:
    return [f"New-ItemProperty -Path {quote(RPC_KEY)} -Name {quote(RPC_VALUE)} -PropertyType DWord"
            f" -Value {port} -Force | Out-Null",
            f"Restart-Service -Name {RPC_SERVICE}"]


def set_ab_port(port: int) -> list[str]:
    return [f"New-ItemProperty -Path {quote(AB_KEY)} -Name {quote(AB_VALUE)} -PropertyType String"
            f" -Value {quote(str(port))} -Force | Out-Null",
            f"Restart-Service -Name {AB_SERVICE}"]
