"""Windows DNS integration fixtures: BIND 9 on loopback and a simulated domain controller (DC1) whose
DnsServer cmdlets change that BIND zone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "winrm"))

from winrm_peers import Bind, WinRMPeer, start_bind, start_winrm  # noqa: E402


@pytest.fixture
def bind(tmp_path: Path, peers: list) -> Bind:
    return start_bind(tmp_path, peers)


@pytest.fixture
def dc1(tmp_path: Path, peers: list, bind: Bind) -> WinRMPeer:
    return start_winrm(tmp_path, peers, "dc1", "127.0.0.25", "dns",
                       ["--dns-server", bind.address, "--dns-port", str(bind.port), "--zone", bind.zone,
                        "--tsig-name", bind.tsig_name, "--tsig-algorithm", bind.tsig_algorithm],
                       {"WINRM_SIM_TSIG_SECRET": bind.tsig_secret})


@pytest.fixture(autouse=True)
def _no_leftover_pyinfra_context() -> None:
    """pyinfra's `ctx_host.use()` does not restore the previous host when the body raises, so a case that
    expects an exception can leave a fake host behind; start every test without one."""
    from pyinfra.context import ctx_host, ctx_state

    ctx_host.reset()
    ctx_state.reset()
