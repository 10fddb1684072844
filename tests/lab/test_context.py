"""Daemon bookkeeping in the lab context: a pidfile names one process, not whoever gets its pid later."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.context import Lab, _start_time
from lab.errors import LabError
from lab.topology import load_topology

pytestmark = pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning")


def test_pidfile_with_start_time_matches_only_that_process(tmp_path: Path) -> None:
    lab = Lab(load_topology(), state_dir=tmp_path)
    pidfile = lab.folder("run") / "me.pid"
    me = os.getpid()
    pidfile.write_text(f"{me} {_start_time(me)}\n")
    assert lab.pid("me") == me
    pidfile.write_text(f"{me} 1\n")  # same pid, another process's start time: a reused pid
    assert lab.pid("me") is None
    pidfile.write_text(f"{me}\n")  # the old one-field form still works
    assert lab.pid("me") == me


def test_spawn_records_start_time_and_stop_ends_it(tmp_path: Path) -> None:
    lab = Lab(load_topology(), state_dir=tmp_path)
    pid = lab.spawn("sleeper", None, ["sleep", "60"])
    try:
        assert (lab.folder("run") / "sleeper.pid").read_text().split() == [str(pid), _start_time(pid)]
        assert lab.spawn("sleeper", None, ["sleep", "60"]) == pid  # already running: no second one
    finally:
        lab.stop_daemon("sleeper")
    assert lab.pid("sleeper") is None


def test_wait_ready_stops_early_when_the_daemon_died(tmp_path: Path) -> None:
    lab = Lab(load_topology(), state_dir=tmp_path)
    lab.spawn("quitter", None, ["true"])
    calls: list[int] = []
    with pytest.raises(LabError, match="^quitter never came up$"):
        lab.wait_ready(lambda: bool(calls.append(1)), 30.0, "quitter never came up", daemon="quitter",
                       interval=0.05)
    assert len(calls) < 100, "gave up long before the 30 s timeout once the daemon had exited"
    answers = iter([False, False, True])
    lab.wait_ready(lambda: next(answers), 5.0, "unused")  # no daemon: polls until ready
