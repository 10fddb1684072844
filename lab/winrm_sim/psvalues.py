"""PowerShell values the simulator passes along pipelines (objects, enums, IP addresses, time spans)
and how Windows PowerShell 5.1 prints them: `ConvertTo-Json` (pretty and `-Compress`) and the
default table/list formatting."""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class PSObject:
    """An object with ordered, case-insensitively named properties and a .NET type name."""

    def __init__(
        self,
        props: dict[str, Any],
        type_name: str = "System.Management.Automation.PSCustomObject",
        text: str | None = None,
        display: tuple[str, ...] = (),
    ) -> None:
        self.props = dict(props)
        self.type_name = type_name
        self.text = text
        self.display = display  # the columns of its table view, when it has one

    def find(self, name: str) -> str | None:
        """The property's real name for `name` in any letter case, or None."""
        low = name.lower()
        return next((k for k in self.props if k.lower() == low), None)

    def get(self, name: str) -> Any:
        key = self.find(name)
        if key is None:
            return None
        return self.props[key]

    def set(self, name: str, value: Any) -> bool:
        key = self.find(name)
        if key is None:
            return False
        self.props[key] = value
        return True

    def clone(self) -> PSObject:
        return copy.deepcopy(self)

    def __str__(self) -> str:
        if self.text is not None:
            return self.text
        if self.type_name == "System.Management.Automation.PSCustomObject" or self.type_name.startswith(
            "Selected."
        ):
            return "@{" + "; ".join(f"{k}={_plain(v)}" for k, v in self.props.items()) + "}"
        return self.type_name


@dataclass(frozen=True)
class PSEnum:
    """A .NET enum value: `ConvertTo-Json` in 5.1 writes the number, formatting shows the name."""

    name: str
    value: int

    def __str__(self) -> str:
        return self.name


class PSIPAddress:
    """System.Net.IPAddress (IPv4)."""

    type_name = "System.Net.IPAddress"

    def __init__(self, text: str) -> None:
        self.ip = ipaddress.IPv4Address(text)

    @property
    def props(self) -> dict[str, Any]:
        return {
            "Address": int.from_bytes(self.ip.packed, "little"),
            "AddressFamily": PSEnum("InterNetwork", 2),
            "ScopeId": None,
            "IsIPv6Multicast": False,
            "IsIPv6LinkLocal": False,
            "IsIPv6SiteLocal": False,
            "IsIPv6Teredo": False,
            "IsIPv4MappedToIPv6": False,
            "IPAddressToString": str(self.ip),
        }

    def get(self, name: str) -> Any:
        return next((v for k, v in self.props.items() if k.lower() == name.lower()), None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PSIPAddress) and other.ip == self.ip

    def __hash__(self) -> int:
        return hash(self.ip)

    def __str__(self) -> str:
        return str(self.ip)


class PSTimeSpan:
    """System.TimeSpan, whole seconds."""

    type_name = "System.TimeSpan"

    def __init__(self, seconds: int) -> None:
        self.seconds = int(seconds)

    @classmethod
    def parse(cls, text: str) -> PSTimeSpan:
        """`[timespan]'01:00:00'` or `'1.00:00:00'` (with days)."""
        days = 0
        body = text.strip()
        if "." in body.split(":")[0]:
            d, body = body.split(".", 1)
            days = int(d)
        parts = [int(p) for p in body.split(":")]
        if len(parts) != 3 or not all(p >= 0 for p in parts):
            raise ValueError(text)
        return cls(days * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2])

    @property
    def props(self) -> dict[str, Any]:
        s = self.seconds
        return {
            "Ticks": s * 10_000_000,
            "Days": s // 86400,
            "Hours": s % 86400 // 3600,
            "Milliseconds": 0,
            "Minutes": s % 3600 // 60,
            "Seconds": s % 60,
            "TotalDays": s / 86400,
            "TotalHours": s / 3600,
            "TotalMilliseconds": s * 1000,
            "TotalMinutes": s / 60,
            "TotalSeconds": s,
        }

    def get(self, name: str) -> Any:
        return next((v for k, v in self.props.items() if k.lower() == name.lower()), None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PSTimeSpan) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash(self.seconds)

    def __str__(self) -> str:
        d, rest = divmod(self.seconds, 86400)
        h, rest = divmod(rest, 3600)
        m, s = divmod(rest, 60)
        return (f"{d}." if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def get_member(value: Any, name: str) -> Any:
    """`$value.name`: a property of an object (None when absent, as PowerShell gives $null)."""
    if isinstance(value, (PSObject, PSIPAddress, PSTimeSpan)):
        return value.get(name)
    if isinstance(value, list):
        if name.lower() in ("count", "length"):
            return len(value)
        return [get_member(v, name) for v in value]
    if isinstance(value, str) and name.lower() == "length":
        return len(value)
    return None


def _plain(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, list):
        return " ".join(_plain(x) for x in v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def to_text(v: Any) -> str:
    """How PowerShell converts a value to a string ("$v")."""
    return _plain(v)


# -- ConvertTo-Json ------------------------------------------------------------------------------
def _jsonable(v: Any, depth: int, max_depth: int) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return int(v) if v.is_integer() else v
    if isinstance(v, PSEnum):
        return v.value
    if isinstance(v, list):
        if depth > max_depth:
            return _plain(v)
        return [_jsonable(x, depth, max_depth) for x in v]
    if isinstance(v, (PSObject, PSIPAddress, PSTimeSpan)):
        if depth >= max_depth and depth > 0:
            return str(v)
        return {k: _jsonable(x, depth + 1, max_depth) for k, x in v.props.items()}
    return str(v)


def _escape(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    for ch, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        out = out.replace(ch, code)
    return out


def _compact(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ",".join(f"{_escape(k)}:{_compact(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_compact(x) for x in v) + "]"
    if isinstance(v, str):
        return _escape(v)
    return json.dumps(v)


def _pretty(v: Any, base: int) -> str:
    """Windows PowerShell 5.1's layout: 4-space steps, `"key":  value` (two spaces), and nested
    blocks indented to the column where their key's value starts."""
    if isinstance(v, dict):
        if not v:
            return "{\r\n\r\n" + " " * base + "}"
        items = []
        for k, x in v.items():
            head = f"{_escape(k)}:  "
            items.append(" " * (base + 4) + head + _pretty(x, base + 4 + len(head)))
        return "{\r\n" + ",\r\n".join(items) + "\r\n" + " " * base + "}"
    if isinstance(v, list):
        if not v:
            return "[\r\n\r\n" + " " * base + "]"
        return (
            "[\r\n"
            + ",\r\n".join(" " * (base + 4) + _pretty(x, base + 4) for x in v)
            + "\r\n"
            + " " * base
            + "]"
        )
    return _compact(v)


def convert_to_json(items: list[Any], depth: int = 2, compress: bool = False) -> str:
    """`... | ConvertTo-Json [-Depth N] [-Compress]`: one value for one input, an array for several."""
    data = _jsonable(items[0] if len(items) == 1 else items, 0, depth)
    return _compact(data) if compress else _pretty(data, 0)


# -- default formatting ---------------------------------------------------------------------------
def format_default(items: Iterable[Any]) -> str:
    """Out-Default in its simple form: scalars one per line; objects with up to four properties as a
    table, with more as a list (PowerShell's rule when no format view exists)."""
    out: list[str] = []
    objs: list[PSObject] = []

    def flush() -> None:
        if not objs:
            return
        keys = list(objs[0].display or objs[0].props)
        if objs[0].display or len(keys) <= 4:
            rows = [[_plain(o.get(k)) for k in keys] for o in objs]
            widths = [max(len(k), *(len(r[i]) for r in rows)) for i, k in enumerate(keys)]
            out.append("")
            out.append(" ".join(k.ljust(w) for k, w in zip(keys, widths)).rstrip())
            out.append(" ".join(("-" * len(k)).ljust(w) for k, w in zip(keys, widths)).rstrip())
            out.extend(" ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
            out.append("")
        else:
            width = max(len(k) for k in keys)
            for o in objs:
                out.append("")
                out.extend(f"{k.ljust(width)} : {_plain(v)}" for k, v in o.props.items())
            out.append("")
        out.append("")
        objs.clear()

    for item in items:
        if isinstance(item, PSObject):
            if objs and list(objs[0].props) != list(item.props):
                flush()
            objs.append(item)
        else:
            flush()
            out.append(_plain(item))
    flush()
    return "".join(line + "\r\n" for line in out)
