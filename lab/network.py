"""The lab's wiring: one namespace per host joined to a bridge in the switch namespace, and the
admin veth in the machine's own namespace with one /32 host route per lab address.

The machine's own namespace is touched by exactly one veth (`<prefix>admin`) holding the admin
address as a /32, plus one /32 route per lab address through it. Before anything is added there,
`check_clashes` compares the plan with the machine's addresses and routes and refuses on overlap.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.context import Lab, ServiceStatus, run
from lab.errors import ClashError, LabError
from lab.topology import Topology

NETNS_DIR = Path("/run/netns")
BRIDGE = "br0"
SWITCH_ADMIN_PORT = "admin"
HOST_INTERFACE = "eth0"
IFNAME_MAX = 15
PROBE_PORT = 9  # discard: nothing listens there, so a reset proves the path


@dataclass(frozen=True)
class Clash:
    """One overlap between the lab's plan and the machine's own network."""

    address: str
    field: str
    what: str

    def message(self, topology_path: Path) -> str:
        return (
            f"{self.address} ({self.field}) clashes with {self.what}; "
            f"pick a free address in {topology_path} ({self.field}) and run again"
        )


# -- small `ip` helpers -----------------------------------------------------------------------


def _ip_json(*args: str, namespace: str | None = None) -> list[dict[str, Any]]:
    ns = ["-n", namespace] if namespace else []
    out = run(["ip", "-j", *ns, *args]).stdout.strip()
    return json.loads(out) if out else []


def namespace_exists(namespace: str) -> bool:
    return (NETNS_DIR / namespace).exists()


def lab_namespaces(prefix: str) -> list[str]:
    """Every namespace whose name starts with the lab's prefix."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))
    except FileNotFoundError:
        return []


def link_exists(name: str, namespace: str | None = None) -> bool:
    ns = ["-n", namespace] if namespace else []
    return run(["ip", *ns, "link", "show", "dev", name], check=False).returncode == 0


def _sysctl(namespace: str | None, key: str, value: str) -> None:
    path = f"/proc/sys/{key.replace('.', '/')}"
    if namespace:
        run(["ip", "netns", "exec", namespace, "sh", "-c", f"echo {value} > {path}"], check=False)
    else:
        try:
            Path(path).write_text(value)
        except OSError:
            pass


def _ensure_namespace(namespace: str) -> None:
    if not namespace_exists(namespace):
        run(["ip", "netns", "add", namespace])
    run(["ip", "-n", namespace, "link", "set", "lo", "up"])
    # The lab is IPv4 only: no router solicitations or DAD chatter on its links.
    _sysctl(namespace, "net.ipv6.conf.all.disable_ipv6", "1")
    _sysctl(namespace, "net.ipv6.conf.default.disable_ipv6", "1")


def _switch_port(namespace: str) -> str:
    """The bridge-side veth name for a host namespace (fits the 15-character limit)."""
    if len(namespace) <= IFNAME_MAX:
        return namespace
    return "p" + hashlib.sha1(namespace.encode()).hexdigest()[: IFNAME_MAX - 1]


def _kill_namespace_processes(namespace: str) -> None:
    """SIGKILL whatever still runs inside a lab namespace (a daemon its owner did not stop)."""
    cp = run(["ip", "netns", "pids", namespace], check=False)
    pids = [int(p) for p in cp.stdout.split() if p.isdigit()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if Path(f"/proc/{p}").exists()]
        time.sleep(0.05)


def _delete_namespace(namespace: str) -> None:
    if namespace_exists(namespace):
        _kill_namespace_processes(namespace)
        run(["ip", "netns", "del", namespace], check=False)


def reachable(address: str, timeout: float = 1.0) -> bool:
    """True if `address` answers a TCP SYN from the admin address at all (a reset counts): that needs
    ARP and routing to work both ways across the admin link."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((address, PROBE_PORT))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return True


# -- clash check ----------------------------------------------------------------------------


def _address_fields(topology: Topology) -> dict[str, str]:
    """Lab address -> the topology field that names it (for error messages)."""
    fields: dict[str, str] = {topology.admin_address: "lab.admin_address"}
    for h in topology.hosts.values():
        fields.setdefault(h.address, f"hosts.{h.name}.address")
        if h.target_address:
            fields.setdefault(h.target_address, f"hosts.{h.name}.target_address")
        for i, v in enumerate(h.vips):
            fields.setdefault(v, f"hosts.{h.name}.vips[{i}]")
    return fields


def find_clashes(topology: Topology) -> list[Clash]:
    """Compare the plan with the machine's own addresses and routes (ignoring the lab's own)."""
    fields = _address_fields(topology)
    ips = {a: ipaddress.IPv4Address(a) for a in fields}
    admin_if = topology.admin_interface
    clashes: list[Clash] = []
    for link in _ip_json("-4", "addr", "show"):
        if link.get("ifname") == admin_if:
            continue
        for info in link.get("addr_info", []):
            local = info.get("local")
            if local in fields:
                clashes.append(
                    Clash(local, fields[local], f"the machine's address {local} on {link.get('ifname')}")
                )
    for route in _ip_json("-4", "route", "show", "table", "all"):
        if route.get("dev") == admin_if or route.get("table") == "local":
            continue
        dst = route.get("dst", "")
        gateway = route.get("gateway")
        if dst == "default":
            if gateway in fields:
                clashes.append(
                    Clash(
                        gateway,
                        fields[gateway],
                        f"the machine's default gateway {gateway} on {route.get('dev')}",
                    )
                )
            continue
        try:
            net = ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        for addr, ip in ips.items():
            if ip in net:
                where = f" via {gateway}" if gateway else ""
                table = f" (table {route['table']})" if route.get("table") else ""
                clashes.append(
                    Clash(
                        addr, fields[addr], f"the machine's route {net}{where} dev {route.get('dev')}{table}"
                    )
                )
    return clashes


def check_clashes(topology: Topology) -> None:
    """Raise ClashError naming the first clash and the topology file to edit; touch nothing."""
    clashes = find_clashes(topology)
    if clashes:
        more = f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""
        raise ClashError(clashes[0].message(topology.path) + more)


# -- attaching namespaces to the switch -------------------------------------------------------


def _attached_record(lab: Lab) -> Path:
    return lab.folder("network") / "attached.json"


def _record_attached(lab: Lab, namespace: str, present: bool) -> None:
    path = _attached_record(lab)
    with open(path.with_suffix(".lock"), "w") as lock:  # VMs may attach concurrently
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            names = set(json.loads(path.read_text()))
        except (FileNotFoundError, ValueError):
            names = set()
        (names.add if present else names.discard)(namespace)
        path.write_text(json.dumps(sorted(names)) + "\n")


def attached_namespaces(lab: Lab) -> list[str]:
    try:
        return sorted(json.loads(_attached_record(lab).read_text()))
    except (FileNotFoundError, ValueError):
        return []


def attach_namespace(lab: Lab, namespace: str, addresses: list[str], prefix_len: int | None = None) -> None:
    """Create `namespace` if needed and plug it into the lab switch: `eth0` inside with `addresses`
    (the first is primary) at `prefix_len` (default: the topology's), lo up. Idempotent; addresses
    a process added itself inside the namespace are left alone."""
    if not namespace_exists(lab.topology.switch_namespace):
        raise LabError(f"{namespace}: the lab switch is not up; run `exha lab up` first")
    plen = prefix_len if prefix_len is not None else lab.topology.prefix_len
    _ensure_namespace(namespace)
    _record_attached(lab, namespace, True)
    sw = lab.topology.switch_namespace
    port = _switch_port(namespace)
    if not link_exists(HOST_INTERFACE, namespace):
        if link_exists(port, sw):  # a half-made pair from an interrupted run
            run(["ip", "-n", sw, "link", "del", port])
        veth = ["ip", "-n", sw, "link", "add", port, "type", "veth"]
        run([*veth, "peer", "name", HOST_INTERFACE, "netns", namespace])
    run(["ip", "-n", sw, "link", "set", port, "master", BRIDGE])
    run(["ip", "-n", sw, "link", "set", port, "up"])
    have = {
        i.get("local")
        for link in _ip_json("-4", "addr", "show", "dev", HOST_INTERFACE, namespace=namespace)
        for i in link.get("addr_info", [])
    }
    for addr in addresses:
        if addr not in have:
            run(["ip", "-n", namespace, "addr", "add", f"{addr}/{plen}", "dev", HOST_INTERFACE])
    run(["ip", "-n", namespace, "link", "set", HOST_INTERFACE, "up"])


def detach_namespace(lab: Lab, namespace: str) -> None:
    """Unplug `namespace` from the switch and delete it (killing anything still running in it)."""
    sw = lab.topology.switch_namespace
    port = _switch_port(namespace)
    if namespace_exists(sw) and link_exists(port, sw):
        run(["ip", "-n", sw, "link", "del", port], check=False)
    _delete_namespace(namespace)
    _record_attached(lab, namespace, False)


# -- the component ----------------------------------------------------------------------------


def _admin_routes(topology: Topology) -> set[str]:
    routes = (
        _ip_json("-4", "route", "show", "dev", topology.admin_interface)
        if link_exists(topology.admin_interface)
        else []
    )
    return {r["dst"].removesuffix("/32") for r in routes if "dst" in r}


def _admin_addresses(topology: Topology) -> set[str]:
    if not link_exists(topology.admin_interface):
        return set()
    return {
        i.get("local")
        for link in _ip_json("-4", "addr", "show", "dev", topology.admin_interface)
        for i in link.get("addr_info", [])
    }


def routed(lab: Lab, address: str) -> bool:
    """True if traffic from the machine to `address` goes through the lab's admin link (so a probe
    can never leave the machine by its default route)."""
    t = lab.topology
    return link_exists(t.admin_interface) and address in _admin_routes(t)


def network_up(lab: Lab) -> bool:
    """True if the admin link exists and routes every lab address."""
    t = lab.topology
    return link_exists(t.admin_interface) and set(t.lab_addresses()) <= _admin_routes(t)


def require_routed(lab: Lab, address: str) -> None:
    """Raise LabError unless `address` is routed through the lab's admin link."""
    if not routed(lab, address):
        raise LabError(
            f"{address}: not routed through {lab.topology.admin_interface}; "
            "the lab network is not up (run `exha lab up`)"
        )


def host_namespaces(topology: Topology) -> dict[str, list[str]]:
    """Namespaces the network component owns -> their addresses. Balancer VMs attach their own."""
    return {h.namespace: [h.address] for h in topology.hosts.values() if h.role != "balancer-vm"}


def leftovers(lab: Lab) -> list[str]:
    """What the network component made that still exists (empty after a clean `lab down`)."""
    t = lab.topology
    left: list[str] = []
    owned = {
        t.switch_namespace,
        *host_namespaces(t),
        *attached_namespaces(lab),
        *(h.namespace for h in t.hosts.values()),
    }
    left += [f"namespace {n}" for n in sorted(owned) if namespace_exists(n)]
    if link_exists(t.admin_interface):
        left.append(f"link {t.admin_interface}")
    routes = {r.get("dst", "").removesuffix("/32"): r.get("dev") for r in _ip_json("-4", "route", "show")}
    left += [f"route {a}/32 dev {routes[a]}" for a in t.lab_addresses() if routes.get(a) == t.admin_interface]
    return left


class NetworkComponent:
    """Namespaces, bridge, veths, the admin link and its host routes."""

    name = "network"

    def build(self, lab: Lab) -> None:
        run(["ip", "-V"])

    def start(self, lab: Lab) -> None:
        t = lab.topology
        check_clashes(t)
        sw = t.switch_namespace
        _ensure_namespace(sw)
        if not link_exists(BRIDGE, sw):
            run(["ip", "-n", sw, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0"])
        run(["ip", "-n", sw, "link", "set", BRIDGE, "up"])
        self._start_admin(lab)
        for namespace, addresses in host_namespaces(t).items():
            attach_namespace(lab, namespace, addresses, t.prefix_len)

    def _start_admin(self, lab: Lab) -> None:
        t = lab.topology
        sw, admin = t.switch_namespace, t.admin_interface
        if not link_exists(admin):
            if link_exists(SWITCH_ADMIN_PORT, sw):
                run(["ip", "-n", sw, "link", "del", SWITCH_ADMIN_PORT])
            run(["ip", "link", "add", admin, "type", "veth", "peer", "name", SWITCH_ADMIN_PORT, "netns", sw])
        # Only this link's own settings change in the machine's namespace: no IPv6, no forwarding
        # of lab traffic, ARP answers only for the admin address held on this link.
        for key, value in (("disable_ipv6", "1"),):
            _sysctl(None, f"net.ipv6.conf.{admin}.{key}", value)
        for key, value in (
            ("forwarding", "0"),
            ("arp_ignore", "1"),
            ("arp_announce", "2"),
            ("rp_filter", "0"),
        ):
            _sysctl(None, f"net.ipv4.conf.{admin}.{key}", value)
        run(["ip", "-n", sw, "link", "set", SWITCH_ADMIN_PORT, "master", BRIDGE])
        run(["ip", "-n", sw, "link", "set", SWITCH_ADMIN_PORT, "up"])
        if t.admin_address not in _admin_addresses(t):
            run(["ip", "addr", "add", f"{t.admin_address}/32", "dev", admin])
        run(["ip", "link", "set", admin, "up"])
        have = _admin_routes(t)
        for addr in t.lab_addresses():
            if addr not in have:
                run(["ip", "route", "add", f"{addr}/32", "dev", admin, "src", t.admin_address])

    def status(self, lab: Lab) -> list[ServiceStatus]:
        t = lab.topology
        out: list[ServiceStatus] = []
        up = link_exists(t.admin_interface) and t.admin_address in _admin_addresses(t)
        missing = [a for a in t.lab_addresses() if a not in _admin_routes(t)] if up else []
        detail = (
            f"{len(t.lab_addresses())} host routes"
            if up and not missing
            else (f"missing routes: {', '.join(missing)}" if up else "admin link absent")
        )
        out.append(
            ServiceStatus(
                "admin", "admin-link", t.admin_address, None, "up" if up and not missing else "down", detail
            )
        )
        sw_up = namespace_exists(t.switch_namespace) and link_exists(BRIDGE, t.switch_namespace)
        out.append(
            ServiceStatus(
                "switch", "bridge", "", None, "up" if sw_up else "down", f"{BRIDGE} in {t.switch_namespace}"
            )
        )
        for namespace, addresses in host_namespaces(t).items():
            state, detail = "down", "namespace absent"
            if namespace_exists(namespace):
                ok = reachable(addresses[0])
                state = "up" if ok else "down"
                detail = "answers the admin host" if ok else "no answer from the admin host (ARP/route)"
            host = namespace.removeprefix(t.prefix)
            out.append(ServiceStatus(host, "link", addresses[0], None, state, detail))
        return out

    def stop(self, lab: Lab) -> None:
        t = lab.topology
        for namespace in [*attached_namespaces(lab), *host_namespaces(t)]:
            detach_namespace(lab, namespace)
        if link_exists(t.admin_interface):  # its address and host routes go with it
            run(["ip", "link", "del", t.admin_interface])
        _delete_namespace(t.switch_namespace)
