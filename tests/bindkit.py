"""A BIND 9 primary for corp.example as a test peer: the seed zone, a named.conf that takes RFC 2136
updates and zone transfers signed with a fresh TSIG key, and the argv that runs it in the foreground.

BIND listens only on addresses an interface holds, so `address` is 127.0.0.1 unless the caller has
put another /32 on `lo` (tests/roles/harness.py `loopback_addresses`). Starting and stopping the
process is the caller's (each test area has its own subprocess handle).
"""

from __future__ import annotations

import base64
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ZONE = "corp.example"
KEY_NAME = "exha-update"
SEED_ZONE = """$ORIGIN {zone}.
$TTL 3600
@       IN SOA dc1.{zone}. hostmaster.{zone}. ( 1 3600 600 86400 300 )
        IN NS  dc1.{zone}.
dc1     IN A   10.0.0.10
outlook IN A   10.0.0.23
ex13-1  IN A   10.0.0.23
ex13-2  IN A   10.0.0.24
"""


@dataclass(frozen=True)
class Bind:
    """Where the primary answers and the TSIG key that signs updates to it."""

    address: str
    port: int
    zone: str
    tsig_name: str
    tsig_secret: str
    tsig_algorithm: str = "hmac-sha256"


def named_binary() -> str:
    """Path of `named`; skips the test when BIND 9 is not installed."""
    named = shutil.which("named") or "/usr/sbin/named"
    if not Path(named).exists():
        pytest.skip("BIND 9 (named) is not installed: apt-get install bind9")
    return named


def prepare_bind(folder: Path, address: str, port: int) -> tuple[list[str], Bind]:
    """Write the zone and named.conf into `folder` (created here) and return named's argv and the
    endpoint it will serve once started."""
    named = named_binary()
    folder.mkdir()
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    (folder / f"{ZONE}.zone").write_text(SEED_ZONE.format(zone=ZONE))
    (folder / "named.conf").write_text(f"""
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};
options {{
    directory "{folder}";
    pid-file "{folder}/named.pid";
    listen-on port {port} {{ {address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
zone "{ZONE}" {{
    type primary;
    file "{folder}/{ZONE}.zone";
    allow-update {{ key "{KEY_NAME}"; }};
    allow-transfer {{ key "{KEY_NAME}"; }};
}};
""")
    argv = [named, "-g", "-4", "-c", str(folder / "named.conf")]
    return argv, Bind(address, port, ZONE, KEY_NAME, secret)
