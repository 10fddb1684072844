"""The site model: one declarative description of the site (VIP, virtual services from templates, real
servers, CAS array, ASA objects, DNS zone, balancer VM and its placement, which device is which), read from
a TOML file the inventory names, validated once at load, and turned into the group-data names every role's
deploy reads (`vip`, `zone`, `balancer_services`, …).

Every error is one line naming the file and the field: ``inventory/lab.site.toml: services[1].template:
unknown template 'exchange2013-smpt'; available: …``.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from roles.balancer.model import SiteError

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_OBJECT = re.compile(r"^\S{1,64}$")

#: credential fields each device kind needs (keys of the lab's credentials file entries)
CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "esxi": ("host", "username", "password"),
    "dns": ("primary", "zone", "tsig_name", "tsig_secret"),
    "firewalls": ("host", "username", "password", "enable_secret"),
    "winrm": ("host", "username", "password"),
    "balancers": ("user", "key_file", "known_hosts"),
}


def _fqdn(value: str) -> str:
    text = value.strip().rstrip(".")
    if "." not in text or not all(_LABEL.match(p) for p in text.split(".")):
        raise ValueError(f"{value!r} is not a fully qualified domain name")
    return text.lower()


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(str(value).strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CasArray(_Strict):
    """The Client Access array: its name (the A record in the zone) and FQDN."""

    name: str
    fqdn: str
    ttl: int | None = Field(default=None, ge=0, le=2147483647)
    ad_site: str | None = None

    @field_validator("fqdn")
    @classmethod
    def _check_fqdn(cls, value: str) -> str:
        return _fqdn(value)


class Exchange(_Strict):
    """Exchange settings the balancer needs: static RPC ports (Exchange 2010 RPC Client Access)."""

    rpc_port: int = Field(default=60000, ge=1024, le=65535)
    ab_port: int = Field(default=60001, ge=1024, le=65535)

    @model_validator(mode="after")
    def _distinct(self) -> Exchange:
        if self.rpc_port == self.ab_port:
            raise ValueError(f"ab_port {self.ab_port} is also rpc_port; use two different ports")
        return self


class Service(BaseModel):
    """One virtual service: a name, a balancer template, and template settings it overrides (health, …)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    template: str
    real_servers: list[str] | None = None

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str) -> str:
        from lb.templates import available

        names = available()
        if value not in names:
            raise ValueError(f"unknown template {value!r}; available: {', '.join(names)}")
        return value

    @field_validator("real_servers")
    @classmethod
    def _servers(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _unique_addresses(value)

    def settings(self) -> dict[str, Any]:
        """The template overrides given beside name/template/real_servers (e.g. health = {…})."""
        return dict(self.__pydantic_extra__ or {})


class Placement(_Strict):
    """Where the balancer appliance goes on ESXi and what it boots with."""

    datastore: str
    network: str
    ova: str | None = None
    folder: str | None = None
    resource_pool: str | None = None
    ip_timeout: int = Field(default=300, ge=10)
    properties: dict[str, str] = Field(default_factory=dict)


class Balancer(_Strict):
    """The balancer VM: its name in vSphere, host name and final address, network settings, placement."""

    vm_name: str
    hostname: str = Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
    address: str
    prefix_len: int = Field(ge=1, le=32)
    gateway: str
    nameservers: list[str] = Field(default_factory=list)
    search: list[str] = Field(default_factory=list)
    domain: str = ""
    placement: Placement

    @field_validator("address", "gateway")
    @classmethod
    def _check_address(cls, value: str) -> str:
        return _ipv4(value)

    @field_validator("nameservers")
    @classmethod
    def _check_nameservers(cls, value: list[str]) -> list[str]:
        return [_ipv4(a) for a in value]

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"{self.address}/{self.prefix_len}", strict=False)


class Asa(_Strict):
    """The ASA network objects that point the outside at Exchange (their NAT follows them)."""

    objects: list[str] = Field(min_length=1)
    save: bool = True

    @field_validator("objects")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _OBJECT.match(name):
                raise ValueError(f"{name!r} is not an ASA object name (1-64 characters, no spaces)")
        if len(set(value)) != len(value):
            raise ValueError(f"an object is listed twice: {value}")
        return value


class Devices(_Strict):
    """Which inventory host plays which part (names after the connector's `@kind/`)."""

    esxi: list[str] = Field(min_length=1)
    dns: list[str] = Field(min_length=1)
    firewalls: list[str] = Field(min_length=1)
    exchange: list[str] = Field(min_length=1)
    balancers: list[str] = Field(min_length=1)
    windows_dns: list[str] = Field(default_factory=list)


def _unique_addresses(values: list[str]) -> list[str]:
    seen: list[str] = []
    for v in values:
        a = _ipv4(v)
        if a in seen:
            raise ValueError(f"real server {a} is listed twice")
        seen.append(a)
    return seen


class Site(_Strict):
    """The whole site."""

    name: str
    zone: str
    vip: str
    real_servers: list[str] = Field(min_length=1)
    cas_array: CasArray
    exchange: Exchange = Exchange()
    services: list[Service] = Field(min_length=1)
    balancer: Balancer
    asa: Asa
    devices: Devices

    @field_validator("zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        return _fqdn(value)

    @field_validator("vip")
    @classmethod
    def _check_vip(cls, value: str) -> str:
        return _ipv4(value)

    @field_validator("real_servers")
    @classmethod
    def _check_real_servers(cls, value: list[str]) -> list[str]:
        return _unique_addresses(value)

    @model_validator(mode="after")
    def _coherent(self) -> Site:
        net = self.balancer.network
        if ipaddress.IPv4Address(self.vip) not in net:
            raise _FieldError("vip", f"{self.vip} is not in the balancer's subnet {net} "
                              f"(balancer.address {self.balancer.address}/{self.balancer.prefix_len})")
        if self.vip == self.balancer.address or self.vip in self.real_servers:
            raise _FieldError("vip", f"{self.vip} is already the balancer's or a real server's address")
        fqdn = self.cas_array.fqdn
        if fqdn != f"{self.cas_array.name.lower()}.{self.zone}":
            raise _FieldError("cas_array.fqdn", f"{fqdn} is not {self.cas_array.name}.{self.zone} "
                              "(the record the zone holds)")
        names = [s.name for s in self.services]
        for i, s in enumerate(self.services):
            if names.index(s.name) != i:
                raise _FieldError(f"services[{i}].name", f"service {s.name!r} is listed twice")
        return self

    # -- what the roles read -----------------------------------------------------------------------------
    def services_data(self) -> list[dict[str, Any]]:
        out = []
        for s in self.services:
            item: dict[str, Any] = {"name": s.name, "template": s.template, **s.settings()}
            if s.real_servers is not None:
                item["real_servers"] = list(s.real_servers)
            out.append(item)
        return out

    def group_data(self) -> dict[str, Any]:
        """The site as the group-data names the role deploys read (plus `site`, the whole model)."""
        b, p = self.balancer, self.balancer.placement
        data: dict[str, Any] = {
            "site": self.model_dump(mode="json"),
            "zone": self.zone, "vip": self.vip,
            "cas_array_name": self.cas_array.name, "cas_array_fqdn": self.cas_array.fqdn,
            "asa_object_names": list(self.asa.objects),
            "exchange_rpc_port": self.exchange.rpc_port, "exchange_ab_port": self.exchange.ab_port,
            "balancer_prefix_len": b.prefix_len, "balancer_gateway": b.gateway,
            "balancer_nameservers": list(b.nameservers), "balancer_search": list(b.search),
            "balancer_domain": b.domain, "balancer_real_servers": list(self.real_servers),
            "balancer_services": self.services_data(),
            "balancer_vm_name": b.vm_name, "balancer_datastore": p.datastore, "balancer_network": p.network,
            "balancer_properties": dict(p.properties), "balancer_ip_timeout": p.ip_timeout,
        }
        optional = {"cas_array_ttl": self.cas_array.ttl, "exchange_site": self.cas_array.ad_site,
                    "balancer_ova": p.ova, "balancer_folder": p.folder, "balancer_resource_pool": p.resource_pool}
        data.update({k: v for k, v in optional.items() if v is not None})
        return data

    def balancer_host_data(self) -> dict[str, Any]:
        """Host data of the balancer VM's inventory entry: where it ends up and how vSphere names it."""
        return {"vm_name": self.balancer.vm_name, "vm_address": self.balancer.address,
                "balancer_hostname": self.balancer.hostname}


class _FieldError(ValueError):
    """A cross-field check failing on one named field (reported under that field, not the model)."""

    def __init__(self, field: str, cause: str) -> None:
        super().__init__(cause)
        self.field, self.cause = field, cause


def _where(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "*"


def parse_site(data: Mapping[str, Any], source: str) -> Site:
    """Validate a site description (already parsed) from `source`; one-line SiteError on the first problem."""
    try:
        return Site.model_validate(dict(data))
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, _FieldError):
            raise SiteError(cause.cause, source=source, field=cause.field) from None
        loc = tuple(p for p in err["loc"] if p not in ("function-after",))
        msg = str(cause) if isinstance(cause, ValueError) else err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting (check the spelling)"
        elif err["type"] == "missing":
            msg = "missing; this setting is required"
        raise SiteError(msg, source=source, field=_where(loc)) from None


def load_site(path: str | Path) -> Site:
    """Read and validate the site TOML file at `path`."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SiteError(f"cannot read the site description ({e.strerror})", source=source, field="*") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SiteError(f"not valid TOML ({e})", source=source, field="*") from None
    return parse_site(data, source)


def check_credentials(site: Site, credentials: Mapping[str, Any], source: str) -> None:
    """Every device the site names has its credentials, with every field it needs (SiteError otherwise).

    `credentials` maps endpoint keys (asa1, esxi1, dns, winrm-<host>, ssh-<vm>) to their fields.
    """
    d = site.devices
    needs: list[tuple[str, tuple[str, ...]]] = [(h, CREDENTIAL_FIELDS["esxi"]) for h in d.esxi]
    needs += [("dns", CREDENTIAL_FIELDS["dns"])]
    needs += [(h, CREDENTIAL_FIELDS["firewalls"]) for h in d.firewalls]
    needs += [(f"winrm-{h}", CREDENTIAL_FIELDS["winrm"]) for h in [*d.exchange, *d.windows_dns]]
    needs += [(f"ssh-{h}", CREDENTIAL_FIELDS["balancers"]) for h in d.balancers]
    for key, fields in needs:
        entry = credentials.get(key)
        if not isinstance(entry, Mapping):
            raise SiteError(f"no credentials for {key} (the site's devices need them)", source=source,
                            field=key)
        for f in fields:
            if entry.get(f) in (None, ""):
                raise SiteError("missing credential", source=source, field=f"{key}.{f}")
