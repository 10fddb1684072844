"""Persistence: source-IP tables with an idle timeout (in shared memory, so every worker and every reload
sees the same entries), the same tables keyed by a request header's value (HTTP mode; only a keyed hash of the
value is stored), and the stateless cookie value that names a server."""

from __future__ import annotations

import hashlib
import mmap
import socket
import struct

_ENTRY = struct.Struct("<QId")   # key hash, server IPv4, expiry (CLOCK_MONOTONIC, the same in every process)
_PROBE = 8                       # entries looked at per key; the oldest is evicted when all are taken


class SharedSourceMemory:
    """A fixed-size shared map (table name, client IP) -> (server IP, expiry), created before workers fork."""

    def __init__(self, entries: int = 1 << 17) -> None:
        self.entries = entries
        self.mem = mmap.mmap(-1, entries * _ENTRY.size, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)

    def table(self, name: str, timeout: float) -> SourceTable:
        return SourceTable(self, name, timeout)


class SourceTable:
    """Client IP -> server address for one persistence table, forgotten `timeout` seconds after the client's
    last new connection."""

    def __init__(self, memory: SharedSourceMemory, name: str, timeout: float) -> None:
        self.memory = memory
        self.name = name
        self.salt = hashlib.blake2b(name.encode(), digest_size=8).digest()
        self.timeout = timeout

    def _key(self, client: str | bytes) -> int:
        """`client`: an IPv4 address, or a header's value as bytes."""
        raw = client if isinstance(client, bytes) else socket.inet_aton(client)
        return int.from_bytes(hashlib.blake2b(raw, digest_size=8, key=self.salt).digest(), "little") or 1

    def get(self, client: str | bytes, now: float) -> str | None:
        key = self._key(client)
        mem, n = self.memory.mem, self.memory.entries
        for i in range(_PROBE):
            k, server, exp = _ENTRY.unpack_from(mem, ((key + i) % n) * _ENTRY.size)
            if k == key:
                return socket.inet_ntoa(server.to_bytes(4, "big")) if exp >= now else None
        return None

    def put(self, client: str | bytes, server: str, now: float) -> None:
        key = self._key(client)
        mem, n = self.memory.mem, self.memory.entries
        target, oldest = -1, float("inf")
        for i in range(_PROBE):
            idx = (key + i) % n
            k, _, exp = _ENTRY.unpack_from(mem, idx * _ENTRY.size)
            if k == key:
                target = idx
                break
            if exp < oldest:
                target, oldest = idx, exp
        _ENTRY.pack_into(mem, target * _ENTRY.size, key, int.from_bytes(socket.inet_aton(server), "big"),
                         now + self.timeout)

    def forget(self, client: str) -> None:
        key = self._key(client)
        mem, n = self.memory.mem, self.memory.entries
        for i in range(_PROBE):
            idx = (key + i) % n
            if _ENTRY.unpack_from(mem, idx * _ENTRY.size)[0] == key:
                _ENTRY.pack_into(mem, idx * _ENTRY.size, 0, 0, 0.0)


def cookie_value(address: str) -> str:
    """The cookie value that routes to the server at `address` (same in every service of a cookie group)."""
    return hashlib.blake2b(address.encode(), digest_size=6).hexdigest()
