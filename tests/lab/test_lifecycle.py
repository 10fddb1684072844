"""Bringing the lab core up and down on the scratch topology: ordered start, real status, and a
tear-down that leaves no namespace, link, route, process or mount behind, even from half up."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from lab.components import Loaded, bring_up, collect_status, leftovers, tear_down
from lab.context import Lab
from lab.dns import DnsComponent
from lab.errors import ClashError
from lab.exchange import ExchangeComponent
from lab.network import NetworkComponent, lab_namespaces

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, routes)"),
    pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning"),
]
ScratchFactory = Callable[..., Lab]
CORE = Loaded((NetworkComponent(), DnsComponent(), ExchangeComponent()), ())


def test_core_up_status_down_leaves_nothing(make_scratch: ScratchFactory) -> None:
    lab = make_scratch()
    steps: list[str] = []
    bring_up(lab, CORE, progress=steps.append)
    bring_up(lab, CORE)  # idempotent
    assert [s.split()[1] for s in steps] == ["network", "dns", "exchange"] * 2
    statuses = collect_status(lab, CORE)
    assert statuses and all(s.state == "up" for s in statuses), [s for s in statuses if s.state != "up"]
    pids = [lab.pid(n) for n in ("named-dc1", "named-dns2", "exchange-ex13-1", "exchange-ex13-2")]
    assert all(pids)
    assert tear_down(lab, CORE) == []
    assert lab_namespaces(lab.topology.prefix) == []
    assert not any(os.path.exists(f"/proc/{p}/cmdline") for p in pids if p)
    after = collect_status(lab, CORE)
    assert after and all(s.state == "down" for s in after), [s for s in after if s.state != "down"]
    assert {s.detail for s in after if s.host in ("dns", "exchange")} == {"lab network is not up"}


def test_down_from_half_up(make_scratch: ScratchFactory) -> None:
    lab = make_scratch()
    NetworkComponent().start(lab)
    DnsComponent().start(lab)
    assert lab.pid("named-dc1")
    assert tear_down(lab, CORE) == []
    assert tear_down(lab, CORE) == []  # and again, from nothing
    assert leftovers(lab) == [] and lab_namespaces(lab.topology.prefix) == []


def test_clash_stops_up_before_anything_starts(make_scratch: ScratchFactory) -> None:
    first = make_scratch()
    NetworkComponent().start(first)
    second = make_scratch({"dc1": first.topology.host("dc1").address}, prefix="exhu-", net="10.78.0")
    with pytest.raises(ClashError, match="hosts.dc1.address"):
        bring_up(second, CORE)
    assert lab_namespaces("exhu-") == [] and second.pid("named-dc1") is None
