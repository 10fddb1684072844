"""The pre-switch gate: before anything moves traffic (DNS, ASA), prove that the VIP answers every virtual
service's ports from the admin host and that the balancer sees every real server up. A fact reads the
balancer's own view (`exha-lb status --json` on the VM); the probes are plain TCP connects (SMTP: a 220
greeting) from where pyinfra runs."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Generator
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FactBase, FunctionCommand, operation

from roles.winrm.inputs import InputError

STATUS = "/opt/exha-lb/venv/bin/exha-lb status --config /etc/exha-lb/exha-lb.toml --json"
#: seconds between gate rounds while waiting for the balancer's health checks to rise
ROUND = 1.0


class BalancerState(FactBase[Any]):
    """Returns the running balancer's state (`GET /api/state` through `exha-lb status --json`), or None when
    it is not installed or not running::

        {"services": [{"name": "smtp", "vip": "10.0.0.28", "servers": [{"address": "10.0.0.23",
                       "state": "up", "admin": "enabled", ...}]}]}
    """

    command = f"test -x /opt/exha-lb/venv/bin/exha-lb && {STATUS} 2>/dev/null || true"

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> Any:
        try:
            return json.loads("\n".join(output))
        except json.JSONDecodeError:
            return None


def service_ports(services: list[dict[str, Any]]) -> dict[str, list[int]]:
    """{service name: its VIP ports}, from the service's own `ports` or its template's."""
    from lb.templates import load_template

    out: dict[str, list[int]] = {}
    for s in services:
        ports = s.get("ports")
        if ports is None:
            ports = load_template(s["template"], (), "site", f"services.{s['name']}.template").data.get("ports")
        if not isinstance(ports, list) or not all(isinstance(p, int) for p in ports):
            raise InputError(f"service {s['name']} has no fixed ports to probe ({ports!r})", field="services")
        out[s["name"]] = list(ports)
    return out


def probe(address: str, port: int, timeout: float = 1.5) -> str | None:
    """None when address:port accepts a connection (and, on 25, greets with 220); else what went wrong."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            if port == 25:
                conn.settimeout(timeout)
                greeting = conn.recv(512).decode(errors="replace")
                if not greeting.startswith("220"):
                    return f"{address}:{port} greeted {greeting.strip()[:60]!r}, not 220"
                conn.sendall(b"QUIT\r\n")
    except OSError as e:
        return f"{address}:{port} {e.strerror or type(e).__name__}"
    return None


def problems(state: Any, vip: str, ports: dict[str, list[int]], servers: dict[str, list[str]],
             do_probe: bool = True) -> list[str]:
    """Why the VIP is not proven yet (empty when it is): balancer state, servers up, ports answering."""
    if not state or not isinstance(state.get("services"), list):
        return ["the balancer is not running (no state from exha-lb status)"]
    found: list[str] = []
    by_name = {s.get("name"): s for s in state["services"]}
    for name, wanted in servers.items():
        svc = by_name.get(name)
        if svc is None:
            found.append(f"service {name} is not configured on the balancer")
            continue
        if svc.get("vip") != vip:
            found.append(f"service {name} listens on {svc.get('vip')}, not {vip}")
        up = {s["address"] for s in svc.get("servers", []) if s.get("state") == "up" and s.get("admin") == "enabled"}
        missing = [a for a in wanted if a not in up]
        if missing:
            found.append(f"service {name}: real server(s) {', '.join(missing)} not up")
    if do_probe and not found:
        for name, plist in ports.items():
            for port in plist:
                why = probe(vip, port)
                if why:
                    found.append(f"service {name}: {why}")
    return found


def _summary(vip: str, ports: dict[str, list[int]], servers: dict[str, list[str]]) -> str:
    parts = [f"{n} ({'/'.join(str(p) for p in ps)}, {len(servers[n])}/{len(servers[n])} up)" for n, ps in ports.items()]
    return f"VIP {vip} answers {', '.join(parts)}"


def _wait(state: Any, host: Any, vip: str, ports: dict[str, list[int]], servers: dict[str, list[str]],
          timeout: float) -> bool:
    """Execute-time wait: re-read the balancer and probe until the VIP is proven or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        found = problems(host.get_fact(BalancerState), vip, ports, servers)
        if not found:
            host.log(_summary(vip, ports, servers), logger.info)
            return True
        if time.monotonic() >= deadline:
            host.log(f"pre-switch gate failed after {timeout:g}s, nothing moved traffic: {'; '.join(found)}",
                      logger.error)
            return False
        time.sleep(ROUND)


@operation()
def vip_serves(vip: str, services: list[dict[str, Any]], real_servers: list[str],
               timeout: float = 60.0) -> Generator[FunctionCommand, None, None]:
    """
    The pre-switch gate: the VIP answers every service's ports with every real server up. Converged: a noop.
    Otherwise waits (at execute time) up to `timeout` seconds and fails the run if it never holds.

    + vip: the VIP, e.g. 10.0.0.28
    + services: the site's services (name, template, optional ports / real_servers)
    + real_servers: the servers every service balances unless it names its own
    + timeout: seconds to wait for the health checks to rise after a (re)start

    Examples:

    .. code:: python

        gate.vip_serves(name="Pre-switch gate", vip="10.0.0.28", services=site["services"],
                        real_servers=site["real_servers"])
    """
    ports = service_ports(services)
    servers = {s["name"]: list(s.get("real_servers") or real_servers) for s in services}
    found = problems(host.get_fact(BalancerState), vip, ports, servers)
    if not found:
        host.noop(_summary(vip, ports, servers))
        return
    yield FunctionCommand(_wait, (vip, ports, servers, float(timeout)), {})
