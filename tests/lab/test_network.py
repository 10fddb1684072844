"""The lab's wiring on a scratch prefix (exht-, 10.77.0.0/8 inside): namespaces, bridge, admin link
with /32 host routes, ARP both ways across the /32 admin end, the clash check, and clean removal."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

import pytest

from lab.context import Lab, run
from lab.errors import ClashError
from lab.network import (
    NetworkComponent,
    attach_namespace,
    detach_namespace,
    lab_namespaces,
    leftovers,
    link_exists,
    reachable,
)

ScratchFactory = Callable[..., Lab]
PREFIX = "exht-"  # the scratch topology's (tests/lab/conftest.py)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, routes)"),
    # Lab.spawn leaves its daemon's Popen unwaited on purpose (the daemon outlives the call).
    pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning"),
]


def _connect_from(namespace: str, address: str, port: int = 9) -> str:
    """Try a TCP connect from inside `namespace`; returns 'refused' (path works), 'timeout' or 'ok'."""
    code = (
        "import socket,sys\ns=socket.socket();s.settimeout(1.5)\n"
        "try:\n s.connect((sys.argv[1],int(sys.argv[2])));print('ok')\n"
        "except ConnectionRefusedError:print('refused')\nexcept OSError:print('timeout')"
    )
    return run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", code, address, str(port)]
    ).stdout.strip()


def _root_routes_via(interface: str) -> set[str]:
    out = run(["ip", "-j", "-4", "route", "show", "dev", interface], check=False)
    return {r["dst"] for r in json.loads(out.stdout or "[]")} if out.returncode == 0 else set()


def _machine_state() -> tuple[str, str]:
    """The machine's own addresses and main routes, to prove a refused start changed nothing."""
    return (
        run(["ip", "-4", "-o", "addr", "show"]).stdout,
        run(["ip", "-4", "route", "show", "table", "all"]).stdout,
    )


def test_up_wires_hosts_and_admin_link_both_ways(make_scratch: ScratchFactory) -> None:
    lab = make_scratch()
    t = lab.topology
    net = NetworkComponent()
    net.start(lab)
    net.start(lab)  # idempotent
    assert link_exists(t.admin_interface)
    assert _root_routes_via(t.admin_interface) == set(t.lab_addresses())
    addrs = run(["ip", "-j", "-4", "addr", "show", "dev", t.admin_interface]).stdout
    assert [a["local"] + "/" + str(a["prefixlen"]) for a in json.loads(addrs)[0]["addr_info"]] == [
        f"{t.admin_address}/32"
    ]
    for h in t.hosts.values():
        if h.role == "balancer-vm":
            assert h.namespace not in lab_namespaces(PREFIX)
            continue
        # Admin -> host (reset comes back) and host -> admin (ARP for the /32 admin end answered).
        assert reachable(h.address), h.name
        assert _connect_from(h.namespace, t.admin_address) == "refused", h.name
    # Host -> host across the bridge.
    assert _connect_from(t.host("ex13-1").namespace, t.host("dc1").address) == "refused"
    assert all(s.state == "up" for s in net.status(lab))


def test_attach_detach_namespace_with_extra_addresses(make_scratch: ScratchFactory) -> None:
    lab = make_scratch()
    NetworkComponent().start(lab)
    lb = lab.topology.host("lb1")
    attach_namespace(lab, lb.namespace, [lb.address, lb.target_address or ""], lab.topology.prefix_len)
    attach_namespace(lab, lb.namespace, [lb.address], lab.topology.prefix_len)  # idempotent, keeps extras
    assert reachable(lb.address) and reachable(lb.target_address or "")
    # A VIP the VM adds itself is reachable through the admin host route already in place.
    run(["ip", "-n", lb.namespace, "addr", "add", f"{lb.vips[0]}/8", "dev", "eth0"])
    assert reachable(lb.vips[0])
    assert _connect_from(lb.namespace, lab.topology.admin_address) == "refused"
    detach_namespace(lab, lb.namespace)
    assert lb.namespace not in lab_namespaces(PREFIX)
    assert not reachable(lb.address, timeout=0.5)


def test_stop_removes_everything_it_made(make_scratch: ScratchFactory) -> None:
    lab = make_scratch()
    net = NetworkComponent()
    net.start(lab)
    lb = lab.topology.host("lb1")
    attach_namespace(lab, lb.namespace, [lb.address])
    # A process left running inside a host namespace is ended too.
    pid = lab.spawn("sleeper", lab.topology.host("dc1").namespace, ["sleep", "300"])
    net.stop(lab)
    net.stop(lab)  # idempotent
    assert leftovers(lab) == []
    assert lab_namespaces(PREFIX) == []
    assert not link_exists(lab.topology.admin_interface)
    assert _root_routes_via(lab.topology.admin_interface) == set()
    assert lab.pid("sleeper") is None and not os.path.exists(f"/proc/{pid}/cmdline")


def test_clash_with_machine_address_refuses_and_touches_nothing(make_scratch: ScratchFactory) -> None:
    own = json.loads(run(["ip", "-j", "-4", "addr", "show"]).stdout)
    machine = next(
        (a["local"], link["ifname"])
        for link in own
        if link["ifname"] != "lo"
        for a in link.get("addr_info", [])
    )
    lab = make_scratch({"dc1": machine[0]})
    before = _machine_state()
    with pytest.raises(ClashError) as e:
        NetworkComponent().start(lab)
    msg = str(e.value)
    assert machine[0] in msg and machine[1] in msg and "hosts.dc1.address" in msg
    assert str(lab.topology.path) in msg
    assert lab_namespaces(PREFIX) == [] and not link_exists(lab.topology.admin_interface)
    assert _machine_state() == before


def test_clash_with_default_gateway(make_scratch: ScratchFactory) -> None:
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "default"]).stdout or "[]")
    gateway = next((r["gateway"] for r in routes if r.get("gateway")), None)
    if gateway is None:
        pytest.skip("the machine has no IPv4 default gateway to clash with")
    lab = make_scratch({"asa1": gateway})
    with pytest.raises(ClashError, match="hosts.asa1.address"):
        NetworkComponent().start(lab)
    assert lab_namespaces(PREFIX) == []


def test_clash_with_another_labs_route(make_scratch: ScratchFactory) -> None:
    """A second lab (own prefix and admin address) whose host address the first lab's admin link
    already routes is refused, naming that route; the first lab is untouched."""
    first = make_scratch()
    NetworkComponent().start(first)
    second = make_scratch({"ex13-2": first.topology.host("ex13-2").address}, prefix="exhu-", net="10.78.0")
    with pytest.raises(ClashError) as e:
        NetworkComponent().start(second)
    assert "hosts.ex13-2.address" in str(e.value) and first.topology.admin_interface in str(e.value)
    assert lab_namespaces("exhu-") == [] and not link_exists(second.topology.admin_interface)
    assert _root_routes_via(first.topology.admin_interface) == set(first.topology.lab_addresses())


def test_status_reports_down_when_a_host_is_unplugged(make_scratch: ScratchFactory) -> None:
    lab: Lab = make_scratch()
    net = NetworkComponent()
    net.start(lab)
    dc1 = lab.topology.host("dc1")
    run(["ip", "-n", dc1.namespace, "link", "set", "eth0", "down"])
    states = {(s.host, s.service): s.state for s in net.status(lab)}
    assert states[("dc1", "link")] == "down" and states[("dns2", "link")] == "up"
    net.start(lab)  # start repairs it
    assert {(s.host, s.service): s.state for s in net.status(lab)}[("dc1", "link")] == "up"
