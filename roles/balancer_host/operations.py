"""Operations that make a Debian VM the balancer host: its name, interface address and gateway, resolvers and
VIPs, each persistent (the files Debian's ifupdown and resolver read at boot) and live (`ip`, `hostname`).

Moving the address the run is connected through never strands the run: the new address comes up first, the
run reconnects to it, and the old one is removed last (over the new connection).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from pyinfra import host, logger
from pyinfra.api.exceptions import ConnectError
from pyinfra.api import FunctionCommand, operation

from roles.api import show_diff
from roles.balancer_host.facts import Addresses, DefaultGateway, FileText, RunningHostname
from roles.balancer_host.render import render, same_text, text_lines, write_file
from roles.winrm.inputs import InputError

INTERFACES = "/etc/network/interfaces"
VIPS_FILE = "/etc/network/interfaces.d/exha-vips"
HOSTS = "/etc/hosts"
HOSTNAME = "/etc/hostname"
RESOLV = "/etc/resolv.conf"


def check_ipv4(value: Any, field: str) -> str:
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        raise InputError(f"expected an IPv4 address, got {value!r}", field=field) from None


def check_label(value: Any, field: str) -> str:
    text = str(value or "")
    if not text or len(text) > 63 or not all(c.isalnum() or c == "-" for c in text) or text.startswith("-"):
        raise InputError(f"expected a host name label (letters, digits, '-'), got {value!r}", field=field)
    return text


def check_interface(address: str, prefix_len: Any, gateway: Any) -> tuple[int, str | None]:
    """Validate a prefix length and a gateway inside address/prefix_len; returns both."""
    if isinstance(prefix_len, bool) or not isinstance(prefix_len, int) or not 1 <= prefix_len <= 31:
        raise InputError(f"expected a prefix length 1-31, got {prefix_len!r}", field="prefix_len")
    gw = check_ipv4(gateway, "gateway") if gateway else None
    if gw and ipaddress.IPv4Address(gw) not in ipaddress.IPv4Network(f"{address}/{prefix_len}", strict=False):
        raise InputError(f"{gw} is not inside {address}/{prefix_len}", field="gateway")
    return prefix_len, gw


def _interface(value: Any) -> str:
    text = str(value or "")
    if not text or len(text) > 15 or not all(c.isalnum() or c in "-_." for c in text):
        raise InputError(f"expected an interface name such as eth0, got {value!r}", field="interface")
    return text


@operation()
def hostname(hostname: str, domain: str = "", address: str | None = None) -> Iterator[Any]:
    """
    Set the host name: /etc/hostname, the /etc/hosts line for the FQDN, and the running name.

    + hostname: the short host name (e.g. lb1)
    + domain: DNS domain for the FQDN (e.g. corp.example)
    + address: the host's own address for /etc/hosts (default 127.0.1.1, as Debian does)

    Example:

    .. code:: python

        balancer_host.hostname(hostname="lb1", domain="corp.example", address="10.0.0.27")
    """
    short = check_label(hostname, "hostname")
    fqdn = f"{short}.{domain}" if domain else short
    addr = check_ipv4(address, "address") if address else None
    want_hosts = render("hosts.j2", hostname=short, fqdn=fqdn, address=addr)
    have_name = host.get_fact(FileText, path=HOSTNAME)
    have_hosts = host.get_fact(FileText, path=HOSTS)
    running = host.get_fact(RunningHostname)
    commands: list[str] = []
    if not same_text(have_name, short):
        show_diff(host, HOSTNAME, text_lines(have_name), [short])
        commands.append(write_file(HOSTNAME, short + "\n"))
    if not same_text(have_hosts, want_hosts):
        show_diff(host, HOSTS, text_lines(have_hosts), text_lines(want_hosts))
        commands.append(write_file(HOSTS, want_hosts))
    if running != short:
        show_diff(host, "running host name", [str(running)], [short])
        commands.append(f"hostname {short}")
    if not commands:
        host.noop(f"host name already {fqdn}")
        return
    yield from commands


@operation()
def resolvers(nameservers: list[str], search: list[str] | None = None) -> Iterator[Any]:
    """
    Set the DNS resolvers in /etc/resolv.conf.

    + nameservers: resolver addresses, in order (at most 3, as glibc reads)
    + search: search domains

    Example:

    .. code:: python

        balancer_host.resolvers(nameservers=["10.0.0.10", "10.0.0.11"], search=["corp.example"])
    """
    if not nameservers or len(nameservers) > 3:
        raise InputError(f"expected 1-3 resolver addresses, got {nameservers!r}", field="nameservers")
    servers = [check_ipv4(s, f"nameservers[{i}]") for i, s in enumerate(nameservers)]
    want = render("resolv.conf.j2", nameservers=servers, search=list(search or []))
    have = host.get_fact(FileText, path=RESOLV)
    if same_text(have, want):
        host.noop(f"resolvers already {', '.join(servers)}")
        return
    show_diff(host, RESOLV, text_lines(have), text_lines(want))
    yield write_file(RESOLV, want)


def _reconnect_if_on(state: Any, host: Any, old: list[str], new: str) -> bool:
    """Executed between adding the new address and removing the old ones: if the run is connected through
    an address about to go, reconnect it to the new one (failure leaves the old address in place)."""
    connector = host.connector
    current = getattr(connector, "address", None)
    if current not in old or not hasattr(connector, "move_to"):
        return True
    host.log(f"reconnecting from {current} to {new}")
    try:
        connector.move_to(new)
    except ConnectError as e:  # the old address stays; the operation fails here, before removing it
        host.log(str(e), logger.error)
        return False
    return True


@operation()
def interface(address: str, prefix_len: int, gateway: str | None = None, interface: str = "eth0",
              hostname: str = "") -> Iterator[Any]:
    """
    Set the interface's address, mask and default gateway: /etc/network/interfaces for ifupdown at boot, and
    live with `ip`. A changed address is added before the old one is removed, and the run reconnects to it.

    + address: the IPv4 address (e.g. 10.0.0.27)
    + prefix_len: its prefix length (8 for 255.0.0.0)
    + gateway: the default gateway
    + interface: the interface (eth0)
    + hostname: named in the file's header comment

    Example:

    .. code:: python

        balancer_host.interface(address="10.0.0.27", prefix_len=8, gateway="10.0.0.1")
    """
    addr = check_ipv4(address, "address")
    prefix_len, gw = check_interface(addr, prefix_len, gateway)
    ifname = _interface(interface)
    want_file = render("interfaces.j2", interface=ifname, address=addr, prefix_len=prefix_len, gateway=gw,
                       hostname=hostname or "balancer")
    have_file = host.get_fact(FileText, path=INTERFACES)
    current = host.get_fact(Addresses, interface=ifname)
    have_gw = host.get_fact(DefaultGateway)
    # /32s are the VIPs (balancer_host.vips owns them); every other address is this operation's
    others = [a for a in current if a["prefix_len"] != 32 and (a["address"], a["prefix_len"]) != (addr, prefix_len)]
    present = any((a["address"], a["prefix_len"]) == (addr, prefix_len) for a in current)
    commands: list[Any] = []
    if not same_text(have_file, want_file):
        show_diff(host, INTERFACES, text_lines(have_file), text_lines(want_file))
        commands.append(write_file(INTERFACES, want_file))
    if not present or others:
        show_diff(host, f"{ifname} addresses", [f"{a['address']}/{a['prefix_len']}" for a in current
                                                 if a["prefix_len"] != 32], [f"{addr}/{prefix_len}"])
    if not present:
        commands.append(f"sysctl -q -w net.ipv4.conf.{ifname}.promote_secondaries=1"
                        f" && ip addr add {addr}/{prefix_len} dev {ifname}")
    if gw and have_gw != gw:
        show_diff(host, "default gateway", [str(have_gw or "(none)")], [gw])
        commands.append(f"ip route replace default via {gw} dev {ifname}")
    if others:
        old = [a["address"] for a in others]
        commands.append(FunctionCommand(_reconnect_if_on, (old, addr), {}))
        commands.append(" && ".join([f"sysctl -q -w net.ipv4.conf.{ifname}.promote_secondaries=1"]
                                    + [f"ip addr del {a['address']}/{a['prefix_len']} dev {ifname}" for a in others]))
        if gw:  # a route through a removed address's subnet may have gone with it
            commands.append(f"ip route replace default via {gw} dev {ifname}")
    if not commands:
        host.noop(f"{ifname} already {addr}/{prefix_len}" + (f" via {gw}" if gw else ""))
        return
    yield from commands


@operation()
def vips(addresses: list[str], interface: str = "eth0", vrrp: list[str] | None = None) -> Iterator[Any]:
    """
    Hold the VIP addresses on the interface (as /32): a file in /etc/network/interfaces.d/ for boot, and live.
    /32 addresses not listed are removed. An empty list removes every VIP.

    + addresses: the VIPs (e.g. ["10.0.0.28"])
    + interface: the interface (eth0)
    + vrrp: VIPs that keepalived moves between the pair: never written for boot, never added or removed here

    Example:

    .. code:: python

        balancer_host.vips(addresses=["10.0.0.28"])
    """
    ifname = _interface(interface)
    wanted = list(dict.fromkeys(check_ipv4(a, f"addresses[{i}]") for i, a in enumerate(addresses or [])))
    want_file = render("vips.j2", interface=ifname, vips=wanted)
    have_file = host.get_fact(FileText, path=VIPS_FILE)
    floating = [check_ipv4(a, f"vrrp[{i}]") for i, a in enumerate(vrrp or [])]
    current = [a["address"] for a in host.get_fact(Addresses, interface=ifname)
               if a["prefix_len"] == 32 and a["address"] not in floating]
    commands: list[str] = []
    if not same_text(have_file, want_file):
        show_diff(host, VIPS_FILE, text_lines(have_file), text_lines(want_file))
        commands.append(f"mkdir -p /etc/network/interfaces.d && {write_file(VIPS_FILE, want_file)}")
    add = [a for a in wanted if a not in current]
    drop = [a for a in current if a not in wanted]
    if add or drop:
        show_diff(host, f"VIPs on {ifname}", current, wanted)
    # arping is not on the VM; the kernel's own ARP answers once the address is up
    commands += [f"ip addr add {a}/32 dev {ifname}" for a in add]
    commands += [f"ip addr del {a}/32 dev {ifname}" for a in drop]
    if not commands:
        host.noop(f"VIPs on {ifname} already {', '.join(wanted) or 'none'}")
        return
    yield from commands
