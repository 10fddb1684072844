"""How a balancer VM's namespace joins a network: the lab switch (`lab.network`), or an isolated
peer namespace that stands in for the admin workstation (for checks without the rest of the lab).

Both plug `eth0` into the VM's namespace without an address: the VM configures its own address
from its /etc/network/interfaces, as a Debian VM does.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from lab.context import Lab, run
from lab.network import _delete_namespace, _ensure_namespace, attach_namespace, detach_namespace, link_exists

NetworkMode = Literal["lab", "isolated"]
PEER_INTERFACE = "uplink"


def peer_namespace(namespace: str) -> str:
    """The isolated mode's peer namespace for a VM namespace."""
    return f"{namespace}-p"


def vm_mac(namespace: str) -> str:
    """A stable MAC for the VM's NIC, in VMware's range for static MACs (00:50:56:00-3f:…), so a
    power cycle does not leave peers with a stale ARP entry (a VMware VM keeps its MAC too)."""
    digest = hashlib.sha1(namespace.encode()).digest()
    return "00:50:56:" + ":".join(f"{b:02x}" for b in (digest[0] & 0x3F, digest[1], digest[2]))


def _set_mac(namespace: str) -> None:
    mac = vm_mac(namespace)
    current = run(["ip", "-n", namespace, "-j", "link", "show", "dev", "eth0"]).stdout
    if mac not in current:
        run(["ip", "-n", namespace, "link", "set", "eth0", "down"])
        run(["ip", "-n", namespace, "link", "set", "eth0", "address", mac])
    run(["ip", "-n", namespace, "link", "set", "eth0", "up"])


def attach(lab: Lab, mode: NetworkMode, namespace: str) -> None:
    """Create `namespace` with an unaddressed, up `eth0` (stable MAC) on the chosen network."""
    if mode == "lab":
        attach_namespace(lab, namespace, [], lab.topology.prefix_len)
        _set_mac(namespace)
        return
    peer = peer_namespace(namespace)
    _ensure_namespace(namespace)
    _ensure_namespace(peer)
    if not link_exists("eth0", namespace):
        if link_exists(PEER_INTERFACE, peer):
            run(["ip", "-n", peer, "link", "del", PEER_INTERFACE])
        run(["ip", "-n", peer, "link", "add", PEER_INTERFACE, "type", "veth", "peer", "name", "eth0",
             "netns", namespace])
    admin = f"{lab.topology.admin_address}/{lab.topology.prefix_len}"
    if admin.split("/")[0] not in run(["ip", "-n", peer, "-4", "addr", "show", "dev", PEER_INTERFACE]).stdout:
        run(["ip", "-n", peer, "addr", "add", admin, "dev", PEER_INTERFACE])
    run(["ip", "-n", peer, "link", "set", PEER_INTERFACE, "up"])
    _set_mac(namespace)


def detach(lab: Lab, mode: NetworkMode, namespace: str) -> None:
    """Delete the VM's namespace (and the isolated peer), killing anything left in them."""
    if mode == "lab":
        detach_namespace(lab, namespace)
        return
    _delete_namespace(namespace)
    _delete_namespace(peer_namespace(namespace))


def client_namespace(lab: Lab, mode: NetworkMode, namespace: str) -> str | None:
    """Where an SSH client reaches the VM from: the root namespace (lab) or the isolated peer."""
    return None if mode == "lab" else peer_namespace(namespace)
