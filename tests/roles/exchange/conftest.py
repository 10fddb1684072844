"""Exchange integration fixtures: two simulated Exchange servers (EX13-1, EX13-2) sharing one
organization, over HTTPS on loopback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "winrm"))

from winrm_peers import WinRMPeer, start_winrm  # noqa: E402


@pytest.fixture
def exchange_hosts(tmp_path: Path, peers: list) -> list[WinRMPeer]:
    org = tmp_path / "org.json"
    extra = ["--exchange-servers", "EX13-1,EX13-2", "--org-state", str(org)]
    return [start_winrm(tmp_path, peers, "ex13-1", "127.0.0.21", "exchange", extra),
            start_winrm(tmp_path, peers, "ex13-2", "127.0.0.22", "exchange", extra)]


@pytest.fixture(autouse=True)
def _no_leftover_pyinfra_context() -> None:
    """pyinfra's `ctx_host.use()` does not restore the previous host when the body raises, so a case that
    expects an exception can leave a fake host behind; start every test without one."""
    from pyinfra.context import ctx_host, ctx_state

    ctx_host.reset()
    ctx_state.reset()
