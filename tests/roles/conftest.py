"""Shared setup for the roles' tests: puts `harness` (fixture-driven fact/operation checks, loopback peers,
pyinfra CLI runs) on the import path, and stops the peers a test starts.

Test modules under tests/roles/<kind>/ have no __init__.py (a `tests.roles` package would shadow the
project's `roles` package), so their basenames must be unique: test_<kind>_units.py, test_<kind>_peer.py, ...
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def peers() -> Iterator[list[Any]]:
    """Append started `harness.Peer`s here; they are stopped when the test ends."""
    started: list[Any] = []
    yield started
    for peer in reversed(started):
        peer.stop()
