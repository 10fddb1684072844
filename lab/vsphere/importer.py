"""Import an OVF package into the lab's vSphere endpoint and power VMs on or off, as a client would.

The lab uses it to rehearse its own VM path end to end (tests, `lab vm` checks); the toolkit's
vSphere role has its own, fuller implementation.
"""

from __future__ import annotations

import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

from pyVmomi import vim

from lab.errors import LabError
from lab.vsphere.client import all_vms


def _first_host(si: Any) -> tuple[Any, Any]:
    """(datacenter, host system) of the first host in the inventory."""
    for dc in si.RetrieveContent().rootFolder.childEntity:
        if isinstance(dc, vim.Datacenter):
            for cr in dc.hostFolder.childEntity:
                if isinstance(cr, vim.ComputeResource) and cr.host:
                    return dc, cr.host[0]
    raise LabError("vSphere: the inventory has no host")


def wait_task(task: Any, timeout: float = 30.0) -> Any:
    """Wait for a vSphere task; return its result or raise LabError with the fault."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = task.info.state
        if state == vim.TaskInfo.State.success:
            return task.info.result
        if state == vim.TaskInfo.State.error:
            raise LabError(f"vSphere task {task.info.descriptionId}: {task.info.error.msg}")
        time.sleep(0.1)
    raise LabError(f"vSphere task {task.info.descriptionId}: not done after {timeout:.0f}s")


def find_vm(si: Any, name: str) -> Any | None:
    return next((vm for vm in all_vms(si) if vm.name == name), None)


def import_ovf(si: Any, creds: dict[str, Any], ovf: Path, name: str,
               properties: dict[str, str] | None = None, network: str = "VM Network") -> Any:
    """Import the unpacked OVF at `ovf` (its files beside it) as VM `name`; returns the VM."""
    content = si.RetrieveContent()
    dc, host = _first_host(si)
    datastore = host.datastore[0]  # the ESX model's Datacenter.datastore can be stale; the host's is not
    pool = host.parent.resourcePool
    net = next((n for n in host.network if n.name == network), None)
    if net is None:
        raise LabError(f"vSphere: no network {network!r} on {host.name}")
    cisp = vim.OvfManager.CreateImportSpecParams(
        entityName=name,
        networkMapping=[vim.OvfManager.NetworkMapping(name=network, network=net)],
        propertyMapping=[vim.KeyValue(key=k, value=v) for k, v in (properties or {}).items()],
    )
    result = content.ovfManager.CreateImportSpec(ovf.read_text(), pool, datastore, cisp)
    if result.error:
        raise LabError(f"vSphere: CreateImportSpec for {name}: {result.error[0].msg}")
    lease = pool.ImportVApp(result.importSpec, dc.vmFolder, host)
    deadline = time.monotonic() + 30
    while lease.state == vim.HttpNfcLease.State.initializing and time.monotonic() < deadline:
        time.sleep(0.1)
    if lease.state != vim.HttpNfcLease.State.ready:
        raise LabError(f"vSphere: import lease for {name} is {lease.state}: {lease.error}")
    files = {item.deviceId: ovf.parent / item.path for item in result.fileItem}
    ctx = ssl.create_default_context(cafile=creds["ca_file"])
    for device in lease.info.deviceUrl:
        source = files.get(device.importKey)
        if source is None:
            continue
        url = device.url.replace("*", f"{creds['host']}:{creds['port']}", 1)
        data = source.read_bytes()
        req = urllib.request.Request(url, data=data, method="PUT", headers={
            "Content-Type": "application/x-vnd.vmware-streamVmdk", "Content-Length": str(len(data))})
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:  # noqa: S310 - lab URL
            if resp.status not in (200, 201):
                lease.HttpNfcLeaseAbort()
                raise LabError(f"vSphere: upload of {source.name} answered HTTP {resp.status}")
    lease.HttpNfcLeaseComplete()
    vm = find_vm(si, name)
    if vm is None:
        raise LabError(f"vSphere: {name} is missing after the import")
    return vm


def power(vm: Any, on: bool) -> None:
    """Power `vm` on or off (no-op when it already is)."""
    want = vim.VirtualMachine.PowerState.poweredOn if on else vim.VirtualMachine.PowerState.poweredOff
    if vm.runtime.powerState == want:
        return
    wait_task(vm.PowerOnVM_Task() if on else vm.PowerOffVM_Task())
