"""`exha runbook plan|apply|verify|rollback`, `exha report` (dry-run diffs as Markdown, a CI drift gate) and
`exha result` (an SMTP session through the VIP naming the Exchange server that answered). Errors are one
line on stderr; exit status 1 for a failed step or check, 3 for drift under --fail-on-drift."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from roles.errors import ExhaError

INVENTORY = "inventory/lab.py"
DEPLOY = "deploys/exchange_ha.py"
DRIFT_STATUS = 3


def _fail(message: str, status: int = 1) -> None:
    click.echo(f"exha: {message}", err=True)
    sys.exit(status)


def _check_files(inventory: str, deploy: str | None = None) -> None:
    for label, path in (("inventory", inventory), ("deploy", deploy)):
        if path is not None and not Path(path).is_file():
            _fail(f"{label} {path} does not exist (run from the project folder or pass --{label})", 2)


def _emit(outcome: object) -> None:
    from roles.runbook.engine import Outcome

    assert isinstance(outcome, Outcome)
    for line in outcome.lines:
        click.echo(line)
    if not outcome.ok:
        sys.exit(1)


inventory_opt = click.option("--inventory", "-i", default=INVENTORY, show_default=True, help="pyinfra inventory")
deploy_opt = click.option("--deploy", "-d", default=DEPLOY, show_default=True, help="deploy file")
dir_opt = click.option("--dir", "folder", default="runbook", show_default=True, type=click.Path(path_type=Path),
                       help="runbook folder (plan, journal, ASA backups)")


@click.group(name="runbook")
def runbook() -> None:
    """The change window: plan, apply (journaled), verify, rollback."""


@runbook.command()
@inventory_opt
@deploy_opt
@dir_opt
@click.option("--markdown", is_flag=True, help="print the plan as Markdown for the change record")
def plan(inventory: str, deploy: str, folder: Path, markdown: bool) -> None:
    """Pre-checks (reachability, credentials, VIP) and the plan with every current value."""
    from roles.runbook import engine

    _check_files(inventory, deploy)
    try:
        outcome = engine.plan(inventory, deploy, engine.Folder(folder))
        if markdown and outcome.ok:
            click.echo(engine.plan_markdown(engine.Folder(folder)), nl=False)
            return
    except ExhaError as e:
        _fail(str(e))
    _emit(outcome)


@runbook.command()
@inventory_opt
@deploy_opt
@dir_opt
@click.option("--data", "data", multiple=True, metavar="KEY=VALUE", help="extra host data for the deploy run")
def apply(inventory: str, deploy: str, folder: Path, data: tuple[str, ...]) -> None:
    """Pre-checks against the plan, the deploy with a journal of prior values, post-checks."""
    from roles.runbook import engine

    _check_files(inventory, deploy)
    extra = {}
    for item in data:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--data {item!r}: expected KEY=VALUE", 2)
        extra[key] = value
    try:
        _emit(engine.apply(inventory, deploy, engine.Folder(folder), extra))
    except ExhaError as e:
        _fail(str(e))


@runbook.command()
@inventory_opt
@deploy_opt
@dir_opt
def verify(inventory: str, deploy: str, folder: Path) -> None:
    """Post-checks: converged, SMTP through the VIP reaches Exchange, DNS answers the VIP everywhere."""
    from roles.runbook import engine

    _check_files(inventory, deploy)
    try:
        _emit(engine.verify(inventory, deploy, engine.Folder(folder)))
    except ExhaError as e:
        _fail(str(e))


@runbook.command()
@inventory_opt
@dir_opt
def rollback(inventory: str, folder: Path) -> None:
    """Restore every journaled prior value, newest first (idempotent)."""
    from roles.runbook import engine

    _check_files(inventory)
    try:
        _emit(engine.rollback(inventory, engine.Folder(folder)))
    except ExhaError as e:
        _fail(str(e))


@click.command(name="report")
@inventory_opt
@deploy_opt
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="write the Markdown here")
@click.option("--fail-on-drift", is_flag=True, help=f"exit {DRIFT_STATUS} when anything would change")
def report(inventory: str, deploy: str, output: Path | None, fail_on_drift: bool) -> None:
    """Dry-run diff report: every pending change per host, as Markdown."""
    from roles import report as rep

    _check_files(inventory, deploy)
    result = rep.build(inventory, deploy)
    text = rep.markdown(result)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        click.echo(f"report written to {output}: " + ("dry run failed" if not result.run.ok
                                                      else "drift" if result.drift else "no drift"))
    else:
        click.echo(text, nl=False)
    if not result.run.ok:
        _fail("the dry run failed: " + " | ".join(result.run.error_lines(3)))
    if fail_on_drift and result.drift:
        click.echo(f"exha: drift: {len(result.pending)} operation(s) would change something", err=True)
        sys.exit(DRIFT_STATUS)


@click.command(name="result")
@inventory_opt
def result(inventory: str) -> None:
    """Show the result: an SMTP session through the site's VIP, naming the Exchange server that answered."""
    from roles.runbook.checks import inventory_data, smtp_server_name, smtp_session

    _check_files(inventory)
    try:
        site = next(iter(inventory_data(inventory).values()))["site"]
    except (ExhaError, StopIteration, KeyError) as e:
        _fail(f"{inventory}: no site description ({e})")
    try:
        transcript = smtp_session(site["vip"])
    except OSError as e:
        _fail(f"no SMTP session through the VIP {site['vip']}:25: {e.strerror or e}")
    for line in transcript:
        click.echo(line)
    server = smtp_server_name(transcript)
    click.echo(f"SMTP through the VIP {site['vip']} was answered by {server or '(no 220 greeting)'}")
    if not server:
        sys.exit(1)
