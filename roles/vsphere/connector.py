"""The `@exha-esxi/<name>` pyinfra connector: one pyVmomi session per ESXi host or vCenter, reads
memoized per pyinfra stage, and the role's API calls (inventory reads, OVF import, power, guest IP)."""

from __future__ import annotations

import contextlib
import functools
import http.client
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pyinfra import logger
from pyinfra.api.exceptions import InventoryError
from pyinfra.connectors.base import DataMeta
from pyVmomi import vmodl
from typing_extensions import TypedDict

from roles.api import ApiConnector
from roles.errors import DeviceCommandError, DeviceConnectError, OperationInputError
from roles.log import host_logger
from roles.vsphere import ovf, session, snapshot
from roles.vsphere.importer import Importer, ImportRequest, managed


class EsxiConnectorData(TypedDict, total=False):
    esxi_host: str
    esxi_port: int
    esxi_username: str
    esxi_password: str
    esxi_ca_file: str
    esxi_thumbprint: str
    esxi_datacenter: str
    esxi_timeout: float


EsxiConnectorDataMeta: dict[str, DataMeta] = {
    "esxi_host": DataMeta("Address of the ESXi host or vCenter (default: the inventory name)"),
    "esxi_port": DataMeta("HTTPS port", 443),
    "esxi_username": DataMeta("User to log in as", "root"),
    "esxi_password": DataMeta("That user's password (secret: never printed)"),
    "esxi_ca_file": DataMeta("PEM CA file to verify the server certificate against"),
    "esxi_thumbprint": DataMeta("Pin the server certificate by SHA-1/256 thumbprint instead of a CA"),
    "esxi_datacenter": DataMeta("Datacenter to work in (default: the only one)"),
    "esxi_timeout": DataMeta("Seconds to wait for the API to answer", 30.0),
}

#: how often to report upload progress (fraction of the total)
PROGRESS_STEP = 0.1

F = TypeVar("F", bound=Callable[..., Any])


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def device_call(method: str) -> Callable[[F], F]:
    """Turn what pyVmomi and the transport raise inside an API call into a one-line DeviceCommandError."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def call(self: EsxiConnector, *args: Any, **kwargs: Any) -> Any:
            try:
                return func(self, *args, **kwargs)
            except vmodl.MethodFault as e:
                raise DeviceCommandError(session.fault_text(e), host=self.label, command=method) from e
            except (OSError, http.client.HTTPException) as e:
                raise DeviceCommandError(f"{self.ep.label()} stopped answering: {e or type(e).__name__}",
                                         host=self.label, command=method) from e
        return call  # type: ignore[return-value]
    return wrap


class EsxiConnector(ApiConnector):
    """vSphere API target: `@exha-esxi/esxi1` with data esxi_host, esxi_password, esxi_ca_file, …"""

    handles_execution = True
    kind = "vSphere"
    data_cls = EsxiConnectorData
    data_meta = EsxiConnectorDataMeta

    si: Any = None
    view: Any = None

    @staticmethod
    def make_names_data(name: str | None = None) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
        if not name:
            raise InventoryError("@exha-esxi needs a name: @exha-esxi/<name>")
        yield f"@exha-esxi/{name}", {"esxi_host": name}, ["@exha-esxi"]

    # -- session -----------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return self.host.name.split("/", 1)[-1]

    def endpoint(self) -> session.Endpoint:
        d = self.data
        if not d.get("esxi_password"):
            raise DeviceConnectError("esxi_password is not set in the inventory", host=self.label)
        return session.Endpoint(host=d.get("esxi_host") or self.label, port=int(d.get("esxi_port") or 443),
                                username=d.get("esxi_username") or "root", password=d["esxi_password"],
                                ca_file=d.get("esxi_ca_file"), thumbprint=d.get("esxi_thumbprint"),
                                timeout=float(d.get("esxi_timeout") or 30.0), name=self.label)

    def open(self) -> None:
        self.ep = self.endpoint()
        self.ssl_context = session.ssl_context(self.ep)
        self.si = session.connect(self.ep)
        self.log = host_logger("roles.vsphere", self.label)
        self._memo: dict[Any, Any] = {}
        try:
            self.view = session.container_view(self.si)
        except vmodl.MethodFault as e:
            raise DeviceConnectError(f"cannot read the inventory: {session.fault_text(e)}",
                                     host=self.label) from e

    def close(self) -> None:
        if self.si is not None:
            if self.view is not None:
                with contextlib.suppress(Exception):  # the session is going away anyway
                    self.view.Destroy()
            session.disconnect(self.si)
        self.si = self.view = None

    # -- reads (memoized per stage, cleared on every write) ----------------------------------
    def _stage(self) -> Any:
        return getattr(self.state, "current_stage", None)

    def snapshot(self, fresh: bool = False) -> snapshot.Snapshot:
        key = ("snapshot", self._stage())
        if fresh or key not in self._memo:
            found = session.retrieve(self.si, session.view_objects(self.view), session.PROPERTY_PATHS)
            self._memo = {key: snapshot.rows_from(found)}
        return self._memo[key]  # type: ignore[no-any-return]

    def _written(self) -> None:
        self._memo.clear()

    def datacenter(self) -> str | None:
        return self.data.get("esxi_datacenter") or None

    @device_call("vsphere.virtual_machines")
    def api_vsphere_virtual_machines(self) -> dict[str, Any]:
        return snapshot.virtual_machines(self.snapshot(), self.datacenter())

    @device_call("vsphere.inventory")
    def api_vsphere_inventory(self) -> dict[str, Any]:
        return snapshot.inventory(self.snapshot(), self.datacenter())

    # -- writes ------------------------------------------------------------------------------
    def _vm(self, vm_name: str, command: str) -> Any:
        snap = self.snapshot(fresh=True)
        rows = [r for r in snap.values() if snapshot.kind(r["ref"]) == "VirtualMachine"
                and r["name"] == vm_name
                and (self.datacenter() is None or snapshot.datacenter_of(snap, r["ref"]) == self.datacenter())]
        if len(rows) != 1:
            raise DeviceCommandError(f"VM {vm_name!r} {'not found' if not rows else 'is ambiguous'}",
                                     host=self.label, command=command)
        return managed(self.si, rows[0]["ref"])

    def _progress(self, vm_name: str) -> Any:
        state = {"next": PROGRESS_STEP, "start": time.monotonic()}

        def report(done: int, total: int) -> None:
            frac = done / total if total else 1.0
            if frac + 1e-9 >= state["next"] or done == total:
                rate = done / max(time.monotonic() - state["start"], 1e-3)
                self.host.log(f"{vm_name}: uploaded {_size(done)} of {_size(total)} ({frac:.0%}, "
                              f"{_size(rate)}/s)", logger.info)
                while state["next"] <= frac + 1e-9:
                    state["next"] += PROGRESS_STEP
        return report

    @device_call("vsphere.import_ovf")
    def api_vsphere_import_ovf(self, vm_name: str, ovf_path: str, datastore: str, network: str,
                               folder: str | None = None, resource_pool: str | None = None,
                               properties: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            pkg = ovf.load(ovf_path)
        except ovf.OvfError as e:
            raise OperationInputError(str(e), field=f"{self.label}: ovf_path") from e
        req = ImportRequest(vm_name, ovf_path, datastore, network, folder, resource_pool,
                            dict(properties or {}), self.datacenter())
        importer = Importer(self.si, self.ep, self.ssl_context, self.label, self._progress(vm_name),
                            lambda msg: self.host.log(msg, logger.warning))
        try:
            result = importer.run(req, self.snapshot(fresh=True), pkg)
        finally:
            self._written()
        for w in result.warnings:
            self.host.log(f"{vm_name}: {w}", logger.warning)
        self.log.info("imported %s from %s (%d bytes)", vm_name, ovf_path, result.bytes_uploaded)
        return {"imported": vm_name, "bytes": result.bytes_uploaded, "warnings": list(result.warnings)}

    def api_vsphere_refuse(self, reason: str) -> dict[str, Any]:
        """An operation found its input unusable while executing: fail this host with its reason."""
        raise OperationInputError(reason.split(": ", 1)[-1], field=self.label)

    @device_call("vsphere.power_on")
    def api_vsphere_power_on(self, vm_name: str) -> dict[str, Any]:
        vm = self._vm(vm_name, "vsphere.power_on")
        try:
            state = session.read_properties(self.si, vm, ("runtime.powerState",)).get("runtime.powerState")
            if state != "poweredOn":
                session.wait_task(self.si, vm.PowerOnVM_Task(), self.label, f"PowerOnVM_Task {vm_name}")
        finally:
            self._written()
        self.log.info("powered on %s", vm_name)
        return {"vm": vm_name, "power_state": "poweredOn"}

    @device_call("vsphere.wait_for_ip")
    def api_vsphere_wait_for_ip(self, vm_name: str, timeout: float = 300.0) -> dict[str, Any]:
        vm = self._vm(vm_name, "vsphere.wait_for_ip")
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            ip = session.read_properties(self.si, vm, ("guest.ipAddress",)).get("guest.ipAddress")
            if ip:
                self._written()
                return {"vm": vm_name, "guest_ip": ip}
            if time.monotonic() > deadline:
                raise DeviceCommandError(f"{vm_name} reported no guest IP address within {timeout:g}s "
                                         "(is VMware Tools running in the guest?)",
                                         host=self.label, command="vsphere.wait_for_ip")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
