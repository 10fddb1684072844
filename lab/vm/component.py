"""The balancer VMs as a lab component: the root filesystem image, the agent daemon that boots VMs
when vSphere powers them on, and per-VM status over verified SSH."""

from __future__ import annotations

import subprocess

from lab.context import Lab, ServiceStatus
from lab.errors import LabError
from lab.topology import LabHost
from lab.vm import instance
from lab.vm.agent import ssh_credentials
from lab.vm.netattach import NetworkMode, client_namespace
from lab.vm.rootfs import rootfs_tarball
from lab.vm.ssh import client_key, host_key, ssh_argv, write_known_hosts

AGENT = "vm-agent"
SYSTEMD_STATES = ("initializing", "starting", "running", "degraded", "maintenance", "stopping", "offline")


def ssh_run(lab: Lab, host: LabHost, *command: str, mode: NetworkMode = "lab",
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `command` on the VM over SSH (host key verified), from where the network mode reaches it."""
    address = instance.current_address(host) or host.address
    argv = ssh_argv(lab, address, *command)
    ns = client_namespace(lab, mode, host.namespace)
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError(f"{host.name}: ssh root@{address} {' '.join(command)}: "
                       f"no answer in {timeout:.0f}s") from None


class BalancerVMComponent:
    """Builds the VM image and runs the agent; VMs boot when vSphere powers them on.

    + network: "lab" (the VM joins the lab switch) or "isolated" (a private peer namespace)
    + agent: run the agent daemon on start (False: boot VMs directly with `boot`)
    """

    name = "vm"

    def __init__(self, network: NetworkMode = "lab", agent: bool = True) -> None:
        self.network: NetworkMode = network
        self.agent = agent

    def _hosts(self, lab: Lab) -> list[LabHost]:
        return lab.topology.by_role("balancer-vm")

    def build(self, lab: Lab) -> None:
        rootfs_tarball(lab)

    def start(self, lab: Lab) -> None:
        rootfs_tarball(lab)
        client_key(lab)
        for host in self._hosts(lab):
            host_key(lab, host)
            # A VM that is not running will come up on its first-boot address.
            running = instance.current_address(host) if instance.is_running(lab, host) else None
            address = running or host.address
            lab.set_credentials(f"ssh-{host.name}", ssh_credentials(lab, host, address))
        write_known_hosts(lab, self._hosts(lab))
        if self.agent:
            lab.spawn(AGENT, None, lab.python_argv(
                "lab.vm.agent", "--topology", str(lab.topology.path), "--state", str(lab.state_dir),
                "--cache", str(lab.cache_dir), "--network", self.network), cwd=lab.project_root)

    def boot(self, lab: Lab, host_name: str) -> None:
        """Boot one balancer VM directly, without vSphere (for checks and tests)."""
        host = lab.topology.host(host_name)
        if host.role != "balancer-vm":
            raise LabError(f"{host_name}: not a balancer-vm host in {lab.topology.path}")
        instance.boot(lab, host, self.network)

    def status(self, lab: Lab) -> list[ServiceStatus]:
        out = []
        if self.agent:
            pid = lab.pid(AGENT)
            out.append(ServiceStatus("vm-agent", "agent", "", None, "up" if pid else "down",
                                     f"pid {pid}" if pid else f"not running; see {lab.logs / AGENT}.log"))
        for host in self._hosts(lab):
            creds = lab.credentials().get(f"ssh-{host.name}", {})
            if not instance.is_running(lab, host):
                out.append(ServiceStatus(host.name, "ssh", host.address, 22, "absent",
                                         "VM not powered on", creds))
                continue
            cp = ssh_run(lab, host, "systemctl", "is-system-running", mode=self.network, timeout=15)
            state = cp.stdout.strip()
            ok = state in ("running", "degraded")
            detail = f"systemd {state}" if state in SYSTEMD_STATES else \
                f"ssh failed: {(cp.stderr or cp.stdout).strip()[:200]}"
            out.append(ServiceStatus(host.name, "ssh", instance.current_address(host) or host.address, 22,
                                     "up" if ok else "down", detail, creds))
        return out

    def stop(self, lab: Lab) -> None:
        lab.stop_daemon(AGENT)
        for host in self._hosts(lab):
            instance.stop(lab, host, self.network)
