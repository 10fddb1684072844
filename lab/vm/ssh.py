"""SSH trust for the balancer VMs: the lab's client key, each VM's host key, and the known_hosts
file that pins those host keys to the VM's names and addresses, so every connection is verified."""

from __future__ import annotations

from pathlib import Path

from lab.context import Lab, run
from lab.topology import LabHost


def client_key(lab: Lab) -> Path:
    """The lab's ed25519 client key (private; `.pub` beside it), created once."""
    key = lab.folder("ssh") / "id_ed25519"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "exha-lab", "-f", str(key)])
    return key


def known_hosts_file(lab: Lab) -> Path:
    return lab.folder("ssh") / "known_hosts"


def host_key(lab: Lab, host: LabHost) -> Path:
    """The VM's own ed25519 host key, created once per host and kept across re-imports."""
    key = lab.folder("vm", host.name) / "ssh_host_ed25519_key"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host.name}", "-f", str(key)])
    return key


def host_patterns(host: LabHost) -> list[str]:
    """Names and addresses the VM answers SSH on (VIPs excluded: both balancers may hold them)."""
    names = [host.address, host.target_address, host.name, host.fqdn, host.fqdn.lower(), host.vm_name]
    return list(dict.fromkeys(n for n in names if n))


def write_known_hosts(lab: Lab, hosts: list[LabHost]) -> Path:
    """Rewrite known_hosts with one line per VM whose host key exists."""
    lines = []
    for host in hosts:
        pub = lab.folder("vm", host.name) / "ssh_host_ed25519_key.pub"
        if pub.exists():
            keytype, blob = pub.read_text().split()[:2]
            lines.append(f"{','.join(host_patterns(host))} {keytype} {blob}\n")
    path = known_hosts_file(lab)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(lines))
    tmp.replace(path)
    return path


def ssh_argv(lab: Lab, address: str, *command: str, connect_timeout: int = 5) -> list[str]:
    """An `ssh root@address command` argv that verifies the host key against the lab's known_hosts."""
    return ["ssh", "-i", str(client_key(lab)), "-o", f"UserKnownHostsFile={known_hosts_file(lab)}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={connect_timeout}", "-o", "LogLevel=ERROR", f"root@{address}", *command]
