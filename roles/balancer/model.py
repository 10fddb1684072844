"""The balancer's desired state from inventory data: virtual services (name, VIP, template, settings, real
servers) shaped for the config template. Only the shape is checked here; the balancer itself validates the
rendered config on the host (`exha-lb check`), so a bad value is refused there, next to the old config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyinfra.api.exceptions import PyinfraError

from roles.errors import SiteConfigError

SOURCE = "inventory balancer_services"


class SiteError(SiteConfigError, PyinfraError):
    """Bad balancer site data; pyinfra reports it as one line ("pyinfra error: ...") instead of a traceback."""


@dataclass(frozen=True)
class Service:
    """One virtual service for the template: scalar settings, sub-tables (health, timeouts...), real servers."""

    name: str
    vip: str
    template: str
    settings: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    real_servers: tuple[dict[str, Any], ...] = ()


def _server(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, str):
        return {"address": raw}
    if not isinstance(raw, dict) or "address" not in raw:
        raise SiteError("expected an address or a table with address (and weight, port, enabled)",
                              source=SOURCE, field=where)
    return dict(raw)


def services(raw: Any, default_vip: str, default_servers: Any) -> list[Service]:
    """Inventory `balancer_services` (a list of tables) -> Services; `vip` and `real_servers` default to the
    site's VIP and `balancer_real_servers`."""
    if not isinstance(raw, list) or not raw:
        raise SiteError("expected a list of virtual services", source=SOURCE, field="balancer_services")
    out = []
    for i, item in enumerate(raw):
        where = f"balancer_services[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise SiteError("expected a table with a name", source=SOURCE, field=where)
        servers_raw = item.get("real_servers", default_servers)
        if not isinstance(servers_raw, list) or not servers_raw:
            raise SiteError("expected a list of real servers (or set balancer_real_servers)",
                                  source=SOURCE, field=f"{where}.real_servers")
        rest = {k: v for k, v in item.items() if k not in ("name", "vip", "template", "real_servers")}
        out.append(Service(
            name=item["name"], vip=str(item.get("vip") or default_vip), template=str(item.get("template") or ""),
            settings={k: v for k, v in rest.items() if not isinstance(v, dict)},
            tables={k: dict(v) for k, v in rest.items() if isinstance(v, dict)},
            real_servers=tuple(_server(s, f"{where}.real_servers[{j}]") for j, s in enumerate(servers_raw))))
    return out


def tls_files(raw: Any) -> dict[str, str]:
    """`balancer_tls_files`: {name in /etc/exha-lb/tls: local file} for offloading services (cert + key; a
    name ending in .key is a secret: mode 0600, readable by the balancer's user only)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SiteError("expected a table {name: local file}", source="inventory host data", field="balancer_tls_files")
    out: dict[str, str] = {}
    for name, local in raw.items():
        where = f"balancer_tls_files.{name}"
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise SiteError("expected a plain file name", source="inventory host data", field=where)
        if not isinstance(local, str) or not Path(local).is_file():
            raise SiteError(f"expected a readable local file, got {local!r}", source="inventory host data", field=where)
        out[name] = local
    return out


@dataclass(frozen=True)
class HostSpec:
    """The balancer VM's own settings from host data, validated before any operation is planned."""

    hostname: str
    domain: str
    address: str
    prefix_len: int
    gateway: str | None
    nameservers: tuple[str, ...]
    search: tuple[str, ...]
    vips: tuple[str, ...]


def host_spec(data: Any, default_name: str) -> HostSpec:
    """Host data (vm_address, balancer_* and the site's `vip`) -> HostSpec; a bad value raises SiteError naming
    the host data key, before anything is planned or changed."""
    from roles.balancer_host.operations import check_interface, check_ipv4, check_label
    from roles.errors import OperationInputError

    keys = {"hostname": "balancer_hostname", "address": "vm_address", "prefix_len": "balancer_prefix_len",
            "gateway": "balancer_gateway", "nameservers": "balancer_nameservers", "vips": "balancer_vips"}
    get = data.get
    vips = get("balancer_vips") or ([get("vip")] if get("vip") else [])
    servers = get("balancer_nameservers") or []
    try:
        name = check_label(get("balancer_hostname") or default_name, "hostname")
        address = check_ipv4(get("vm_address"), "address")
        prefix_len, gateway = check_interface(address, get("balancer_prefix_len"), get("balancer_gateway"))
        if not isinstance(servers, list) or not 1 <= len(servers) <= 3:
            raise OperationInputError(f"expected 1-3 resolver addresses, got {servers!r}", field="nameservers")
        nameservers = tuple(check_ipv4(s, f"nameservers[{i}]") for i, s in enumerate(servers))
        vip_list = tuple(check_ipv4(v, f"vips[{i}]") for i, v in enumerate(vips))
    except OperationInputError as e:
        field = str(e.fields.get("field", ""))
        base, _, rest = field.partition("[")
        key = keys.get(base, base) + (f"[{rest}" if rest else "")
        raise SiteError(e.cause, source="inventory host data", field=key) from None
    return HostSpec(hostname=name, domain=str(get("balancer_domain") or ""), address=address,
                    prefix_len=prefix_len, gateway=gateway, nameservers=nameservers,
                    search=tuple(str(s) for s in get("balancer_search") or ()), vips=vip_list)


@dataclass(frozen=True)
class VrrpSpec:
    """The keepalived pair: this VM's priority, the router id and the peers' addresses."""

    router_id: int
    priority: int
    peers: tuple[str, ...]


def vrrp_spec(data: Any, spec: HostSpec, peers: list[Any]) -> VrrpSpec | None:
    """`balancer_vrrp_router_id` (1-255) turns the pair on; `balancer_vrrp_priority` (1-254) per VM."""
    router_id = data.get("balancer_vrrp_router_id")
    if router_id is None:
        return None
    if isinstance(router_id, bool) or not isinstance(router_id, int) or not 1 <= router_id <= 255:
        raise SiteError(f"expected 1-255, got {router_id!r}", source="inventory host data",
                        field="balancer_vrrp_router_id")
    priority = data.get("balancer_vrrp_priority", 100)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 254:
        raise SiteError(f"expected 1-254, got {priority!r}", source="inventory host data",
                        field="balancer_vrrp_priority")
    others = tuple(str(p) for p in peers if p and p != spec.address)
    if not others or not spec.vips:
        raise SiteError("a VRRP pair needs a second balancer in the group and at least one VIP",
                        source="inventory host data", field="balancer_vrrp_router_id")
    return VrrpSpec(router_id=router_id, priority=priority, peers=others)
