"""pyVmomi sessions to the lab's vSphere endpoint, with TLS verified against the lab CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from lab.errors import LabError


def connect(creds: dict[str, Any], timeout: float = 10.0) -> Any:
    """Log in with an "esxi1"-style credentials record; returns the ServiceInstance."""
    ctx = ssl.create_default_context(cafile=creds["ca_file"])
    try:
        return SmartConnect(host=creds["host"], port=int(creds["port"]), user=creds["username"],
                            pwd=creds["password"], sslContext=ctx, httpConnectionTimeout=timeout)
    except vim.fault.InvalidLogin:
        raise LabError(f"vSphere {creds['host']}:{creds['port']}: login refused for {creds['username']!r}; "
                       "check credentials.json") from None
    except (OSError, ssl.SSLError) as e:
        raise LabError(f"vSphere {creds['host']}:{creds['port']}: cannot connect: {e}") from None


@contextmanager
def session(creds: dict[str, Any], timeout: float = 10.0) -> Iterator[Any]:
    """A logged-in ServiceInstance, logged out on exit."""
    si = connect(creds, timeout)
    try:
        yield si
    finally:
        try:
            Disconnect(si)
        except Exception:  # noqa: BLE001 - logging out of a dead server is not worth an error
            pass


def all_vms(si: Any) -> list[Any]:
    """Every VirtualMachine in the inventory."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def vm_power_states(si: Any) -> dict[str, str]:
    """VM name -> power state ("poweredOn", ...), read in one property-collector round trip."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        pc = content.propertyCollector
        spec = vim.PropertyCollector.FilterSpec(
            objectSet=[vim.PropertyCollector.ObjectSpec(
                obj=view, skip=True,
                selectSet=[vim.PropertyCollector.TraversalSpec(name="v", path="view", skip=False,
                                                               type=vim.view.ContainerView)])],
            propSet=[vim.PropertyCollector.PropertySpec(type=vim.VirtualMachine,
                                                        pathSet=["name", "runtime.powerState"])])
        result = pc.RetrievePropertiesEx([spec], vim.PropertyCollector.RetrieveOptions())
        states: dict[str, str] = {}
        while result:
            for obj in result.objects:
                props = {p.name: p.val for p in obj.propSet}
                states[str(props["name"])] = str(props["runtime.powerState"])
            if not result.token:
                break
            result = pc.ContinueRetrievePropertiesEx(result.token)
        return states
    finally:
        view.Destroy()
