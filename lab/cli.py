"""`exha lab …`: bring the rehearsal lab up, check it, take it down, and drive the Exchange
stand-ins for failover rehearsals. Every lab error becomes one line on stderr and exit status 1."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from lab.components import Loaded, bring_up, collect_status, load, mask_secrets, tear_down
from lab.context import Lab, ServiceStatus
from lab.errors import LabError, NotRootError
from lab.topology import load_topology

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, status: int = 1) -> None:
    """Print `message` as one line on stderr (a command's multi-line output is joined) and exit."""
    one_line = " | ".join(line.strip() for line in message.splitlines() if line.strip())
    click.echo(f"exha lab: {one_line}", err=True)
    sys.exit(status)


def _lab_errors(fn: F) -> F:
    """Turn a LabError (and a component that cannot be imported) into one line and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LabError as e:
            _fail(str(e))
        except ImportError as e:
            _fail(f"a lab component cannot be loaded: {e}; run lab/setup.sh")
        except KeyboardInterrupt:
            _fail("interrupted; run `exha lab down` to clean up, or `exha lab up` to finish", 130)

    return wrapper  # type: ignore[return-value]


def _require_root() -> None:
    if os.geteuid() != 0:
        raise NotRootError(
            "needs root (network namespaces, routes, daemons in namespaces); "
            "run it as root, e.g. sudo .venv/bin/exha lab ..."
        )


def _lab(ctx: click.Context) -> Lab:
    _require_root()
    opts = ctx.obj or {}
    topology = load_topology(opts.get("topology"))
    return Lab(topology, state_dir=opts.get("state_dir"), cache_dir=opts.get("cache_dir"))


def _loaded() -> Loaded:
    loaded = load()
    for note in loaded.notes:
        click.echo(f"note: {note}", err=True)
    return loaded


@click.group(name="lab")
@click.option(
    "--topology",
    type=click.Path(path_type=Path),
    envvar="EXHA_LAB_TOPOLOGY",
    help="Topology file (default: lab/topology.toml).",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    envvar="EXHA_LAB_STATE",
    help="State folder (default: /var/lib/exha-lab).",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    envvar="EXHA_LAB_CACHE",
    help="Build cache (default: /var/cache/exha-lab).",
)
@click.pass_context
def lab(ctx: click.Context, topology: Path | None, state_dir: Path | None, cache_dir: Path | None) -> None:
    """The rehearsal lab: the reference topology as real services in network namespaces."""
    ctx.obj = {"topology": topology, "state_dir": state_dir, "cache_dir": cache_dir}


# -- presentation -----------------------------------------------------------------------------


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *rows])


def _status_table(statuses: list[ServiceStatus]) -> str:
    rows = [
        [s.host, s.service, f"{s.address}:{s.port}" if s.port else s.address, s.state, s.detail]
        for s in statuses
    ]
    return _table(rows, ["HOST", "SERVICE", "ADDRESS", "STATE", "DETAIL"])


def _hosts(lab_: Lab) -> list[dict[str, Any]]:
    from lab.network import namespace_exists

    t = lab_.topology
    return [
        {
            "name": h.name,
            "role": h.role,
            "fqdn": h.fqdn,
            "namespace": h.namespace,
            "address": h.address,
            "addresses": list(h.all_addresses),
            "namespace_present": namespace_exists(h.namespace),
        }
        for h in t.hosts.values()
    ]


def status_document(lab_: Lab, statuses: list[ServiceStatus], notes: tuple[str, ...]) -> dict[str, Any]:
    """What `exha lab status --json` prints (secrets masked; they are in the credentials file)."""
    t = lab_.topology
    return {
        "topology": str(t.path),
        "state_dir": str(lab_.state_dir),
        "credentials_file": str(lab_.credentials_file),
        "admin": {"interface": t.admin_interface, "address": t.admin_address},
        "hosts": _hosts(lab_),
        "services": [{**s.as_dict(), "credentials": mask_secrets(s.credentials)} for s in statuses],
        "credentials": {k: mask_secrets(v) for k, v in lab_.credentials().items()},
        "notes": list(notes),
        "ok": all(s.state != "down" for s in statuses),
    }


# -- commands -----------------------------------------------------------------------------


@lab.command()
@click.pass_context
@_lab_errors
def up(ctx: click.Context) -> None:
    """Bring the lab up (idempotent): build, then start every service, then check each for real."""
    lab_ = _lab(ctx)
    loaded = _loaded()
    t0 = time.monotonic()
    bring_up(lab_, loaded, progress=lambda m: click.echo(f"  {m}", err=True))
    took = time.monotonic() - t0
    statuses = collect_status(lab_, loaded)
    click.echo(_status_table(statuses))
    click.echo(
        f"\nlab up in {took:.1f}s; admin address {lab_.topology.admin_address} on "
        f"{lab_.topology.admin_interface}; credentials: {lab_.credentials_file}"
    )
    down_ = [s for s in statuses if s.state == "down"]
    if down_:
        _fail(
            f"{len(down_)} service(s) down after start: "
            + ", ".join(f"{s.host}/{s.service}" for s in down_)
            + f"; see {lab_.logs}"
        )


@lab.command()
@click.pass_context
@_lab_errors
def down(ctx: click.Context) -> None:
    """Take the lab down: stop everything in reverse order and check nothing is left."""
    lab_ = _lab(ctx)
    left = tear_down(lab_, _loaded(), progress=lambda m: click.echo(f"  {m}", err=True))
    if left:
        _fail("left behind after down: " + "; ".join(left))
    click.echo("lab down: no namespaces, links, routes, processes or mounts left")


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print hosts, services and credentials as JSON.")
@click.pass_context
@_lab_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Check every service for real (connect, query); exit 1 if any is down."""
    lab_ = _lab(ctx)
    loaded = _loaded()
    statuses = collect_status(lab_, loaded)
    doc = status_document(lab_, statuses, loaded.notes)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(_status_table(statuses))
        click.echo(f"\ncredentials: {lab_.credentials_file}")
    if not doc["ok"]:
        sys.exit(1)


@lab.group()
def exchange() -> None:
    """Control the Exchange stand-ins (failover rehearsals)."""


@exchange.command("stop")
@click.argument("server")
@click.pass_context
@_lab_errors
def exchange_stop(ctx: click.Context, server: str) -> None:
    """Stop SERVER's stand-in (e.g. EX13-1): every port refuses connections."""
    from lab.exchange import exchange_host, server_name, stop_server

    lab_ = _lab(ctx)
    host = exchange_host(lab_, server)
    stop_server(lab_, host)
    click.echo(f"{server_name(host)} stopped")


@exchange.command("start")
@click.argument("server")
@click.pass_context
@_lab_errors
def exchange_start(ctx: click.Context, server: str) -> None:
    """Start SERVER's stand-in again."""
    from lab.exchange import exchange_host, server_name, start_server

    lab_ = _lab(ctx)
    host = exchange_host(lab_, server)
    start_server(lab_, host)
    click.echo(f"{server_name(host)} started on {host.address}")


@exchange.command("maintenance")
@click.argument("server")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.pass_context
@_lab_errors
def exchange_maintenance(ctx: click.Context, server: str, state: str) -> None:
    """Put SERVER's health pages into maintenance (503) or back (200); other paths keep working."""
    from lab.exchange import exchange_host, server_name, set_maintenance

    lab_ = _lab(ctx)
    host = exchange_host(lab_, server)
    set_maintenance(lab_, host, state == "on")
    click.echo(f"{server_name(host)} maintenance {state}")
