"""The vSphere role against the simulator's vCenter model: a cluster's resource pool, a distributed
port group, the choice between several hosts/clusters, and the guest-address timeout."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator

import pytest
from test_vsphere_sim import DEPLOY, PYINFRA, Sim, _free_port, _one_error_line, apply, pyinfra, totals

from lab.context import Lab
from lab.topology import load_topology
from lab.vm.appliance import build_ova
from lab.vsphere.build import GOVMOMI
from lab.vsphere.client import all_vms, session
from lab.vsphere.component import VSphereComponent

pytestmark = [
    pytest.mark.skipif(not GOVMOMI.is_dir() or shutil.which("go") is None,
                       reason="needs golang-go and golang-github-vmware-govmomi-dev (lab/setup.sh)"),
    pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
]

LOOPBACK = "127.0.54.6"


@pytest.fixture(scope="module")
def vcenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    topo = load_topology()
    hosts = {n: dataclasses.replace(h, address=LOOPBACK, model="vpx") if h.role == "vsphere" else h
             for n, h in topo.hosts.items()}
    lab = Lab(dataclasses.replace(topo, hosts=hosts), state_dir=tmp_path_factory.mktemp("vcenter-state"))
    comp = VSphereComponent(port=_free_port(LOOPBACK), use_namespaces=False)
    comp.start(lab)
    ova = build_ova(tmp_path_factory.mktemp("ova") / "exha-balancer.ova")
    try:
        yield Sim(lab, lab.credentials()["esxi1"], ova, tmp_path_factory.mktemp("inventories"))
    finally:
        comp.stop(lab)


def test_import_into_a_cluster_on_a_distributed_port_group(vcenter: Sim) -> None:
    inv = vcenter.inventory("exha-vc", balancer_resource_pool="DC0_C0", balancer_network="DC0_DVPG0",
                            balancer_wait_for_ip=False)
    cp, out = apply(inv)
    assert cp.returncode == 0, cp.stderr
    assert totals(out)["success"] == 1
    with session(vcenter.creds) as si:
        [vm] = [v for v in all_vms(si) if v.name == "exha-vc"]
        assert vm.runtime.powerState == "poweredOn"
        assert vm.resourcePool.owner.name == "DC0_C0"
        assert [n.name for n in vm.network] == ["DC0_DVPG0"]
    cp, out = apply(inv)
    assert totals(out) == {"hosts": 1, "success": 0, "error": 0, "no_change": 1}


def test_several_hosts_and_clusters_need_a_resource_pool(vcenter: Sim) -> None:
    cp = pyinfra(vcenter.inventory("exha-vc2", balancer_network="DC0_DVPG0"), str(DEPLOY), "--dry")
    assert cp.returncode == 1
    assert _one_error_line(cp, "cannot place VM").endswith(
        "esxi1: cannot place VM exha-vc2: resource_pool is required with 2 hosts/clusters (it has: DC0_C0, DC0_H0)")


def test_guest_address_timeout_is_one_line(vcenter: Sim) -> None:
    inv = vcenter.inventory("exha-vc3", balancer_resource_pool="DC0_H0", balancer_network="DC0_DVPG0",
                            balancer_ip_timeout=2)
    cp, _ = apply(inv, argv=PYINFRA)
    assert cp.returncode == 1
    assert _one_error_line(cp, "reported no guest IP").endswith(
        "esxi1: command 'vsphere.wait_for_ip' rejected by device: exha-vc3 reported no guest IP address "
        "within 2s (is VMware Tools running in the guest?)")
