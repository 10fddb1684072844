"""The vSphere inventory as plain data: one property-collector read turned into JSON-able rows, and
the pure views the facts answer with (virtual machines, inventory names) plus name -> object lookups.

A row is {"ref": "VirtualMachine:vm-17", "name": ..., "parent": ref, ...}: references are
"<type>:<moid>" strings so a snapshot can be cached, compared and stored in test fixtures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: extra-config key set on a VM while its disks are being imported; cleared on completion
IMPORT_MARKER = "exha.import"

Row = dict[str, Any]
Snapshot = dict[str, Row]


def ref_of(obj: Any) -> str:
    """"Type:moid" for a pyVmomi managed object."""
    return f"{obj._wsdlName}:{obj._moId}"


def _plain(path: str, value: Any) -> Any:
    if path == "config.extraConfig":
        return {str(o.key): str(o.value) for o in value or () if str(o.key) == IMPORT_MARKER}
    if path == "config.vAppConfig":
        props = getattr(value, "property", None) or ()
        return {str(p.id or p.key): "" if p.value is None else str(p.value) for p in props}
    if path == "childType":
        return [str(t) for t in value or ()]
    if hasattr(value, "_moId"):
        return ref_of(value)
    if isinstance(value, (list, tuple)) or type(value).__name__.endswith("[]"):
        return [_plain(path, v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def rows_from(found: Iterable[tuple[Any, Mapping[str, Any]]]) -> Snapshot:
    """Snapshot from `session.retrieve` output."""
    snap: Snapshot = {}
    for obj, props in found:
        ref = ref_of(obj)
        snap[ref] = {"ref": ref, **{k: _plain(k, v) for k, v in props.items()}}
    return snap


def kind(ref: str) -> str:
    return ref.split(":", 1)[0]


def _is(row: Row, *kinds: str) -> bool:
    return kind(row["ref"]) in kinds


def _chain(snap: Snapshot, ref: str | None) -> list[Row]:
    """The row and its ancestors, nearest first (stops at objects outside the snapshot)."""
    out: list[Row] = []
    seen: set[str] = set()
    while ref and ref in snap and ref not in seen:
        seen.add(ref)
        out.append(snap[ref])
        ref = snap[ref].get("parent")
    return out


def datacenter_of(snap: Snapshot, ref: str) -> str | None:
    for row in _chain(snap, ref):
        if _is(row, "Datacenter"):
            return str(row["name"])
    return None


def datacenters(snap: Snapshot) -> list[str]:
    return sorted(r["name"] for r in snap.values() if _is(r, "Datacenter"))


def _in_scope(snap: Snapshot, row: Row, datacenter: str | None) -> bool:
    return datacenter is None or datacenter_of(snap, row["ref"]) == datacenter


def folder_path(snap: Snapshot, ref: str) -> str | None:
    """A VM folder's path from its datacenter, e.g. "vm" or "vm/Lab/Balancers"; None if not a VM folder."""
    names: list[str] = []
    prev: str | None = None
    for row in _chain(snap, ref):
        if _is(row, "Datacenter"):
            return "/".join(reversed(names)) if names and row.get("vmFolder") == prev else None
        names.append(str(row["name"]))
        prev = row["ref"]
    return None


def pool_path(snap: Snapshot, ref: str) -> str | None:
    """A resource pool's path from its compute resource, e.g. "localhost.localdomain/Resources/Lab"."""
    names: list[str] = []
    for row in _chain(snap, ref):
        names.append(str(row["name"]))
        if _is(row, "ComputeResource", "ClusterComputeResource"):
            return "/".join(reversed(names))
    return None


def _names(snap: Snapshot, refs: Iterable[str]) -> list[str]:
    return sorted(str(snap[r]["name"]) for r in refs if r in snap)


def virtual_machines(snap: Snapshot, datacenter: str | None) -> dict[str, dict[str, Any]]:
    """VM name -> its observed state (the `VirtualMachines` fact)."""
    vms: dict[str, dict[str, Any]] = {}
    for row in sorted(snap.values(), key=lambda r: r["ref"]):
        if not _is(row, "VirtualMachine") or not _in_scope(snap, row, datacenter):
            continue
        marker = (row.get("config.extraConfig") or {}).get(IMPORT_MARKER, "")
        vms[str(row["name"])] = {
            "power_state": row.get("runtime.powerState"),
            "cpu": row.get("config.hardware.numCPU"),
            "memory_mb": row.get("config.hardware.memoryMB"),
            "guest_ip": row.get("guest.ipAddress") or None,
            "guest_hostname": row.get("guest.hostName") or None,
            "datastore": _names(snap, row.get("datastore") or ()),
            "network": _names(snap, row.get("network") or ()),
            "folder": folder_path(snap, row.get("parent") or ""),
            "resource_pool": pool_path(snap, row.get("resourcePool") or ""),
            "vapp_properties": row.get("config.vAppConfig") or {},
            "path": row.get("config.files.vmPathName"),
            "import_complete": marker != "incomplete",
        }
    return vms


def inventory(snap: Snapshot, datacenter: str | None) -> dict[str, list[str]]:
    """Names of everything a VM can be placed on (the `Inventory` fact)."""
    rows = [r for r in snap.values() if _in_scope(snap, r, datacenter)]
    folders = [folder_path(snap, r["ref"]) for r in rows if _is(r, "Folder")]
    pools = [pool_path(snap, r["ref"]) for r in rows if _is(r, "ResourcePool", "VirtualApp")]
    return {
        "datacenters": datacenters(snap),
        "datastores": sorted(r["name"] for r in rows if _is(r, "Datastore")),
        "networks": sorted(r["name"] for r in rows
                           if _is(r, "Network", "DistributedVirtualPortgroup", "OpaqueNetwork")),
        "compute_resources": sorted(r["name"] for r in rows
                                    if _is(r, "ComputeResource", "ClusterComputeResource")),
        "resource_pools": sorted(p for p in pools if p),
        "folders": sorted(f for f in folders if f),
    }


# -- name -> object lookups (the import resolves its targets with these) ---------------------------
def _one(candidates: list[Row], what: str, wanted: str, known: list[str]) -> Row:
    if len(candidates) == 1:
        return candidates[0]
    listing = ", ".join(known) or "none"
    if not candidates:
        raise LookupError(f"{what} {wanted!r} not found; it has: {listing}")
    raise LookupError(f"{what} {wanted!r} is ambiguous; it has: {listing}")


def find_datacenter(snap: Snapshot, wanted: str | None) -> Row:
    rows = [r for r in snap.values() if _is(r, "Datacenter")]
    if wanted is None:
        if len(rows) == 1:
            return rows[0]
        raise LookupError(f"esxi_datacenter is not set and there are several datacenters: "
                          f"{', '.join(datacenters(snap))}")
    return _one([r for r in rows if r["name"] == wanted], "datacenter", wanted, datacenters(snap))


def find_named(snap: Snapshot, datacenter: str, kinds: tuple[str, ...], what: str, wanted: str,
               known: list[str]) -> Row:
    rows = [r for r in snap.values() if _is(r, *kinds) and r["name"] == wanted
            and datacenter_of(snap, r["ref"]) == datacenter]
    return _one(rows, what, wanted, known)


def find_folder(snap: Snapshot, datacenter: str, wanted: str | None, known: list[str]) -> Row:
    """`wanted` is "vm/Lab", "Lab" (below the VM folder) or None (the VM folder itself)."""
    dc = find_datacenter(snap, datacenter)
    if not wanted:
        return snap[dc["vmFolder"]]
    path = wanted.strip("/")
    full = path if path == "vm" or path.startswith("vm/") else f"vm/{path}"
    rows = [r for r in snap.values() if _is(r, "Folder") and datacenter_of(snap, r["ref"]) == datacenter
            and folder_path(snap, r["ref"]) == full]
    return _one(rows, "folder", wanted, known)


def find_pool(snap: Snapshot, datacenter: str, wanted: str | None, known_pools: list[str],
              known_compute: list[str]) -> Row:
    """`wanted` is a compute resource or cluster name (its root pool), a pool path or a unique pool
    name; None picks the datacenter's only compute resource."""
    computes = [r for r in snap.values() if _is(r, "ComputeResource", "ClusterComputeResource")
                and datacenter_of(snap, r["ref"]) == datacenter]
    if wanted is None:
        if len(computes) == 1:
            return snap[computes[0]["resourcePool"]]
        raise LookupError(f"resource_pool is required with several hosts/clusters; it has: "
                          f"{', '.join(known_compute) or 'none'}")
    by_compute = [r for r in computes if r["name"] == wanted]
    if len(by_compute) == 1:
        return snap[by_compute[0]["resourcePool"]]
    pools = [r for r in snap.values() if _is(r, "ResourcePool", "VirtualApp")
             and datacenter_of(snap, r["ref"]) == datacenter]
    exact = [r for r in pools if pool_path(snap, r["ref"]) == wanted]
    return _one(exact or [r for r in pools if r["name"] == wanted], "resource pool", wanted,
                known_compute + known_pools)
