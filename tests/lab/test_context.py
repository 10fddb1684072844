"""Daemon bookkeeping in the lab context: a pidfile names one process, not whoever gets its pid later."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.context import Lab, _start_time
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
