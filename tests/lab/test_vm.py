"""The balancer VM: Debian rootfs booted under systemd in its own namespaces, SSH verified against
the lab's known_hosts, and the agent that boots it when the vSphere simulator powers it on.

Uses a scratch copy of the topology (prefix "exhv-", VM names "exhv-lb1"/"exhv-lb2") and the
"isolated" network: the VM's eth0 pairs with a peer namespace holding the admin address, and SSH
runs inside that peer, so every address used lives only in namespaces these tests create.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.context import Lab, run
from lab.errors import LabError
from lab.network import NetworkComponent, namespace_exists
from lab.topology import load_topology
from lab.vm import instance
from lab.vm.appliance import write_ovf
from lab.vm.component import AGENT, BalancerVMComponent, ssh_run
from lab.vm.netattach import peer_namespace, vm_mac
from lab.vm.ssh import known_hosts_file
from lab.vsphere.build import GOVMOMI
from lab.vsphere.client import session
from lab.vsphere.component import VSphereComponent
from lab.vsphere.importer import find_vm, import_ovf, power, wait_task

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, mounts, cgroups)"),
    pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="needs mmdebstrap (lab/setup.sh)"),
    pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
]

SCRATCH_PREFIX = "exhv-"


def scratch_topology(tmp: Path) -> Path:
    text = (Path(load_topology().path)).read_text()
    text = text.replace('prefix = "exha-"', f'prefix = "{SCRATCH_PREFIX}"')
    text = text.replace('"exha-lb', f'"{SCRATCH_PREFIX}lb')
    path = tmp / "topology.toml"
    path.write_text(text)
    return path


def _drop_disks(lab: Lab) -> None:
    """Delete the VMs' root file systems (about 290 MB each) from a scratch state folder."""
    for host in lab.topology.by_role("balancer-vm"):
        shutil.rmtree(instance.paths(lab, host).rootfs, ignore_errors=True)


@pytest.fixture(scope="module")
def vm_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("vm")
    lab = Lab(load_topology(scratch_topology(tmp)), state_dir=tmp / "state")
    assert lab.topology.host("lb1").namespace == "exhv-lb1"
    comp = BalancerVMComponent(network="isolated", agent=False)
    comp.build(lab)
    comp.start(lab)
    try:
        yield lab
    finally:
        comp.stop(lab)
        _drop_disks(lab)


def _system_state(lab: Lab, host_name: str) -> str:
    deadline = time.monotonic() + 60
    state = ""
    while time.monotonic() < deadline:
        cp = ssh_run(lab, lab.topology.host(host_name), "systemctl", "is-system-running", mode="isolated")
        state = cp.stdout.strip()
        if state in ("running", "degraded"):
            return state
        assert state in ("initializing", "starting"), cp.stderr
        time.sleep(0.5)
    return state


def test_direct_boot_is_a_debian_vm_reached_by_verified_ssh(vm_lab: Lab) -> None:
    lab = vm_lab
    host = lab.topology.host("lb1")
    BalancerVMComponent(network="isolated", agent=False).boot(lab, "lb1")
    assert instance.is_running(lab, host)
    assert _system_state(lab, "lb1") in ("running", "degraded")
    cp = ssh_run(lab, host, "hostname; . /etc/os-release; echo $VERSION_CODENAME;"
                 " ip -4 -o addr show dev eth0;"
                 " cat /etc/network/interfaces; python3 -m venv --help >/dev/null && echo venv-ok;"
                 " nft --version; test -e /etc/ssh/ssh_host_rsa_key || echo no-shared-keys", mode="isolated")
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    assert out.startswith("lb1\nbookworm\n")
    assert "inet 10.0.0.200/8" in out and "address 10.0.0.200/8" in out and "gateway 10.0.0.1" in out
    assert "venv-ok" in out and "nftables" in out and "no-shared-keys" in out
    [st] = [s for s in BalancerVMComponent(network="isolated", agent=False).status(lab) if s.host == "lb1"]
    assert st.state == "up" and st.detail.startswith("systemd ")
    # The VM's PID 1 is systemd inside its own PID namespace; the machine sees it as an ordinary pid.
    pid = instance.systemd_pid(lab, host)
    assert pid and Path(f"/proc/{pid}/comm").read_text().strip() == "systemd"


def test_ssh_refuses_a_host_key_that_does_not_match(vm_lab: Lab, tmp_path: Path) -> None:
    lab = vm_lab
    host = lab.topology.host("lb1")
    BalancerVMComponent(network="isolated", agent=False).boot(lab, "lb1")
    known = known_hosts_file(lab)
    saved = known.read_text()
    other = tmp_path / "other"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)])
    try:
        known.write_text(f"10.0.0.200 {' '.join(other.with_suffix('.pub').read_text().split()[:2])}\n")
        cp = ssh_run(lab, host, "true", mode="isolated")
        assert cp.returncode != 0 and "Host key verification failed" in cp.stderr
    finally:
        known.write_text(saved)
    assert ssh_run(lab, host, "true", mode="isolated").returncode == 0


def test_disk_survives_power_cycle_and_stop_leaves_nothing(vm_lab: Lab) -> None:
    lab = vm_lab
    host = lab.topology.host("lb1")
    comp = BalancerVMComponent(network="isolated", agent=False)
    comp.boot(lab, "lb1")
    assert ssh_run(lab, host, "echo kept > /root/marker && sync", mode="isolated").returncode == 0
    cg = instance.cgroup_dir(lab, host)
    instance.stop(lab, host, "isolated")
    instance.stop(lab, host, "isolated")  # idempotent
    assert not instance.is_running(lab, host)
    assert not namespace_exists(host.namespace) and not namespace_exists(peer_namespace(host.namespace))
    assert not cg.exists()
    assert str(instance.paths(lab, host).rootfs) not in Path("/proc/mounts").read_text()
    comp.boot(lab, "lb1")
    cp = ssh_run(lab, host, "cat /root/marker /sys/class/net/eth0/address", mode="isolated")
    assert cp.stdout == f"kept\n{vm_mac(host.namespace)}\n"  # the disk and the NIC's MAC are kept
    instance.stop(lab, host, "isolated")


def test_vm_on_the_lab_switch_answers_the_admin_host(make_scratch: Callable[..., Lab]) -> None:
    """Network mode "lab": the VM joins a scratch lab's switch and SSH goes from the machine's own
    namespace through that lab's admin veth and /32 route (prefix exhw-, 10.93.61.0/8 inside)."""
    scratch = make_scratch(prefix="exhw-", net="10.93.61")
    lab = Lab(scratch.topology, state_dir=scratch.state_dir)  # the shared image cache
    host = lab.topology.host("lb1")
    network = NetworkComponent()
    comp = BalancerVMComponent(network="lab", agent=False)
    try:
        network.start(lab)
        comp.start(lab)
        comp.boot(lab, "lb1")
        cp = ssh_run(lab, host, "ip -4 -o addr show dev eth0; ip route show default", mode="lab")
        assert cp.returncode == 0, cp.stderr
        assert "inet 10.93.61.200/8" in cp.stdout and "default via 10.93.61.1 dev eth0" in cp.stdout
        deadline = time.monotonic() + 60
        booting = ("systemd initializing", "systemd starting")
        while (st := comp.status(lab)[0]).detail in booting and time.monotonic() < deadline:
            time.sleep(0.5)
        assert st.state == "up" and st.address == "10.93.61.200", st.detail
    finally:
        comp.stop(lab)
        network.stop(lab)
        _drop_disks(lab)
    assert not namespace_exists(host.namespace)


def test_two_vms_share_the_switch_and_keep_their_own_systemd(tmp_path: Path) -> None:
    """Both balancers (the keepalived pair) on one scratch lab switch (prefix exhw-, the reference
    topology moved to 10.93.61.0/8): each has its own systemd tree, and they reach each other."""
    text = Path(load_topology().path).read_text().replace("10.0.0.", "10.93.61.")
    text = text.replace('prefix = "exha-"', 'prefix = "exhw-"').replace('"exha-lb', '"exhw-lb')
    (tmp_path / "topology.toml").write_text(text)
    lab = Lab(load_topology(tmp_path / "topology.toml"), state_dir=tmp_path / "state")
    network = NetworkComponent()
    comp = BalancerVMComponent(network="lab", agent=False)
    lb1, lb2 = lab.topology.host("lb1"), lab.topology.host("lb2")
    try:
        network.start(lab)
        comp.start(lab)
        comp.boot(lab, "lb1")
        comp.boot(lab, "lb2")
        assert instance.systemd_pid(lab, lb1) != instance.systemd_pid(lab, lb2)
        for host, peer in ((lb1, lb2), (lb2, lb1)):
            cp = ssh_run(lab, host, "hostname; grep ^0:: /proc/1/cgroup;"
                         f" ping -c1 -W2 {peer.address} >/dev/null && echo reached")
            assert cp.returncode == 0, cp.stderr
            # Its own host name, PID 1 at the root of its own cgroup namespace, the peer reachable.
            assert cp.stdout.splitlines() == [host.name, "0::/init.scope", "reached"]
        assert instance.cgroup_dir(lab, lb1) != instance.cgroup_dir(lab, lb2)
        assert (instance.cgroup_dir(lab, lb1) / "system.slice").is_dir()
        assert (instance.cgroup_dir(lab, lb2) / "system.slice").is_dir()
    finally:
        comp.stop(lab)
        network.stop(lab)
        _drop_disks(lab)
    assert not namespace_exists(lb1.namespace) and not namespace_exists(lb2.namespace)


def test_boot_of_a_non_balancer_host_is_a_clear_error(vm_lab: Lab) -> None:
    with pytest.raises(LabError, match="dc1: not a balancer-vm host"):
        BalancerVMComponent(network="isolated", agent=False).boot(vm_lab, "dc1")


# -- the agent, driven through the vSphere simulator ---------------------------------------------

LOOPBACK = "127.0.53.7"


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


@pytest.mark.skipif(not GOVMOMI.is_dir() or shutil.which("go") is None,
                    reason="needs golang-go and golang-github-vmware-govmomi-dev (lab/setup.sh)")
def test_agent_boots_on_power_on_reports_address_and_stops_on_power_off(tmp_path: Path) -> None:
    topo_path = scratch_topology(tmp_path)
    lab = Lab(load_topology(topo_path), state_dir=tmp_path / "state")
    hosts = {n: dataclasses.replace(h, address=LOOPBACK) if h.role == "vsphere" else h
             for n, h in lab.topology.hosts.items()}
    vs_lab = Lab(dataclasses.replace(lab.topology, hosts=hosts), state_dir=lab.state_dir)
    vsphere = VSphereComponent(port=_free_port(LOOPBACK), use_namespaces=False)
    vms = BalancerVMComponent(network="isolated")
    host = lab.topology.host("lb1")
    try:
        vsphere.start(vs_lab)
        vms.start(lab)
        assert lab.pid(AGENT)
        creds = lab.credentials()["esxi1"]
        files = write_ovf(tmp_path / "ovf")
        with session(creds) as si:
            vm = import_ovf(si, creds, files.ovf, "exhv-lb1", properties={"hostname": "lb1-blue"})
            time.sleep(2)  # a powered-off VM is left alone
            assert not instance.is_running(lab, host)
            power(vm, on=True)
            _wait(lambda: find_vm(si, "exhv-lb1").guest.ipAddress == "10.0.0.200", 120,
                  "the agent reports the VM's address through vSphere")
            guest = find_vm(si, "exhv-lb1").guest
            assert (guest.hostName, guest.toolsRunningStatus, guest.guestState) == \
                ("lb1-blue", "guestToolsRunning", "running")  # the vApp host name applied on first boot
            assert _system_state(lab, "lb1") in ("running", "degraded")
            assert lab.credentials()["ssh-lb1"]["host"] == "10.0.0.200"
            # The guest changes its own address (as the toolkit will): the agent reports the new one.
            cp = ssh_run(lab, host, "setsid -f sh -c 'sleep 0.5; ip addr flush dev eth0; "
                         "ip addr add 10.0.0.27/8 dev eth0' </dev/null >/dev/null 2>&1", mode="isolated")
            assert cp.returncode == 0, cp.stderr
            _wait(lambda: find_vm(si, "exhv-lb1").guest.ipAddress == "10.0.0.27", 30,
                  "the agent reports the changed address")
            power(vm, on=False)
            _wait(lambda: not instance.is_running(lab, host) and not namespace_exists(host.namespace), 30,
                  "the agent stops the VM on power off")
            _wait(lambda: find_vm(si, "exhv-lb1").guest.toolsRunningStatus == "guestToolsNotRunning", 10,
                  "the agent reports the guest's tools stopped")
            # Destroyed: the disk goes. A fresh import with ip0 set comes up on that address.
            wait_task(vm.Destroy_Task())
            _wait(lambda: not instance.paths(lab, host).rootfs.exists(), 30, "the agent deletes the disk")
            vm = import_ovf(si, creds, files.ovf, "exhv-lb1", properties={"ip0": "10.0.0.27"})
            power(vm, on=True)
            _wait(lambda: instance.is_running(lab, host) and find_vm(si, "exhv-lb1").guest.hostName == "lb1",
                  120, "the agent boots the re-imported VM and reports it")
            cp = ssh_run(lab, host, "hostname; ip -4 -o addr show dev eth0", mode="isolated")
            assert cp.stdout.startswith("lb1\n") and "inet 10.0.0.27/8" in cp.stdout, cp.stderr
            assert find_vm(si, "exhv-lb1").guest.ipAddress == "10.0.0.27"
            power(vm, on=False)
        log = (lab.logs / f"{AGENT}.log").read_text()
        assert "powered on, booting" in log and "is poweredOff, stopping" in log
        assert "vApp property" not in log  # nothing was ignored
    finally:
        vms.stop(lab)
        vsphere.stop(vs_lab)
        _drop_disks(lab)
    assert lab.pid(AGENT) is None and not namespace_exists(host.namespace)


# -- the whole lab -------------------------------------------------------------------------------

def test_full_lab_import_power_on_and_ssh_from_the_admin_host(lab: Lab, tmp_path: Path) -> None:
    """In the running lab: import the appliance as exha-lb2 into esxi1, power it on, and reach the
    VM the agent boots with the credentials the lab records (host key pinned in known_hosts)."""
    host = lab.topology.host("lb2")
    creds = lab.credentials()["esxi1"]
    files = write_ovf(tmp_path / "ovf")
    with session(creds) as si:
        if find_vm(si, str(host.vm_name)) is not None:
            pytest.skip(f"{host.vm_name} is already in the lab's inventory (in use by another test run)")
        vm = import_ovf(si, creds, files.ovf, str(host.vm_name), properties={"hostname": host.name})
        try:
            power(vm, on=True)
            _wait(lambda: find_vm(si, str(host.vm_name)).guest.ipAddress == host.address, 120,
                  "the agent reports the VM's first-boot address")
            ssh = lab.credentials()[f"ssh-{host.name}"]
            assert ssh["host"] == host.address and ssh["user"] == "root"
            cp = run(["ssh", "-i", ssh["key_file"], "-o", f"UserKnownHostsFile={ssh['known_hosts']}",
                      "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                      f"root@{ssh['host']}", "hostname; ip -4 -o addr show dev eth0"], check=False)
            assert cp.returncode == 0, cp.stderr
            assert cp.stdout.startswith(f"{host.name}\n") and f"inet {host.address}/" in cp.stdout
            [st] = [s for s in BalancerVMComponent().status(lab) if s.host == host.name]
            assert st.state in ("up", "down") and st.detail.startswith("systemd "), st.detail
        finally:
            power(vm, on=False)
            wait_task(vm.Destroy_Task())
    _wait(lambda: not instance.is_running(lab, host) and not instance.paths(lab, host).rootfs.exists(), 30,
          "the agent stops the VM and deletes its disk once it leaves the inventory")
