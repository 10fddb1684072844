"""First-boot settings of a balancer VM: the topology's defaults and the vApp properties on top."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.context import Lab
from lab.topology import load_topology
from lab.vm.guestinfo import GuestSettings, apply_vapp, first_boot_settings


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(load_topology(), state_dir=tmp_path)


def test_first_boot_defaults_come_from_the_topology(lab: Lab) -> None:
    assert first_boot_settings(lab, lab.topology.host("lb1")) == GuestSettings(
        hostname="lb1", address="10.0.0.200", prefix_len=8, gateway="10.0.0.1",
        dns=("10.0.0.10", "10.0.0.11"))


@pytest.mark.parametrize(("props", "expected"), [
    ({}, {}),
    ({"hostname": "lb1-blue"}, {"hostname": "lb1-blue"}),
    ({"ip0": "10.0.0.27", "netmask0": "255.255.255.0"}, {"address": "10.0.0.27", "prefix_len": 24}),
    ({"gateway": "10.0.0.254", "DNS": "10.0.0.11 10.0.0.10"},
     {"gateway": "10.0.0.254", "dns": ("10.0.0.11", "10.0.0.10")}),
    ({"ip0": "", "hostname": "", "DNS": ""}, {}),
], ids=["none", "hostname", "ip0-netmask", "gateway-dns", "empty-values"])
def test_vapp_properties_override_the_defaults(lab: Lab, props: dict[str, str],
                                              expected: dict[str, object]) -> None:
    host = lab.topology.host("lb1")
    base = first_boot_settings(lab, host)
    settings, warnings = apply_vapp(base, host, props)
    assert warnings == []
    assert {k: v for k, v in vars(settings).items() if vars(base)[k] != v} == expected


@pytest.mark.parametrize(("props", "warning"), [
    ({"hostname": "-bad_name"}, "vApp property hostname='-bad_name' is not a valid host name; using lb1"),
    ({"ip0": "10.0.0.99"}, "vApp property ip0='10.0.0.99' is not one of lb1's lab addresses "
                           "(10.0.0.200, 10.0.0.27); using 10.0.0.200"),
    ({"ip0": "10.0.0.28"}, "vApp property ip0='10.0.0.28' is not one of lb1's lab addresses "
                           "(10.0.0.200, 10.0.0.27); using 10.0.0.200"),
    ({"netmask0": "255.0.255.0"}, "vApp property netmask0='255.0.255.0' is not a netmask; using /8"),
    ({"gateway": "gw"}, "vApp property gateway='gw' is not an IPv4 address; using 10.0.0.1"),
    ({"DNS": "10.0.0.10,dc1"}, "vApp property DNS='10.0.0.10,dc1' is not a list of IPv4 addresses; "
                               "using the lab's DNS"),
], ids=["hostname", "ip0-foreign", "ip0-vip", "netmask", "gateway", "dns"])
def test_bad_vapp_values_are_ignored_with_one_line_warning(lab: Lab, props: dict[str, str],
                                                          warning: str) -> None:
    host = lab.topology.host("lb1")
    base = first_boot_settings(lab, host)
    settings, warnings = apply_vapp(base, host, props)
    assert settings == base and warnings == [warning]
