"""The simulated ASA's configuration: network objects with their object NAT, kept in order among the
other running-config lines, rendered the way `show running-config` prints it and saved as startup-config."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

OBJECTS_MARK = "@objects"  # where object definitions print in the full running-config
NAT_MARK = "@nat"  # where the object NAT section prints

ADDRESS_KINDS = ("host", "subnet", "range", "fqdn")


@dataclass
class NetworkObject:
    """One `object network NAME`: its address line, description and object NAT statement."""

    name: str
    kind: str | None = None  # host, subnet, range, fqdn
    value: str = ""  # the text after the kind keyword
    description: str | None = None
    nat: str | None = None  # the text after ` nat `, e.g. "(inside,outside) static 198.51.100.25"

    def definition_lines(self) -> list[str]:
        lines = [f"object network {self.name}"]
        if self.kind:
            lines.append(f" {self.kind} {self.value}")
        if self.description:
            lines.append(f" description {self.description}")
        return lines

    def nat_lines(self) -> list[str]:
        return [f"object network {self.name}", f" nat {self.nat}"] if self.nat else []


@dataclass
class Block:
    """A top-level configuration line and its one-space-indented children."""

    header: str
    children: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [self.header, *self.children]


@dataclass
class AsaConfig:
    """A whole configuration: ordered blocks with two marks where objects and object NAT print."""

    hostname: str
    blocks: list[Block | str]
    objects: dict[str, NetworkObject]

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, hostname: str) -> AsaConfig:
        """Parse configuration text (as `show running-config` prints it); comments (`:`) are dropped."""
        raw: list[Block] = []
        for line in text.splitlines():
            if not line.strip() or line.startswith((":", "Cryptochecksum")):
                continue
            if line.startswith(" ") and raw:
                raw[-1].children.append(line)
            elif not line.startswith(" "):
                raw.append(Block(line.rstrip()))
        objects: dict[str, NetworkObject] = {}
        blocks: list[Block | str] = []
        for b in raw:
            words = b.header.split()
            if len(words) == 3 and words[:2] == ["object", "network"]:
                obj = objects.setdefault(words[2], NetworkObject(words[2]))
                has_nat = False
                for child in b.children:
                    _apply_object_line(obj, child.strip())
                    has_nat = has_nat or child.strip().startswith("nat ")
                mark = (
                    NAT_MARK
                    if has_nat and not any(c.strip().startswith(ADDRESS_KINDS) for c in b.children)
                    else OBJECTS_MARK
                )
                if mark not in blocks:
                    blocks.append(mark)
                continue
            if words[:1] == ["hostname"] and len(words) == 2:
                hostname = words[1]
            blocks.append(b)
        cfg = cls(hostname=hostname, blocks=blocks, objects=objects)
        cfg._ensure_marks()
        cfg._set_hostname_line(hostname)
        return cfg

    def _ensure_marks(self) -> None:
        def first_index(prefixes: tuple[str, ...]) -> int:
            for i, b in enumerate(self.blocks):
                if isinstance(b, Block) and b.header.startswith(prefixes):
                    return i
            return len(self.blocks)

        if OBJECTS_MARK not in self.blocks:
            self.blocks.insert(
                first_index(("access-list", "pager", "logging", "mtu", "route ")), OBJECTS_MARK
            )
        if NAT_MARK not in self.blocks:
            self.blocks.insert(first_index(("route ", "timeout")), NAT_MARK)
        if self.blocks.index(NAT_MARK) < self.blocks.index(OBJECTS_MARK):
            self.blocks.remove(NAT_MARK)
            self.blocks.insert(self.blocks.index(OBJECTS_MARK) + 1, NAT_MARK)

    def _set_hostname_line(self, hostname: str) -> None:
        self.hostname = hostname
        for b in self.blocks:
            if isinstance(b, Block) and b.header.startswith("hostname "):
                b.header = f"hostname {hostname}"
                return
        self.blocks.insert(0, Block(f"hostname {hostname}"))

    # -- rendering ---------------------------------------------------------------------------
    def body_lines(self) -> list[str]:
        """Every configuration line in running-config order (no `:` comments, no checksum)."""
        out: list[str] = []
        for b in self.blocks:
            if b == OBJECTS_MARK:
                for obj in self.objects.values():
                    out += obj.definition_lines()
            elif b == NAT_MARK:
                for obj in self.objects.values():
                    out += obj.nat_lines()
            elif isinstance(b, Block):
                out += b.lines()
        return out

    def checksum(self) -> str:
        """The configuration's MD5 as the ASA prints it: four groups of eight hex digits."""
        h = hashlib.md5("\n".join(self.body_lines()).encode()).hexdigest()
        return " ".join(h[i : i + 8] for i in range(0, 32, 8))

    def render(self) -> str:
        """The full configuration text as `show running-config` prints it (`write memory` saves this)."""
        head = [
            ": Saved",
            ":",
            ": Serial Number: 9AJKLM3N4PQ",
            ": Hardware:   ASAv, 2048 MB RAM, CPU Xeon E5 series 2300 MHz",
            ":",
        ]
        body = self.body_lines()
        tail = [f"Cryptochecksum:{self.checksum().replace(' ', '')}", ": end"]
        return "\n".join(head + body + tail) + "\n"

    def object_definitions(self, name: str | None = None) -> list[str]:
        out: list[str] = []
        for obj in self.objects.values():
            if name is None or obj.name == name:
                out += obj.definition_lines()
        return out

    def nat_section(self) -> list[str]:
        out: list[str] = []
        for obj in self.objects.values():
            out += obj.nat_lines()
        return out

    def pager_lines(self) -> int:
        """The `pager lines N` setting a new session's terminal starts with (24 unless configured)."""
        for b in self.blocks:
            if isinstance(b, Block):
                words = b.header.split()
                if words[:2] == ["pager", "lines"] and len(words) == 3 and words[2].isdigit():
                    return int(words[2])
                if words == ["no", "pager"]:
                    return 0
        return 24

    # -- changing ----------------------------------------------------------------------------
    def object(self, name: str) -> NetworkObject:
        """The object NAME, created empty if it does not exist (as `object network NAME` does)."""
        return self.objects.setdefault(name, NetworkObject(name))

    def references(self, name: str) -> list[str]:
        """Configuration lines outside the object itself that name it (access-lists, groups, twice NAT)."""
        refs = []
        for b in self.blocks:
            if isinstance(b, Block):
                for line in b.lines():
                    words = line.split()
                    if (
                        line != f"object network {name}"
                        and name in words
                        and ("object" in words or "network-object" in words or line.startswith("nat "))
                    ):
                        refs.append(line)
        return refs


def _apply_object_line(obj: NetworkObject, line: str) -> None:
    """Apply one object sub-mode line (already validated) to `obj`."""
    words = line.split()
    if not words:
        return
    if words[0] in ADDRESS_KINDS:
        obj.kind, obj.value = words[0], " ".join(words[1:])
    elif words[0] == "description":
        obj.description = line.split(None, 1)[1] if len(words) > 1 else None
    elif words[0] == "nat":
        obj.nat = line.split(None, 1)[1]


def valid_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def valid_mask(text: str) -> bool:
    if not valid_ipv4(text):
        return False
    bits = int(ipaddress.IPv4Address(text))
    inverted = (~bits) & 0xFFFFFFFF
    return (inverted & (inverted + 1)) == 0


def seed_config(
    hostname: str, objects: dict[str, str], outside_nat_address: str, inside_address: str = "10.0.0.1"
) -> str:
    """A small realistic running-config: the seed's network objects, each with a static object NAT to
    `outside_nat_address` (the seed's 1-to-1 NAT of the Exchange server)."""
    lines = [
        "ASA Version 9.8(4)",
        "!",
        f"hostname {hostname}",
        "domain-name corp.example",
        "enable password ***** pbkdf2",
        "names",
        "!",
        "interface GigabitEthernet0/0",
        " nameif outside",
        " security-level 0",
        " ip address 198.51.100.2 255.255.255.0",
        "!",
        "interface GigabitEthernet0/1",
        " nameif inside",
        " security-level 100",
        f" ip address {inside_address} 255.0.0.0",
        "!",
        "interface Management0/0",
        " management-only",
        " shutdown",
        " no nameif",
        " no security-level",
        " no ip address",
        "!",
        "ftp mode passive",
        "dns server-group DefaultDNS",
        " domain-name corp.example",
    ]
    for name, host in objects.items():
        lines += [f"object network {name}", f" host {host}"]
    first = next(iter(objects), None)
    if first:
        lines += [f"access-list outside_access_in extended permit tcp any object {first} eq smtp"]
    for name in list(objects)[1:]:
        lines += [f"access-list outside_access_in extended permit tcp any object {name} eq https"]
    lines += [
        "pager lines 24",
        "logging enable",
        "logging asdm informational",
        "mtu outside 1500",
        "mtu inside 1500",
        "no failover",
        "icmp unreachable rate-limit 1 burst-size 1",
        "no asdm history enable",
        "arp timeout 14400",
        "no arp permit-nonconnected",
    ]
    for name in objects:
        lines += [f"object network {name}", f" nat (inside,outside) static {outside_nat_address}"]
    lines += [
        "access-group outside_access_in in interface outside",
        "route outside 0.0.0.0 0.0.0.0 198.51.100.1 1",
        "timeout xlate 3:00:00",
        "timeout conn 1:00:00 half-closed 0:10:00 udp 0:02:00 sctp 0:02:00 icmp 0:00:02",
        "user-identity default-domain LOCAL",
        "aaa authentication ssh console LOCAL",
        "http server enable",
        "http 10.0.0.0 255.0.0.0 inside",
        "ssh 10.0.0.0 255.0.0.0 inside",
        "ssh timeout 5",
        "ssh version 2",
        "ssh key-exchange group dh-group14-sha1",
        "console timeout 0",
        "threat-detection basic-threat",
        "username admin password ***** pbkdf2 privilege 15",
        "!",
        "class-map inspection_default",
        " match default-inspection-traffic",
        "!",
        "policy-map global_policy",
        " class inspection_default",
        "  inspect dns preset_dns_map",
        "  inspect esmtp",
        "!",
        "service-policy global_policy global",
        "prompt hostname context",
    ]
    return "\n".join(lines) + "\n"
