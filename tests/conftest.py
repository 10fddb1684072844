"""Shared fixtures: `lab` brings the rehearsal lab up once per test run (reusing one that is
already up) and takes it down at the end, checking that nothing was left behind."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


@contextmanager
def _lab_user(lab_: Lab) -> Iterator[Callable[[], bool]]:
    """Hold a shared lock on the lab while this test run uses it. The callable it yields lets go
    and reports whether this run is now the only user (so it may take the lab down)."""
    lab_.state_dir.mkdir(parents=True, exist_ok=True)
    path = lab_.state_dir / ".test-users"
    fh = open(path, "a")  # noqa: SIM115 - held for the whole run
    fcntl.flock(fh, fcntl.LOCK_SH)

    def last_user() -> bool:
        fcntl.flock(fh, fcntl.LOCK_UN)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    try:
        yield last_user
    finally:
        fh.close()


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The whole lab, up (`exha lab up`, idempotent, so a lab that is already up is reused). At the
    end the last test run using it takes it down and checks that nothing is left behind.
    Set EXHA_LAB_KEEP=1 to leave it up."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    lab_ = Lab()
    with _lab_user(lab_) as last_user:
        cp = exha("lab", "up")
        if cp.returncode != 0:
            if last_user():
                exha("lab", "down")
            pytest.fail(f"exha lab up failed ({cp.returncode}): {cp.stderr.strip()[-2000:]}")
        yield lab_
        if os.environ.get("EXHA_LAB_KEEP") == "1" or not last_user():
            return
        cp = exha("lab", "down")
        left = leftovers(lab_) + [f"namespace {n}" for n in lab_namespaces(lab_.topology.prefix)]
        assert cp.returncode == 0 and not left, f"lab down left: {left or cp.stderr.strip()}"
