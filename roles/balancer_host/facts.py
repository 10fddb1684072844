"""Facts read from the balancer VM over SSH: a file's text, the IPv4 addresses on an interface, the default
gateway and the running host name."""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra.api import FactBase

from roles.errors import FactParseError

#: printed first by FileText so an empty file and a missing one differ
PRESENT = "##exha-present##"


class FileText(FactBase[Any]):
    """
    Returns a file's text, or None when it does not exist:

    .. code:: python

        "auto lo\\niface lo inet loopback\\n"
    """

    def command(self, path: str) -> str:
        return f"if [ -f {shlex.quote(path)} ]; then echo '{PRESENT}'; cat {shlex.quote(path)}; fi"

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> str | None:
        if not output or output[0] != PRESENT:
            return None
        body = output[1:]
        return "\n".join(body) + "\n" if body else ""


class Addresses(FactBase[Any]):
    """
    Returns the IPv4 addresses on an interface, primary first (`ip -j -4 addr show dev IF`):

    .. code:: python

        [{"address": "10.0.0.27", "prefix_len": 8, "secondary": False},
         {"address": "10.0.0.28", "prefix_len": 32, "secondary": False}]
    """

    def command(self, interface: str) -> str:
        return f"ip -j -4 addr show dev {shlex.quote(interface)}"

    @staticmethod
    def default() -> list[dict[str, Any]]:
        return []

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        text = "\n".join(output)
        try:
            links = json.loads(text)
            return [{"address": str(a["local"]), "prefix_len": int(a["prefixlen"]),
                     "secondary": bool(a.get("secondary", False))}
                    for link in links for a in link.get("addr_info", []) if a.get("family", "inet") == "inet"]
        except (ValueError, KeyError, TypeError) as e:
            raise FactParseError(str(e), host="balancer VM", command="ip -j -4 addr show") from e


class DefaultGateway(FactBase[Any]):
    """
    Returns the IPv4 default gateway, or None:

    .. code:: python

        "10.0.0.1"
    """

    command = "ip -j -4 route show default"

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> str | None:
        try:
            routes = json.loads("\n".join(output))
        except ValueError as e:
            raise FactParseError(str(e), host="balancer VM", command=self.command) from e
        gateways = [str(r["gateway"]) for r in routes if isinstance(r, dict) and r.get("gateway")]
        return gateways[0] if gateways else None


class RunningHostname(FactBase[Any]):
    """
    Returns the kernel's host name (`hostname`), or None:

    .. code:: python

        "lb1"
    """

    command = "hostname"

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> str | None:
        return output[0].strip() or None


class Account(FactBase[Any]):
    """
    Returns a user's passwd entry fields, or None when there is no such user:

    .. code:: python

        {"user": "exha-lb", "uid": 999, "gid": 999, "home": "/nonexistent", "shell": "/usr/sbin/nologin"}
    """

    def command(self, user: str) -> str:
        return f"getent passwd {shlex.quote(user)} || true"

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> dict[str, Any] | None:
        fields = output[0].split(":") if output and output[0] else []
        if len(fields) < 7:
            return None
        return {"user": fields[0], "uid": int(fields[2]), "gid": int(fields[3]), "home": fields[5],
                "shell": fields[6]}
