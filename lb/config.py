"""Parse the balancer's TOML config (with templates merged in) into frozen dataclasses, validated once.

Every problem raises ConfigError naming the file, the field path (`virtual_services[1].real_servers[0].port`)
and what is allowed; nothing half-valid is ever returned.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lb.errors import ConfigError
from lb.templates import load_template

SCHEDULERS = ("round_robin", "weighted_round_robin", "least_connections")
PERSISTENCE_KINDS = ("none", "source_ip", "cookie")
HEALTH_KINDS = ("none", "tcp", "smtp", "http", "https")
MODES = ("tcp", "http")
ADMIN_STATES = ("enabled", "disabled", "drain")
KEMP_DEFAULT_CODES = ("2xx", 301, 302, 401)
WILDCARD = "*"


@dataclass(frozen=True)
class RealServer:
    address: str
    port: int | None  # None: the port the client connected to
    weight: int = 1
    enabled: bool = True

    def key(self, service: str) -> str:
        return f"{service}/{self.address}:{self.port if self.port is not None else '*'}"


@dataclass(frozen=True)
class HealthCheck:
    kind: str = "tcp"
    interval: float = 5.0
    timeout: float = 3.0
    rise: int = 2
    fall: int = 3
    port: int | None = None  # None: the real server's port
    paths: tuple[str, ...] = ("/",)
    host: str = ""
    accepted_codes: tuple[tuple[int, int], ...] = ((200, 299), (301, 301), (302, 302), (401, 401))
    require: str = "all"  # all paths must pass, or any one

    def accepts(self, status: int) -> bool:
        return any(lo <= status <= hi for lo, hi in self.accepted_codes)


@dataclass(frozen=True)
class Persistence:
    kind: str = "none"
    timeout: float = 2700.0
    cookie_name: str = "EXHALB"
    group: str = ""  # services with the same group share one persistence table / cookie
    fallback: str = "none"  # cookie persistence: how requests without a valid cookie persist (none, source_ip)
    header: str = ""  # HTTP mode: requests carrying this header persist by its value (ActiveSync: Authorization)
    header_paths: tuple[str, ...] = ()  # ... on these path prefixes only (case-insensitive); () = every path

    def table_name(self, service: str) -> str:
        return self.group or service


@dataclass(frozen=True)
class Timeouts:
    connect: float = 3.0
    idle: float = 600.0
    drain: float = 300.0


@dataclass(frozen=True)
class Tls:
    cert: str = ""
    key: str = ""
    reencrypt: bool = False
    verify: bool = False
    ca_file: str = ""
    server_name: str = ""

    @property
    def offload(self) -> bool:
        return bool(self.cert)


@dataclass(frozen=True)
class VirtualService:
    name: str
    vip: str
    ports: tuple[int, ...] | None  # None means `*` (every port of the VIP)
    real_servers: tuple[RealServer, ...]
    template: str = ""
    mode: str = "tcp"
    scheduler: str = "round_robin"
    persistence: Persistence = field(default_factory=Persistence)
    health: HealthCheck = field(default_factory=HealthCheck)
    timeouts: Timeouts = field(default_factory=Timeouts)
    tls: Tls = field(default_factory=Tls)
    transparent: bool = False
    close_on_server_down: bool = True
    server_port: int | None = None  # default port toward servers that do not give their own

    @property
    def wildcard(self) -> bool:
        return self.ports is None

    def port_label(self) -> str:
        return WILDCARD if self.ports is None else ",".join(str(p) for p in self.ports)


@dataclass(frozen=True)
class Admin:
    address: str = "127.0.0.1"
    port: int = 9443
    token: str = ""  # never logged

    @property
    def listen(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class Config:
    file: str
    virtual_services: tuple[VirtualService, ...]
    admin: Admin = field(default_factory=Admin)
    workers: int = 1
    log_level: str = "info"
    wildcard_port: int = 64999
    nft_table: str = "exha_lb"
    stop_timeout: float = 10.0  # SIGTERM: how long open connections may take to finish
    splice: bool = True  # plain TCP services move bytes with splice(2) on raw sockets
    consolidate_below: float = 0.3  # cores: below this the workers gather long-lived sessions on one (handoff)

    def service(self, name: str) -> VirtualService:
        for vs in self.virtual_services:
            if vs.name == name:
                return vs
        raise KeyError(name)


class _Node:
    """A TOML table being read: typed getters that raise ConfigError with the full field path."""

    def __init__(self, file: str, path: str, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
        self.file, self.path, self.data = file, path, data
        for key in data:
            if key not in allowed:
                raise ConfigError(file, self.sub(key), f"unknown field; allowed: {', '.join(allowed)}")

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def err(self, key: str, allowed: str, got: object = None) -> ConfigError:
        return ConfigError(self.file, self.sub(key), allowed, got)

    def has(self, key: str) -> bool:
        return key in self.data

    def string(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        if key not in self.data:
            if default is None:
                raise self.err(key, "required field is missing")
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise self.err(key, "expected a string", value)
        if choices and value not in choices:
            raise self.err(key, f"expected one of {', '.join(choices)}", value)
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.err(key, "expected true or false", value)
        return value

    def integer(self, key: str, default: int | None, lo: int, hi: int) -> int:
        if key not in self.data:
            if default is None:
                raise self.err(key, "required field is missing")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.err(key, f"expected an integer {lo}-{hi}", value)
        return value

    def number(self, key: str, default: float, lo: float, hi: float, unit: str = "seconds") -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise self.err(key, f"expected a number of {unit} {lo:g}-{hi:g}", value)
        return float(value)

    def table(self, key: str, allowed: tuple[str, ...]) -> _Node:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.err(key, "expected a table", value)
        return _Node(self.file, self.sub(key), value, allowed)


def _ipv4(node: _Node, key: str) -> str:
    text = node.string(key)
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise node.err(key, "expected an IPv4 address", text) from None


def _ports(node: _Node) -> tuple[int, ...] | None:
    if node.has("port") and node.has("ports"):
        raise node.err("ports", "give either port or ports, not both")
    key = "ports" if node.has("ports") else "port"
    if not node.has(key):
        raise node.err("ports", 'required: a port, a list of ports or "*"')
    value = node.data[key]
    if value == WILDCARD:
        return None
    items = value if isinstance(value, list) else [value]
    ports: list[int] = []
    for i, p in enumerate(items):
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 65535:
            where = f"{key}[{i}]" if isinstance(value, list) else key
            raise node.err(where, 'expected 1-65535 (or "*" for every port)', p)
        ports.append(p)
    if not ports:
        raise node.err(key, 'expected at least one port (or "*")')
    if len(set(ports)) != len(ports):
        raise node.err(key, "ports must not repeat", value)
    return tuple(ports)


def _codes(node: _Node, key: str) -> tuple[tuple[int, int], ...]:
    raw = node.data.get(key, list(KEMP_DEFAULT_CODES))
    if not isinstance(raw, list) or not raw:
        raise node.err(key, 'expected a list like ["2xx", 301, 302, 401] or ["200-299"]', raw)
    out: list[tuple[int, int]] = []
    for i, item in enumerate(raw):
        where = f"{key}[{i}]"
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            out.append((item, item))
        elif isinstance(item, str) and len(item) == 3 and item[0] in "12345" and item[1:].lower() == "xx":
            base = int(item[0]) * 100
            out.append((base, base + 99))
        elif isinstance(item, str) and "-" in item:
            lo_s, _, hi_s = item.partition("-")
            if not (lo_s.isdigit() and hi_s.isdigit() and 100 <= int(lo_s) <= int(hi_s) <= 599):
                raise node.err(where, 'expected a code 100-599, "2xx" or a range "200-299"', item)
            out.append((int(lo_s), int(hi_s)))
        else:
            raise node.err(where, 'expected a code 100-599, "2xx" or a range "200-299"', item)
    return tuple(out)


def _health(node: _Node) -> HealthCheck:
    h = node.table("health", ("kind", "interval", "timeout", "rise", "fall", "port", "paths", "path", "host",
                              "accepted_codes", "require"))
    paths_raw = h.data.get("paths", [h.data["path"]] if "path" in h.data else ["/"])
    if not isinstance(paths_raw, list) or not paths_raw or not all(
            isinstance(p, str) and p.startswith("/") for p in paths_raw):
        raise h.err("paths", 'expected a list of URL paths starting with "/"', paths_raw)
    interval = h.number("interval", 5.0, 0.05, 3600)
    timeout = h.number("timeout", min(3.0, interval), 0.05, 3600)
    return HealthCheck(
        kind=h.string("kind", "tcp", HEALTH_KINDS),
        interval=interval,
        timeout=timeout,
        rise=h.integer("rise", 2, 1, 100),
        fall=h.integer("fall", 3, 1, 100),
        port=h.integer("port", 0, 0, 65535) or None,
        paths=tuple(paths_raw),
        host=h.string("host", ""),
        accepted_codes=_codes(h, "accepted_codes"),
        require=h.string("require", "all", ("all", "any")),
    )


def _header_paths(p: _Node) -> tuple[str, ...]:
    raw = p.data.get("header_paths", [])
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.startswith("/") for x in raw):
        raise p.err("header_paths", 'expected a list of URL path prefixes starting with "/"', raw)
    if raw and not p.data.get("header"):
        raise p.err("header_paths", "applies only with persistence.header (name the header, or remove it)", raw)
    return tuple(raw)


def _real_servers(node: _Node, service_ports: tuple[int, ...] | None) -> tuple[RealServer, ...]:
    raw = node.data.get("real_servers")
    if not isinstance(raw, list) or not raw:
        raise node.err("real_servers", "expected at least one [[virtual_services.real_servers]] table")
    servers: list[RealServer] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise node.err(f"real_servers[{i}]", "expected a table", item)
        rs = _Node(node.file, node.sub(f"real_servers[{i}]"), item, ("address", "port", "weight", "enabled"))
        port = rs.integer("port", 0, 1, 65535) if rs.has("port") else None
        servers.append(RealServer(address=_ipv4(rs, "address"), port=port,
                                  weight=rs.integer("weight", 1, 0, 1000), enabled=rs.boolean("enabled", True)))
    seen: set[tuple[str, int | None]] = set()
    for i, s in enumerate(servers):
        if (s.address, s.port) in seen:
            raise node.err(f"real_servers[{i}]", "each real server (address, port) may appear once",
                           f"{s.address}:{s.port}")
        seen.add((s.address, s.port))
    return tuple(servers)


VS_FIELDS = ("name", "vip", "port", "ports", "template", "mode", "scheduler", "persistence", "health", "timeouts",
             "tls", "transparent", "close_on_server_down", "server_port", "real_servers")
TEMPLATE_FIELDS = tuple(f for f in VS_FIELDS if f not in ("name", "vip", "template", "real_servers")) + (
    "description", "source")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    if "port" in over and "ports" in base and "ports" not in over:
        out.pop("ports", None)
    if "ports" in over and "port" in base and "port" not in over:
        out.pop("port", None)
    return out


def _virtual_service(file: str, index: int, raw: object, template_dirs: tuple[Path, ...]) -> VirtualService:
    path = f"virtual_services[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(file, path, "expected a table", raw)
    data = raw
    if "template" in data:
        if not isinstance(data["template"], str):
            raise ConfigError(file, f"{path}.template", "expected a template name", data["template"])
        tpl = load_template(data["template"], template_dirs, file, f"{path}.template")
        _Node(str(tpl.path), "", tpl.data, TEMPLATE_FIELDS)
        base = {k: v for k, v in tpl.data.items() if k not in ("description", "source")}
        data = _merge(base, data)
    node = _Node(file, path, data, VS_FIELDS)
    name = node.string("name")
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise node.err("name", "expected letters, digits, '-', '_' or '.'", name)
    ports = _ports(node)
    mode = node.string("mode", "tcp", MODES)
    p = node.table("persistence", ("kind", "timeout", "cookie_name", "group", "fallback", "header",
                                   "header_paths"))
    persistence = Persistence(kind=p.string("kind", "none", PERSISTENCE_KINDS),
                              timeout=p.number("timeout", 2700.0, 1, 7 * 86400),
                              cookie_name=p.string("cookie_name", "EXHALB"), group=p.string("group", ""),
                              fallback=p.string("fallback", "none", ("none", "source_ip")),
                              header=p.string("header", ""), header_paths=_header_paths(p))
    if persistence.header and mode != "http":
        raise p.err("header", 'header persistence needs mode = "http"', persistence.header)
    if persistence.header and not all(c.isalnum() or c in "-_" for c in persistence.header):
        raise p.err("header", "expected a header name (letters, digits, '-', '_')", persistence.header)
    if persistence.kind == "cookie" and mode != "http":
        raise p.err("kind", 'cookie persistence needs mode = "http" (use source_ip for TCP services)', "cookie")
    if persistence.fallback != "none" and persistence.kind != "cookie":
        raise p.err("fallback", 'a fallback applies to kind = "cookie" only (remove it, or use that kind)',
                    persistence.fallback)
    t = node.table("timeouts", ("connect", "idle", "drain"))
    timeouts = Timeouts(connect=t.number("connect", 3.0, 0.05, 600), idle=t.number("idle", 600.0, 0.1, 7 * 86400),
                        drain=t.number("drain", 300.0, 0, 7 * 86400))
    s = node.table("tls", ("cert", "key", "reencrypt", "verify", "ca_file", "server_name"))
    tls = Tls(cert=s.string("cert", ""), key=s.string("key", ""), reencrypt=s.boolean("reencrypt", False),
              verify=s.boolean("verify", False), ca_file=s.string("ca_file", ""), server_name=s.string("server_name", ""))
    base_dir = Path(file).resolve().parent
    for key in ("cert", "key", "ca_file"):
        value = getattr(tls, key)
        if value and not (base_dir / value).is_file():
            raise s.err(key, "expected a readable file (relative paths are relative to the config file)", value)
    if tls.cert or tls.key:
        tls = Tls(cert=str(base_dir / tls.cert) if tls.cert else "", key=str(base_dir / (tls.key or tls.cert)),
                  reencrypt=tls.reencrypt, verify=tls.verify,
                  ca_file=str(base_dir / tls.ca_file) if tls.ca_file else "", server_name=tls.server_name)
    health = _health(node)
    servers = _real_servers(node, ports)
    server_port = node.integer("server_port", 0, 1, 65535) if node.has("server_port") else None
    vs = VirtualService(
        name=name, vip=_ipv4(node, "vip"), ports=ports, real_servers=servers, template=node.string("template", ""),
        mode=mode, scheduler=node.string("scheduler", "round_robin", SCHEDULERS), persistence=persistence,
        health=health, timeouts=timeouts, tls=tls, transparent=node.boolean("transparent", False),
        close_on_server_down=node.boolean("close_on_server_down", True), server_port=server_port)
    if ports is None and health.kind != "none" and health.port is None and server_port is None and any(
            r.port is None for r in servers):
        raise node.err("health.port", 'a port "*" service needs a health-check port (e.g. 135)')
    if ports is None and tls.offload:
        raise node.err("tls.cert", 'TLS offload is not available on a port "*" service')
    if vs.transparent and (mode == "http" or tls.offload):
        raise node.err("transparent", "transparent mode works with plain TCP services only", True)
    return vs


def parse(text: str, file: str = "<config>", template_dirs: tuple[Path, ...] = ()) -> Config:
    """Parse TOML text into a Config; raise ConfigError on the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML ({exc})") from exc
    top = _Node(file, "", data, ("workers", "log_level", "wildcard_port", "nft_table", "stop_timeout", "splice",
                                 "consolidate_below", "templates_dir", "admin", "virtual_services"))
    dirs = template_dirs
    if top.has("templates_dir"):
        dirs = (Path(file).resolve().parent / top.string("templates_dir"),) + dirs
    a = top.table("admin", ("address", "port", "token", "token_file"))
    token = a.string("token", "")
    if a.has("token_file"):
        token_path = Path(file).resolve().parent / a.string("token_file")
        try:
            token = token_path.read_text().strip()
        except OSError as exc:
            raise a.err("token_file", f"expected a readable file ({exc.strerror})", str(token_path)) from None
    admin = Admin(address=_ipv4(a, "address") if a.has("address") else "127.0.0.1",
                  port=a.integer("port", 9443, 1, 65535), token=token)
    raw_services = data.get("virtual_services")
    if not isinstance(raw_services, list) or not raw_services:
        raise ConfigError(file, "virtual_services", "expected at least one [[virtual_services]] table")
    services = tuple(_virtual_service(file, i, raw, dirs) for i, raw in enumerate(raw_services))
    _check_unique(file, services)
    nft_table = top.string("nft_table", "exha_lb")
    if not nft_table.replace("_", "").isalnum():
        raise top.err("nft_table", "expected letters, digits and '_'", nft_table)
    return Config(file=file, virtual_services=services, admin=admin,
                  workers=top.integer("workers", 1, 1, max(64, os.cpu_count() or 1)),
                  log_level=top.string("log_level", "info", ("debug", "info", "warning", "error")),
                  wildcard_port=top.integer("wildcard_port", 64999, 1, 65535), nft_table=nft_table,
                  stop_timeout=top.number("stop_timeout", 10.0, 0, 3600), splice=top.boolean("splice", True),
                  consolidate_below=top.number("consolidate_below", 0.3, 0, 64, "cores"))


def _check_unique(file: str, services: tuple[VirtualService, ...]) -> None:
    names: set[str] = set()
    bound: dict[tuple[str, int | None], str] = {}
    for i, vs in enumerate(services):
        if vs.name in names:
            raise ConfigError(file, f"virtual_services[{i}].name", "names must be unique", vs.name)
        names.add(vs.name)
        for port in vs.ports or (None,):
            if (vs.vip, port) in bound:
                raise ConfigError(file, f"virtual_services[{i}].ports",
                                  f"{vs.vip}:{port or '*'} is already used by service {bound[(vs.vip, port)]!r}")
            bound[(vs.vip, port)] = vs.name


def load(path: str | os.PathLike[str], template_dirs: tuple[Path, ...] = ()) -> Config:
    """Read and validate a config file."""
    file = str(path)
    try:
        text = Path(file).read_text()
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read the config file ({exc.strerror})") from None
    return parse(text, file, template_dirs)
