"""The vSphere simulator component: build, TLS login, OVF import over NFC, power on, stop.

Runs the simulator on a loopback address with a free port in the root namespace, so it needs
neither root nor the rest of the lab; the Go toolchain and Debian's govmomi source must be there.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyVmomi import vim

from lab.context import Lab
from lab.errors import LabError
from lab.pki import ensure_ca
from lab.topology import load_topology
from lab.vm.appliance import APPLIANCE_NAME, ApplianceSpec, build_ova, write_ovf
from lab.vsphere.build import GOVMOMI, simulator_binary
from lab.vsphere.client import session, vm_power_states
from lab.vsphere.component import VSphereComponent
from lab.vsphere.importer import find_vm, import_ovf, power, wait_task

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the lab's build cache in /var/cache/exha-lab)"),
    pytest.mark.skipif(not GOVMOMI.is_dir() or shutil.which("go") is None,
                       reason="needs golang-go and golang-github-vmware-govmomi-dev (lab/setup.sh)"),
    # Lab.spawn leaves its daemon's Popen unwaited on purpose (the daemon outlives it).
    pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning"),
    # pyVmomi drops the connection pool of a refused login without closing it.
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
]

LOOPBACK = "127.0.53.5"


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def loopback_lab(state: Path, address: str) -> Lab:
    """The lab's topology with its vSphere host moved onto a loopback address, state in `state`."""
    topo = load_topology()
    hosts = {n: dataclasses.replace(h, address=address) if h.role == "vsphere" else h
             for n, h in topo.hosts.items()}
    return Lab(dataclasses.replace(topo, hosts=hosts), state_dir=state)


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, VSphereComponent]]:
    lab = loopback_lab(tmp_path_factory.mktemp("vsphere-state"), LOOPBACK)
    comp = VSphereComponent(port=_free_port(LOOPBACK), use_namespaces=False)
    comp.build(lab)
    comp.start(lab)
    try:
        yield lab, comp
    finally:
        comp.stop(lab)


def test_start_records_credentials_and_status_logs_in(simulator: tuple[Lab, VSphereComponent]) -> None:
    lab, comp = simulator
    creds = lab.credentials()["esxi1"]
    assert creds["host"] == LOOPBACK and creds["port"] == comp.port and creds["username"] == "root"
    assert Path(creds["ca_file"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert creds["thumbprint"] == lab.server_cert(lab.topology.host("esxi1")).sha1_thumbprint()
    [st] = comp.status(lab)
    assert st.state == "up", st.detail
    assert "ESXi" in st.detail and "password" not in st.credentials
    # start again is a no-op that keeps the same password
    comp.start(lab)
    assert lab.credentials()["esxi1"]["password"] == creds["password"]


def test_tls_is_verified_and_password_checked(simulator: tuple[Lab, VSphereComponent],
                                              tmp_path: Path) -> None:
    lab, _ = simulator
    creds = lab.credentials()["esxi1"]
    with pytest.raises(LabError, match="login refused for 'root'"):
        with session({**creds, "password": "not-the-password"}):
            pass
    other_ca = ensure_ca(tmp_path / "other-ca")
    with pytest.raises(LabError, match="CERTIFICATE_VERIFY_FAILED"):
        with session({**creds, "ca_file": str(other_ca.cert)}):
            pass


def test_ovf_import_upload_and_power_on(simulator: tuple[Lab, VSphereComponent], tmp_path: Path) -> None:
    lab, _ = simulator
    creds = lab.credentials()["esxi1"]
    files = write_ovf(tmp_path / "ovf", ApplianceSpec(cpus=2, memory_mb=2048))
    with session(creds) as si:
        vm = import_ovf(si, creds, files.ovf, "exhv-import", properties={"hostname": "lb9"})
        assert vm.config.hardware.numCPU == 2 and vm.config.hardware.memoryMB == 2048
        nics = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert [n.backing.deviceName for n in nics] == ["VM Network"]
        assert vm.snapshot is None  # an unset property read through Fetch answers empty (patched)
        assert vm_power_states(si)["exhv-import"] == "poweredOff"
        power(vm, on=True)
        assert vm.runtime.powerState == "poweredOn"
        assert vm_power_states(si)["exhv-import"] == "poweredOn"
    # The simulator received every byte of the disk (it discards them) and made the VM's disk file
    # in the datastore backing folder under the state directory.
    log = (lab.logs / "vsphere-esxi1.log").read_text()
    assert f"transferred {files.disk.stat().st_size} bytes" in log
    assert list((lab.state_dir / "vsphere/esxi1/datastore").rglob("exhv-import/disk-0.vmdk"))


def test_guest_address_reported_through_extra_config(simulator: tuple[Lab, VSphereComponent],
                                                     tmp_path: Path) -> None:
    lab, _ = simulator
    creds = lab.credentials()["esxi1"]
    files = write_ovf(tmp_path / "ovf")
    with session(creds) as si:
        vm = find_vm(si, "exhv-guest") or import_ovf(si, creds, files.ovf, "exhv-guest")
        spec = vim.vm.ConfigSpec(extraConfig=[
            vim.option.OptionValue(key="SET.guest.ipAddress", value="10.0.0.250"),
            vim.option.OptionValue(key="SET.guest.hostName", value="lbx"),
        ])
        wait_task(vm.ReconfigVM_Task(spec))
        assert vm.guest.ipAddress == "10.0.0.250" and vm.guest.hostName == "lbx"


def test_build_ova_is_a_tar_with_descriptor_first(tmp_path: Path) -> None:
    ova = build_ova(tmp_path / "a.ova")
    with tarfile.open(ova) as tar:
        names = tar.getnames()
        assert names[0] == f"{APPLIANCE_NAME}.ovf" and len(names) == 3
        text = tar.extractfile(names[0]).read().decode()  # type: ignore[union-attr]
    for key in ("hostname", "ip0", "netmask0", "gateway", "DNS"):
        assert f'ovf:key="{key}"' in text
    assert not (tmp_path / "a.ova.d").exists()


def test_bad_appliance_spec_is_one_line_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="cpus must be 1-2"):
        write_ovf(tmp_path / "ovf", ApplianceSpec(cpus=8))
    argv = [sys.executable, "-m", "lab.vm.appliance", str(tmp_path / "x.ova"), "--memory-mb", "64"]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert cp.returncode == 1
    assert cp.stderr == "lab.vm.appliance: appliance: cpus must be 1-2 and memory_mb 1024-2048, got 2, 64\n"
    assert list(tmp_path.iterdir()) == []


def test_stop_ends_the_simulator(tmp_path: Path) -> None:
    address = "127.0.53.6"
    lab = loopback_lab(tmp_path / "state", address)
    comp = VSphereComponent(port=_free_port(address), use_namespaces=False)
    comp.start(lab)
    pid = lab.pid(comp.daemon_name(lab.topology.host("esxi1")))
    assert pid is not None
    comp.stop(lab)
    comp.stop(lab)  # idempotent
    assert lab.pid(comp.daemon_name(lab.topology.host("esxi1"))) is None
    [st] = comp.status(lab)
    assert st.state == "down"
    # The simulator removed its datastore backing folders on the way out.
    assert list((lab.state_dir / "vsphere/esxi1/datastore").iterdir()) == []


@pytest.mark.parametrize(("args", "message"), [
    ([], "--cert, --key and --password-file are required"),
    (["--cert", "/nonexistent.pem", "--key", "/nonexistent.key", "--password-file", "/dev/null"],
     "--cert/--key"),
])
def test_simulator_bad_arguments_are_one_line_errors(simulator: tuple[Lab, VSphereComponent],
                                                     args: list[str], message: str) -> None:
    lab, _ = simulator
    cp = subprocess.run([str(simulator_binary(lab)), *args], capture_output=True, text=True, timeout=10)
    assert cp.returncode == 2
    assert cp.stderr.count("\n") == 1 and cp.stderr.startswith("vspheresim: ") and message in cp.stderr


def test_simulator_rejects_an_unknown_model(simulator: tuple[Lab, VSphereComponent]) -> None:
    lab, _ = simulator
    pair = lab.server_cert(lab.topology.host("esxi1"))
    cp = subprocess.run([str(simulator_binary(lab)), "--model", "vsan", "--cert", str(pair.cert), "--key",
                         str(pair.key), "--password-file", str(lab.state_dir / "vsphere/esxi1/password")],
                        capture_output=True, text=True, timeout=10)
    assert cp.returncode == 2 and cp.stderr == 'vspheresim: --model: expected esx or vpx, got "vsan"\n'


def test_vcenter_model_imports_and_powers_on(tmp_path: Path) -> None:
    address = "127.0.53.8"
    lab = loopback_lab(tmp_path / "state", address)
    esxi = dataclasses.replace(lab.topology.host("esxi1"), model="vpx")
    topo = dataclasses.replace(lab.topology, hosts={**lab.topology.hosts, "esxi1": esxi})
    lab = Lab(topo, state_dir=lab.state_dir)
    comp = VSphereComponent(port=_free_port(address), use_namespaces=False)
    try:
        comp.start(lab)
        [st] = comp.status(lab)
        assert st.state == "up" and "VirtualCenter" in st.detail
        creds = lab.credentials()["esxi1"]
        files = write_ovf(tmp_path / "ovf")
        with session(creds) as si:
            vm = import_ovf(si, creds, files.ovf, "exhv-vpx")
            power(vm, on=True)
            assert vm_power_states(si)["exhv-vpx"] == "poweredOn"
    finally:
        comp.stop(lab)
