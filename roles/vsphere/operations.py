"""Operations on a vSphere endpoint: a VM imported from an OVF/OVA package, powered on, with an address."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any

from pyinfra import host, logger
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError
from pyinfra.context import ctx_state

from roles.api import ApiCall, show_diff
from roles.vsphere import ovf
from roles.vsphere.facts import Inventory, VirtualMachines
from roles.vsphere.importer import folder_owner, folder_taken, property_values

POWERED_ON = "poweredOn"


def _first_pass() -> bool:
    """True on the pass that should print warnings once: prepare when it checks for changes, else execute."""
    state = ctx_state.get() if ctx_state.isset() else None
    if state is None:
        return True
    return not state.is_executing or not state.should_check_for_changes()


def _host_label() -> str:
    return str(host.name).split("/", 1)[-1]


def _refuse(message: str) -> Generator[ApiCall, None, None]:
    """Stop the operation with a one-line error before anything changes. While planning, that is an
    OperationError; when executing without a plan (-y), a command the connector refuses, so pyinfra
    reports it as this host's error instead of a traceback from inside its worker."""
    state = ctx_state.get() if ctx_state.isset() else None
    if state is None or not state.is_executing:
        raise OperationError(message)
    yield ApiCall("vsphere.refuse", reason=message)


def placement_errors(inv: dict[str, list[str]], datastore: str, network: str, folder: str | None,
                     resource_pool: str | None, datacenter: str | None = None) -> list[str]:
    """Pure: what is wrong with the requested placement, each naming what exists."""
    errors: list[str] = []

    def listing(values: Iterable[str]) -> str:
        return ", ".join(values) or "none"

    dcs = inv.get("datacenters", [])
    if datacenter and datacenter not in dcs:
        return [f"esxi_datacenter {datacenter!r} not found (it has: {listing(dcs)})"]
    if not datacenter and len(dcs) > 1:
        return [f"set esxi_datacenter: there are {len(dcs)} datacenters ({listing(dcs)})"]

    if datastore not in inv.get("datastores", []):
        errors.append(f"datastore {datastore!r} not found (it has: {listing(inv.get('datastores', []))})")
    if network not in inv.get("networks", []):
        errors.append(f"network {network!r} not found (it has: {listing(inv.get('networks', []))})")
    folders = inv.get("folders", [])
    if folder:
        path = folder.strip("/")
        full = path if path == "vm" or path.startswith("vm/") else f"vm/{path}"
        if full not in folders:
            errors.append(f"folder {folder!r} not found (it has: {listing(folders)})")
    computes = inv.get("compute_resources", [])
    pools = inv.get("resource_pools", [])
    if resource_pool is None:
        if len(computes) != 1:
            errors.append(f"resource_pool is required with {len(computes)} hosts/clusters "
                          f"(it has: {listing(computes)})")
    else:
        leaf = [p for p in pools if p.rsplit("/", 1)[-1] == resource_pool]
        if resource_pool not in computes and resource_pool not in pools and len(leaf) != 1:
            errors.append(f"resource pool {resource_pool!r} not found (it has: {listing(computes + pools)})")
    return errors


def drift_warnings(vm_name: str, current: dict[str, Any], pkg: ovf.OvfPackage, datastore: str,
                   network: str, properties: dict[str, str]) -> list[str]:
    """Pure: differences between an existing VM and what an import would create. Import never
    changes an existing VM, so these are reported, not fixed."""
    out: list[str] = []
    if pkg.cpu is not None and current.get("cpu") not in (None, pkg.cpu):
        out.append(f"VM {vm_name} has {current['cpu']} vCPU, the OVF asks for {pkg.cpu}")
    if pkg.memory_mb is not None and current.get("memory_mb") not in (None, pkg.memory_mb):
        out.append(f"VM {vm_name} has {current['memory_mb']} MiB of memory, the OVF asks for {pkg.memory_mb}")
    if current.get("datastore") and datastore not in current["datastore"]:
        out.append(f"VM {vm_name} is on datastore {', '.join(current['datastore'])}, not {datastore}")
    if current.get("network") and network not in current["network"]:
        out.append(f"VM {vm_name} is on network {', '.join(current['network'])}, not {network}")
    have = current.get("vapp_properties") or {}
    for key, value in sorted(properties.items()):
        if have and key in have and have[key] != value:
            out.append(f"VM {vm_name} has vApp property {key}={have[key]!r}, wanted {value!r}")
    return out


def _spec_lines(vm_name: str, pkg: ovf.OvfPackage, datastore: str, network: str, folder: str | None,
                resource_pool: str | None, properties: dict[str, str]) -> list[str]:
    lines = [f"VM {vm_name} from {pkg.path}",
             (f"  {pkg.cpu or '?'} vCPU, {pkg.memory_mb or '?'} MiB, {len(pkg.disk_files)} disk(s), "
              f"{pkg.total_bytes()} bytes to upload"),
             f"  datastore {datastore}, network {network}"
             + (f", folder {folder}" if folder else "") + (f", pool {resource_pool}" if resource_pool else "")]
    lines += [f"  property {k}={v}" for k, v in sorted(properties.items())]
    return lines


@operation()
def vm_from_ovf(
    vm_name: str,
    ovf_path: str,
    datastore: str,
    network: str,
    folder: str | None = None,
    resource_pool: str | None = None,
    power_on: bool = True,
    properties: dict[str, str] | None = None,
    wait_for_ip: bool = True,
    ip_timeout: float = 300.0,
) -> Generator[ApiCall, None, None]:
    """
    Import a VM from an OVF/OVA package unless a VM of that name exists, then power it on and wait
    for VMware Tools to report its address.

    + vm_name: the VM's name (looked up by name: never imported twice)
    + ovf_path: .ova file or .ovf descriptor (with its files beside it) on this machine
    + datastore: datastore for the VM's files
    + network: port group every network of the OVF is mapped to
    + folder: VM folder ("Lab" or "vm/Lab"; default: the datacenter's VM folder)
    + resource_pool: host/cluster name or pool path (default: the only host or cluster)
    + power_on: ensure the VM runs
    + properties: vApp property values set at import (hostname, ip0, netmask0, gateway, dns)
    + wait_for_ip: after powering on, wait until the guest reports an IP address
    + ip_timeout: seconds to wait for that address

    An existing VM whose CPU, memory, datastore or properties differ from the package is reported as
    a warning: import does not change a VM that exists.

    **Example:**

    .. code:: python

        vsphere.vm_from_ovf(
            name="Balancer VM",
            vm_name="exha-lb1", ovf_path="/var/cache/exha-lab/vm/exha-balancer.ova",
            datastore="LocalDS_0", network="VM Network",
            properties={"hostname": "lb1", "ip0": "10.0.0.27"},
        )
    """
    label = _host_label()
    props = {str(k): str(v) for k, v in (properties or {}).items()}
    try:
        pkg = ovf.load(ovf_path)
    except ovf.OvfError as e:
        yield from _refuse(f"{label}: ovf_path: {e}")
        return
    errors = placement_errors(host.get_fact(Inventory), datastore, network, folder, resource_pool,
                              host.data.get("esxi_datacenter"))
    if errors:
        yield from _refuse(f"{label}: cannot place VM {vm_name}: {'; '.join(errors)}")
        return

    _, undeclared = property_values(pkg, props)
    if undeclared and _first_pass():
        host.log(f"{pkg.path} declares no vApp propert{'y' if len(undeclared) == 1 else 'ies'} "
                 f"{', '.join(sorted(undeclared))}: not set", logger.warning)

    vms = host.get_fact(VirtualMachines)
    current = vms.get(vm_name)
    changed = False
    if current is None or not current.get("import_complete", True):
        owner = folder_owner(vms, vm_name, datastore)
        if owner:
            yield from _refuse(f"{label}: {folder_taken(vm_name, datastore, owner)}")
            return
        before = ["(absent)"] if current is None else [f"VM {vm_name} (half-imported: will be replaced)"]
        show_diff(host, f"VM {vm_name}", before,
                  _spec_lines(vm_name, pkg, datastore, network, folder, resource_pool, props))
        yield ApiCall("vsphere.import_ovf", vm_name=vm_name, ovf_path=ovf_path, datastore=datastore,
                      network=network, folder=folder, resource_pool=resource_pool, properties=props)
        changed = True
        power_state = None
        guest_ip = None
    else:
        if _first_pass():
            for warning in drift_warnings(vm_name, current, pkg, datastore, network, props):
                host.log(f"drift (not changed): {warning}", logger.warning)
        power_state = current.get("power_state")
        guest_ip = current.get("guest_ip")

    if power_on and power_state != POWERED_ON:
        show_diff(host, f"VM {vm_name} power", [str(power_state or "(absent)")], [POWERED_ON])
        yield ApiCall("vsphere.power_on", vm_name=vm_name)
        changed = True
    if power_on and wait_for_ip and not guest_ip:
        yield ApiCall("vsphere.wait_for_ip", vm_name=vm_name, timeout=ip_timeout)
        changed = True
    if not changed:
        state = f"{power_state}" + (f", guest IP {guest_ip}" if guest_ip else "")
        host.noop(f"VM {vm_name} exists ({state})")
