"""The vSphere role against govmomi's simulator on loopback, TLS verified against the test lab CA.

Runs the real pyinfra CLI on a temporary inventory with deploys/vsphere.py and checks the endpoint
with an independent pyVmomi read (lab.vsphere.client). Needs the Go toolchain and Debian's govmomi
source to build the simulator (lab/setup.sh), not root.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pyVmomi import vim

from lab.context import Lab
from lab.pki import ensure_ca
from lab.topology import load_topology
from lab.vm.appliance import ApplianceSpec, build_ova, descriptor
from lab.vsphere.build import GOVMOMI
from lab.vsphere.client import all_vms, session, vm_power_states
from lab.vsphere.component import VSphereComponent

pytestmark = [
    pytest.mark.skipif(not GOVMOMI.is_dir() or shutil.which("go") is None,
                       reason="needs golang-go and golang-github-vmware-govmomi-dev (lab/setup.sh)"),
    pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
]

LOOPBACK = "127.0.54.5"
HERE = Path(__file__).parent
REPO = HERE.parents[2]
DEPLOY = REPO / "deploys" / "vsphere.py"
PYINFRA = [sys.executable, "-c",
           "import sys; from pyinfra_cli.main import main; sys.argv[0] = 'pyinfra'; sys.exit(main())"]
FAULTY_PYINFRA = [sys.executable, str(HERE / "disk_fault.py")]


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Sim:
    lab: Lab
    creds: dict[str, Any]
    ova: Path
    workdir: Path

    def inventory(self, vm_name: str, **overrides: Any) -> Path:
        """An inventory file for this simulator with the balancer VM named `vm_name`."""
        data = {"esxi_host": self.creds["host"], "esxi_port": self.creds["port"],
                "esxi_username": self.creds["username"], "esxi_password": self.creds["password"],
                "esxi_ca_file": self.creds["ca_file"],
                "balancer_vm_name": vm_name, "balancer_ova": str(self.ova),
                "balancer_datastore": "LocalDS_0", "balancer_network": "VM Network",
                "balancer_properties": {"hostname": "lb1", "netmask0": "255.255.255.0"},
                "balancer_ip_timeout": 60}
        data.update(overrides)
        data = {k: v for k, v in data.items() if v is not None}
        path = self.workdir / f"inventory_{vm_name.replace('-', '_')}_{len(list(self.workdir.iterdir()))}.py"
        path.write_text(f"esxi = [('@exha-esxi/esxi1', {data!r})]\n")
        return path


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    topo = load_topology()
    hosts = {n: dataclasses.replace(h, address=LOOPBACK) if h.role == "vsphere" else h
             for n, h in topo.hosts.items()}
    lab = Lab(dataclasses.replace(topo, hosts=hosts), state_dir=tmp_path_factory.mktemp("vsphere-role-state"))
    comp = VSphereComponent(port=_free_port(LOOPBACK), use_namespaces=False)
    comp.build(lab)
    comp.start(lab)
    ova = build_ova(tmp_path_factory.mktemp("ova") / "exha-balancer.ova", ApplianceSpec(cpus=2, memory_mb=2048))
    try:
        yield Sim(lab, lab.credentials()["esxi1"], ova, tmp_path_factory.mktemp("inventories"))
    finally:
        comp.stop(lab)


def pyinfra(inventory: Path, *args: str, argv: list[str] = PYINFRA, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv, str(inventory), *args], capture_output=True, text=True, timeout=timeout, check=False,
                          cwd=inventory.parent, env={**os.environ, "PYINFRA_PROGRESS": "off", **(env or {})})


def apply(inventory: Path, **kw: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    cp = pyinfra(inventory, str(DEPLOY), "-y", "--json", **kw)
    try:
        out = json.loads(cp.stdout) if cp.stdout.strip() else {}
    except json.JSONDecodeError:
        out = {}
    return cp, out


def totals(out: dict[str, Any]) -> dict[str, int]:
    return out.get("results", {}).get("totals", {})  # type: ignore[no-any-return]


def vms_named(creds: dict[str, Any], vm_name: str) -> list[Any]:
    with session(creds) as si:
        return [(vm.name, vm.runtime.powerState, vm.config.hardware.numCPU, vm.config.hardware.memoryMB,
                 vm.guest.ipAddress, {o.key: o.value for o in vm.config.extraConfig})
                for vm in all_vms(si) if vm.name == vm_name]


def datastore_folder(sim: Sim, vm_name: str) -> list[Path]:
    return list((sim.lab.state_dir / "vsphere" / "esxi1" / "datastore").rglob(vm_name))


def report_guest_ip(creds: dict[str, Any], vm_name: str, address: str, stop: threading.Event) -> None:
    """Act as VMware Tools: once the VM is powered on, set its guest address (the simulator's hook)."""
    with session(creds) as si:
        while not stop.is_set():
            vm = next((v for v in all_vms(si) if v.name == vm_name), None)
            if vm is not None and vm.runtime.powerState == "poweredOn":
                spec = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key="SET.guest.ipAddress",
                                                                             value=address)])
                vm.ReconfigVM_Task(spec)
                return
            time.sleep(0.2)


def test_fact_cli_reads_the_inventory(sim: Sim) -> None:
    cp = pyinfra(sim.inventory("exha-fact"), "fact", "roles.vsphere.facts.Inventory", "--json")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["roles.vsphere.facts.Inventory"]["@exha-esxi/esxi1"]["datastores"] == ["LocalDS_0"]


def test_import_power_on_wait_then_noop(sim: Sim) -> None:
    inv = sim.inventory("exha-lb1")
    stop = threading.Event()
    tools = threading.Thread(target=report_guest_ip, args=(sim.creds, "exha-lb1", "10.0.0.27", stop))
    tools.start()
    try:
        cp, out = apply(inv)
    finally:
        stop.set()
        tools.join(10)
    assert cp.returncode == 0, cp.stderr
    assert totals(out) == {"hosts": 1, "success": 1, "error": 0, "no_change": 0}
    assert "exha-lb1: uploaded" in cp.stderr  # progress display
    [(_, power, cpu, mem, ip, extra)] = vms_named(sim.creds, "exha-lb1")
    assert (power, cpu, mem, ip) == ("poweredOn", 2, 2048, "10.0.0.27")
    assert extra.get("exha.import", "") != "incomplete"
    with tarfile.open(sim.ova) as tar:
        disk_size = next(m.size for m in tar.getmembers() if m.name.endswith(".vmdk"))
    assert f"transferred {disk_size} bytes" in (sim.lab.logs / "vsphere-esxi1.log").read_text()

    started = time.monotonic()
    cp, out = apply(inv)
    elapsed = time.monotonic() - started
    assert cp.returncode == 0, cp.stderr
    assert totals(out) == {"hosts": 1, "success": 0, "error": 0, "no_change": 1}
    assert len(vms_named(sim.creds, "exha-lb1")) == 1
    print(f"\nvsphere no-op apply: {elapsed:.2f} s")


def test_dry_run_on_missing_vm_reports_the_import_and_changes_nothing(sim: Sim) -> None:
    with session(sim.creds) as si:
        before = vm_power_states(si)
    cp = pyinfra(sim.inventory("exha-dry"), str(DEPLOY), "--dry", "--diff")
    assert cp.returncode == 0, cp.stderr
    assert "Will change VM exha-dry" in cp.stderr and "- (absent)" in cp.stderr
    assert f"+ VM exha-dry from {sim.ova}" in cp.stderr
    assert "Balancer VM exha-dry   1 (@exha-esxi/esxi1)" in cp.stderr
    with session(sim.creds) as si:
        assert vm_power_states(si) == before
    assert datastore_folder(sim, "exha-dry") == []


def _one_error_line(cp: subprocess.CompletedProcess[str], needle: str) -> str:
    lines = [line for line in cp.stderr.splitlines() if needle in line]
    assert len(lines) == 1, cp.stderr
    assert "Traceback" not in cp.stderr
    return lines[0]


@pytest.mark.parametrize(("overrides", "message"), [
    pytest.param({"balancer_datastore": "SAN-01"},
                 "esxi1: cannot place VM exha-bad: datastore 'SAN-01' not found (it has: LocalDS_0)",
                 id="datastore"),
    pytest.param({"balancer_network": "DMZ"},
                 "esxi1: cannot place VM exha-bad: network 'DMZ' not found (it has: VM Network)", id="network"),
])
def test_unknown_placement_is_one_line_and_changes_nothing(sim: Sim, overrides: dict[str, str],
                                                           message: str) -> None:
    with session(sim.creds) as si:
        before = vm_power_states(si)
    cp = pyinfra(sim.inventory("exha-bad", **overrides), str(DEPLOY), "-y")
    assert cp.returncode == 1
    assert _one_error_line(cp, "cannot place VM").endswith(message)
    with session(sim.creds) as si:
        assert vm_power_states(si) == before


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_bad_ovf_is_an_error_and_changes_nothing(sim: Sim, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "broken.ova"
    if kind == "corrupt":
        path.write_bytes(sim.ova.read_bytes()[:3000])  # cut inside the disk
    cp = pyinfra(sim.inventory("exha-badovf", balancer_ova=str(path)), str(DEPLOY), "-y")
    assert cp.returncode == 1
    line = _one_error_line(cp, "ovf_path")
    assert f"esxi1: ovf_path: {path}: " in line
    assert ("no such OVF/OVA file" if kind == "missing" else "corrupt") in line or "not a readable OVA" in line
    assert vms_named(sim.creds, "exha-badovf") == []


def test_failed_upload_is_cleaned_up_and_rerun_succeeds(sim: Sim) -> None:
    inv = sim.inventory("exha-fail", balancer_wait_for_ip=False)
    cp, _ = apply(inv, argv=FAULTY_PYINFRA, env={"EXHA_TEST_DISK_FAULT": "error"})
    assert cp.returncode == 1
    line = _one_error_line(cp, "import of exha-fail failed")
    assert "injected disk read error" in line and "lease aborted" in line and "VM destroyed" in line
    assert vms_named(sim.creds, "exha-fail") == []
    assert datastore_folder(sim, "exha-fail") == []

    cp, _ = apply(inv)
    assert cp.returncode == 0, cp.stderr
    [(_, power, *_rest)] = vms_named(sim.creds, "exha-fail")
    assert power == "poweredOn"


def test_large_disk_streams_from_the_ova_with_lease_keepalive(sim: Sim, tmp_path: Path) -> None:
    disk = tmp_path / "big-disk1.vmdk"
    disk.write_bytes(os.urandom(1 << 20) * 12)  # 12 MiB: many chunks
    (tmp_path / "big.ovf").write_text(descriptor(ApplianceSpec(), disk.name, disk.stat().st_size))
    ova = tmp_path / "big.ova"
    with tarfile.open(ova, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member in ("big.ovf", disk.name):
            tar.add(tmp_path / member, arcname=member)
    disk.unlink()
    inv = sim.inventory("exha-big", balancer_ova=str(ova), balancer_wait_for_ip=False)
    cp, _ = apply(inv, argv=FAULTY_PYINFRA, env={"EXHA_TEST_DISK_FAULT": "none"})
    assert cp.returncode == 0, cp.stderr
    progress = [line for line in cp.stderr.splitlines() if "exha-big: uploaded" in line]
    assert len(progress) >= 5 and progress[-1].split("uploaded ")[1].startswith("12.0 MiB of 12.0 MiB (100%")
    log = (sim.lab.logs / "vsphere-esxi1.log").read_text()
    assert f"transferred {12 << 20} bytes" in log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.ova", "big.ovf"]  # nothing unpacked


def test_killed_upload_leaves_a_marked_vm_that_the_rerun_replaces(sim: Sim) -> None:
    inv = sim.inventory("exha-kill", balancer_wait_for_ip=False)
    cp, _ = apply(inv, argv=FAULTY_PYINFRA, env={"EXHA_TEST_DISK_FAULT": "kill"})
    assert cp.returncode == 137
    [(_, power, _cpu, _mem, _ip, extra)] = vms_named(sim.creds, "exha-kill")
    assert power == "poweredOff" and extra["exha.import"] == "incomplete"

    dry = pyinfra(inv, str(DEPLOY), "--dry", "--diff")
    assert "half-imported: will be replaced" in dry.stderr, dry.stderr

    cp, out = apply(inv)
    assert cp.returncode == 0, cp.stderr
    assert "replacing it" in cp.stderr
    [(_, power, _cpu, _mem, _ip, extra)] = vms_named(sim.creds, "exha-kill")
    assert power == "poweredOn" and extra.get("exha.import", "") != "incomplete"
    cp, out = apply(inv)
    assert totals(out)["no_change"] == 1 and len(vms_named(sim.creds, "exha-kill")) == 1


def test_drift_is_reported_not_fixed(sim: Sim) -> None:
    inv = sim.inventory("exha-drift", balancer_wait_for_ip=False)
    cp, _ = apply(inv)
    assert cp.returncode == 0, cp.stderr
    with session(sim.creds) as si:
        vm = next(v for v in all_vms(si) if v.name == "exha-drift")
        vm.ReconfigVM_Task(vim.vm.ConfigSpec(numCPUs=1))  # resized behind the toolkit's back
        deadline = time.monotonic() + 10
        while vm.config.hardware.numCPU != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    cp, out = apply(inv)
    assert cp.returncode == 0 and totals(out)["no_change"] == 1
    assert "drift (not changed): VM exha-drift has 1 vCPU, the OVF asks for 2" in cp.stderr
    assert vms_named(sim.creds, "exha-drift")[0][2] == 1


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_thumbprint_pinning_sha1_and_sha256(sim: Sim, digest: str) -> None:
    cert = x509.load_pem_x509_certificate(sim.lab.server_cert(sim.lab.topology.host("esxi1")).cert.read_bytes())
    pin = ":".join(f"{b:02X}" for b in cert.fingerprint(getattr(hashes, digest.upper())()))
    cp = pyinfra(sim.inventory("exha-pin", esxi_ca_file=None, esxi_thumbprint=pin), "fact",
                 "roles.vsphere.facts.Inventory", "--json")
    assert cp.returncode == 0, cp.stderr


@pytest.mark.parametrize("problem", ["password", "ca", "thumbprint"])
def test_connect_errors_name_host_and_cause(sim: Sim, tmp_path: Path, problem: str) -> None:
    overrides: dict[str, Any] = {}
    if problem == "password":
        overrides = {"esxi_password": "wrong-password"}
        expected = f"esxi1: authentication failed: {LOOPBACK}:{sim.creds['port']} refused the login for user 'root'"
    elif problem == "ca":
        overrides = {"esxi_ca_file": str(ensure_ca(tmp_path / "other-ca").cert)}
        expected = f"esxi1: cannot connect: TLS verification of {LOOPBACK}:{sim.creds['port']} against"
    else:
        overrides = {"esxi_ca_file": None, "esxi_thumbprint": "AA:" * 19 + "AA"}
        expected = f"esxi1: cannot connect: TLS certificate thumbprint mismatch on {LOOPBACK}:{sim.creds['port']}"
    cp = pyinfra(sim.inventory("exha-conn", **overrides), "fact", "roles.vsphere.facts.Inventory")
    assert cp.returncode == 1
    assert expected in cp.stderr, cp.stderr
    assert "wrong-password" not in cp.stderr and sim.creds["password"] not in cp.stderr
    assert "Traceback" not in cp.stderr


def test_thumbprint_pinning_connects(sim: Sim) -> None:
    inv = sim.inventory("exha-pin", esxi_ca_file=None, esxi_thumbprint=sim.creds["thumbprint"])
    cp = pyinfra(inv, "fact", "roles.vsphere.facts.VirtualMachines", "--json")
    assert cp.returncode == 0, cp.stderr
    assert "ha-host_VM0" in json.loads(cp.stdout)["roles.vsphere.facts.VirtualMachines"]["@exha-esxi/esxi1"]


def test_files_of_a_renamed_vm_are_never_deleted(sim: Sim) -> None:
    inv = sim.inventory("exha-ren", balancer_wait_for_ip=False, balancer_properties={})
    cp, _ = apply(inv)
    assert cp.returncode == 0, cp.stderr
    with session(sim.creds) as si:
        vm = next(v for v in all_vms(si) if v.name == "exha-ren")
        vm.Rename_Task("exha-renamed")
        deadline = time.monotonic() + 10
        while vm.name != "exha-renamed" and time.monotonic() < deadline:
            time.sleep(0.1)
    [folder] = datastore_folder(sim, "exha-ren")
    files = sorted(p.name for p in folder.iterdir())
    # "exha-ren" is absent now, but its folder holds the renamed VM: refused before anything changes
    cp, _ = apply(inv)
    assert cp.returncode == 1
    line = _one_error_line(cp, "datastore folder")
    assert line.endswith("esxi1: datastore folder [LocalDS_0] exha-ren holds VM 'exha-renamed' (renamed from "
                         "exha-ren?); not importing over it: choose another vm_name or move that VM's files")
    assert sorted(p.name for p in folder.iterdir()) == files
    assert vms_named(sim.creds, "exha-ren") == []
    [(_, power, *_rest)] = vms_named(sim.creds, "exha-renamed")
    assert power == "poweredOn"


def test_powered_off_vm_dry_run_reports_power_on_then_apply_fixes_it(sim: Sim) -> None:
    inv = sim.inventory("exha-off", balancer_wait_for_ip=False)
    cp, _ = apply(inv)
    assert cp.returncode == 0, cp.stderr
    with session(sim.creds) as si:
        vm = next(v for v in all_vms(si) if v.name == "exha-off")
        vm.PowerOffVM_Task()
        deadline = time.monotonic() + 10
        while vm.runtime.powerState != "poweredOff" and time.monotonic() < deadline:
            time.sleep(0.1)
    dry = pyinfra(inv, str(DEPLOY), "--dry", "--diff")
    assert dry.returncode == 0, dry.stderr
    assert "Will change VM exha-off power" in dry.stderr and "- poweredOff" in dry.stderr
    assert "+ poweredOn" in dry.stderr and "Will change VM exha-off\n" not in dry.stderr
    assert vms_named(sim.creds, "exha-off")[0][1] == "poweredOff"
    cp, out = apply(inv)
    assert totals(out)["success"] == 1
    assert vms_named(sim.creds, "exha-off")[0][1] == "poweredOn"
