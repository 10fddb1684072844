"""Unit tests of the vSphere role: fact and operation fixtures, OVF parsing and streaming, the inventory
snapshot views and lookups, placement and drift checks. No vSphere endpoint needed."""

from __future__ import annotations

import io
import json
import socket
import tarfile
from pathlib import Path

import pytest
from harness import check_fact, check_operation, params

from lab.vm.appliance import ApplianceSpec, build_ova
from roles.errors import DeviceConnectError
from roles.vsphere import ovf, snapshot
from roles.vsphere.facts import Inventory, VirtualMachines
from roles.vsphere.importer import property_values
from roles.vsphere.operations import drift_warnings, placement_errors, vm_from_ovf
from roles.vsphere.session import Endpoint, connect

HERE = Path(__file__).parent
DATA = HERE / "data"
REPO = HERE.parents[2]


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # operation fixtures name OVF files relative to the repository


def _snap(name: str) -> snapshot.Snapshot:
    return json.loads((DATA / name).read_text())  # type: ignore[no-any-return]


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", params(HERE / "facts" / "VirtualMachines"))
def test_virtual_machines_fact(case):  # type: ignore[no-untyped-def]
    check_fact(VirtualMachines, case)


@pytest.mark.parametrize("case", params(HERE / "facts" / "Inventory"))
def test_inventory_fact(case):  # type: ignore[no-untyped-def]
    check_fact(Inventory, case)


@pytest.mark.parametrize("case", params(HERE / "operations" / "vm_from_ovf"))
def test_vm_from_ovf(case):  # type: ignore[no-untyped-def]
    check_operation(vm_from_ovf, case)


def test_corrupt_ovf_error_is_one_line_naming_the_file() -> None:
    with pytest.raises(ovf.OvfError) as info:
        ovf.load("tests/roles/vsphere/data/corrupt.ovf")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("tests/roles/vsphere/data/corrupt.ovf: the OVF descriptor is not valid XML")


# -- OVF packages -----------------------------------------------------------------------------------
def test_ovf_descriptor_with_files_beside_it() -> None:
    pkg = ovf.load(str(DATA / "appliance.ovf"))
    assert (pkg.cpu, pkg.memory_mb, pkg.networks) == (2, 1024, ("lan",))
    assert pkg.properties == ("hostname", "ip0", "DNS")
    assert [f.href for f in pkg.disk_files] == ["appliance-disk1.vmdk"]
    assert pkg.total_bytes() == (DATA / "appliance-disk1.vmdk").stat().st_size
    assert not pkg.is_ova


def test_lab_appliance_ova_is_read_in_place(tmp_path: Path) -> None:
    ova = build_ova(tmp_path / "exha-balancer.ova", ApplianceSpec(cpus=2, memory_mb=2048))
    pkg = ovf.load(str(ova))
    assert pkg.is_ova and (pkg.cpu, pkg.memory_mb) == (2, 2048)
    assert pkg.networks == ("VM Network",)
    assert pkg.properties == ("hostname", "ip0", "netmask0", "gateway", "DNS")
    [disk] = pkg.disk_files
    with tarfile.open(ova) as tar:
        member = tar.extractfile(disk.href)
        assert member is not None
        want = member.read()
    with ovf.open_file(pkg, disk) as (stream, size):
        assert size == len(want) == disk.size
        assert stream.read() == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exha-balancer.ova"]  # nothing unpacked


def _ova(path: Path, descriptor: str, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in [("x.ovf", descriptor.encode()), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(("members", "message"), [
    pytest.param({}, "the OVA lacks appliance-disk1.vmdk, which the descriptor references", id="member-missing"),
    pytest.param({"appliance-disk1.vmdk": b"short"},
                 "appliance-disk1.vmdk has 5 bytes, the descriptor says 4096; the package is truncated or corrupt",
                 id="size-mismatch"),
])
def test_broken_ova(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    path = _ova(tmp_path / "b.ova", (DATA / "appliance.ovf").read_text(), members)
    with pytest.raises(ovf.OvfError, match="^" + str(path) + ": " + message.replace("(", r"\(")):
        ovf.load(str(path))


@pytest.mark.parametrize(("content", "message"), [
    pytest.param(b"\x00" * 100, "not a readable OVA", id="not-a-tar"),
    pytest.param(b"", "not a readable OVA", id="empty"),
])
def test_unreadable_ova(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.ova"
    path.write_bytes(content)
    with pytest.raises(ovf.OvfError, match=message):
        ovf.load(str(path))


def test_not_an_ovf_descriptor() -> None:
    with pytest.raises(ovf.OvfError, match="not an OVF descriptor"):
        ovf.parse_descriptor("a.ovf", "<html/>")
    with pytest.raises(ovf.OvfError, match="has no VirtualSystem"):
        ovf.parse_descriptor("a.ovf", f'<Envelope xmlns="{ovf.OVF_NS}"/>')


def test_ovf_file_missing_beside_descriptor(tmp_path: Path) -> None:
    (tmp_path / "a.ovf").write_text((DATA / "appliance.ovf").read_text())
    with pytest.raises(ovf.OvfError, match="referenced file appliance-disk1.vmdk is missing"):
        ovf.load(str(tmp_path / "a.ovf"))


def test_property_values_match_keys_case_insensitively() -> None:
    pkg = ovf.load(str(DATA / "appliance.ovf"))
    known, unknown = property_values(pkg, {"hostname": "lb1", "dns": "10.0.0.10", "gateway": "10.0.0.1"})
    assert known == {"hostname": "lb1", "DNS": "10.0.0.10"}
    assert unknown == ["gateway"]


# -- snapshot views and lookups ---------------------------------------------------------------------
def test_esx_snapshot_views() -> None:
    snap = _snap("esx-snapshot.json")
    inv = snapshot.inventory(snap, None)
    assert inv == {"datacenters": ["ha-datacenter"], "datastores": ["LocalDS_0"], "networks": ["VM Network"],
                   "compute_resources": ["localhost.localdomain"],
                   "resource_pools": ["localhost.localdomain/Resources"], "folders": ["vm"]}
    vms = snapshot.virtual_machines(snap, "ha-datacenter")
    vm0 = vms["ha-host_VM0"]
    assert (vm0["power_state"], vm0["cpu"], vm0["memory_mb"]) == ("poweredOn", 1, 32)
    assert (vm0["datastore"], vm0["network"], vm0["folder"]) == (["LocalDS_0"], ["VM Network"], "vm")
    assert vm0["resource_pool"] == "localhost.localdomain/Resources" and vm0["import_complete"]
    assert vms["vmC"]["import_complete"] is False  # carries exha.import=incomplete
    assert snapshot.virtual_machines(snap, "other-dc") == {}


def test_vpx_lookups() -> None:
    snap = _snap("vpx-snapshot.json")
    inv = snapshot.inventory(snap, "DC0")
    assert inv["compute_resources"] == ["DC0_C0", "DC0_H0"]
    with pytest.raises(LookupError, match="resource_pool is required with several hosts/clusters; "
                                          "it has: DC0_C0, DC0_H0"):
        snapshot.find_pool(snap, "DC0", None, inv["resource_pools"], inv["compute_resources"])
    pool = snapshot.find_pool(snap, "DC0", "DC0_C0", inv["resource_pools"], inv["compute_resources"])
    assert snapshot.pool_path(snap, pool["ref"]) == "DC0_C0/Resources"
    assert snapshot.find_named(snap, "DC0", ("DistributedVirtualPortgroup",), "network", "DC0_DVPG0",
                               inv["networks"])["name"] == "DC0_DVPG0"
    with pytest.raises(LookupError, match="datacenter 'DC9' not found; it has: DC0"):
        snapshot.find_datacenter(snap, "DC9")
    assert snapshot.find_folder(snap, "DC0", None, inv["folders"])["name"] == "vm"
    assert placement_errors(inv, "LocalDS_0", "DC0_DVPG0", None, None) == [
        "resource_pool is required with 2 hosts/clusters (it has: DC0_C0, DC0_H0)"]
    assert placement_errors(inv, "LocalDS_0", "DC0_DVPG0", None, "DC0_C0") == []
    assert placement_errors(inv, "LocalDS_0", "DC0_DVPG0", None, "DC0_C0", "DC1") == [
        "esxi_datacenter 'DC1' not found (it has: DC0)"]
    two = {**inv, "datacenters": ["DC0", "DC1"]}
    assert placement_errors(two, "LocalDS_0", "DC0_DVPG0", None, "DC0_C0") == [
        "set esxi_datacenter: there are 2 datacenters (DC0, DC1)"]


def test_drift_is_reported_for_what_import_cannot_change() -> None:
    pkg = ovf.load(str(DATA / "appliance.ovf"))
    current = {"cpu": 4, "memory_mb": 1024, "datastore": ["SAN-01"], "network": ["VM Network"],
               "vapp_properties": {"hostname": "old"}}
    assert drift_warnings("exha-lb1", current, pkg, "LocalDS_0", "VM Network", {"hostname": "lb1"}) == [
        "VM exha-lb1 has 4 vCPU, the OVF asks for 2",
        "VM exha-lb1 is on datastore SAN-01, not LocalDS_0",
        "VM exha-lb1 has vApp property hostname='old', wanted 'lb1'",
    ]
    same = {"cpu": 2, "memory_mb": 1024, "datastore": ["LocalDS_0"], "network": [], "vapp_properties": {}}
    assert drift_warnings("exha-lb1", same, pkg, "LocalDS_0", "VM Network", {"hostname": "lb1"}) == []


# -- connecting --------------------------------------------------------------------------------------
def test_unreachable_endpoint_is_one_line_naming_host() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeviceConnectError) as info:
        connect(Endpoint("127.0.0.1", port, "root", "s3cret", None, "AA" * 20, 2.0))
    assert str(info.value).startswith(f"127.0.0.1: cannot connect: 127.0.0.1:{port} is unreachable")
    assert "s3cret" not in str(info.value) and "\n" not in str(info.value)


def test_no_ca_and_no_thumbprint_is_refused() -> None:
    with pytest.raises(DeviceConnectError, match="set esxi_ca_file"):
        connect(Endpoint("127.0.0.1", 443, "root", "pw", None, None, 2.0))
