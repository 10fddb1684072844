"""The scratch lab for the balancer VM tests: its own prefix (eb<slot>-) and addresses (10.79.<slot>.x), the lab's
network, three Exchange stand-ins, the vSphere simulator and the VM agent, so the toolkit imports, reaches and
configures a real Debian VM beside (never inside) the shared lab. Torn down at the end of the module."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from lab.context import Lab
from lab.vsphere.build import GOVMOMI

#: a prefix and subnet of this test process's own (10.79.<slot>.x, namespaces eb<slot>-*), so two runs of
#: these tests at once (a developer and CI) never share or tear down each other's namespaces and routes
SLOT = os.getpid() % 90 + 10
PREFIX = f"eb{SLOT}-"
NET = f"10.79.{SLOT}"


def scratch_toml() -> str:
    lines = ["[lab]", f'prefix = "{PREFIX}"', 'domain = "corp.example"', "prefix_len = 8",
             f'admin_address = "{NET}.100"']
    for name, role, last in [("asa1", "asa", 1), ("esxi1", "vsphere", 5), ("dc1", "dns-primary", 10),
                             ("ex13-1", "exchange", 23), ("ex13-2", "exchange", 24), ("ex13-3", "exchange", 25)]:
        lines += [f"[hosts.{name}]", f'address = "{NET}.{last}"', f'role = "{role}"']
        if role == "vsphere":
            lines.append('model = "esx"')
        if role == "exchange":
            lines.append(f'fqdn = "{name.upper()}.corp.example"')
    lines += ["[hosts.lb1]", 'role = "balancer-vm"', f'address = "{NET}.200"', f'target_address = "{NET}.27"',
              f'vips = ["{NET}.28"]', f'vm_name = "{PREFIX}lb1"',
              "[hosts.lb2]", 'role = "balancer-vm"', f'address = "{NET}.201"', f'target_address = "{NET}.29"',
              f'vips = ["{NET}.28"]', f'vm_name = "{PREFIX}lb2"',
              "[seed]", f'cas_array_address = "{NET}.23"']
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BalancerLab:
    lab: Lab
    components: tuple[object, ...]
    folder: Path


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, the balancer VM)"
    if shutil.which("mmdebstrap") is None:
        return "needs mmdebstrap for the VM image (lab/setup.sh)"
    if not GOVMOMI.is_dir() or shutil.which("go") is None:
        return "needs golang-go and golang-github-vmware-govmomi-dev for the vSphere simulator (lab/setup.sh)"
    return None
