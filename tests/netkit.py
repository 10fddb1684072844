"""Loopback helpers shared by the test areas (tests/lb, tests/roles): tests talk to 127.0.0.0/8 only."""

from __future__ import annotations

import socket


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port free on loopback `address` right now."""
    assert address.startswith("127."), "tests talk to loopback only"
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])
