"""Install and remove the nftables redirect that feeds every port of a port-`*` VIP into one listener."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from lb.errors import NftError


@dataclass(frozen=True)
class Redirect:
    vip: str
    exclude_ports: tuple[int, ...]  # ports of the VIP served by their own listeners


def ruleset(table: str, redirects: list[Redirect], to_port: int) -> str:
    """The nft script for `redirects` (pure; the table is replaced as a whole)."""
    rules = []
    for r in redirects:
        ports = sorted(set(r.exclude_ports) | {to_port})
        rules.append(f"ip daddr {r.vip} tcp dport != {{ {', '.join(str(p) for p in ports)} }} redirect to :{to_port}")
    body = "\n".join(f"    {rule}" for rule in rules)
    return (f"table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n"
            f"  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{body}\n  }}\n"
            f"  chain output {{\n    type nat hook output priority -100; policy accept;\n{body}\n  }}\n}}\n")


def _nft(script: str, action: str) -> None:
    try:
        proc = subprocess.run(["nft", "-f", "-"], input=script, text=True, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NftError(action, str(exc)) from exc
    if proc.returncode != 0:
        raise NftError(action, proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else f"rc {proc.returncode}")


def install(table: str, redirects: list[Redirect], to_port: int) -> None:
    """Replace table `table` with redirects for `redirects` (or remove it when there are none)."""
    if not redirects:
        remove(table)
        return
    _nft(ruleset(table, redirects, to_port), "install")


def remove(table: str) -> None:
    """Remove table `table` if present."""
    _nft(f"table ip {table}\ndelete table ip {table}\n", "remove")
