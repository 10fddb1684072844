"""Import an OVF/OVA package as one VM: CreateImportSpec, ImportVApp, every disk uploaded through the
NFC lease, HttpNfcLeaseComplete. A failed or interrupted import is cleaned up (lease aborted, half VM
destroyed, its datastore folder deleted) so that running again succeeds and never leaves a duplicate.

While the disks upload, the VM carries the extra-config marker `exha.import=incomplete`; a process
killed outright (no chance to clean up) leaves it behind, and the next import replaces that VM.
"""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import GetWsdlType

from roles.errors import DeviceCommandError
from roles.vsphere import ovf, snapshot
from roles.vsphere.session import Endpoint, TaskFault, fault_text, read_properties, wait_task

CHUNK = 1 << 20
#: seconds between HttpNfcLeaseProgress calls (the lease times out after about five idle minutes)
KEEPALIVE = 5.0
DISK_CONTENT_TYPE = "application/x-vnd.vmware-streamVmdk"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportRequest:
    vm_name: str
    ovf_path: str
    datastore: str
    network: str
    folder: str | None = None
    resource_pool: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    datacenter: str | None = None


@dataclass(frozen=True)
class ImportResult:
    vm_name: str
    bytes_uploaded: int
    replaced_incomplete: bool
    removed_orphan_files: bool
    warnings: tuple[str, ...]


def managed(si: Any, ref: str) -> Any:
    """A pyVmomi object for a snapshot reference "Type:moid"."""
    kind, moid = ref.split(":", 1)
    return GetWsdlType("urn:vim25", kind)(moid, si._stub)


@dataclass
class _Targets:
    datacenter: Any
    datastore: Any
    datastore_name: str
    network: Any
    folder: Any
    pool: Any


def resolve(si: Any, snap: snapshot.Snapshot, req: ImportRequest, host: str) -> _Targets:
    """Look the target names up; an unknown one is a one-line error listing what exists."""
    inv = snapshot.inventory(snap, None)
    try:
        dc = snapshot.find_datacenter(snap, req.datacenter)
        dcname = str(dc["name"])
        inv = snapshot.inventory(snap, dcname)
        ds = snapshot.find_named(snap, dcname, ("Datastore",), "datastore", req.datastore, inv["datastores"])
        net = snapshot.find_named(snap, dcname, ("Network", "DistributedVirtualPortgroup", "OpaqueNetwork"),
                                  "network", req.network, inv["networks"])
        folder = snapshot.find_folder(snap, dcname, req.folder, inv["folders"])
        pool = snapshot.find_pool(snap, dcname, req.resource_pool, inv["resource_pools"],
                                  inv["compute_resources"])
    except LookupError as e:
        raise DeviceCommandError(str(e), host=host, command="vsphere.import_ovf") from None
    return _Targets(managed(si, dc["ref"]), managed(si, ds["ref"]), str(ds["name"]), managed(si, net["ref"]),
                    managed(si, folder["ref"]), managed(si, pool["ref"]))


def property_values(pkg: ovf.OvfPackage, wanted: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The properties the OVF declares (matched by full id or by key, case-insensitively) with their
    values, and the requested names it does not declare."""
    by_name: dict[str, str] = {}
    for pid in pkg.properties:
        by_name.setdefault(pid.lower(), pid)
        by_name.setdefault((pid.split(".")[1] if pid.count(".") == 2 else pid).lower(), pid)
    known: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in wanted.items():
        declared = by_name.get(key.lower())
        if declared is None:
            unknown.append(key)
        else:
            known[declared] = value
    return known, unknown


def folder_owner(vms: dict[str, dict[str, Any]], vm_name: str, datastore: str) -> str | None:
    """Pure: the other VM whose files live in "[datastore] vm_name/" (one renamed from vm_name), if any."""
    prefix = f"[{datastore}] {vm_name}/"
    for other, vm in sorted(vms.items()):
        if other != vm_name and str(vm.get("path") or "").startswith(prefix):
            return other
    return None


def folder_taken(vm_name: str, datastore: str, owner: str) -> str:
    return (f"datastore folder [{datastore}] {vm_name} holds VM {owner!r} (renamed from {vm_name}?); "
            f"not importing over it: choose another vm_name or move that VM's files")


def _folders_in_use(snap: snapshot.Snapshot, exclude: str) -> set[str]:
    """"[datastore] folder" of every VM except `exclude` (a renamed VM keeps its old folder)."""
    used = set()
    for row in snap.values():
        path = str(row.get("config.files.vmPathName") or "")
        if snapshot.kind(row["ref"]) == "VirtualMachine" and row.get("name") != exclude and "/" in path:
            used.add(path.rsplit("/", 1)[0])
    return used


class Importer:
    """One import on one logged-in session."""

    def __init__(self, si: Any, ep: Endpoint, ssl_context: ssl.SSLContext, host: str,
                 progress: Progress | None = None, log: Callable[[str], None] | None = None) -> None:
        self.si = si
        self.ep = ep
        self.ssl_context = ssl_context
        self.host = host
        self.progress = progress or (lambda done, total: None)
        self.log = log or (lambda msg: None)
        self.folders_in_use: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------
    def _fail(self, cause: str) -> DeviceCommandError:
        return DeviceCommandError(cause, host=self.host, command="vsphere.import_ovf")

    def _wait(self, task: Any, what: str) -> Any:
        return wait_task(self.si, task, self.host, what)

    def _destroy(self, vm: Any) -> None:
        props = read_properties(self.si, vm, ("runtime.powerState",))
        if props.get("runtime.powerState") == "poweredOn":
            self._wait(vm.PowerOffVM_Task(), "PowerOffVM_Task")
        self._wait(vm.Destroy_Task(), "Destroy_Task")

    def _delete_folder(self, targets: _Targets, vm_name: str) -> bool:
        """Delete "[datastore] vm_name" if it exists and no other VM lives there; True when deleted."""
        path = f"[{targets.datastore_name}] {vm_name}"
        if path in self.folders_in_use:
            return False
        try:
            self._wait(self.si.content.fileManager.DeleteDatastoreFile_Task(name=path,
                                                                            datacenter=targets.datacenter),
                       f"DeleteDatastoreFile_Task {path}")
        except TaskFault as e:
            if isinstance(e.fault, vim.fault.FileNotFound):
                return False
            raise
        return True

    def _wait_lease(self, lease: Any, timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            props = read_properties(self.si, lease, ("state", "error", "info"))
            state = props.get("state")
            if state == "ready":
                return props["info"]
            if state == "error":
                fault = props.get("error")
                raise self._fail(f"the import lease failed: {getattr(fault, 'msg', fault)}")
            if time.monotonic() > deadline:
                raise self._fail(f"the import lease is still {state} after {timeout:g}s")
            time.sleep(0.1)

    def _device_url(self, url: str) -> urllib.parse.SplitResult:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
        if netloc.startswith("*"):
            netloc = f"{self.ep.host}{netloc[1:] or f':{self.ep.port}'}"
        return parts._replace(netloc=netloc)

    def _upload(self, lease: Any, pkg: ovf.OvfPackage, f: ovf.OvfFile, url: str, done: int, total: int,
                clock: list[float]) -> int:
        """PUT one file to its device URL, streaming it; returns the running byte count."""
        target = self._device_url(url)
        conn = http.client.HTTPSConnection(target.hostname or self.ep.host, target.port or self.ep.port,
                                           context=self.ssl_context, timeout=max(self.ep.timeout, 60.0))
        try:
            with ovf.open_file(pkg, f) as (stream, size):
                conn.putrequest("PUT", target.path + (f"?{target.query}" if target.query else ""),
                                skip_accept_encoding=True)
                conn.putheader("Content-Type", DISK_CONTENT_TYPE)
                conn.putheader("Content-Length", str(size))
                conn.putheader("Cookie", self.si._stub.cookie)
                conn.endheaders()
                sent = 0
                while sent < size:
                    chunk = stream.read(min(CHUNK, size - sent))
                    if not chunk:
                        raise ovf.OvfError(f"{pkg.path}: {f.href} ended after {sent} of {size} bytes")
                    conn.send(chunk)
                    sent += len(chunk)
                    self.progress(done + sent, total)
                    if time.monotonic() - clock[0] > KEEPALIVE:
                        lease.HttpNfcLeaseProgress(min(99, (done + sent) * 100 // max(total, 1)))
                        clock[0] = time.monotonic()
            resp = conn.getresponse()
            body = resp.read(500)
            if resp.status not in (200, 201):
                raise self._fail(f"uploading {f.href} got HTTP {resp.status} {resp.reason}: "
                                 f"{body.decode(errors='replace').strip()}")
            return done + sent
        finally:
            conn.close()

    def _cleanup(self, lease: Any, vm: Any, targets: _Targets, vm_name: str) -> str:
        """Undo a half import; returns what was done (best effort: every step is tried)."""
        done: list[str] = []
        if lease is not None:
            try:
                lease.HttpNfcLeaseAbort()
                done.append("lease aborted")
            except (vmodl.MethodFault, OSError, http.client.HTTPException):
                pass
        if vm is not None:
            try:
                self._destroy(vm)
                done.append("half-imported VM destroyed")
            except (vmodl.MethodFault, DeviceCommandError, OSError, http.client.HTTPException):
                pass
        try:
            if self._delete_folder(targets, vm_name):
                done.append(f"[{targets.datastore_name}] {vm_name} deleted")
        except (vmodl.MethodFault, DeviceCommandError, OSError, http.client.HTTPException):
            done.append(f"[{targets.datastore_name}] {vm_name} could not be deleted")
        return ", ".join(done) or "nothing to clean up"

    # -- the import -----------------------------------------------------------------------------
    def run(self, req: ImportRequest, snap: snapshot.Snapshot, pkg: ovf.OvfPackage) -> ImportResult:
        targets = resolve(self.si, snap, req, self.host)
        self.folders_in_use = _folders_in_use(snap, exclude=req.vm_name)
        vms = snapshot.virtual_machines(snap, req.datacenter)
        owner = folder_owner(vms, req.vm_name, targets.datastore_name)
        if owner:
            raise self._fail(folder_taken(req.vm_name, targets.datastore_name, owner))
        warnings: list[str] = []
        existing = vms.get(req.vm_name)
        replaced = False
        if existing is not None:
            if existing["import_complete"]:
                raise self._fail(f"VM {req.vm_name!r} already exists; not importing a duplicate")
            vm_row = next(r for r in snap.values()
                          if snapshot.kind(r["ref"]) == "VirtualMachine" and r["name"] == req.vm_name
                          and (req.datacenter is None
                               or snapshot.datacenter_of(snap, r["ref"]) == req.datacenter))
            self.log(f"VM {req.vm_name} was left half-imported by an interrupted run; replacing it")
            self._destroy(managed(self.si, vm_row["ref"]))
            replaced = True
        orphan = self._delete_folder(targets, req.vm_name)
        if orphan:
            warnings.append(f"removed orphan files [{targets.datastore_name}] {req.vm_name} "
                            "left by an earlier failed import")

        values, unknown = property_values(pkg, req.properties)
        if unknown:
            warnings.append(f"the OVF declares no propert{'y' if len(unknown) == 1 else 'ies'} "
                            f"{', '.join(sorted(unknown))}; not set")
        params = vim.OvfManager.CreateImportSpecParams(
            entityName=req.vm_name, diskProvisioning="thin",
            networkMapping=[vim.OvfManager.NetworkMapping(name=n, network=targets.network)
                            for n in pkg.networks],
            propertyMapping=[vim.KeyValue(key=k, value=v) for k, v in sorted(values.items())])
        try:
            result = self.si.content.ovfManager.CreateImportSpec(pkg.descriptor, targets.pool,
                                                                 targets.datastore, params)
        except vmodl.MethodFault as e:
            raise self._fail(f"CreateImportSpec rejected {pkg.path}: {fault_text(e)}") from e
        if result.error:
            raise self._fail(f"CreateImportSpec rejected {pkg.path}: "
                             + "; ".join(str(getattr(e, "msg", e)) for e in result.error))
        warnings += [str(getattr(w, "msg", w)) for w in result.warning or ()]
        spec = result.importSpec
        marker = vim.option.OptionValue(key=snapshot.IMPORT_MARKER, value="incomplete")
        spec.configSpec.extraConfig = [*(spec.configSpec.extraConfig or []), marker]

        lease = vm = None
        total = pkg.total_bytes()
        sent = 0
        try:
            lease = targets.pool.ImportVApp(spec, targets.folder)
            info = self._wait_lease(lease)
            vm = info.entity
            urls = [u for u in info.deviceUrl if getattr(u, "disk", None) is not False]
            pairs = self._pair(pkg, result.fileItem or [], urls)
            clock = [time.monotonic()]
            for f, url in pairs:
                sent = self._upload(lease, pkg, f, url, sent, total, clock)
            lease.HttpNfcLeaseProgress(100)
            lease.HttpNfcLeaseComplete()
            lease = None
            clear = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key=snapshot.IMPORT_MARKER, value="")])
            self._wait(vm.ReconfigVM_Task(clear), "ReconfigVM_Task")
        except BaseException as e:
            cleaned = self._cleanup(lease, vm, targets, req.vm_name)
            if not isinstance(e, Exception):
                raise  # interrupted (Ctrl-C, a timeout): cleaned up, still interrupted
            if isinstance(e, vmodl.MethodFault):
                cause = fault_text(e)
            else:
                cause = getattr(e, "cause", None) or str(e) or type(e).__name__
            raise self._fail(f"import of {req.vm_name} failed: {cause}; cleaned up ({cleaned})") from e
        return ImportResult(req.vm_name, sent, replaced, orphan, tuple(warnings))

    def _pair(self, pkg: ovf.OvfPackage, items: list[Any], urls: list[Any]) -> list[tuple[ovf.OvfFile, str]]:
        """Which file goes to which device URL: by the import spec's file items when the server
        lists them, else in disk order (govmomi's simulator lists none)."""
        if items:
            by_href = {f.href: f for f in pkg.files}
            by_key = {u.importKey: u.url for u in urls}
            pairs = []
            for item in items:
                if item.path not in by_href or item.deviceId not in by_key:
                    raise self._fail(f"the import lease offers no upload URL for {item.path}")
                pairs.append((by_href[item.path], by_key[item.deviceId]))
            return pairs
        if len(urls) != len(pkg.disk_files):
            raise self._fail(f"the import lease offers {len(urls)} upload URL(s) for "
                             f"{len(pkg.disk_files)} disk(s)")
        return list(zip(pkg.disk_files, (u.url for u in urls)))
