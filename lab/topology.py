"""Load and validate the lab's plan (`lab/topology.toml`) into frozen dataclasses."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import TopologyError

DEFAULT_TOPOLOGY = Path(__file__).with_name("topology.toml")
ROLES = ("asa", "vsphere", "dns-primary", "dns-secondary", "exchange", "balancer-vm")


@dataclass(frozen=True)
class LabHost:
    """One lab host: a network namespace with one address on the lab bridge."""

    name: str
    role: str
    address: str
    fqdn: str
    namespace: str
    model: str = "esx"
    target_address: str | None = None
    vips: tuple[str, ...] = ()
    vm_name: str | None = None

    @property
    def all_addresses(self) -> tuple[str, ...]:
        """Every address this host may hold during the lab's life (first boot, target, VIPs)."""
        extra = (self.target_address,) if self.target_address else ()
        return (self.address, *extra, *self.vips)


@dataclass(frozen=True)
class Topology:
    """The whole plan: settings, hosts and the seed's pre-change state."""

    path: Path
    prefix: str
    domain: str
    prefix_len: int
    admin_address: str
    outside_nat_address: str
    hosts: dict[str, LabHost]
    cas_array_fqdn: str
    cas_array_address: str
    asa_objects: dict[str, str] = field(default_factory=dict)

    @property
    def switch_namespace(self) -> str:
        return f"{self.prefix}sw"

    @property
    def admin_interface(self) -> str:
        return f"{self.prefix}admin"

    def by_role(self, role: str) -> list[LabHost]:
        return [h for h in self.hosts.values() if h.role == role]

    def host(self, name: str) -> LabHost:
        return self.hosts[name]

    def lab_addresses(self) -> list[str]:
        """Every address that gets a host route from the admin workstation, in a stable order."""
        seen: dict[str, None] = {}
        for h in self.hosts.values():
            for a in h.all_addresses:
                seen.setdefault(a, None)
        return list(seen)


def _addr(path: str, fld: str, value: object) -> str:
    if not isinstance(value, str):
        raise TopologyError(path, fld, f"expected an IPv4 address as a string, got {value!r}")
    try:
        ip = ipaddress.IPv4Address(value)
    except ValueError:
        raise TopologyError(path, fld, f"{value!r} is not an IPv4 address") from None
    if ip.is_loopback or ip.is_multicast or ip.is_unspecified:
        raise TopologyError(path, fld, f"{value} cannot be a lab address (loopback, multicast or 0.0.0.0)")
    return value


def load_topology(path: Path | str | None = None) -> Topology:
    """Read the topology file (default: `$EXHA_LAB_TOPOLOGY` or lab/topology.toml) and validate it."""
    p = Path(path or os.environ.get("EXHA_LAB_TOPOLOGY") or DEFAULT_TOPOLOGY)
    sp = str(p)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise TopologyError(sp, "(file)", "not found; pass --topology or set EXHA_LAB_TOPOLOGY") from None
    except tomllib.TOMLDecodeError as e:
        raise TopologyError(sp, "(file)", f"not valid TOML: {e}") from None
    lab = raw.get("lab", {})
    prefix = str(lab.get("prefix", "exha-"))
    if not prefix or len(prefix) > 6 or not prefix.replace("-", "").isalnum():
        raise TopologyError(sp, "lab.prefix", "1-6 letters, digits or '-' (interface names are limited to 15)")
    prefix_len = lab.get("prefix_len", 24)
    if not isinstance(prefix_len, int) or not 8 <= prefix_len <= 30:
        raise TopologyError(sp, "lab.prefix_len", f"expected an integer 8-30, got {prefix_len!r}")
    domain = str(lab.get("domain", "corp.example")).rstrip(".")
    hosts: dict[str, LabHost] = {}
    used: dict[str, str] = {}
    admin = _addr(sp, "lab.admin_address", lab.get("admin_address"))
    used[admin] = "lab.admin_address"
    for name, h in (raw.get("hosts") or {}).items():
        fp = f"hosts.{name}"
        if not isinstance(h, dict):
            raise TopologyError(sp, fp, "expected a table")
        if len(prefix) + len(name) > 12 or not name.replace("-", "").isalnum():
            raise TopologyError(sp, fp, "host names: letters, digits, '-' and short enough for interface names")
        role = h.get("role")
        if role not in ROLES:
            raise TopologyError(sp, f"{fp}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        addr = _addr(sp, f"{fp}.address", h.get("address"))
        target = _addr(sp, f"{fp}.target_address", h["target_address"]) if "target_address" in h else None
        vips = tuple(_addr(sp, f"{fp}.vips[{i}]", v) for i, v in enumerate(h.get("vips", [])))
        for fld, a in [(f"{fp}.address", addr), (f"{fp}.target_address", target)]:
            if a is None:
                continue
            if a in used:
                raise TopologyError(sp, fld, f"{a} is already used by {used[a]}")
            used[a] = fld
        model = h.get("model", "esx")
        if role == "vsphere" and model not in ("esx", "vpx"):
            raise TopologyError(sp, f"{fp}.model", f"expected 'esx' or 'vpx', got {model!r}")
        hosts[name] = LabHost(
            name=name,
            role=role,
            address=addr,
            fqdn=str(h.get("fqdn", f"{name}.{domain}")),
            namespace=f"{prefix}{name}",
            model=model,
            target_address=target,
            vips=vips,
            vm_name=h.get("vm_name"),
        )
    for role in ("asa", "vsphere", "dns-primary", "exchange", "balancer-vm"):
        if not any(h.role == role for h in hosts.values()):
            raise TopologyError(sp, "hosts", f"needs at least one host with role {role!r}")
    seed = raw.get("seed", {})
    return Topology(
        path=p,
        prefix=prefix,
        domain=domain,
        prefix_len=prefix_len,
        admin_address=admin,
        outside_nat_address=str(lab.get("outside_nat_address", "198.51.100.25")),
        hosts=hosts,
        cas_array_fqdn=str(seed.get("cas_array_fqdn", f"outlook.{domain}")).rstrip("."),
        cas_array_address=_addr(sp, "seed.cas_array_address", seed.get("cas_array_address", "10.0.0.23")),
        asa_objects=dict(seed.get("asa_objects", {})),
    )
