"""Fixture-driven unit tests for the roles' facts and operations, in pyinfra's JSON fixture style.

Fact fixtures (`tests/roles/<kind>/facts/<Fact>/<case>.json`)::

    {"arg": {...fact kwargs...},
     "command": "show running-config"                      # a text command, or
     "command": {"call": "asa.show", "params": {...}},     # an ApiCall
     "output": ["line", ...]                               # raw output lines, or
     "output_json": <any>                                  # one JSON line (what an ApiConnector answers)
     "fact": <expected parsed value>}                      # or "exception": {"name": ..., "message": ...}

Operation fixtures (`tests/roles/<kind>/operations/<op>/<case>.json`)::

    {"args": [...], "kwargs": {...},
     "facts": {"<FactClass>": {"<k=v, k2=v2 sorted by key>": <fact value>}},
     "host_data": {...},                                   # optional host.data
     "commands": [<command>, ...],                         # str | {"call", "params"} | [func, args, kwargs]
     "noop_description": "..."}                            # or "exception": {"name": ..., "message": ...}

`fact_cases(dir)` / `op_cases(dir)` list the cases for `pytest.mark.parametrize`; `check_fact(cls, case)` and
`check_operation(op, case)` run one. A missing fact in an op fixture is an error naming the fact and its
arguments, so fixtures stay complete. The harness runs the undecorated generator (`op._inner`) under a
`FakeState` / `FakeHost` set as pyinfra's context, exactly as pyinfra-testing does.

Use it from a test module under tests/roles/<kind>/ (tests/roles/conftest.py puts this folder on the path)::

    from harness import check_fact, check_operation, params
    @pytest.mark.parametrize("case", params(HERE / "facts" / "NetworkObjects"))
    def test_network_objects(case): check_fact(NetworkObjects, case)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from netkit import free_port  # noqa: F401 (shared with tests/lb)
from pyinfra.api import FunctionCommand, StringCommand
from pyinfra.context import ctx_host, ctx_state

from roles.api import ApiCall


@dataclass(frozen=True)
class Case:
    """One fixture file: its id (file stem) and parsed content."""

    id: str
    path: Path
    data: dict[str, Any]


def load_cases(folder: Path) -> list[Case]:
    """Every `*.json` case in `folder`, sorted by name."""
    cases = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise AssertionError(f"{path}: not valid JSON: {e}") from e
        cases.append(Case(path.stem, path, data))
    if not cases:
        raise AssertionError(f"{folder}: no *.json fixture cases")
    return cases


def params(folder: Path) -> list[Any]:
    """`load_cases(folder)` as pytest params with readable ids."""
    return [pytest.param(c, id=c.id) for c in load_cases(folder)]


def kwargs_key(kwargs: dict[str, Any]) -> str:
    """The fixture key for a fact call's arguments: "k=v, k2=v2" sorted by key."""
    return ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items()))


def render_command(command: Any) -> Any:
    """A yielded command in fixture form (raw values: what the connector receives)."""
    if isinstance(command, str):
        return command.strip()
    if isinstance(command, ApiCall):
        return {"call": command.method, "params": json.loads(json.dumps(command.params))}
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    if isinstance(command, FunctionCommand):
        return [command.function.__name__, list(command.args), dict(command.kwargs)]
    raise AssertionError(f"{command!r} is not a command the harness knows")


def _normalise(value: Any) -> Any:
    """Turn dataclasses, tuples and sets into JSON-comparable data."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot render {value!r} for comparison")


def _check_exception(case: Case, error: BaseException) -> None:
    expected = case.data["exception"]
    assert type(error).__name__ == expected["name"], f"{case.path}: got {type(error).__name__}: {error}"
    if "message" in expected:
        assert str(error) == expected["message"], f"{case.path}: message was {str(error)!r}"


# ----------------------------------------------------------------------------------------------- facts


def check_fact(fact_cls: type, case: Case) -> None:
    """Build the fact's command from `arg`, compare it, then process the output into the expected value."""
    fact = fact_cls()
    arg = case.data.get("arg", {})
    command = fact.command(**arg) if callable(fact.command) else fact.command
    if "command" in case.data:
        assert render_command(command) == case.data["command"], f"{case.path}: command differs"
    if "output_json" in case.data:
        output = [json.dumps(case.data["output_json"], sort_keys=True)]
    else:
        output = list(case.data.get("output", []))
    if "exception" in case.data:
        with pytest.raises(Exception) as info:
            fact.process(output)
        _check_exception(case, info.value)
        return
    value = fact.process(output) if output else fact_cls.default()
    assert _normalise(value) == case.data["fact"], f"{case.path}: parsed fact differs"


# ------------------------------------------------------------------------------------------ operations


@dataclass
class FakeConfig:
    DIFF: bool = False


@dataclass
class FakeState:
    """The parts of pyinfra's State an operation body touches."""

    config: FakeConfig = field(default_factory=FakeConfig)
    is_executing: bool = False
    print_noop_info: bool = False


class FakeData(dict):  # type: ignore[type-arg]
    """host.data: attribute and `.get` access over the fixture's host_data."""

    def __getattr__(self, key: str) -> Any:
        return self.get(key)


class FakeHost:
    """A host whose facts come from the fixture and whose noops are recorded."""

    def __init__(self, facts: dict[str, dict[str, Any]], data: dict[str, Any] | None = None,
                 host_name: str = "@fake/device") -> None:
        self.name = host_name
        self.print_prefix = f"[{host_name}] "
        self.data = FakeData(data or {})
        self.groups: list[str] = []
        self.facts = facts
        self.noops: list[str] = []
        self.fact_calls: list[tuple[str, str]] = []

    def get_fact(self, fact_cls: type, *args: Any, **kwargs: Any) -> Any:
        assert not args, "facts are called with keyword arguments only"
        cls_name = fact_cls.__name__
        key = kwargs_key(kwargs)
        self.fact_calls.append((cls_name, key))
        by_args = self.facts.get(cls_name)
        if by_args is None or key not in by_args:
            raise AssertionError(f"fixture has no fact {cls_name} for ({key})")
        return by_args[key]

    def noop(self, description: str) -> None:
        self.noops.append(description)

    def log(self, message: str, log_func: Any = None) -> None:
        pass


def run_operation(op: Any, case: Case) -> tuple[list[Any], FakeHost]:
    """Run the op's generator for a fixture; returns the rendered commands and the fake host."""
    host = FakeHost(case.data.get("facts", {}), case.data.get("host_data"))
    state = FakeState(config=FakeConfig(DIFF=bool(case.data.get("diff", False))))
    with ctx_state.use(state), ctx_host.use(host):
        commands = [render_command(c) for c in op._inner(*case.data.get("args", []),
                                                          **case.data.get("kwargs", {}))]
    return commands, host


def check_operation(op: Any, case: Case) -> None:
    """Compare the op's yielded commands (and noop description) with the fixture's."""
    if "exception" in case.data:
        with pytest.raises(Exception) as info:
            run_operation(op, case)
        _check_exception(case, info.value)
        return
    commands, host = run_operation(op, case)
    assert commands == case.data["commands"], (
        f"{case.path}: commands differ\n--> COMMANDS OUTPUT: {json.dumps(commands, indent=1)}")
    if "noop_description" in case.data:
        assert host.noops == [case.data["noop_description"]], f"{case.path}: noops were {host.noops}"
    else:
        assert not host.noops, f"{case.path}: unexpected noop {host.noops}"


# ------------------------------------------------------------------------------------------ integration
# Real peers (simulators, BIND) as subprocesses on loopback, and the pyinfra CLI run on a temporary
# inventory. The `peers` fixture in tests/roles/conftest.py stops every Peer a test started.

ROOT = Path(__file__).resolve().parents[2]



@dataclass
class Peer:
    """A device stand-in running as a subprocess, listening on `address:port` (TCP)."""

    name: str
    argv: list[str]
    address: str
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: Any = None

    def start(self, timeout: float = 20.0) -> Peer:
        import os
        import socket
        import subprocess
        import time

        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                         env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): "
                                   f"{self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.address, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name}: nothing listens on {self.address}:{self.port} after {timeout}s")

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def write_inventory(folder: Path, groups: dict[str, list[tuple[str, dict[str, Any]]]],
                    group_data: dict[str, Path] | None = None) -> Path:
    """An inventory file `folder/inventory.py` with these groups, plus group_data files copied beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['"""Temporary test inventory."""']
    for group, hosts in groups.items():
        lines.append(f"{group} = {hosts!r}")
    path = folder / "inventory.py"
    path.write_text("\n".join(lines) + "\n")
    if group_data:
        (folder / "group_data").mkdir(exist_ok=True)
        for group, source in group_data.items():
            (folder / "group_data" / f"{group}.py").write_text(source.read_text())
    return path


@dataclass(frozen=True)
class CliRun:
    """One pyinfra CLI run: exit code, output, wall time."""

    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_pyinfra(cwd: Path, inventory: Path, deploy: Path | str, *args: str, timeout: float = 180) -> CliRun:
    """`pyinfra INVENTORY DEPLOY ARGS...` in `cwd` (relative paths such as backups land there)."""
    import os
    import subprocess
    import sys
    import time

    argv = [str(Path(sys.executable).with_name("pyinfra")), str(inventory), str(deploy), *args]
    env = {**os.environ, "PYINFRA_PROGRESS": "off", "PYTHONWARNINGS": "ignore"}
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return CliRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


@contextmanager
def loopback_addresses(*addresses: str) -> Iterator[None]:
    """Extra 127.x addresses on `lo` for daemons that only listen on configured addresses (BIND).

    Linux already routes all of 127.0.0.0/8 to `lo`, so a /32 there changes no routing; only the addresses
    this call added are removed afterwards. Needs root: skips the test otherwise.
    """
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("needs root to add loopback addresses for BIND")
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True,
                           check=True).stdout
    added = []
    try:
        for address in addresses:
            assert address.startswith("127."), "loopback addresses only"
            if f" {address}/" not in shown:
                subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
                added.append(address)
        yield
    finally:
        for address in added:
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], check=False)


def site_data(**over: Any) -> dict[str, Any]:
    """The lab site's values (inventory/lab.site.toml through roles.site) as the host data role deploys
    read (`vip`, `zone`, `asa_object_names`, ...), with `over` on top."""
    from roles.site import load_site

    data = load_site(ROOT / "inventory" / "lab.site.toml").group_data()
    data.pop("site", None)
    data.update(over)
    return data
