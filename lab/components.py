"""The lab's services in start order (`lab down` stops them in reverse). Each is imported lazily
so a component whose module is not there yet is skipped with a note instead of breaking the lab."""

from __future__ import annotations

import fcntl
import importlib
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lab.context import Component, Lab, ServiceStatus
from lab.errors import LabError

T = TypeVar("T")

# "module:Class", in start order.
COMPONENTS: tuple[str, ...] = (
    "lab.network:NetworkComponent",
    "lab.dns:DnsComponent",
    "lab.exchange:ExchangeComponent",
    "lab.asa_sim.component:AsaComponent",
    "lab.winrm_sim.component:WinRMComponent",
    "lab.vsphere.component:VSphereComponent",
    "lab.vm.component:BalancerVMComponent",
)


@dataclass(frozen=True)
class Loaded:
    """The components that could be loaded, and a note for each one that was skipped."""

    components: tuple[Component, ...]
    notes: tuple[str, ...]


def load(specs: tuple[str, ...] = COMPONENTS) -> Loaded:
    """Import and construct each component; a missing module is skipped with a note."""
    found: list[Component] = []
    notes: list[str] = []
    for spec in specs:
        module_name, _, class_name = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
                notes.append(f"{spec}: skipped (module {e.name} is not in this tree)")
                continue
            raise
        cls = getattr(module, class_name, None)
        if cls is None:
            notes.append(f"{spec}: skipped ({module_name} has no {class_name})")
            continue
        found.append(cls())
    return Loaded(tuple(found), tuple(notes))


# -- the lab's life cycle -------------------------------------------------------------------

SECRET_MARKERS = ("password", "secret")


def mask_secrets(values: dict[str, Any]) -> dict[str, Any]:
    """A copy of an endpoint's credentials with every password/secret value masked."""
    return {
        k: ("********" if any(m in k.lower() for m in SECRET_MARKERS) and v else v) for k, v in values.items()
    }


@contextmanager
def locked(lab: Lab) -> Iterator[None]:
    """Serialise `up`/`down` on one state folder."""
    lab.state_dir.mkdir(parents=True, exist_ok=True)
    with open(lab.state_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _guarded(lab: Lab, component: Component, step: str, fn: Callable[[Lab], T]) -> T:
    """Run one component step; an unexpected exception becomes a one-line LabError naming the
    component, with the traceback kept in logs/lab-errors.log."""
    try:
        return fn(lab)
    except LabError:
        raise
    except Exception as e:
        log = lab.logs / "lab-errors.log"
        with open(log, "a") as fh:
            fh.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {component.name} {step}\n")
            fh.write(traceback.format_exc())
        raise LabError(
            f"{component.name}: {step} failed: {type(e).__name__}: {e} (traceback in {log})"
        ) from e


def bring_up(lab: Lab, loaded: Loaded, progress: Callable[[str], None] = lambda _: None) -> None:
    """Check for clashes, build every component, then start each in order (all idempotent)."""
    from lab.network import check_clashes

    with locked(lab):
        check_clashes(lab.topology)
        for c in loaded.components:
            t0 = time.monotonic()
            _guarded(lab, c, "build", c.build)
            progress(f"built {c.name} ({time.monotonic() - t0:.1f}s)")
        for c in loaded.components:
            t0 = time.monotonic()
            _guarded(lab, c, "start", c.start)
            progress(f"started {c.name} ({time.monotonic() - t0:.1f}s)")


def _daemon_names(lab: Lab) -> list[str]:
    run_dir = lab.state_dir / "run"
    return sorted(p.stem for p in run_dir.glob("*.pid")) if run_dir.is_dir() else []


def leftovers(lab: Lab) -> list[str]:
    """Everything the lab made that still exists: namespaces, links, routes, daemons, mounts."""
    from lab.network import leftovers as network_leftovers

    left = network_leftovers(lab)
    left += [f"process {name} (pid {lab.pid(name)})" for name in _daemon_names(lab) if lab.pid(name)]
    roots = (str(lab.state_dir.resolve()), str(lab.cache_dir.resolve()))
    try:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        mounts = []
    left += [f"mount {m}" for m in mounts if any(m == r or m.startswith(r + "/") for r in roots)]
    return left


def tear_down(lab: Lab, loaded: Loaded, progress: Callable[[str], None] = lambda _: None) -> list[str]:
    """Stop every component in reverse order (carrying on past failures), stop any daemon left,
    and return what still exists (empty when the machine is clean)."""
    problems: list[str] = []
    with locked(lab):
        for c in reversed(loaded.components):
            try:
                _guarded(lab, c, "stop", c.stop)
                progress(f"stopped {c.name}")
            except LabError as e:
                problems.append(f"{c.name}: {e}")
        for name in _daemon_names(lab):
            lab.stop_daemon(name)
        if any(c.name == "network" for c in loaded.components):
            from lab.network import NetworkComponent

            NetworkComponent().stop(lab)  # a second pass: namespaces a daemon stop may have freed
    return problems + leftovers(lab)


def collect_status(lab: Lab, loaded: Loaded) -> list[ServiceStatus]:
    """Every component's real status; a component whose check fails reports as down. Without the
    lab network only the network itself is checked: no probe may leave by the machine's own routes."""
    from lab.network import network_up

    out: list[ServiceStatus] = []
    net_up = network_up(lab)
    for c in loaded.components:
        if c.name != "network" and not net_up:
            out.append(ServiceStatus(c.name, c.name, "", None, "down", "lab network is not up"))
            continue
        try:
            out += _guarded(lab, c, "status", c.status)
        except LabError as e:
            out.append(ServiceStatus(c.name, c.name, "", None, "down", str(e)))
    return out
