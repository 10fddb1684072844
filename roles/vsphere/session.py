"""pyVmomi sessions for the vSphere role: log in with TLS verified, read properties in one round trip,
wait for tasks. Library faults become the toolkit's one-line errors here, at one boundary."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from roles.errors import DeviceAuthError, DeviceCommandError, DeviceConnectError

#: managed object types the role reads (subtypes such as VirtualApp, ClusterComputeResource and
#: DistributedVirtualPortgroup come with their base type)
ENTITY_TYPES = (vim.Datacenter, vim.Folder, vim.VirtualMachine, vim.Datastore, vim.Network,
                vim.ResourcePool, vim.ComputeResource, vim.HostSystem)


@dataclass(frozen=True)
class Endpoint:
    """Where and how to log in. `ca_file` verifies the server certificate against a CA;
    `thumbprint` (SHA-1/256 "AA:BB:…") pins the certificate instead."""

    host: str
    port: int
    username: str
    password: str
    ca_file: str | None
    thumbprint: str | None
    timeout: float
    #: the inventory name errors start with (default: the address)
    name: str = ""

    def label(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def who(self) -> str:
        return self.name or self.host


def ssl_context(ep: Endpoint) -> ssl.SSLContext:
    if ep.ca_file:
        try:
            return ssl.create_default_context(cafile=ep.ca_file)
        except (OSError, ssl.SSLError) as e:
            raise DeviceConnectError(f"esxi_ca_file {ep.ca_file}: {e.strerror or e}", host=ep.who) from e
    if ep.thumbprint:
        # The certificate is pinned by thumbprint below, so chain validation is not what protects it.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    raise DeviceConnectError("set esxi_ca_file (CA to verify the server certificate) or esxi_thumbprint",
                             host=ep.who)


def _normal_thumbprint(value: str) -> str:
    return value.replace(":", "").replace(" ", "").lower()


def _check_thumbprint(ep: Endpoint, ctx: ssl.SSLContext) -> None:
    """Compare the server certificate with the pinned thumbprint before sending the password."""
    assert ep.thumbprint is not None
    with (socket.create_connection((ep.host, ep.port), timeout=ep.timeout) as raw,
          ctx.wrap_socket(raw, server_hostname=ep.host) as tls):
        der = tls.getpeercert(binary_form=True) or b""
    want = _normal_thumbprint(ep.thumbprint)
    algo = {40: "sha1", 64: "sha256", 128: "sha512"}.get(len(want))
    if algo is None:
        raise DeviceConnectError(f"esxi_thumbprint {ep.thumbprint!r} is not a SHA-1/256/512 thumbprint",
                                 host=ep.who)
    got = hashlib.new(algo, der).hexdigest()
    if got != want:
        raise DeviceConnectError(f"TLS certificate thumbprint mismatch on {ep.label()}: the server presents "
                                 f"{got.upper()}, esxi_thumbprint pins {want.upper()}", host=ep.who)


def connect(ep: Endpoint) -> Any:
    """Log in; returns the ServiceInstance. Raises DeviceConnectError / DeviceAuthError."""
    ctx = ssl_context(ep)
    try:
        if not ep.ca_file:
            _check_thumbprint(ep, ctx)
        return SmartConnect(host=ep.host, port=ep.port, user=ep.username, pwd=ep.password, sslContext=ctx,
                            httpConnectionTimeout=ep.timeout, connectionPoolTimeout=-1)
    except vim.fault.InvalidLogin as e:
        raise DeviceAuthError(f"{ep.label()} refused the login for user {ep.username!r}",
                              host=ep.who) from e
    except ssl.SSLCertVerificationError as e:
        raise DeviceConnectError(f"TLS verification of {ep.label()} against {ep.ca_file} failed: "
                                 f"{e.verify_message or e.reason}", host=ep.who) from e
    except ssl.SSLError as e:
        raise DeviceConnectError(f"TLS handshake with {ep.label()} failed: {e.reason or e}", host=ep.who) from e
    except TimeoutError as e:
        raise DeviceConnectError(f"{ep.label()} did not answer within {ep.timeout:g}s", host=ep.who) from e
    except OSError as e:
        raise DeviceConnectError(f"{ep.label()} is unreachable: {e.strerror or e}", host=ep.who) from e
    except vmodl.MethodFault as e:
        raise DeviceConnectError(f"{ep.label()}: {fault_text(e)}", host=ep.who) from e
    except Exception as e:  # SmartConnect raises a bare Exception when the version probe fails
        raise DeviceConnectError(f"{ep.label()} is not a vSphere API endpoint: {e}", host=ep.who) from e


def disconnect(si: Any) -> None:
    with contextlib.suppress(Exception):  # logging out of a dead server is not worth an error
        Disconnect(si)


def container_view(si: Any) -> Any:
    """A recursive view over every entity the role reads, kept for the session's lifetime."""
    content = si.RetrieveContent()
    return content.viewManager.CreateContainerView(content.rootFolder, list(ENTITY_TYPES), True)


#: (type, property paths) read for every entity of that type
PROPERTY_PATHS: tuple[tuple[Any, tuple[str, ...]], ...] = (
    (vim.ManagedEntity, ("name", "parent")),
    (vim.Datacenter, ("vmFolder",)),
    (vim.Folder, ("childType",)),
    (vim.ComputeResource, ("resourcePool",)),
    (vim.VirtualMachine, ("runtime.powerState", "config.hardware.numCPU", "config.hardware.memoryMB",
                          "guest.ipAddress", "guest.hostName", "datastore", "network", "resourcePool",
                          "config.files.vmPathName", "config.extraConfig", "config.vAppConfig")),
)


def retrieve(si: Any, objects: list[vim.PropertyCollector.ObjectSpec],
             paths: Iterable[tuple[Any, Iterable[str]]]) -> list[tuple[Any, dict[str, Any]]]:
    """RetrievePropertiesEx (and its continuations): [(managed object, {path: value})]. Unset
    properties are simply absent."""
    pc = si.content.propertyCollector
    spec = vim.PropertyCollector.FilterSpec(
        objectSet=objects,
        propSet=[vim.PropertyCollector.PropertySpec(type=t, pathSet=list(p)) for t, p in paths])
    out: list[tuple[Any, dict[str, Any]]] = []
    result = pc.RetrievePropertiesEx([spec], vim.PropertyCollector.RetrieveOptions())
    while result is not None:
        for obj in result.objects:
            out.append((obj.obj, {p.name: p.val for p in obj.propSet}))
        if not result.token:
            break
        result = pc.ContinueRetrievePropertiesEx(result.token)
    return out


def view_objects(view: Any) -> list[vim.PropertyCollector.ObjectSpec]:
    """Object spec: every entity in the container view (not the view itself)."""
    return [vim.PropertyCollector.ObjectSpec(
        obj=view, skip=True,
        selectSet=[vim.PropertyCollector.TraversalSpec(name="view", path="view", skip=False,
                                                         type=vim.view.ContainerView)])]


def read_properties(si: Any, obj: Any, paths: Iterable[str]) -> dict[str, Any]:
    """Some properties of one managed object in one round trip (unset ones are absent)."""
    found = retrieve(si, [vim.PropertyCollector.ObjectSpec(obj=obj)], [(type(obj), paths)])
    return found[0][1] if found else {}


def fault_text(fault: Any) -> str:
    """One line for a vim fault: its type, its message, and the file a file fault names."""
    name = type(fault).__name__.rsplit(".", 1)[-1]
    msg = str(getattr(fault, "msg", "") or "").strip().replace("\n", " ")
    file = getattr(fault, "file", None)
    return name + (f": {msg}" if msg else "") + (f" ({file})" if file else "")


def wait_task(si: Any, task: Any, host: str, what: str, timeout: float = 600.0) -> Any:
    """Wait for a vSphere task; returns its result or raises DeviceCommandError with the fault.

    Task state is read through the property collector: pyVmomi cannot deserialize the `info` of
    some tasks whose entity is not a managed entity (FileManager)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        props = read_properties(si, task, ("info.state", "info.error", "info.result"))
        state = props.get("info.state")
        if state == "success":
            return props.get("info.result")
        if state == "error":
            fault = props.get("info.error")
            raise TaskFault(fault, host=host, command=what, cause=fault_text(fault))
        if time.monotonic() > deadline:
            raise DeviceCommandError(f"task still {state} after {timeout:g}s", host=host, command=what)
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


class TaskFault(DeviceCommandError):
    """A vSphere task ended in error; `fault` is the vim fault object."""

    def __init__(self, fault: Any, **fields: Any) -> None:
        self.fault = fault
        super().__init__(**fields)
