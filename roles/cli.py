"""The `exha` command: the toolkit's entry point (`exha lab …`, `exha runbook …`, `exha report`, `exha result`)."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="exchange-ha")
def main() -> None:
    """exchange-ha: put Exchange CAS and Hub Transport behind a load balancer, safely."""


def _register() -> None:
    from lab.cli import lab as lab_group

    main.add_command(lab_group)

    from roles.runbook.cli import report, result, runbook

    main.add_command(runbook)
    main.add_command(report)
    main.add_command(result)


_register()
