"""The balancer's files rendered with jinja2 from templates/balancer/: its TOML config (from the inventory's
virtual services) and its hardened systemd unit."""

from __future__ import annotations

from roles.balancer.model import Service
from roles.balancer_host.render import render

USER = "exha-lb"
CONFIG = "/etc/exha-lb/exha-lb.toml"
VENV = "/opt/exha-lb/venv"
TOKEN_FILE = "admin.token"  # beside the config; the balancer resolves it relative to the config file
BIND = "CAP_NET_BIND_SERVICE"
NFT = ("CAP_NET_ADMIN", "CAP_NET_RAW")


def needs_nft(services: list[Service]) -> bool:
    """Port-"*" services (nftables redirect) and transparent ones need CAP_NET_ADMIN/CAP_NET_RAW as well."""
    def wild(s: Service) -> bool:
        return s.settings.get("ports") == "*" or s.settings.get("transparent") is True
    from_templates = {"exchange2010-mapi"}  # templates whose ports are "*"
    return any(wild(s) or (s.template in from_templates and "ports" not in s.settings) for s in services)


def config_text(services: list[Service], hostname: str, workers: int = 1, log_level: str = "info",
                admin_address: str = "127.0.0.1", admin_port: int = 9443) -> str:
    return render("exha-lb.toml.j2", services=services, hostname=hostname, workers=workers, log_level=log_level,
                  admin_address=admin_address, admin_port=admin_port, token_file=TOKEN_FILE)


def unit_text(services: list[Service], stop_timeout: int = 20) -> str:
    nft = needs_nft(services)
    return render("exha-lb.service.j2", user=USER, venv=VENV, config=CONFIG, stop_timeout=stop_timeout, nft=nft,
                  capabilities=[BIND, *NFT] if nft else [BIND])
