"""The cmdlets the simulator knows besides the DNS server ones: pipeline helpers (`ConvertTo-Json`,
`Select-Object`, ...), Exchange 2010's Client Access array and mailbox database cmdlets, registry
item properties and services, each with the output and errors Windows PowerShell gives."""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import zlib
from dataclasses import dataclass
from typing import Any

from lab.winrm_sim.pslang import Cmdlet, Context, Param, PSError, PSPartial
from lab.winrm_sim.psvalues import (
    PSEnum,
    PSObject,
    PSTimeSpan,
    convert_to_json,
    format_default,
    get_member,
    to_text,
)
from lab.winrm_sim.state import HostIdentity, JsonStore

EXCHANGE_NS = "Microsoft.Exchange.Management.SystemConfigurationTasks"
FQDN_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?$"
)
EDB_FOLDER = "C:\\Program Files\\Microsoft\\Exchange Server\\V14\\Mailbox"
SERVICE_STATUS = {"Stopped": 1, "StartPending": 2, "StopPending": 3, "Running": 4}
START_TYPE = {"Boot": 0, "System": 1, "Automatic": 2, "Manual": 3, "Disabled": 4}


@dataclass
class Host:
    """What the cmdlets act on: the host's identity, its state, the organization's (Exchange) and
    the DNS server it manages (DNS role)."""

    ident: HostIdentity
    host: JsonStore
    org: JsonStore | None = None
    dns: Any = None  # dnscmdlets.DnsTarget on the DNS role


def _host(ctx: Context) -> Host:
    h = ctx.state
    assert isinstance(h, Host)
    return h


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


# -- pipeline helpers ------------------------------------------------------------------------------
def _convert_to_json(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    items = inp if "InputObject" not in a else _as_list(a["InputObject"])
    if not items:
        return []
    try:
        depth = int(a.get("Depth", 2))
    except (TypeError, ValueError):
        raise PSError(
            f"Cannot bind parameter 'Depth'. Cannot convert value \"{a.get('Depth')}\" to type "
            '"System.Int32".',
            "InvalidArgument",
            "ParameterBindingException",
            "CannotConvertArgumentNoMessage,Microsoft.PowerShell.Commands.ConvertToJsonCommand",
        ) from None
    if not 0 <= depth <= 100:
        raise PSError(
            f"Cannot validate argument on parameter 'Depth'. The {depth} argument is greater than the "
            "maximum allowed range of 100.",
            "InvalidData",
            "ParameterBindingValidationException",
            "ParameterArgumentValidationError,Microsoft.PowerShell.Commands.ConvertToJsonCommand",
        )
    return [convert_to_json(items, depth, bool(a.get("Compress")))]


def _select_object(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    items = inp if "InputObject" not in a else _as_list(a["InputObject"])
    if "First" in a:
        items = items[: int(a["First"])]
    if "Last" in a:
        items = items[-int(a["Last"]) :] if int(a["Last"]) else []
    if "ExpandProperty" in a:
        name = to_text(a["ExpandProperty"])
        out: list[Any] = []
        for obj in items:
            props = getattr(obj, "props", None)
            if not isinstance(props, dict) or not any(k.lower() == name.lower() for k in props):
                raise PSError(
                    f'Property "{name}" cannot be found.',
                    "InvalidArgument",
                    "PSArgumentException",
                    "ExpandPropertyNotFound,Microsoft.PowerShell.Commands.SelectObjectCommand",
                    target=str(obj),
                    target_type=getattr(obj, "type_name", "Object"),
                )
            out += _as_list(get_member(obj, name))
        return out
    if "Property" not in a:
        return items
    names = [to_text(n) for n in _as_list(a["Property"])]
    out = []
    for obj in items:
        props: dict[str, Any] = {}
        for n in names:
            if isinstance(obj, PSObject):
                for key in obj.props:
                    if fnmatch.fnmatchcase(key.lower(), n.lower()):
                        props[key] = obj.props[key]
                if not any(fnmatch.fnmatchcase(k.lower(), n.lower()) for k in obj.props) and "*" not in n:
                    props[n] = None
            else:
                props[n] = get_member(obj, n)
        type_name = getattr(obj, "type_name", "System.Object")
        out.append(PSObject(props, f"Selected.{type_name}"))
    return out


def _out_null(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    return []


def _out_string(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    items = inp if "InputObject" not in a else _as_list(a["InputObject"])
    return [format_default(items)] if items else []


def _write_output(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    return _as_list(a.get("InputObject")) + inp


def _new_timespan(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    total = 0
    for name, unit in (("Days", 86400), ("Hours", 3600), ("Minutes", 60), ("Seconds", 1)):
        total += int(a.get(name, 0)) * unit
    return [PSTimeSpan(total)]


# -- Exchange ---------------------------------------------------------------------------------------
def _not_found(ident: Any, h: Host, cmdlet: str) -> PSError:
    msg = (
        f"The operation couldn't be performed because object '{to_text(ident)}' couldn't be found on "
        f"'dc1.{h.ident.domain}'."
    )
    code = f"{zlib.crc32(msg.encode()):08X}"
    return PSError(msg, "NotSpecified", "ManagementObjectNotFoundException", f"{code},{EXCHANGE_NS}.{cmdlet}")


def _identity_text(v: Any) -> str:
    if isinstance(v, PSObject):
        return to_text(v.get("Identity") or v.get("Name"))
    return to_text(v)


def _cas_array_object(rec: dict[str, Any], domain: str) -> PSObject:
    dc = ",".join(f"DC={p}" for p in domain.split("."))
    site = f"{domain}/Configuration/Sites/{rec['Site']}"
    return PSObject(
        {
            "Name": rec["Name"],
            "Fqdn": rec["Fqdn"],
            "Site": site,
            "SiteName": rec["Site"],
            "Members": list(rec["Members"]),
            "ExchangeVersion": "0.1 (8.0.535.0)",
            "DistinguishedName": (
                f"CN={rec['Name']},CN=Arrays,CN={rec['Site']},CN=Sites,CN=Configuration,{dc}"
            ),
            "Identity": rec["Name"],
            "IsValid": True,
        },
        "Microsoft.Exchange.Data.Directory.SystemConfiguration.ClientAccessArray",
        text=rec["Name"],
        display=("Name", "Site", "Fqdn", "Members"),
    )


def _db_object(rec: dict[str, Any], domain: str) -> PSObject:
    return PSObject(
        {
            "Name": rec["Name"],
            "Server": rec["Server"],
            "MasterServerOrAvailabilityGroup": rec["Server"],
            "RpcClientAccessServer": rec["RpcClientAccessServer"],
            "EdbFilePath": f"{EDB_FOLDER}\\{rec['Name']}\\{rec['Name']}.edb",
            "Recovery": False,
            "Identity": rec["Name"],
            "IsValid": True,
        },
        "Microsoft.Exchange.Data.Directory.SystemConfiguration.MailboxDatabase",
        text=rec["Name"],
        display=("Name", "Server", "Recovery", "ReplicationType"),
    )


def _match(records: list[dict[str, Any]], ident: Any) -> list[dict[str, Any]]:
    want = _identity_text(ident).lower()
    return [r for r in records if fnmatch.fnmatchcase(r["Name"].lower(), want)]


def _org(ctx: Context) -> JsonStore:
    h = _host(ctx)
    if h.org is None:
        raise PSError("The Exchange organization is not available on this host.")
    return h.org


def _get_cas_array(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    h = _host(ctx)
    doc = _org(ctx).read()
    recs = doc["client_access_arrays"]
    if "Identity" in a:
        recs = _match(recs, a["Identity"])
        if not recs:
            raise _not_found(a["Identity"], h, "GetClientAccessArray")
    if "Site" in a:
        recs = [r for r in recs if r["Site"].lower() == to_text(a["Site"]).lower()]
    return [_cas_array_object(r, h.ident.domain) for r in recs]


def _check_fqdn(value: Any, param: str, cmdlet: str) -> str:
    text = to_text(value)
    if not FQDN_RE.match(text):
        raise PSError(
            f"Cannot process argument transformation on parameter '{param}'. \"{text}\" isn't a valid "
            "fully qualified domain name.",
            "InvalidData",
            "ParameterBindingArgumentTransformationException",
            f"ParameterArgumentTransformationError,{EXCHANGE_NS}.{cmdlet}",
        )
    return text


def _no_change_warning(ctx: Context, ident: str) -> None:
    ctx.stderr.append(
        (
            "warning",
            f"The command completed successfully but no settings of '{ident}' have been modified.\r\n",
        )
    )


def _set_cas_array(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    h = _host(ctx)
    with _org(ctx).edit() as doc:
        recs = _match(doc["client_access_arrays"], a["Identity"])
        if not recs:
            raise _not_found(a["Identity"], h, "SetClientAccessArray")
        rec = recs[0]
        before = dict(rec)
        if "Fqdn" in a:
            rec["Fqdn"] = _check_fqdn(a["Fqdn"], "Fqdn", "SetClientAccessArray")
        if "Name" in a:
            rec["Name"] = to_text(a["Name"])
        if "Site" in a:
            rec["Site"] = to_text(a["Site"])
        if rec == before:
            _no_change_warning(ctx, rec["Name"])
    return []


def _new_cas_array(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    h = _host(ctx)
    fqdn = _check_fqdn(a["Fqdn"], "Fqdn", "NewClientAccessArray")
    name = to_text(a.get("Name") or fqdn.split(".")[0])
    site = to_text(a["Site"])
    with _org(ctx).edit() as doc:
        if _match(doc["client_access_arrays"], name):
            raise PSError(
                f"An Active Directory object with the name '{name}' already exists.",
                "NotSpecified",
                "ADObjectAlreadyExistsException",
                f"1B0D9E6A,{EXCHANGE_NS}.NewClientAccessArray",
            )
        rec = {"Name": name, "Fqdn": fqdn, "Site": site, "Members": list(h.ident.exchange_servers)}
        doc["client_access_arrays"].append(rec)
    return [_cas_array_object(rec, h.ident.domain)]


def _get_mailbox_database(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    h = _host(ctx)
    recs = _org(ctx).read()["mailbox_databases"]
    if "Identity" in a:
        recs = _match(recs, a["Identity"])
        if not recs:
            raise _not_found(a["Identity"], h, "GetMailboxDatabase")
    if "Server" in a:
        server = _identity_text(a["Server"]).lower()
        recs = [r for r in recs if r["Server"].lower() == server]
    return [_db_object(r, h.ident.domain) for r in recs]


def _set_mailbox_database(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    h = _host(ctx)
    with _org(ctx).edit() as doc:
        recs = _match(doc["mailbox_databases"], a["Identity"])
        if not recs:
            raise _not_found(a["Identity"], h, "SetMailboxDatabase")
        rec = recs[0]
        before = dict(rec)
        if "RpcClientAccessServer" in a:
            rec["RpcClientAccessServer"] = _check_fqdn(
                a["RpcClientAccessServer"], "RpcClientAccessServer", "SetMailboxDatabase"
            )
        if rec == before:
            _no_change_warning(ctx, rec["Name"])
    return []


# -- registry -----------------------------------------------------------------------------------------
def _norm_path(path: Any) -> str:
    p = to_text(path).strip().rstrip("\\")
    low = p.lower()
    for prefix in ("microsoft.powershell.core\\registry::", "registry::"):
        if low.startswith(prefix):
            p, low = p[len(prefix) :], low[len(prefix) :]
    if low.startswith("hkey_local_machine"):
        p = "HKLM:" + p[len("HKEY_LOCAL_MACHINE") :]
    elif low.startswith("hklm:") and not low.startswith("hklm:\\"):
        p = "HKLM:\\" + p[5:]
    return p


def _find_key(registry: dict[str, Any], path: Any, cmdlet: str) -> str:
    want = _norm_path(path).lower()
    for key in registry:
        if key.lower() == want:
            return key
    raise PSError(
        f"Cannot find path '{to_text(path)}' because it does not exist.",
        "ObjectNotFound",
        "ItemNotFoundException",
        f"PathNotFound,Microsoft.PowerShell.Commands.{cmdlet}Command",
        target=to_text(path),
        target_type="String",
    )


def _native(key: str) -> str:
    return "HKEY_LOCAL_MACHINE" + key[len("HKLM:") :]


def _item_property(key: str, values: dict[str, Any]) -> PSObject:
    native = _native(key)
    parent, _, child = native.rpartition("\\")
    props = {name: v["value"] for name, v in values.items()}
    props.update(
        {
            "PSPath": f"Microsoft.PowerShell.Core\\Registry::{native}",
            "PSParentPath": f"Microsoft.PowerShell.Core\\Registry::{parent}",
            "PSChildName": child,
            "PSDrive": "HKLM",
            "PSProvider": "Microsoft.PowerShell.Core\\Registry",
        }
    )
    return PSObject(props)


def _value_name(values: dict[str, Any], name: str) -> str | None:
    return next((k for k in values if k.lower() == name.lower()), None)


def _get_item_property(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    reg = _host(ctx).host.read()["registry"]
    key = _find_key(reg, a["Path"], "GetItemProperty")
    values = reg[key]
    if "Name" in a:
        picked = {}
        for n in _as_list(a["Name"]):
            real = _value_name(values, to_text(n))
            if real is None:
                raise PSError(
                    f"Property {to_text(n)} does not exist at path {_native(key)}.",
                    "InvalidArgument",
                    "PSArgumentException",
                    "System.Management.Automation.PSArgumentException,"
                    "Microsoft.PowerShell.Commands.GetItemPropertyCommand",
                    target=to_text(n),
                    target_type="String",
                )
            picked[real] = values[real]
        values = picked
    return [_item_property(key, values)]


def _typed_value(kind: str, value: Any, name: str, cmdlet: str) -> Any:
    if kind == "DWord":
        try:
            n = int(to_text(value), 0) if isinstance(value, str) else int(value)
        except ValueError:
            raise PSError(
                f'Cannot convert value "{to_text(value)}" to type "System.Int32". Error: "Input string '
                'was not in a correct format."',
                "InvalidArgument",
                "PSInvalidCastException",
                f"System.Management.Automation.PSInvalidCastException,Microsoft.PowerShell.Commands."
                f"{cmdlet}Command",
            ) from None
        if not -(2**31) <= n < 2**32:
            raise PSError(
                f"Value {n} is out of range for a DWORD value '{name}'.",
                "InvalidArgument",
                "ArgumentException",
                f"System.ArgumentException,Microsoft.PowerShell.Commands.{cmdlet}Command",
            )
        return n
    return to_text(value)


REG_KINDS = {"dword": "DWord", "string": "String", "expandstring": "ExpandString", "qword": "QWord"}


def _reg_kind(a: dict[str, Any], param: str, cmdlet: str) -> str | None:
    if param not in a:
        return None
    kind = REG_KINDS.get(to_text(a[param]).lower())
    if kind is None or kind not in ("DWord", "String"):
        raise PSError(
            f"Cannot bind parameter '{param}'. Cannot convert value \"{to_text(a[param])}\" to type "
            '"Microsoft.Win32.RegistryValueKind" (the simulator supports String and DWord).',
            "InvalidArgument",
            "ParameterBindingException",
            f"CannotConvertArgumentNoMessage,Microsoft.PowerShell.Commands.{cmdlet}Command",
        )
    return kind


def _set_item_property(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    kind = _reg_kind(a, "Type", "SetItemProperty")
    with _host(ctx).host.edit() as doc:
        reg = doc["registry"]
        key = _find_key(reg, a["Path"], "SetItemProperty")
        name = to_text(a["Name"])
        real = _value_name(reg[key], name) or name
        current = reg[key].get(real)
        kind = kind or (current["type"] if current else "String")
        reg[key][real] = {"type": kind, "value": _typed_value(kind, a.get("Value"), real, "SetItemProperty")}
    return []


def _new_item_property(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    kind = _reg_kind(a, "PropertyType", "NewItemProperty") or "String"
    with _host(ctx).host.edit() as doc:
        reg = doc["registry"]
        key = _find_key(reg, a["Path"], "NewItemProperty")
        name = to_text(a["Name"])
        real = _value_name(reg[key], name)
        if real is not None and not a.get("Force"):
            raise PSError(
                "The property already exists.",
                "ResourceExists",
                "IOException",
                "System.IO.IOException,Microsoft.PowerShell.Commands.NewItemPropertyCommand",
                target=_native(key),
                target_type="String",
            )
        real = real or name
        reg[key][real] = {"type": kind, "value": _typed_value(kind, a.get("Value"), real, "NewItemProperty")}
        return [_item_property(key, {real: reg[key][real]})]


def _remove_item_property(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    with _host(ctx).host.edit() as doc:
        reg = doc["registry"]
        key = _find_key(reg, a["Path"], "RemoveItemProperty")
        real = _value_name(reg[key], to_text(a["Name"]))
        if real is None:
            raise PSError(
                f"Property {to_text(a['Name'])} does not exist at path {_native(key)}.",
                "InvalidArgument",
                "PSArgumentException",
                "System.Management.Automation.PSArgumentException,"
                "Microsoft.PowerShell.Commands.RemoveItemPropertyCommand",
            )
        del reg[key][real]
    return []


def _test_path(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    reg = _host(ctx).host.read()["registry"]
    want = _norm_path(a["Path"]).lower()
    return [any(k.lower() == want or k.lower().startswith(want + "\\") for k in reg)]


# -- services ------------------------------------------------------------------------------------------
def _service_object(name: str, rec: dict[str, Any]) -> PSObject:
    return PSObject(
        {
            "Name": name,
            "DisplayName": rec["DisplayName"],
            "Status": PSEnum(rec["Status"], SERVICE_STATUS[rec["Status"]]),
            "StartType": PSEnum(rec["StartType"], START_TYPE[rec["StartType"]]),
            "ServiceName": name,
            "MachineName": ".",
            "CanStop": rec["Status"] == "Running",
            "ServiceType": PSEnum("Win32OwnProcess", 16),
        },
        "System.ServiceProcess.ServiceController",
        text="System.ServiceProcess.ServiceController",
        display=("Status", "Name", "DisplayName"),
    )


def _service_names(services: dict[str, Any], wanted: Any, cmdlet: str, errors: list[PSError]) -> list[str]:
    out: list[str] = []
    for w in _as_list(wanted):
        pattern = _identity_text(w).lower()
        hits = [n for n in services if fnmatch.fnmatchcase(n.lower(), pattern)]
        if not hits and "*" not in pattern:
            errors.append(
                PSError(
                    f"Cannot find any service with service name '{_identity_text(w)}'.",
                    "ObjectNotFound",
                    "ServiceCommandException",
                    f"NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.{cmdlet}Command",
                    target=_identity_text(w),
                    target_type="String",
                )
            )
        out += [h for h in hits if h not in out]
    return out


def _get_service(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    services = _host(ctx).host.read()["services"]
    errors: list[PSError] = []
    names = _service_names(services, a["Name"], "GetService", errors) if "Name" in a else sorted(services)
    found = [_service_object(n, services[n]) for n in names]
    if errors:
        raise PSPartial(found, errors[0]) if found else errors[0]
    return found


def _change_service(verb: str) -> Any:
    def run(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
        h = _host(ctx)
        errors: list[PSError] = []
        with h.host.edit() as doc:
            services = doc["services"]
            for name in _service_names(services, a["Name"], f"{verb}Service", errors):
                rec = services[name]
                if verb in ("Restart", "Start"):
                    if verb == "Restart" or rec["Status"] != "Running":
                        rec["Restarts"] = rec.get("Restarts", 0) + (verb == "Restart")
                        rec["LastStart"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                        rec["Effective"] = _effective_settings(doc, name)
                    rec["Status"] = "Running"
                else:
                    rec["Status"] = "Stopped"
        if errors:
            raise errors[0]
        return []

    return run


def _effective_settings(doc: dict[str, Any], service: str) -> dict[str, Any]:
    """The registry values a service reads at start (what a restart puts into effect)."""
    key = {
        "MSExchangeRPC": r"MSExchangeRPC\ParametersSystem",
        "MSExchangeAB": r"MSExchangeAB\Parameters",
    }.get(service)
    if key is None:
        return {}
    for path, values in doc["registry"].items():
        if path.lower().endswith(key.lower()):
            return {k: v["value"] for k, v in values.items()}
    return {}


# -- the table ------------------------------------------------------------------------------------------
def common_cmdlets() -> list[Cmdlet]:
    return [
        Cmdlet(
            "ConvertTo-Json",
            (Param("InputObject", position=0), Param("Depth"), Param("Compress", switch=True)),
            _convert_to_json,
            namespace="Microsoft.PowerShell.Commands",
        ),
        Cmdlet(
            "Select-Object",
            (
                Param("Property", position=0),
                Param("ExpandProperty"),
                Param("First"),
                Param("Last"),
                Param("InputObject"),
            ),
            _select_object,
        ),
        Cmdlet("Out-Null", (Param("InputObject"),), _out_null),
        Cmdlet(
            "Out-String", (Param("InputObject"), Param("Width"), Param("Stream", switch=True)), _out_string
        ),
        Cmdlet("Write-Output", (Param("InputObject", position=0),), _write_output),
        Cmdlet(
            "New-TimeSpan", (Param("Days"), Param("Hours"), Param("Minutes"), Param("Seconds")), _new_timespan
        ),
    ]


def exchange_cmdlets() -> list[Cmdlet]:
    ns = EXCHANGE_NS
    ident = Param("Identity", position=0, mandatory=True)
    return [
        Cmdlet(
            "Get-ClientAccessArray",
            (Param("Identity", position=0), Param("Site"), Param("DomainController")),
            _get_cas_array,
            namespace=ns,
        ),
        Cmdlet(
            "Set-ClientAccessArray",
            (ident, Param("Fqdn"), Param("Name"), Param("Site"), Param("DomainController")),
            _set_cas_array,
            namespace=ns,
            per_object="Identity",
            changes=True,
        ),
        Cmdlet(
            "New-ClientAccessArray",
            (
                Param("Name", position=0),
                Param("Fqdn", mandatory=True),
                Param("Site", mandatory=True),
                Param("DomainController"),
            ),
            _new_cas_array,
            namespace=ns,
            changes=True,
        ),
        Cmdlet(
            "Get-MailboxDatabase",
            (
                Param("Identity", position=0),
                Param("Server"),
                Param("Status", switch=True),
                Param("DomainController"),
            ),
            _get_mailbox_database,
            namespace=ns,
        ),
        Cmdlet(
            "Set-MailboxDatabase",
            (ident, Param("RpcClientAccessServer"), Param("DomainController")),
            _set_mailbox_database,
            namespace=ns,
            per_object="Identity",
            changes=True,
        ),
    ]


def windows_cmdlets() -> list[Cmdlet]:
    path = Param("Path", position=0, mandatory=True, aliases=("PSPath", "LiteralPath"))
    svc = Param("Name", position=0, mandatory=True, aliases=("ServiceName", "InputObject"))
    return [
        Cmdlet("Get-ItemProperty", (path, Param("Name", position=1)), _get_item_property),
        Cmdlet(
            "Set-ItemProperty",
            (
                path,
                Param("Name", position=1, mandatory=True),
                Param("Value", position=2),
                Param("Type"),
                Param("Force", switch=True),
                Param("PassThru", switch=True),
            ),
            _set_item_property,
            changes=True,
        ),
        Cmdlet(
            "New-ItemProperty",
            (
                path,
                Param("Name", position=1, mandatory=True),
                Param("Value", position=2),
                Param("PropertyType", aliases=("Type",)),
                Param("Force", switch=True),
            ),
            _new_item_property,
            changes=True,
        ),
        Cmdlet(
            "Remove-ItemProperty",
            (path, Param("Name", position=1, mandatory=True), Param("Force", switch=True)),
            _remove_item_property,
            changes=True,
        ),
        Cmdlet("Test-Path", (path, Param("PathType")), _test_path),
        Cmdlet(
            "Get-Service",
            (Param("Name", position=0, aliases=("ServiceName",)), Param("ComputerName")),
            _get_service,
        ),
        Cmdlet(
            "Restart-Service",
            (svc, Param("Force", switch=True), Param("PassThru", switch=True)),
            _change_service("Restart"),
            per_object="Name",
            changes=True,
        ),
        Cmdlet(
            "Start-Service",
            (svc, Param("PassThru", switch=True)),
            _change_service("Start"),
            per_object="Name",
            changes=True,
        ),
        Cmdlet(
            "Stop-Service",
            (svc, Param("Force", switch=True), Param("PassThru", switch=True)),
            _change_service("Stop"),
            per_object="Name",
            changes=True,
        ),
    ]
