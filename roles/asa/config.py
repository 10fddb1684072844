"""ASA configuration text, both ways: parse `show running-config` style output into network objects with
the NAT statements that use them, and render the config lines that give an object a desired address.
Pure functions over text; no device I/O."""

from __future__ import annotations

import ipaddress
from typing import TypedDict

from roles.errors import OperationInputError

#: address keywords an `object network` may hold (exactly one at a time)
ADDRESS_KINDS = ("host", "subnet", "range", "fqdn")
#: how the ASA prefixes a rejected command's message
ERROR_MARK = "ERROR:"
#: what `write memory` prints when the startup-config was written
SAVED_MARK = "[OK]"


class ObjectState(TypedDict):
    """One network object as configured: its address and the NAT statements that use it."""

    kind: str | None       # host | subnet | range | fqdn, None for an object with no address yet
    value: str             # text after the keyword: "10.0.0.28", "10.0.0.0 255.255.255.0", ...
    nat: list[str]         # "nat (inside,outside) static 198.51.100.25 ..." (object NAT and twice NAT)


def parse_objects(lines: list[str]) -> dict[str, ObjectState]:
    """Network objects in config text: definitions, object NAT blocks and twice-NAT lines naming them.

    Takes any mix of `show running-config [object network|nat]` or `show startup-config` output; an object
    seen only in a NAT block (the config printed without definitions) still appears, with kind None.
    """
    objects: dict[str, ObjectState] = {}
    current: str | None = None
    twice_nat: list[str] = []
    for raw in lines:
        line = raw.rstrip()
        if not line or line.startswith(":") or line.startswith("!"):
            continue
        if not line.startswith(" "):
            words = line.split()
            current = None
            if len(words) == 3 and words[0] == "object" and words[1] == "network":
                current = words[2]
                objects.setdefault(current, {"kind": None, "value": "", "nat": []})
            elif words[0] == "nat":
                twice_nat.append(line)
            continue
        if current is None:
            continue
        body = line.strip()
        keyword, _, rest = body.partition(" ")
        if keyword in ADDRESS_KINDS:
            objects[current]["kind"], objects[current]["value"] = keyword, rest.strip()
        elif keyword == "nat":
            objects[current]["nat"].append(body)
    for line in twice_nat:
        words = line.split()
        for obj_name, obj in objects.items():
            if obj_name in words and line not in obj["nat"]:
                obj["nat"].append(line)
    return objects


def find_errors(output: str) -> list[str]:
    """The device's `ERROR:` lines in command output, in order."""
    return [line.strip() for line in output.splitlines() if line.strip().startswith(ERROR_MARK)]


def desired_address(host: str | None, subnet: str | None, ip_range: str | None) -> tuple[str, str]:
    """Validate the op's address arguments (exactly one) into the ASA's (kind, value) form."""
    given = {k: v for k, v in (("host", host), ("subnet", subnet), ("ip_range", ip_range)) if v is not None}
    if len(given) != 1:
        raise OperationInputError("give exactly one of host, subnet, ip_range for a present object "
                                  f"(got {', '.join(given) or 'none'})", field="asa.network_object")
    field, value = next(iter(given.items()))
    value = str(value).strip()
    try:
        if field == "host":
            return "host", str(ipaddress.IPv4Address(value))
        if field == "subnet":
            if " " in value:
                addr, mask = value.split(None, 1)
                net = ipaddress.IPv4Network(f"{addr}/{mask}", strict=True)
            else:
                net = ipaddress.IPv4Network(value, strict=True)
            return "subnet", f"{net.network_address} {net.netmask}"
        low, high = value.replace("-", " ").split()
        first, last = ipaddress.IPv4Address(low), ipaddress.IPv4Address(high)
    except ValueError as e:
        raise OperationInputError(f"{value!r} is not a valid IPv4 {field}: {e}", field=field) from e
    if first > last:
        raise OperationInputError(f"range start {first} is after its end {last}", field="ip_range")
    return "range", f"{first} {last}"


def object_lines(object_name: str, obj: ObjectState | None) -> list[str]:
    """The object as `show running-config` prints it (definition, then its object NAT); [] when absent."""
    if obj is None:
        return []
    lines = [f"object network {object_name}"]
    if obj["kind"]:
        lines.append(f" {obj['kind']} {obj['value']}")
    lines += [f" {n}" for n in obj["nat"] if not n.startswith("nat (") or " source " not in n]
    lines += [n for n in obj["nat"] if n.startswith("nat (") and " source " in n]
    return lines


def same_object(a: ObjectState | None, b: ObjectState | None) -> bool:
    """Whether two parsed objects are configured alike (address and NAT; NAT order ignored)."""
    if a is None or b is None:
        return a is b
    return (a["kind"], a["value"], sorted(a["nat"])) == (b["kind"], b["value"], sorted(b["nat"]))
