"""Where a balancer VM answers: probe SSH on its final address, ask vSphere for the address VMware Tools
reports (VM name -> guest.ipAddress), fall back to its first-boot address. All I/O, no pyinfra."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from pyVmomi import vmodl

from roles.errors import DeviceConnectError
from roles.vsphere import session, snapshot


@dataclass(frozen=True)
class GuestInfo:
    """What vSphere knows about one VM: whether it exists, its power state and reported address."""

    exists: bool
    power_state: str | None = None
    guest_ip: str | None = None


def ssh_answers(address: str, port: int, timeout: float) -> bool:
    """True when something accepts TCP on address:port within `timeout` seconds."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def esxi_endpoint(data: dict[str, Any], who: str) -> session.Endpoint | None:
    """The vSphere endpoint from the host's esxi_* data, or None when no esxi_host is set."""
    if not data.get("esxi_host"):
        return None
    if not data.get("esxi_password"):
        raise DeviceConnectError("esxi_host is set but esxi_password is not; the VM cannot be looked up "
                                 "in vSphere", host=who)
    return session.Endpoint(host=str(data["esxi_host"]), port=int(data.get("esxi_port") or 443),
                            username=str(data.get("esxi_username") or "root"), password=str(data["esxi_password"]),
                            ca_file=data.get("esxi_ca_file") or None, thumbprint=data.get("esxi_thumbprint") or None,
                            timeout=float(data.get("esxi_timeout") or 15.0), name=who)


def guest_info(ep: session.Endpoint, vm_name: str, datacenter: str | None = None) -> GuestInfo:
    """Look `vm_name` up through vSphere (one property-collector read). Raises DeviceConnectError."""
    si = session.connect(ep)
    view = None
    try:
        view = session.container_view(si)
        found = session.retrieve(si, session.view_objects(view), session.PROPERTY_PATHS)
        vms = snapshot.virtual_machines(snapshot.rows_from(found), datacenter)
    except vmodl.MethodFault as e:
        raise DeviceConnectError(f"{ep.label()}: looking up {vm_name} failed: {session.fault_text(e)}",
                                 host=ep.who) from e
    except OSError as e:
        raise DeviceConnectError(f"{ep.label()} stopped answering while looking up {vm_name}: {e}",
                                 host=ep.who) from e
    finally:
        if view is not None:
            try:
                view.Destroy()
            except Exception:  # noqa: BLE001 - the session is closed next anyway
                pass
        session.disconnect(si)
    vm = vms.get(vm_name)
    if vm is None:
        return GuestInfo(exists=False)
    return GuestInfo(exists=True, power_state=vm.get("power_state"), guest_ip=vm.get("guest_ip") or None)
