"""The balancer's desired state from inventory data: virtual services (name, VIP, template, settings, real
servers) shaped for the config template. Only the shape is checked here; the balancer itself validates the
rendered config on the host (`exha-lb check`), so a bad value is refused there, next to the old config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roles.errors import SiteConfigError

SOURCE = "inventory balancer_services"


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
        raise SiteConfigError("expected an address or a table with address (and weight, port, enabled)",
                              source=SOURCE, field=where)
    return dict(raw)


def services(raw: Any, default_vip: str, default_servers: Any) -> list[Service]:
    """Inventory `balancer_services` (a list of tables) -> Services; `vip` and `real_servers` default to the
    site's VIP and `balancer_real_servers`."""
    if not isinstance(raw, list) or not raw:
        raise SiteConfigError("expected a list of virtual services", source=SOURCE, field="balancer_services")
    out = []
    for i, item in enumerate(raw):
        where = f"balancer_services[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise SiteConfigError("expected a table with a name", source=SOURCE, field=where)
        servers_raw = item.get("real_servers", default_servers)
        if not isinstance(servers_raw, list) or not servers_raw:
            raise SiteConfigError("expected a list of real servers (or set balancer_real_servers)",
                                  source=SOURCE, field=f"{where}.real_servers")
        rest = {k: v for k, v in item.items() if k not in ("name", "vip", "template", "real_servers")}
        out.append(Service(
            name=item["name"], vip=str(item.get("vip") or default_vip), template=str(item.get("template") or ""),
            settings={k: v for k, v in rest.items() if not isinstance(v, dict)},
            tables={k: dict(v) for k, v in rest.items() if isinstance(v, dict)},
            real_servers=tuple(_server(s, f"{where}.real_servers[{j}]") for j, s in enumerate(servers_raw))))
    return out
