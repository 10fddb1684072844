"""Shared fixtures: `lab` brings the rehearsal lab up once per test run (reusing one that is
already up) and takes it down at the end, checking that nothing was left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from lab.components import leftovers
from lab.context import Lab
from lab.network import lab_namespaces

EXHA = [sys.executable, "-c", "from roles.cli import main; main()"]
UP_TIMEOUT = 600


def exha(*args: str, timeout: float = UP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run the `exha` command with this interpreter; output captured."""
    return subprocess.run([*EXHA, *args], capture_output=True, text=True, timeout=timeout, check=False)


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the rehearsal lab needs root (network namespaces, routes, daemons in namespaces)"
    if not shutil.which("ip") or not os.path.isdir("/proc/sys/net"):
        return "the rehearsal lab needs iproute2 and network namespaces"
    return None


ExhaRunner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def exha_run() -> ExhaRunner:
    """Run the `exha` command (this interpreter, output captured): exha_run("lab", "status")."""
    return exha


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The whole lab, up (`exha lab up`, idempotent). Set EXHA_LAB_KEEP=1 to leave it up afterwards."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    lab_ = Lab()
    cp = exha("lab", "up")
    if cp.returncode != 0:
        exha("lab", "down")
        pytest.fail(f"exha lab up failed ({cp.returncode}): {cp.stderr.strip()[-2000:]}")
    yield lab_
    if os.environ.get("EXHA_LAB_KEEP") == "1":
        return
    cp = exha("lab", "down")
    left = leftovers(lab_) + [f"namespace {n}" for n in lab_namespaces(lab_.topology.prefix)]
    assert cp.returncode == 0 and not left, f"lab down left: {left or cp.stderr.strip()}"
