"""The admin listener: JSON state, the live status page, Prometheus /metrics and token-protected server
enable/disable/drain. A small HTTP/1.1 server on asyncio (one request per connection)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from lb import log
from lb.config import Config, RealServer, VirtualService
from lb.health import Monitor
from lb.state import ADMIN_CODES, ADMIN_NAMES, ServerTable

PAGE = Path(__file__).resolve().parent / "status.html"
ACTIONS = {"enable": "enabled", "disable": "disabled", "drain": "drain"}


@dataclass
class View:
    """What the admin API reads: the live config, the shared table and the health monitor."""

    config: Config
    table: ServerTable
    monitor: Monitor
    started: float
    refresh: Callable[[], Awaitable[None]] | None = None  # fresh counters into the table before a read


def _server_port(vs: VirtualService, rs: RealServer) -> int | str:
    """The port toward the server: its own, the service's server_port, the single VS port, or "*" (as dialled)."""
    if rs.port is not None:
        return rs.port
    if vs.server_port is not None:
        return vs.server_port
    return vs.ports[0] if vs.ports and len(vs.ports) == 1 else "*"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def state(view: View) -> dict[str, Any]:
    """JSON-ready state of every service and real server."""
    table, cfg = view.table, view.config
    services = []
    for vs in cfg.virtual_services:
        servers = []
        tot = [0, 0, 0, 0]
        for rs in vs.real_servers:
            key = rs.key(vs.name)
            slot = table.slot(key)
            active, total, b_in, b_out = table.counters(slot)
            tot = [tot[0] + active, tot[1] + total, tot[2] + b_in, tot[3] + b_out]
            st = view.monitor.status.get(key)
            last = None
            if st is not None and st.last is not None:
                last = {"ok": st.last.ok, "detail": st.last.detail, "at": _iso(st.last_at),
                        "elapsed_ms": round(st.last.elapsed_ms, 2)}
            since = table.since(slot)
            servers.append({
                "address": rs.address, "port": _server_port(vs, rs), "weight": rs.weight,
                "state": "up" if table.is_up(slot) else "down", "admin": ADMIN_NAMES[table.admin(slot)],
                "since": _iso(since), "since_epoch": round(since, 3), "last_check": last,
                "check_port": st.target.port if st else None,
                "connections": active, "connections_total": total, "bytes_in": b_in, "bytes_out": b_out})
        services.append({
            "name": vs.name, "vip": vs.vip, "ports": vs.port_label(), "template": vs.template, "mode": vs.mode,
            "scheduler": vs.scheduler, "persistence": vs.persistence.kind, "health": vs.health.kind,
            "tls_offload": vs.tls.offload, "transparent": vs.transparent, "connections": tot[0],
            "connections_total": tot[1], "bytes_in": tot[2], "bytes_out": tot[3], "servers": servers})
    return {"config": cfg.file, "workers": cfg.workers, "workers_listening": table.listening(),
            "started": _iso(view.started),
            "uptime_s": round(time.time() - view.started, 1), "now": _iso(time.time()), "services": services}


class _Metrics(Collector):
    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def collect(self) -> Iterator[Any]:
        data = state(self.admin.view)
        up = GaugeMetricFamily("exha_lb_server_up", "1 when the real server passes its health check",
                               labels=["service", "server"])
        avail = GaugeMetricFamily("exha_lb_server_enabled", "1 when the real server takes new clients (admin)",
                                  labels=["service", "server"])
        conns = GaugeMetricFamily("exha_lb_server_connections", "open connections", labels=["service", "server"])
        total = CounterMetricFamily("exha_lb_server_connections", "connections handled",
                                    labels=["service", "server"])
        b_in = CounterMetricFamily("exha_lb_server_bytes_in", "bytes from clients to the server",
                                   labels=["service", "server"])
        b_out = CounterMetricFamily("exha_lb_server_bytes_out", "bytes from the server to clients",
                                    labels=["service", "server"])
        for svc in data["services"]:
            for s in svc["servers"]:
                labels = [svc["name"], f"{s['address']}:{s['port']}"]
                up.add_metric(labels, 1.0 if s["state"] == "up" else 0.0)
                avail.add_metric(labels, 1.0 if s["admin"] == "enabled" else 0.0)
                conns.add_metric(labels, s["connections"])
                total.add_metric(labels, s["connections_total"])
                b_in.add_metric(labels, s["bytes_in"])
                b_out.add_metric(labels, s["bytes_out"])
        reqs = CounterMetricFamily("exha_lb_admin_requests", "admin API requests", labels=["path"])
        for path, n in sorted(self.admin.requests.items()):
            reqs.add_metric([path], n)
        yield from (up, avail, conns, total, b_in, b_out, reqs)


class Admin:
    """The admin HTTP listener; `view` is replaced on reload."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.requests: dict[str, int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Metrics(self))
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        a = self.view.config.admin
        self.server = await asyncio.start_server(self._handle, a.address, a.port, reuse_address=True)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, _, rest = lines[0].partition(" ")
                path = rest.split(" ")[0].split("?")[0]
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(min(length, 65536))
                if method == "GET" and self.view.refresh is not None:
                    await self.view.refresh()
                status, ctype, body = self._route(method, path, headers, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError, ConnectionError):
            writer.close()
            return
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                     f"Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode() + body)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    def _route(self, method: str, path: str, headers: dict[str, str],
               writer: asyncio.StreamWriter) -> tuple[str, str, bytes]:
        route = path if not path.startswith("/api/servers/") else "/api/servers"
        self.requests[route] = self.requests.get(route, 0) + 1
        if method == "GET" and path in ("/", "/index.html"):
            initial = json.dumps(state(self.view)).replace("</", "<\\/")
            page = PAGE.read_text().replace("/*INITIAL*/null", initial)
            return "200 OK", "text/html; charset=utf-8", page.encode()
        if method == "GET" and path == "/api/state":
            return "200 OK", "application/json", json.dumps(state(self.view), indent=1).encode()
        if method == "GET" and path == "/metrics":
            return "200 OK", "text/plain; version=0.0.4; charset=utf-8", generate_latest(self.registry)
        if path.startswith("/api/servers/"):
            if method != "POST":
                return _json("405 Method Not Allowed", {"error": "use POST"})
            peer = writer.get_extra_info("peername")
            return self._write(path, headers, peer[0] if peer else "?")
        return _json("404 Not Found", {"error": f"no such path {path}"})

    def _write(self, path: str, headers: dict[str, str], peer: str) -> tuple[str, str, bytes]:
        token = self.view.config.admin.token
        if not token:
            return _json("403 Forbidden", {"error": "writes are disabled: set admin.token_file in the config"})
        given = headers.get("authorization", "")
        if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), token.encode()):
            log.event(log.admin, logging.WARNING, "admin_denied", client=peer, path=path)
            return _json("401 Unauthorized", {"error": "missing or wrong bearer token"})
        parts = path.strip("/").split("/")  # api servers <service> <address[:port]> <action>
        if len(parts) != 5 or parts[4] not in ACTIONS:
            return _json("404 Not Found", {"error": "use /api/servers/<service>/<address[:port]>/enable|disable|drain"})
        service, server, action = parts[2], parts[3], parts[4]
        try:
            vs = self.view.config.service(service)
        except KeyError:
            return _json("404 Not Found", {"error": f"no service {service!r}"})
        matches = [rs for rs in vs.real_servers if server in (rs.address, f"{rs.address}:{_server_port(vs, rs)}")]
        if len(matches) != 1:
            return _json("404 Not Found", {"error": f"no single real server {server!r} in service {service!r}"})
        rs = matches[0]
        changed = self.view.table.set_admin(self.view.table.slot(rs.key(vs.name)), ADMIN_CODES[ACTIONS[action]])
        log.event(log.admin, logging.INFO, "server_admin", service=service, server=server, state=ACTIONS[action],
                  changed=changed, client=peer)
        return _json("200 OK", {"service": service, "server": server, "admin": ACTIONS[action], "changed": changed})


def _json(status: str, obj: dict[str, Any]) -> tuple[str, str, bytes]:
    return status, "application/json", json.dumps(obj).encode()
