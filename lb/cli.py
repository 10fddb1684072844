"""The `exha-lb` command: run, check, status, server admin, templates and bench."""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from lb import templates
from lb.config import Config, load
from lb.errors import AdminError, LbError


def _fail(exc: Exception) -> None:
    click.echo(f"exha-lb: {exc}", err=True)
    sys.exit(2)


def _summary(cfg: Config) -> str:
    parts = [f"{vs.name} {vs.vip}:{vs.port_label()} ({len(vs.real_servers)} servers)" for vs in cfg.virtual_services]
    return f"{cfg.file}: ok, {len(parts)} virtual services: " + "; ".join(parts)


@click.group()
def main() -> None:
    """The bundled Exchange load balancer."""


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="TOML config file")
def check(config_path: str) -> None:
    """Validate a config file (and its templates) without starting anything."""
    try:
        cfg = load(config_path)
    except LbError as exc:
        _fail(exc)
    click.echo(_summary(cfg))


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="TOML config file")
def run(config_path: str) -> None:
    """Run the balancer in the foreground (SIGHUP reloads, SIGTERM stops gracefully)."""
    from lb.runner import run as run_balancer

    try:
        code = run_balancer(config_path)
    except LbError as exc:
        _fail(exc)
    sys.exit(code)


def _admin_url(config_path: str | None, admin: str | None) -> str:
    if admin:
        return admin.rstrip("/") if "://" in admin else f"http://{admin}"
    if config_path:
        try:
            cfg = load(config_path)
        except LbError as exc:
            _fail(exc)
        return f"http://{cfg.admin.listen}"
    return "http://127.0.0.1:9443"


def _request(url: str, token: str = "", method: str = "GET") -> Any:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            detail = exc.reason
        raise AdminError(url, f"HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise AdminError(url, f"unreachable ({getattr(exc, 'reason', exc)})") from None


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="read the admin address from here")
@click.option("--admin", help="admin address, e.g. 127.0.0.1:9443")
@click.option("--json", "as_json", is_flag=True, help="print the raw JSON state")
def status(config_path: str | None, admin: str | None, as_json: bool) -> None:
    """Show services and real servers of a running balancer."""
    url = _admin_url(config_path, admin) + "/api/state"
    try:
        data = _request(url)
    except AdminError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    click.echo(f"config {data['config']}  workers {data['workers']}  up {data['uptime_s']}s")
    for svc in data["services"]:
        click.echo(f"{svc['name']:<12} {svc['vip']}:{svc['ports']}  {svc['mode']} {svc['scheduler']} "
                   f"persistence={svc['persistence']} check={svc['health']}  open={svc['connections']}")
        for s in svc["servers"]:
            last = s["last_check"]["detail"] if s["last_check"] else "-"
            click.echo(f"    {s['address']}:{s['port']:<6} {s['state']:<5} {s['admin']:<9} since {s['since']} "
                       f"open={s['connections']} total={s['connections_total']}  last: {last}")


@main.command()
@click.argument("action", type=click.Choice(["enable", "disable", "drain"]))
@click.argument("service")
@click.argument("server")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="read admin address and token")
@click.option("--admin", help="admin address, e.g. 127.0.0.1:9443")
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True), help="file holding the admin token")
def server(action: str, service: str, server: str, config_path: str | None, admin: str | None,
           token_file: str | None) -> None:
    """Enable, disable (close its connections) or drain (let them end) one real server."""
    token = Path(token_file).read_text().strip() if token_file else ""
    if not token and config_path:
        try:
            token = load(config_path).admin.token
        except LbError as exc:
            _fail(exc)
    url = f"{_admin_url(config_path, admin)}/api/servers/{service}/{server}/{action}"
    try:
        data = _request(url, token, "POST")
    except AdminError as exc:
        _fail(exc)
    click.echo(f"{data['service']} {data['server']}: {data['admin']}" + ("" if data["changed"] else " (unchanged)"))


@main.command(name="templates")
def list_templates() -> None:
    """List the virtual-service templates that can be named in a config."""
    import tomllib

    for name in templates.available():
        path = next(d / f"{name}.toml" for d in templates.search_dirs() if (d / f"{name}.toml").is_file())
        desc = tomllib.loads(path.read_text()).get("description", "")
        click.echo(f"{name:<30} {desc}")


@main.command()
@click.option("--quick", is_flag=True, help="short runs (a few seconds each)")
@click.option("--http", "http", is_flag=True, help="HTTP mode against HAProxy's HTTP mode instead")
@click.option("--floor", "floor", is_flag=True, help="HAProxy, exha-lb and the least Python can do per connection")
def bench(quick: bool, http: bool, floor: bool) -> None:
    """Benchmark against HAProxy and nginx stream on loopback (needs the source tree's benchmarks/)."""
    if http and floor:
        raise click.UsageError("--http and --floor are two different runs: give one of them")
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "lb_bench.py"
    if not path.is_file():
        _fail(LbError(f"{path} not found: run the benchmark from a source checkout"))
    spec = importlib.util.spec_from_file_location("lb_bench", path)
    if spec is None or spec.loader is None:
        _fail(LbError(f"cannot load {path}"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["lb_bench"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    if http:
        sys.exit(module.http_mode(quick=quick))
    sys.exit(module.floor(quick=quick) if floor else module.main(quick=quick))
