"""The balancer's files rendered with jinja2 from templates/balancer/: its TOML config (from the inventory's
virtual services) and its hardened systemd unit."""

from __future__ import annotations

from roles.balancer.model import HostSpec, Service, VrrpSpec
from roles.balancer_host.render import render

USER = "exha-lb"
CONFIG = "/etc/exha-lb/exha-lb.toml"
VENV = "/opt/exha-lb/venv"
KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
HEALTH_SCRIPT = "/usr/local/libexec/exha-lb-health"
SYSCTL_FILE = "/etc/sysctl.d/60-exha-lb.conf"
TOKEN_FILE = "admin.token"  # beside the config; the balancer resolves it relative to the config file
BIND = "CAP_NET_BIND_SERVICE"
NFT = "CAP_NET_ADMIN"
TRANSPARENT = ("CAP_NET_ADMIN", "CAP_NET_RAW")
#: templates whose services listen on every port of the VIP (an nftables redirect)
WILDCARD_TEMPLATES = frozenset({"exchange2010-mapi"})


def capabilities(services: list[Service]) -> list[str]:
    """What the service may do beyond an unprivileged user: bind ports below 1024; CAP_NET_ADMIN for nftables
    redirects (port-"*" services); CAP_NET_RAW as well for transparent services (IP_TRANSPARENT)."""
    caps = [BIND]
    wildcard = any(s.settings.get("ports") == "*" or (s.template in WILDCARD_TEMPLATES and "ports" not in s.settings)
                   for s in services)
    if wildcard:
        caps.append(NFT)
    if any(s.settings.get("transparent") is True for s in services):
        caps += [c for c in TRANSPARENT if c not in caps]
    return caps


def config_text(services: list[Service], hostname: str, workers: int = 1, log_level: str = "info",
                admin_address: str = "127.0.0.1", admin_port: int = 9443) -> str:
    return render("exha-lb.toml.j2", services=services, hostname=hostname, workers=workers, log_level=log_level,
                  admin_address=admin_address, admin_port=admin_port, token_file=TOKEN_FILE)


def unit_text(services: list[Service], stop_timeout: int = 20) -> str:
    caps = capabilities(services)
    return render("exha-lb.service.j2", user=USER, venv=VENV, config=CONFIG, stop_timeout=stop_timeout,
                  nft=NFT in caps, capabilities=caps)


def keepalived_text(spec: HostSpec, vrrp: VrrpSpec, admin: str = "127.0.0.1:9443", interface: str = "eth0") -> str:
    return render("keepalived.conf.j2", hostname=spec.hostname, health_script=HEALTH_SCRIPT, interface=interface,
                  router_id=vrrp.router_id, priority=vrrp.priority, address=spec.address, peers=vrrp.peers,
                  vips=spec.vips, admin=admin)


def health_text(admin: str = "127.0.0.1:9443") -> str:
    return render("exha-lb-health.j2", admin=admin)


def sysctl_text() -> str:
    return render("sysctl.conf.j2")
