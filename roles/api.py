"""The shared layer between pyinfra and devices that have no POSIX shell.

Reads are facts and writes are yielded commands; both travel through the connector's
`run_shell_command`. For API targets (vSphere, DNS, ASA change sets) the command is an `ApiCall`, a
`StringCommand` that carries a method name and JSON parameters; the connector dispatches it to its
`api_<method>` method and answers one JSON line. Device CLIs (ASA `show …`, PowerShell) may use plain
strings handled by `run_text_command`. Every device error becomes `(False, one stderr line)`, so pyinfra
reports it as a normal fact or operation error naming the host — never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import click
from pyinfra import logger
from pyinfra.api import FactBase, StringCommand
from pyinfra.api.exceptions import ConnectError
from pyinfra.connectors.base import BaseConnector
from pyinfra.connectors.util import CommandOutput, OutputLine

from roles.errors import DeviceConnectError, ExhaError

T = TypeVar("T")


class ApiCall(StringCommand):
    """A structured device call: `method` plus JSON-able keyword parameters (never secrets)."""

    def __init__(self, method: str, **params: Any) -> None:
        self.method = method
        self.params = params
        rendered = " ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(params.items()))
        super().__init__(method, rendered) if rendered else super().__init__(method)


def _output(stdout: Iterable[str] = (), stderr: Iterable[str] = ()) -> CommandOutput:
    lines = [OutputLine("stdout", line) for line in stdout]
    lines += [OutputLine("stderr", line) for line in stderr]
    return CommandOutput(lines)


class ApiConnector(BaseConnector):
    """Base for connectors whose target speaks an API or a device CLI, not a POSIX shell."""

    handles_execution = True
    #: short device kind for messages, e.g. "vSphere", "ASA"
    kind = "device"

    def connect(self) -> None:
        _no_greenlet_tracebacks_for_pyinfra_errors()
        try:
            self.open()
        except ExhaError as e:
            raise ConnectError(str(e)) from e

    def open(self) -> None:  # pragma: no cover - subclasses connect here
        """Open the session; raise DeviceConnectError / DeviceAuthError on failure."""

    def close(self) -> None:
        """Close the session (called on disconnect)."""

    def disconnect(self) -> None:
        self.close()

    def run_shell_command(self, command: StringCommand, print_output: bool = False,
                          print_input: bool = False, **arguments: Any) -> tuple[bool, CommandOutput]:
        if print_input:
            click.echo(f"{self.host.print_prefix}>>> {command}", err=True)
        try:
            if isinstance(command, ApiCall):
                handler: Callable[..., Any] | None = getattr(self, "api_" + command.method.replace(".", "_"),
                                                             None)
                if handler is None:
                    raise DeviceConnectError(f"{self.kind} connector has no call {command.method!r}",
                                             host=self.host.name)
                result = handler(**command.params)
                out = _output([json.dumps(result, sort_keys=True, default=str)])
            else:
                out = _output(self.run_text_command(str(command) if not isinstance(command, str)
                                                    else command))
        except ExhaError as e:
            return False, _output(stderr=[str(e)])
        if print_output:
            for line in out.stdout_lines:
                click.echo(f"{self.host.print_prefix}{line}", err=True)
        return True, out

    def run_text_command(self, command: str) -> list[str]:
        """Run a device CLI command and return its output lines. Shell commands are not supported."""
        raise DeviceConnectError(f"{self.kind} targets run no shell commands (got {command!r}); "
                                 f"use this toolkit's {self.kind} operations", host=self.host.name)

    def put_file(self, *args: Any, **kwargs: Any) -> bool:
        raise DeviceConnectError(f"{self.kind} targets take no file uploads", host=self.host.name)

    def get_file(self, *args: Any, **kwargs: Any) -> bool:
        raise DeviceConnectError(f"{self.kind} targets give no file downloads", host=self.host.name)


def _no_greenlet_tracebacks_for_pyinfra_errors() -> None:
    """A device error while a fact loads at execute time fails the host; when it was the last host,
    pyinfra raises "No hosts remaining!" inside the operation's greenlet and then reports it itself as
    one line. Keep gevent from also printing that control-flow error as a traceback."""
    from gevent.hub import Hub
    from pyinfra.api.exceptions import PyinfraError

    if PyinfraError not in Hub.NOT_ERROR:
        Hub.NOT_ERROR = (*Hub.NOT_ERROR, PyinfraError)


class JsonFact(FactBase[T], Generic[T]):
    """A fact answered by an `ApiCall` as one JSON line; subclasses shape it in `parse`."""

    def process(self, output: list[str]) -> T:  # type: ignore[override]
        return self.parse(json.loads("\n".join(output)))

    def parse(self, data: Any) -> T:
        return data  # type: ignore[no-any-return]


def show_diff(host: Any, label: str, before: Iterable[str], after: Iterable[str]) -> None:
    """Print a before/after block for `label` when pyinfra runs with --diff."""
    from pyinfra.context import ctx_state

    state = ctx_state.get() if ctx_state.isset() else None
    if state is None or not state.config.DIFF:
        return
    host.log(f"Will change {click.style(label, bold=True)}", logger.info)
    for line in before:
        logger.info("  %s", click.style(f"- {line}", fg="red"))
    for line in after:
        logger.info("  %s", click.style(f"+ {line}", fg="green"))
    logger.info("")


def lines_of(value: Any) -> Iterator[str]:
    """Render a value for a diff: None as '(absent)', dicts as key: value lines, lists one per line."""
    if value is None:
        yield "(absent)"
    elif isinstance(value, dict):
        for k, v in value.items():
            yield f"{k}: {v}"
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield str(v)
    else:
        yield str(value)
