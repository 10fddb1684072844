"""The lab agent: plays the hypervisor and VMware Tools for the balancer VMs.

It polls the lab's vSphere endpoint about once a second. A VM whose name is a balancer host's
`vm_name` being powered on boots that host's Debian VM; once its sshd answers, the agent reports
the VM's address and host name back through the simulator (`ReconfigVM_Task` with extra config
`SET.guest.ipAddress` / `SET.guest.hostName`, as VMware Tools would) and keeps reporting changes.
Powering the VM off stops it; removing it from the inventory also deletes its disk (root fs).

Run as `python -m lab.vm.agent --topology FILE --state DIR --cache DIR [--network lab|isolated]`.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyVmomi import vim

from lab.context import Lab
from lab.errors import LabError
from lab.network import routed
from lab.topology import LabHost, load_topology
from lab.vm import instance
from lab.vm.guestinfo import GuestSettings, apply_vapp, first_boot_settings
from lab.vm.netattach import NetworkMode
from lab.vm.ssh import client_key, known_hosts_file
from lab.vsphere.client import connect, vm_power_states
from lab.vsphere.importer import find_vm, wait_task

log = logging.getLogger("exha.lab.vm.agent")


def ssh_credentials(lab: Lab, host: LabHost, address: str) -> dict[str, Any]:
    """The "ssh-<host>" credentials record."""
    return {"host": address, "user": "root", "key_file": str(client_key(lab)),
            "known_hosts": str(known_hosts_file(lab))}


def read_hostname(lab: Lab, host: LabHost) -> str:
    try:
        return (instance.paths(lab, host).rootfs / "etc/hostname").read_text().strip() or host.name
    except FileNotFoundError:
        return host.name


TOOLS_RUNNING = {"guest.toolsRunningStatus": "guestToolsRunning", "guest.toolsStatus": "toolsOk",
                 "guest.guestState": "running"}
TOOLS_STOPPED = {"guest.toolsRunningStatus": "guestToolsNotRunning", "guest.guestState": "notRunning"}


def _set_guest(si: Any, vm_name: str, values: dict[str, str]) -> None:
    """Set guest properties through the simulator's `SET.<property>` extra-config keys."""
    vm = find_vm(si, vm_name)
    if vm is None:
        return
    spec = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key=f"SET.{k}", value=v)
                                          for k, v in values.items()])
    wait_task(vm.ReconfigVM_Task(spec))


def report_guest(si: Any, vm_name: str, address: str, hostname: str) -> None:
    """Tell vSphere the guest's address and host name and that its tools run, as VMware Tools does."""
    _set_guest(si, vm_name, {"guest.ipAddress": address, "guest.hostName": hostname, **TOOLS_RUNNING})


def report_stopped(si: Any, vm_name: str) -> None:
    """Tell vSphere the guest's tools stopped (the guest is off)."""
    _set_guest(si, vm_name, TOOLS_STOPPED)


class LabGone(LabError):
    """The lab's network went away under the agent."""


def _is_lab_target(lab: Lab, address: str) -> bool:
    """True if traffic to `address` stays on this machine: loopback, or routed via the lab's link."""
    try:
        if ipaddress.ip_address(address).is_loopback:
            return True
    except ValueError:
        return False
    return routed(lab, address)


def _require_lab_target(lab: Lab, address: str) -> None:
    if not _is_lab_target(lab, address):
        raise LabGone(f"{address}: not loopback and not routed through the lab's link; refusing to connect")


@dataclass
class Agent:
    """One agent loop over the topology's balancer VMs."""

    lab: Lab
    mode: NetworkMode = "lab"
    endpoint: str = ""
    reported: dict[str, tuple[str, str]] = field(default_factory=dict)
    si: Any = None

    def _endpoint(self) -> str:
        return self.endpoint or self.lab.topology.by_role("vsphere")[0].name

    def _session(self) -> Any:
        if self.si is None:
            creds = self.lab.credentials().get(self._endpoint())
            if not creds:
                raise LabError(f"no {self._endpoint()!r} credentials yet in {self.lab.credentials_file}")
            _require_lab_target(self.lab, str(creds["host"]))
            self.si = connect(creds, timeout=10)
        return self.si

    def tick(self) -> None:
        """One poll: align every balancer VM with its power state, then report guest changes.

        Raises LabGone when the vSphere endpoint is no longer reachable through the lab's own link
        (the lab was taken down): the agent then ends instead of polling an address that the
        machine's default route would carry off the machine."""
        creds = self.lab.credentials().get(self._endpoint())
        if creds and not _is_lab_target(self.lab, str(creds["host"])):
            raise LabGone(f"{creds['host']}: no longer routed through the lab's link; agent stops")
        try:
            states = vm_power_states(self._session())
        except Exception as e:  # noqa: BLE001 - any failure: log, reconnect on the next tick
            log.warning("vSphere poll failed: %s", e)
            self.si = None
            return
        for host in self.lab.topology.by_role("balancer-vm"):
            if host.vm_name:
                self._align(host, states.get(host.vm_name))

    def _align(self, host: LabHost, power: str | None) -> None:
        running = instance.is_running(self.lab, host)
        if power == "poweredOn" and not running:
            log.info("%s: %s powered on, booting", host.name, host.vm_name)
            settings = None if instance.paths(self.lab, host).rootfs.exists() else self._first_boot(host)
            try:
                instance.boot(self.lab, host, self.mode, settings=settings)
            except LabError as e:
                log.error("%s: boot failed: %s", host.name, e)
                return
            running = True
        elif power != "poweredOn" and running:
            log.info("%s: %s is %s, stopping", host.name, host.vm_name, power or "gone")
            instance.stop(self.lab, host, self.mode)
            self.reported.pop(host.name, None)
            running = False
            if power is not None:
                try:
                    report_stopped(self._session(), host.vm_name)
                except Exception as e:  # noqa: BLE001 - cosmetic; the power state is what counts
                    log.warning("%s: reporting tools stopped failed: %s", host.name, e)
        if power is None and instance.paths(self.lab, host).rootfs.exists():
            log.info("%s: %s left the inventory, deleting its disk", host.name, host.vm_name)
            instance.wipe(self.lab, host, self.mode)
        if running:
            self._report(host)

    def _first_boot(self, host: LabHost) -> GuestSettings:
        """The settings a fresh VM applies: the topology's, overridden by the VM's vApp properties.

        The simulator keeps imported vApp properties as extra config, except `ip0`, which it turns
        into the reported guest address at once; before the first boot that is still the import's."""
        base = first_boot_settings(self.lab, host)
        try:
            vm = find_vm(self._session(), str(host.vm_name))
            props = {o.key: str(o.value) for o in (vm.config.extraConfig if vm else [])}
            if vm is not None and vm.guest.ipAddress and host.name not in self.reported:
                props["ip0"] = str(vm.guest.ipAddress)
        except Exception as e:  # noqa: BLE001 - fall back to the topology's settings
            log.warning("%s: reading the vApp properties failed: %s", host.name, e)
            return base
        settings, warnings = apply_vapp(base, host, props)
        for w in warnings:
            log.warning("%s: %s", host.name, w)
        return settings

    def _report(self, host: LabHost) -> None:
        address = instance.current_address(host)
        if not address:
            return
        guest = (address, read_hostname(self.lab, host))
        if self.reported.get(host.name) == guest:
            return
        try:
            report_guest(self._session(), str(host.vm_name), *guest)
        except Exception as e:  # noqa: BLE001 - retried on the next tick
            log.warning("%s: reporting the guest address failed: %s", host.name, e)
            self.si = None
            return
        self.lab.set_credentials(f"ssh-{host.name}", ssh_credentials(self.lab, host, address))
        self.reported[host.name] = guest
        log.info("%s: reported %s (%s) for %s", host.name, guest[0], guest[1], host.vm_name)

    def run(self, interval: float, max_ticks: int | None = None) -> None:
        ticks = 0
        while max_ticks is None or ticks < max_ticks:
            started = time.monotonic()
            self.tick()
            ticks += 1
            time.sleep(max(0.0, interval - (time.monotonic() - started)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab.vm.agent", description=__doc__.splitlines()[0])
    parser.add_argument("--topology", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--network", choices=["lab", "isolated"], default="lab")
    parser.add_argument("--endpoint", default="",
                        help="credentials endpoint of the vSphere host (default: the first)")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        lab = Lab(load_topology(args.topology), state_dir=args.state, cache_dir=args.cache)
        Agent(lab, args.network, args.endpoint).run(args.interval)
    except LabGone as e:
        print(f"lab.vm.agent: {e}", file=sys.stderr)
        return 0
    except LabError as e:
        print(f"lab.vm.agent: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
