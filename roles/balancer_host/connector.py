"""The `@exha-vm/<name>` pyinfra connector: pyinfra's own SSH connector, pointed at wherever the balancer VM
answers right now.

On connect it tries, in order: the VM's final address (`vm_address`), the address vSphere reports for the
VM (`vm_name` -> guest.ipAddress, read with the host's esxi_* data), and the first-boot address
(`vm_bootstrap_address`). Host keys are always verified against `ssh_known_hosts_file`.

When none answers and vSphere says the VM does not exist yet (or is not running, or has no address yet), the
run plans against an empty machine: facts read as absent, so every operation shows as a change. If the run
then executes (an earlier operation created the VM), the first command waits up to `vm_wait_timeout` seconds
for the VM to answer and connects for real; operations re-read their facts at that point.
`move_to(address)` reconnects the run to a new address (used when the run moves the VM's own address).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from paramiko import SSHException
from pyinfra import logger
from pyinfra.api.exceptions import ConnectError, InventoryError
from pyinfra.api.state import StateStage
from pyinfra.connectors.base import DataMeta
from pyinfra.connectors.ssh import ConnectorData, SSHConnector, connector_data_meta
from pyinfra.connectors.util import CommandOutput, OutputLine

from roles.balancer_host import locate
from roles.errors import DeviceConnectError
from roles.vsphere.connector import EsxiConnectorData


class VmConnectorData(ConnectorData, EsxiConnectorData, total=False):
    """SSH data, the esxi_* keys of the ESXi connector (to find the VM), and the vm_* keys."""

    vm_name: str
    vm_address: str
    vm_bootstrap_address: str
    vm_probe_timeout: float
    vm_wait_timeout: float
    vm_move_timeout: float


VmConnectorDataMeta: dict[str, DataMeta] = {
    **connector_data_meta,
    "vm_name": DataMeta("The VM's name in vSphere (to look its address up through VMware Tools)"),
    "vm_address": DataMeta("The address the VM ends up on (tried first)"),
    "vm_bootstrap_address": DataMeta("The address the VM boots with before it is configured (tried last)"),
    "vm_probe_timeout": DataMeta("Seconds to wait for SSH to answer on each address", 2.0),
    "vm_wait_timeout": DataMeta("Seconds to wait at execute time for a VM that did not exist when planning",
                                300.0),
    "vm_move_timeout": DataMeta("Seconds to keep trying the new address after the VM's own address moved", 20.0),
    "esxi_host": DataMeta("vSphere endpoint (ESXi or vCenter) that runs the VM"),
    "esxi_port": DataMeta("Its HTTPS port", 443),
    "esxi_username": DataMeta("vSphere user", "root"),
    "esxi_password": DataMeta("That user's password (secret: never printed)"),
    "esxi_ca_file": DataMeta("PEM CA file to verify the vSphere certificate against"),
    "esxi_thumbprint": DataMeta("Pin the vSphere certificate by thumbprint instead of a CA"),
    "esxi_datacenter": DataMeta("Datacenter to look the VM up in (default: all)"),
    "esxi_timeout": DataMeta("Seconds to wait for vSphere to answer", 15.0),
}

PLANNED_NOTE = "planning against an empty machine"


def _empty() -> CommandOutput:
    return CommandOutput([])


class VmConnector(SSHConnector):
    """A balancer VM over SSH: `@exha-vm/lb1` with vm_name, vm_address, ssh_key, ssh_known_hosts_file, esxi_*."""

    data_cls = VmConnectorData  # type: ignore[assignment]
    data_meta = VmConnectorDataMeta
    data: VmConnectorData  # type: ignore[assignment]

    #: the address the SSH session is open to (None while planning against an empty machine)
    address: str | None = None
    #: True while no VM answered at connect time: facts read empty, commands wait for the VM first
    planned: bool = False

    @staticmethod
    def make_names_data(name: str | None = None) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
        if not name:
            raise InventoryError("@exha-vm needs a name: @exha-vm/<name>")
        yield f"@exha-vm/{name}", {}, ["@exha-vm"]

    @property
    def label(self) -> str:
        return self.host.name.split("/", 1)[-1]

    # -- where the VM answers ---------------------------------------------------------------------------
    def _port(self) -> int:
        return int(self.data.get("ssh_port") or 22)

    def _answers(self, address: str | None) -> bool:
        return bool(address) and locate.ssh_answers(str(address), self._port(),
                                                    float(self.data.get("vm_probe_timeout") or 2.0))

    def _guest(self) -> locate.GuestInfo | None:
        """What vSphere reports for the VM (None when the host has no esxi_* data or no vm_name)."""
        ep = locate.esxi_endpoint(dict(self.data), self.label)
        vm_name = self.data.get("vm_name")
        if ep is None or not vm_name:
            return None
        return locate.guest_info(ep, str(vm_name), self.data.get("esxi_datacenter") or None)

    def _find(self) -> tuple[str | None, locate.GuestInfo | None, list[str]]:
        """(answering address or None, vSphere's view or None, the addresses tried)."""
        tried: list[str] = []
        final = self.data.get("vm_address")
        if final:
            tried.append(str(final))
            if self._answers(final):
                return str(final), None, tried
        guest = self._guest()
        if guest is not None and guest.guest_ip and guest.guest_ip not in tried:
            tried.append(guest.guest_ip)
            if self._answers(guest.guest_ip):
                return guest.guest_ip, guest, tried
        boot = self.data.get("vm_bootstrap_address")
        if boot and boot not in tried:
            tried.append(str(boot))
            if self._answers(boot):
                return str(boot), guest, tried
        return None, guest, tried

    # -- pyinfra connector API --------------------------------------------------------------------------
    def make_paramiko_kwargs(self) -> dict[str, Any]:
        kwargs = super().make_paramiko_kwargs()
        kwargs["hostname"] = self.address
        return kwargs

    def connect(self) -> None:
        if not (self.data.get("vm_address") or self.data.get("vm_bootstrap_address") or self.data.get("vm_name")):
            raise ConnectError(f"{self.label}: set vm_address (and vm_name with esxi_* data, or "
                               "vm_bootstrap_address) in the inventory")
        try:
            address, guest, tried = self._find()
        except DeviceConnectError as e:
            raise ConnectError(str(e)) from e
        if address is not None:
            self._open(address)
            return
        not_there = guest is not None and (not guest.exists or guest.power_state != "poweredOn"
                                           or not guest.guest_ip)
        if not_there and self.state.current_stage < StateStage.Execute:
            what = ("does not exist yet" if guest is not None and not guest.exists
                    else "is not running yet" if guest is not None and guest.power_state != "poweredOn"
                    else "has reported no address yet")
            self.planned = True
            self.host.log(f"VM {self.data.get('vm_name')} {what}: {PLANNED_NOTE}", logger.warning)
            return
        raise ConnectError(f"{self.label}: SSH answers on none of {', '.join(tried) or '(no address)'}"
                           + ("" if guest is None else f" (vSphere: {self.data.get('vm_name')} "
                              f"{'is ' + str(guest.power_state) if guest.exists else 'does not exist'}"
                              f", guest IP {guest.guest_ip or 'none'})"))

    def _open(self, address: str) -> None:
        self.address = address
        self.planned = False
        super().connect()
        logger.debug("%s: connected to %s", self.label, address)

    def _wait_for_vm(self) -> str | None:
        """At execute time, for a VM planned as empty: wait until it answers and connect. Returns an error."""
        timeout = float(self.data.get("vm_wait_timeout") or 300.0)
        deadline = time.monotonic() + timeout
        self.host.log(f"waiting up to {timeout:g}s for VM {self.data.get('vm_name')} to answer", logger.info)
        tried: list[str] = []
        while True:
            try:
                address, _guest, tried = self._find()
            except DeviceConnectError as e:
                return str(e)
            if address is not None:
                try:
                    self._open(address)
                except ConnectError as e:
                    return str(e)
                return None
            if time.monotonic() > deadline:
                return (f"{self.label}: VM {self.data.get('vm_name')} did not answer SSH within {timeout:g}s "
                        f"(tried {', '.join(tried) or 'no address'})")
            time.sleep(1.0)

    def move_to(self, address: str) -> None:
        """Reconnect the run to `address` (the VM's own address was just changed to it). Keeps trying for
        `vm_move_timeout` seconds: the admin host may still hold a failed neighbour entry for the address from
        an earlier probe. Raises ConnectError (the old session stays open) when it never answers."""
        old, old_address = self.client, self.address
        deadline = time.monotonic() + float(self.data.get("vm_move_timeout") or 20.0)
        while True:
            try:
                self._open(address)
                break
            except ConnectError as e:
                if time.monotonic() > deadline:
                    self.client, self.address = old, old_address
                    raise ConnectError(f"{self.label}: the new address {address} does not answer SSH ({e}); "
                                       f"still connected through {old_address}") from e
                time.sleep(0.5)
        self.get_file_transfer_connection.cache.clear()  # type: ignore[attr-defined]
        if old is not None:
            try:
                old.close()
            except (OSError, SSHException):
                pass

    def run_shell_command(self, command: Any, print_output: bool = False, print_input: bool = False,
                          **arguments: Any) -> tuple[bool, CommandOutput]:
        if self.planned:
            if self.state.current_stage < StateStage.Execute:
                return True, _empty()  # an empty machine: every fact reads as absent
            error = self._wait_for_vm()
            if error:
                return False, CommandOutput([OutputLine("stderr", error)])
        return super().run_shell_command(command, print_output, print_input, **arguments)

    def put_file(self, *args: Any, **kwargs: Any) -> bool:
        if self.planned:
            if self.state.current_stage < StateStage.Execute:
                return True
            error = self._wait_for_vm()
            if error:
                logger.error(error)
                return False
        return bool(super().put_file(*args, **kwargs))

    def get_file(self, *args: Any, **kwargs: Any) -> bool:
        if self.planned:
            if self.state.current_stage < StateStage.Execute:
                return False
            error = self._wait_for_vm()
            if error:
                logger.error(error)
                return False
        return bool(super().get_file(*args, **kwargs))
