"""A balancer VM's first-boot identity: host name, address, mask, gateway and DNS, from the
topology (as DHCP would hand them out), overridden by the appliance's vApp properties when the
importer set them (hostname, ip0, netmask0, gateway, DNS), as the appliance applies them on first
boot."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass

from lab.context import Lab
from lab.topology import LabHost

_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class GuestSettings:
    """What the VM configures on its first boot."""

    hostname: str
    address: str
    prefix_len: int
    gateway: str | None
    dns: tuple[str, ...]


def first_boot_settings(lab: Lab, host: LabHost) -> GuestSettings:
    """The topology's defaults: the host's first-boot address, the ASA as gateway, dc1/dns2 as DNS."""
    t = lab.topology
    gateway = next((h.address for h in t.by_role("asa")), None)
    dns = tuple(h.address for h in (*t.by_role("dns-primary"), *t.by_role("dns-secondary")))
    return GuestSettings(host.name, host.address, t.prefix_len, gateway, dns)


def _ipv4(value: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        return None


def apply_vapp(base: GuestSettings, host: LabHost, props: dict[str, str]) -> tuple[GuestSettings, list[str]]:
    """`base` with the vApp properties that are set and valid applied; plus one warning per value
    that was ignored. ip0 must be one of the host's lab addresses (only those are routed)."""
    warnings: list[str] = []
    changes: dict[str, object] = {}
    if name := props.get("hostname", "").strip():
        if _HOSTNAME.match(name):
            changes["hostname"] = name
        else:
            warnings.append(f"vApp property hostname={name!r} is not a valid host name; "
                            f"using {base.hostname}")
    if ip0 := props.get("ip0", "").strip():
        if _ipv4(ip0) and ip0 in host.all_addresses and ip0 not in host.vips:
            changes["address"] = ip0
        else:
            allowed = ", ".join(a for a in host.all_addresses if a not in host.vips)
            warnings.append(f"vApp property ip0={ip0!r} is not one of {host.name}'s lab addresses "
                            f"({allowed}); using {base.address}")
    if mask := props.get("netmask0", "").strip():
        try:
            changes["prefix_len"] = ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
        except ValueError:
            warnings.append(f"vApp property netmask0={mask!r} is not a netmask; using /{base.prefix_len}")
    if gw := props.get("gateway", "").strip():
        if _ipv4(gw):
            changes["gateway"] = _ipv4(gw)
        else:
            warnings.append(f"vApp property gateway={gw!r} is not an IPv4 address; using {base.gateway}")
    if dns := props.get("DNS", "").strip():
        servers = [s for s in re.split(r"[,\s]+", dns) if s]
        if servers and all(_ipv4(s) for s in servers):
            changes["dns"] = tuple(servers)
        else:
            warnings.append(f"vApp property DNS={dns!r} is not a list of IPv4 addresses; using the lab's DNS")
    return dataclasses.replace(base, **changes), warnings  # type: ignore[arg-type]
