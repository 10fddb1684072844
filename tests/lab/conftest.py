"""Fixtures for the lab core's tests: a scratch copy of the topology on its own prefix and
addresses (so network tests run beside or without the real lab), torn down after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.components import Loaded, leftovers, tear_down
from lab.context import Lab
from lab.dns import DnsComponent
from lab.exchange import ExchangeComponent
from lab.network import NetworkComponent, lab_namespaces
from lab.topology import load_topology

PREFIX = "exht-"
NET = "10.77.0"
HOSTS = [
    ("asa1", "asa", 1),
    ("esxi1", "vsphere", 5),
    ("dc1", "dns-primary", 10),
    ("dns2", "dns-secondary", 11),
    ("ex13-1", "exchange", 23),
    ("ex13-2", "exchange", 24),
]
CORE = (NetworkComponent(), DnsComponent(), ExchangeComponent())


def scratch_toml(overrides: dict[str, str] | None = None, prefix: str = PREFIX, net: str = NET) -> str:
    """The scratch topology; `overrides` maps a host name (or "admin") to an address to plant."""
    o = overrides or {}
    lines = [
        "[lab]",
        f'prefix = "{prefix}"',
        'domain = "corp.example"',
        "prefix_len = 8",
        f'admin_address = "{o.get("admin", f"{net}.100")}"',
    ]
    for name, role, last in HOSTS:
        lines += [f"[hosts.{name}]", f'address = "{o.get(name, f"{net}.{last}")}"', f'role = "{role}"']
        if role == "exchange":
            lines.append(f'fqdn = "{name.upper()}.corp.example"')
    lines += [
        "[hosts.lb1]",
        'role = "balancer-vm"',
        f'address = "{net}.200"',
        f'target_address = "{net}.27"',
        f'vips = ["{net}.28"]',
        f'vm_name = "{prefix}lb1"',
        "[seed]",
        f'cas_array_address = "{o.get("ex13-1", f"{net}.23")}"',
    ]
    return "\n".join(lines) + "\n"


ScratchFactory = Callable[..., Lab]


@pytest.fixture
def make_scratch(tmp_path: Path) -> Iterator[ScratchFactory]:
    """Build a Lab on the scratch topology (optionally with planted addresses); anything it left
    running or wired is taken down afterwards."""
    made: list[Lab] = []

    def factory(overrides: dict[str, str] | None = None, prefix: str = PREFIX, net: str = NET) -> Lab:
        folder = tmp_path / f"scratch{len(made)}"
        folder.mkdir()
        path = folder / "topology.toml"
        path.write_text(scratch_toml(overrides, prefix, net))
        lab = Lab(load_topology(path), state_dir=folder / "state", cache_dir=folder / "cache")
        made.append(lab)
        return lab

    yield factory
    for lab in reversed(made):
        if leftovers(lab) or lab_namespaces(lab.topology.prefix):
            tear_down(lab, Loaded(CORE, ()))
