"""One balancer VM instance: its own root filesystem under state/vm/<host>, configured as a fresh
Debian VM (host name, first-boot network, SSH trust), booted with systemd as PID 1 in its own
network, PID, mount, UTS, IPC and cgroup namespaces, and stopped by killing that PID 1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from lab.context import Lab, run, tcp_open
from lab.errors import LabError
from lab.topology import LabHost
from lab.vm import netattach
from lab.vm.guestinfo import GuestSettings, first_boot_settings
from lab.vm.netattach import NetworkMode
from lab.vm.rootfs import rootfs_tarball, unpack
from lab.vm.ssh import client_key, host_key, write_known_hosts

BOOT_SCRIPT = Path(__file__).with_name("boot.sh")
MASKED_UNITS = ("console-getty.service", "getty@.service", "serial-getty@.service", "getty.target",
                "systemd-udevd.service", "systemd-udev-trigger.service", "systemd-udev-settle.service",
                "systemd-timesyncd.service", "apt-daily.timer", "apt-daily-upgrade.timer")
SSHD_CONFIG = """# exchange-ha lab: key-only root login with this VM's own host key
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""


@dataclass(frozen=True)
class VmPaths:
    """Where one VM's files live in the state folder."""

    folder: Path

    @property
    def rootfs(self) -> Path:
        return self.folder / "rootfs"


def paths(lab: Lab, host: LabHost) -> VmPaths:
    return VmPaths(lab.folder("vm", host.name))


def daemon_name(host: LabHost) -> str:
    return f"vm-{host.name}"


def _cgroup_root() -> Path:
    """The machine's cgroup v2 mount (pure v2 or the hybrid layout's `unified`)."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[2] == "cgroup2":
            return Path(parts[1])
    raise LabError("no cgroup2 file system is mounted; the balancer VM's systemd needs one")


def cgroup_dir(lab: Lab, host: LabHost) -> Path:
    return _cgroup_root() / f"{lab.topology.prefix}vm-{host.name}"


def interfaces_text(settings: GuestSettings) -> str:
    """The first-boot /etc/network/interfaces: eth0 static on the first-boot address."""
    gw = f"    gateway {settings.gateway}\n" if settings.gateway else ""
    return ("# First-boot network of this lab VM (as DHCP or the vApp properties set it); the toolkit "
            "rewrites it.\nauto lo\niface lo inet loopback\n\n"
            f"auto eth0\niface eth0 inet static\n    address {settings.address}/{settings.prefix_len}\n{gw}")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    if path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def configure(lab: Lab, host: LabHost, root: Path, settings: GuestSettings | None = None) -> None:
    """Make a freshly unpacked root filesystem this host's VM."""
    t = lab.topology
    s = settings or first_boot_settings(lab, host)
    _write(root / "etc/hostname", f"{s.hostname}\n")
    _write(root / "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{s.hostname}.{t.domain} {s.hostname}\n")
    _write(root / "etc/resolv.conf", f"search {t.domain}\n" + "".join(f"nameserver {a}\n" for a in s.dns))
    _write(root / "etc/network/interfaces", interfaces_text(s))
    _write(root / "etc/machine-id", "")
    for old in (root / "etc/ssh").glob("ssh_host_*"):
        old.unlink()
    key = host_key(lab, host)
    shutil.copy2(key, root / "etc/ssh/ssh_host_ed25519_key")
    shutil.copy2(key.with_suffix(".pub"), root / "etc/ssh/ssh_host_ed25519_key.pub")
    (root / "etc/ssh/ssh_host_ed25519_key").chmod(0o600)
    _write(root / "etc/ssh/sshd_config.d/exha-lab.conf", SSHD_CONFIG)
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    _write(ssh_dir / "authorized_keys", client_key(lab).with_suffix(".pub").read_text(), 0o600)
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            link.symlink_to("/dev/null")


def prepare(lab: Lab, host: LabHost, settings: GuestSettings | None = None) -> VmPaths:
    """Give the VM its root filesystem (unpacked and configured once with `settings`, default the
    topology's first-boot settings; kept across reboots)."""
    p = paths(lab, host)
    if not p.rootfs.exists():
        unpack(rootfs_tarball(lab), p.rootfs)
        configure(lab, host, p.rootfs, settings)
    write_known_hosts(lab, lab.topology.by_role("balancer-vm"))
    return p


def systemd_pid(lab: Lab, host: LabHost) -> int | None:
    """The host-side pid of the VM's PID 1 (systemd), if it runs."""
    try:
        cg = cgroup_dir(lab, host)
    except LabError:
        return None
    procs = []
    for f in [cg / "init.scope/cgroup.procs", cg / "cgroup.procs"]:  # systemd moves itself to init.scope
        try:
            procs += f.read_text().split()
        except FileNotFoundError:
            continue
    for pid in procs:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        nspid = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:")), [])
        if len(nspid) > 1 and nspid[-1] == "1":
            return int(pid)
    return None


def is_running(lab: Lab, host: LabHost) -> bool:
    return systemd_pid(lab, host) is not None


def boot(lab: Lab, host: LabHost, mode: NetworkMode = "lab", ssh_timeout: float = 90.0,
         settings: GuestSettings | None = None) -> None:
    """Boot the VM (no-op if it runs) and wait until its sshd answers on its configured address.
    `settings` apply on the first boot only (a fresh disk)."""
    if is_running(lab, host):
        return
    p = prepare(lab, host, settings)
    hostname = (p.rootfs / "etc/hostname").read_text().strip() or host.name
    netattach.attach(lab, mode, host.namespace)
    cg = cgroup_dir(lab, host)
    cg.mkdir(exist_ok=True)
    lab.stop_daemon(daemon_name(host))  # a stale launcher whose systemd is gone
    lab.spawn(daemon_name(host), None, ["sh", str(BOOT_SCRIPT), str(cg), host.namespace, str(p.rootfs),
                                        hostname])
    wait_ssh(lab, host, timeout=ssh_timeout)


def current_address(host: LabHost) -> str | None:
    """The primary IPv4 address on the VM's eth0, as VMware Tools would report it."""
    cp = run(["ip", "-n", host.namespace, "-j", "-4", "addr", "show", "dev", "eth0"], check=False)
    if cp.returncode != 0 or not cp.stdout.strip():
        return None
    for link in json.loads(cp.stdout):
        for info in link.get("addr_info", []):
            if not info.get("secondary"):
                return str(info["local"])
    return None


def wait_ssh(lab: Lab, host: LabHost, timeout: float = 90.0) -> str:
    """Wait until sshd accepts TCP on the VM's current address; returns that address."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(lab, host) and lab.pid(daemon_name(host)) is None:
            raise LabError(f"{host.name}: the VM stopped while booting; "
                           f"see {lab.logs / daemon_name(host)}.log")
        address = current_address(host)
        if address and tcp_open(address, 22, namespace=host.namespace, timeout=0.5):
            return address
        time.sleep(0.5)
    raise LabError(f"{host.name}: sshd did not answer within {timeout:.0f}s; "
                   f"see {lab.logs / (daemon_name(host) + '.log')} and the VM's journal")


def stop(lab: Lab, host: LabHost, mode: NetworkMode = "lab") -> None:
    """Power the VM off hard: SIGKILL its systemd (ends its PID namespace), drop its cgroup and namespace."""
    pid = systemd_pid(lab, host)
    if pid:
        os.kill(pid, signal.SIGKILL)
    cg = cgroup_dir(lab, host)
    if (cg / "cgroup.kill").exists():
        (cg / "cgroup.kill").write_text("1")
    deadline = time.monotonic() + 10
    while cg.exists() and time.monotonic() < deadline:
        try:
            if "populated 0" in (cg / "cgroup.events").read_text():  # no process left in the subtree
                _remove_cgroup(cg)
                break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    if cg.exists():
        raise LabError(f"{host.name}: processes remain in {cg} after SIGKILL; see `cat {cg}/*/cgroup.procs`")
    lab.stop_daemon(daemon_name(host))
    netattach.detach(lab, mode, host.namespace)


def _remove_cgroup(cg: Path) -> None:
    """rmdir a cgroup and the sub-cgroups the VM's systemd made, deepest first."""
    for sub in sorted((d for d in cg.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True):
        sub.rmdir()
    cg.rmdir()


def wipe(lab: Lab, host: LabHost, mode: NetworkMode = "lab") -> None:
    """Stop the VM and delete its root filesystem (the next boot starts from a fresh image)."""
    stop(lab, host, mode)
    root = paths(lab, host).rootfs
    if root.exists():
        shutil.rmtree(root)
