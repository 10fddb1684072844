"""The DnsServer module's record cmdlets on the simulated domain controller, acting on a real BIND
zone: reads by zone transfer or query, changes by RFC 2136 updates signed with TSIG (dnspython), so
name resolution reflects them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update
import dns.zone

from lab.winrm_sim.pslang import Cmdlet, Context, Param, PSError
from lab.winrm_sim.psvalues import PSIPAddress, PSObject, PSTimeSpan, to_text

CIM_NS = "root/Microsoft/Windows/DNS"
RCODE_WIN32 = {
    "REFUSED": 9005,
    "NOTAUTH": 9007,
    "NXRRSET": 9008,
    "YXRRSET": 9007,
    "SERVFAIL": 9002,
    "NOTZONE": 9009,
}


@dataclass(frozen=True)
class DnsTarget:
    """The DNS server the cmdlets manage, and the TSIG key they sign updates with."""

    server: str
    port: int
    zone: str
    tsig_name: str
    tsig_secret: str
    tsig_algorithm: str = "hmac-sha256"
    server_name: str = "DC1"
    timeout: float = 5.0

    @property
    def key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.tsig_name, self.tsig_secret, self.tsig_algorithm)

    @property
    def origin(self) -> dns.name.Name:
        return dns.name.from_text(self.zone)


def _target(ctx: Context) -> DnsTarget:
    t = getattr(ctx.state, "dns", None)
    if not isinstance(t, DnsTarget):
        raise PSError("The DNS server cmdlets are available only on the DNS server.")
    return t


def _cim_error(message: str, code: int, category: str, target: str, cim_class: str, cmdlet: str) -> PSError:
    return PSError(
        message,
        category,
        "CimException",
        f"WIN32 {code},{cmdlet}",
        target=target,
        target_type=f"{CIM_NS}/{cim_class}",
    )


def _check_zone(t: DnsTarget, zone: Any, cmdlet: str) -> None:
    if to_text(zone).rstrip(".").lower() != t.zone.rstrip(".").lower():
        raise _cim_error(
            f"Failed to get the zone information for {to_text(zone)} on server {t.server_name}.",
            9601,
            "ObjectNotFound",
            to_text(zone),
            "DnsServerResourceRecord",
            cmdlet,
        )


def _relative(t: DnsTarget, name: Any) -> dns.name.Name:
    text = to_text(name).strip()
    if text in ("", "@"):
        return dns.name.empty
    n = dns.name.from_text(text, origin=t.origin) if not text.endswith(".") else dns.name.from_text(text)
    if n.is_subdomain(t.origin):
        return n.relativize(t.origin)
    return dns.name.from_text(text, origin=None) if text.endswith(".") else n.relativize(t.origin)


def _host_name(rel: dns.name.Name) -> str:
    return "@" if rel == dns.name.empty else rel.to_text()


def _record_data(rdata: Any) -> PSObject:
    rtype = dns.rdatatype.to_text(rdata.rdtype)
    cls = f"Microsoft.Management.Infrastructure.CimInstance#{CIM_NS}/DnsServerResourceRecord{rtype}"
    if rtype == "A":
        props: dict[str, Any] = {"IPv4Address": PSIPAddress(rdata.address)}
    elif rtype == "AAAA":
        props = {"IPv6Address": rdata.address}
    elif rtype == "CNAME":
        props = {"HostNameAlias": rdata.target.to_text()}
    elif rtype == "NS":
        props = {"NameServer": rdata.target.to_text()}
    elif rtype == "MX":
        props = {"MailExchange": rdata.exchange.to_text(), "Preference": rdata.preference}
    elif rtype == "PTR":
        props = {"PtrDomainName": rdata.target.to_text()}
    elif rtype == "TXT":
        props = {"DescriptiveText": b"".join(rdata.strings).decode(errors="replace")}
    elif rtype == "SRV":
        props = {
            "DomainName": rdata.target.to_text(),
            "Port": rdata.port,
            "Priority": rdata.priority,
            "Weight": rdata.weight,
        }
    elif rtype == "SOA":
        props = {
            "ExpireLimit": PSTimeSpan(rdata.expire),
            "MinimumTimeToLive": PSTimeSpan(rdata.minimum),
            "PrimaryServer": rdata.mname.to_text(),
            "RefreshInterval": PSTimeSpan(rdata.refresh),
            "ResponsiblePerson": rdata.rname.to_text(),
            "RetryDelay": PSTimeSpan(rdata.retry),
            "SerialNumber": rdata.serial,
        }
    else:
        props = {"Data": rdata.to_text()}
    props["PSComputerName"] = None
    first = next(iter(props.values()))
    return PSObject(props, cls, text=to_text(first))


def _record(t: DnsTarget, rel: dns.name.Name, ttl: int, rdata: Any) -> PSObject:
    rtype = dns.rdatatype.to_text(rdata.rdtype)
    labels = ",".join(f"DC={p}" for p in t.zone.rstrip(".").split("."))
    host = _host_name(rel)
    return PSObject(
        {
            "DistinguishedName": (
                f"DC={host},DC={t.zone.rstrip('.')},cn=MicrosoftDNS,DC=DomainDnsZones,{labels}"
            ),
            "HostName": host,
            "RecordClass": "IN",
            "RecordData": _record_data(rdata),
            "RecordType": rtype,
            "Timestamp": None,
            "TimeToLive": PSTimeSpan(ttl),
            "Type": int(rdata.rdtype),
            "PSComputerName": None,
        },
        f"Microsoft.Management.Infrastructure.CimInstance#{CIM_NS}/DnsServerResourceRecord",
        text="DnsServerResourceRecord",
        display=("HostName", "RecordType", "Type", "Timestamp", "TimeToLive", "RecordData"),
    )


def _unreachable(t: DnsTarget, cmdlet: str, e: Exception) -> PSError:
    return _cim_error(
        f"Failed to reach DNS server {t.server_name} ({t.server}): The RPC server is unavailable. "
        f"({type(e).__name__})",
        1722,
        "ConnectionError",
        t.server_name,
        "DnsServerResourceRecord",
        cmdlet,
    )


def _records(
    t: DnsTarget, cmdlet: str, rel: dns.name.Name | None = None, rtype: str | None = None
) -> list[tuple[dns.name.Name, int, Any]]:
    """(relative name, ttl, rdata) for the zone's records, read with a TSIG-signed query or AXFR."""
    out: list[tuple[dns.name.Name, int, Any]] = []
    try:
        if rel is not None and rtype is not None:
            q = dns.message.make_query(rel.derelativize(t.origin), rtype)
            q.use_tsig(t.key)
            resp = dns.query.tcp(q, t.server, port=t.port, timeout=t.timeout)
            for rrset in resp.answer:
                if rrset.rdtype == dns.rdatatype.from_text(rtype):
                    out += [(rel, rrset.ttl, rd) for rd in rrset]
            return out
        zone = dns.zone.from_xfr(
            dns.query.xfr(
                t.server, t.zone, port=t.port, keyring=t.key, timeout=t.timeout, lifetime=t.timeout * 2
            )
        )
    except (dns.exception.DNSException, OSError) as e:
        raise _unreachable(t, cmdlet, e) from None
    for name, ttl, rdata in zone.iterate_rdatas():
        if rel is not None and name != rel:
            continue
        if rtype is not None and rdata.rdtype != dns.rdatatype.from_text(rtype):
            continue
        out.append((name, ttl, rdata))
    return out


def _send(
    t: DnsTarget, update: dns.update.UpdateMessage, cmdlet: str, failure: str, target: str, cim_class: str
) -> None:
    try:
        resp = dns.query.tcp(update, t.server, port=t.port, timeout=t.timeout)
    except (dns.exception.DNSException, OSError) as e:
        raise _unreachable(t, cmdlet, e) from None
    rcode = dns.rcode.to_text(resp.rcode())
    if rcode != "NOERROR":
        raise _cim_error(
            f"{failure} ({rcode})",
            RCODE_WIN32.get(rcode, 9002),
            "InvalidOperation" if rcode != "NXRRSET" else "ObjectNotFound",
            target,
            cim_class,
            cmdlet,
        )


def _rrtype(a: dict[str, Any]) -> str | None:
    if "RRType" not in a:
        return None
    rtype = to_text(a["RRType"]).upper()
    try:
        dns.rdatatype.from_text(rtype)
    except dns.rdatatype.UnknownRdatatype:
        raise PSError(
            f"Cannot validate argument on parameter 'RRType'. The argument \"{to_text(a['RRType'])}\" "
            'does not belong to the set "HInfo,Afsdb,Atma,Isdn,Key,Mb,Md,Mf,Mg,MInfo,Mr,Mx,NsNxt,Rp,Rt,'
            "Wks,X25,A,AAAA,CName,Ptr,Srv,Txt,Wins,WinsR,Ns,Soa,NasP,NasPtr,DName,Gpos,Loc,DhcId,Naptr,"
            'RRSig,DnsKey,DS,NSec,NSec3,NSec3Param,Tlsa" specified by the ValidateSet attribute.',
            "InvalidData",
            "ParameterBindingValidationException",
            "ParameterArgumentValidationError,Get-DnsServerResourceRecord",
        ) from None
    return rtype


def _ttl(a: dict[str, Any], default: int = 3600) -> int:
    if "TimeToLive" not in a:
        return default
    v = a["TimeToLive"]
    if isinstance(v, PSTimeSpan):
        return v.seconds
    try:
        return PSTimeSpan.parse(to_text(v)).seconds
    except ValueError:
        raise PSError(
            f"Cannot process argument transformation on parameter 'TimeToLive'. Cannot convert value "
            f'"{to_text(v)}" to type "System.TimeSpan".',
            "InvalidData",
            "ParameterBindingArgumentTransformationException",
            "ParameterArgumentTransformationError,Add-DnsServerResourceRecordA",
        ) from None


def _get_records(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    t = _target(ctx)
    cmdlet = "Get-DnsServerResourceRecord"
    _check_zone(t, a["ZoneName"], cmdlet)
    rel = _relative(t, a["Name"]) if "Name" in a else None
    found = _records(t, cmdlet, rel, _rrtype(a))
    if not found and rel is not None:
        raise _cim_error(
            f"Failed to get {to_text(a['Name'])} record in {to_text(a['ZoneName'])} zone on "
            f"{t.server_name} server.",
            9714,
            "ObjectNotFound",
            to_text(a["Name"]),
            "DnsServerResourceRecord",
            cmdlet,
        )
    return [_record(t, n, ttl, rd) for n, ttl, rd in found]


def _addresses(v: Any, cmdlet: str) -> list[str]:
    out = []
    for x in v if isinstance(v, list) else [v]:
        try:
            out.append(str(x if isinstance(x, PSIPAddress) else PSIPAddress(to_text(x))))
        except ValueError:
            raise PSError(
                f"Cannot process argument transformation on parameter 'IPv4Address'. Cannot convert value "
                f'"{to_text(x)}" to type "System.Net.IPAddress[]". Error: "An invalid IP address was '
                'specified."',
                "InvalidData",
                "ParameterBindingArgumentTransformationException",
                f"ParameterArgumentTransformationError,{cmdlet}",
            ) from None
    return out


def _add_a(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    t = _target(ctx)
    cmdlet = "Add-DnsServerResourceRecordA"
    _check_zone(t, a["ZoneName"], cmdlet)
    rel = _relative(t, a["Name"])
    ips = _addresses(a["IPv4Address"], cmdlet)
    ttl = _ttl(a)
    existing = {rd.address for _, _, rd in _records(t, cmdlet, rel, "A")}
    name_text = to_text(a["Name"])
    if any(ip in existing for ip in ips):
        raise _cim_error(
            f"Failed to create resource record {name_text} in {t.zone} zone on server {t.server_name}.",
            9711,
            "ResourceExists",
            name_text,
            "DnsServerResourceRecordA",
            cmdlet,
        )
    upd = dns.update.UpdateMessage(t.origin, keyring=t.key)
    for ip in ips:
        upd.add(rel, ttl, "A", ip)
    _send(
        t,
        upd,
        cmdlet,
        f"Failed to create resource record {name_text} in {t.zone} zone on server {t.server_name}.",
        name_text,
        "DnsServerResourceRecordA",
    )
    if a.get("PassThru"):
        return [_record(t, n, tl, rd) for n, tl, rd in _records(t, cmdlet, rel, "A") if rd.address in ips]
    return []


def _a_of(obj: Any, which: str) -> tuple[str, str, int]:
    """(host name, IPv4 address, ttl seconds) of an A record object given to Set-DnsServerResourceRecord."""
    if not isinstance(obj, PSObject) or obj.get("RecordType") != "A":
        raise PSError(
            f"Cannot process argument transformation on parameter '{which}'. The simulator supports "
            "A records here (objects from Get-DnsServerResourceRecord -RRType A).",
            "InvalidData",
            "ParameterBindingArgumentTransformationException",
            "ParameterArgumentTransformationError,Set-DnsServerResourceRecord",
        )
    data = obj.get("RecordData")
    ip = data.get("IPv4Address") if isinstance(data, PSObject) else None
    ttl = obj.get("TimeToLive")
    return (
        to_text(obj.get("HostName")),
        to_text(ip),
        ttl.seconds if isinstance(ttl, PSTimeSpan) else int(ttl or 0),
    )


def _set_record(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    t = _target(ctx)
    cmdlet = "Set-DnsServerResourceRecord"
    _check_zone(t, a["ZoneName"], cmdlet)
    old_host, old_ip, _ = _a_of(a["OldInputObject"], "OldInputObject")
    new_host, new_ip, new_ttl = _a_of(a["NewInputObject"], "NewInputObject")
    try:
        new_ip = str(PSIPAddress(new_ip))
    except ValueError:
        raise PSError(
            f'Cannot convert value "{new_ip}" to type "System.Net.IPAddress".',
            "InvalidArgument",
            "PSInvalidCastException",
            "InvalidCastParseTargetInvocation",
        ) from None
    if old_host.lower() != new_host.lower():
        raise _cim_error(
            f"Resource record in OldInputObject doesn't match the one in NewInputObject: HostName "
            f"'{old_host}' vs '{new_host}'.",
            87,
            "InvalidArgument",
            old_host,
            "DnsServerResourceRecord",
            cmdlet,
        )
    rel = _relative(t, old_host)
    failure = f"Failed to update record {old_host} in zone {t.zone} on server {t.server_name}."
    upd = dns.update.UpdateMessage(t.origin, keyring=t.key)
    upd.present(rel, "A", old_ip)
    upd.delete(rel, "A", old_ip)
    upd.add(rel, new_ttl, "A", new_ip)
    _send(t, upd, cmdlet, failure, old_host, "DnsServerResourceRecord")
    if a.get("PassThru"):
        return [_record(t, n, tl, rd) for n, tl, rd in _records(t, cmdlet, rel, "A") if rd.address == new_ip]
    return []


def _remove_record(ctx: Context, a: dict[str, Any], inp: list[Any]) -> list[Any]:
    t = _target(ctx)
    cmdlet = "Remove-DnsServerResourceRecord"
    _check_zone(t, a["ZoneName"], cmdlet)
    if "InputObject" in a:
        obj = a["InputObject"]
        if not isinstance(obj, PSObject) or obj.get("HostName") is None:
            raise PSError(
                "Cannot bind parameter 'InputObject': expected a record from Get-DnsServerResourceRecord.",
                "InvalidArgument",
                "ParameterBindingException",
                "CannotConvertArgument,Remove-DnsServerResourceRecord",
            )
        name, rtype = to_text(obj.get("HostName")), to_text(obj.get("RecordType"))
        data = obj.get("RecordData")
        value = to_text(data) if isinstance(data, PSObject) else None
    else:
        if "Name" not in a or "RRType" not in a:
            raise PSError(
                "Parameter set cannot be resolved using the specified named parameters.",
                "InvalidArgument",
                "ParameterBindingException",
                "AmbiguousParameterSet,Remove-DnsServerResourceRecord",
            )
        name, rtype = to_text(a["Name"]), _rrtype(a) or "A"
        value = to_text(a["RecordData"]) if "RecordData" in a else None
    if not a.get("Force") and a.get("Confirm", True) is not False:
        raise PSError(
            "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.",
            "InvalidOperation",
            "PSInvalidOperationException",
            "InvalidOperation,Remove-DnsServerResourceRecord",
        )
    rel = _relative(t, name)
    current = [rd for _, _, rd in _records(t, cmdlet, rel, rtype)]
    if value is not None:
        current = [rd for rd in current if rd.to_text().rstrip(".") == value.rstrip(".")]
    if not current:
        raise _cim_error(
            f"Failed to get {name} record in {t.zone} zone on {t.server_name} server.",
            9714,
            "ObjectNotFound",
            name,
            "DnsServerResourceRecord",
            cmdlet,
        )
    upd = dns.update.UpdateMessage(t.origin, keyring=t.key)
    for rd in current:
        upd.delete(rel, rd)
    _send(
        t,
        upd,
        cmdlet,
        f"Failed to remove {name} record in {t.zone} zone on {t.server_name} server.",
        name,
        "DnsServerResourceRecord",
    )
    return []


def dns_cmdlets() -> list[Cmdlet]:
    ns = "Microsoft.Management.Infrastructure.CimCmdlets"
    zone = Param("ZoneName", position=0, mandatory=True, aliases=("Zone",))
    extra = (
        Param("ComputerName", aliases=("Cn",)),
        Param("CimSession", aliases=("Session",)),
        Param("ThrottleLimit"),
        Param("AsJob", switch=True),
    )
    return [
        Cmdlet(
            "Get-DnsServerResourceRecord",
            (zone, Param("Name", position=1), Param("RRType"), Param("Node", switch=True), *extra),
            _get_records,
            namespace=ns,
        ),
        Cmdlet(
            "Add-DnsServerResourceRecordA",
            (
                zone,
                Param("Name", mandatory=True),
                Param("IPv4Address", mandatory=True),
                Param("TimeToLive"),
                Param("AllowUpdateAny", switch=True),
                Param("CreatePtr", switch=True),
                Param("AgeRecord", switch=True),
                Param("PassThru", switch=True),
                *extra,
            ),
            _add_a,
            namespace=ns,
            changes=True,
        ),
        Cmdlet(
            "Set-DnsServerResourceRecord",
            (
                zone,
                Param("OldInputObject", mandatory=True),
                Param("NewInputObject", mandatory=True),
                Param("PassThru", switch=True),
                *extra,
            ),
            _set_record,
            namespace=ns,
            changes=True,
        ),
        Cmdlet(
            "Remove-DnsServerResourceRecord",
            (
                zone,
                Param("Name"),
                Param("RRType"),
                Param("RecordData"),
                Param("InputObject"),
                Param("Force", switch=True),
                *extra,
            ),
            _remove_record,
            namespace=ns,
            per_object="InputObject",
            changes=True,
        ),
    ]
