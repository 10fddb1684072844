"""Server state shared by every worker process: up/down, admin state and counters in one shared memory map.

The map is created before workers fork. Health checks (in the supervising process) and passive failures (in any
worker) write to it; every worker reads it when it picks a server. A generation counter tells workers that
something changed, so they can close connections to servers that went down; `notify` (set per process) is
called on every such change so the process can tell the others at once (lb/runner.py does it with SIGUSR1).
Counters are written by each worker into its own region when asked (`request_refresh`/`ack_refresh`) and by
its housekeeping sweep.
"""

from __future__ import annotations

import hashlib
import mmap
import struct
import time
from collections.abc import Callable

ENABLED, DISABLED, DRAIN = 0, 1, 2
ADMIN_NAMES = {ENABLED: "enabled", DISABLED: "disabled", DRAIN: "drain"}
ADMIN_CODES = {v: k for k, v in ADMIN_NAMES.items()}

_HEADER = struct.Struct("<QQ")                    # generation, last refresh request
_SLOT = struct.Struct("<QBBBBIdd")                # key, up, admin, passive, used, pad, since, admin_since
_COUNTERS = struct.Struct("<qqqq")                # active, total, bytes_in, bytes_out
_ACK = struct.Struct("<Q")                        # per worker: the refresh request its counters answer
SLOTS = 2048


def _key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1


class ServerTable:
    """Fixed-size open-addressing table of server slots, plus one counter region per worker."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._slots_off = _HEADER.size
        self._counters_off = self._slots_off + SLOTS * _SLOT.size
        self._acks_off = self._counters_off + workers * SLOTS * _COUNTERS.size
        self._listening_off = self._acks_off + workers * _ACK.size
        size = self._listening_off + workers
        self.mem = mmap.mmap(-1, size, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        self.notify: Callable[[], None] | None = None  # this process's hook, called after every change

    # -- slots -------------------------------------------------------------------------------------------------
    def slot(self, key: str) -> int:
        """Slot of `key`, created (state up, enabled) on first use."""
        h = _key_hash(key)
        i = h % SLOTS
        for _ in range(SLOTS):
            off = self._slots_off + i * _SLOT.size
            k, up, adm, passive, used, _pad, since, asince = _SLOT.unpack_from(self.mem, off)
            if used and k == h:
                return i
            if not used:
                now = time.time()
                _SLOT.pack_into(self.mem, off, h, 1, ENABLED, 0, 1, 0, now, now)
                return i
            i = (i + 1) % SLOTS
        raise RuntimeError("server table is full")

    def _off(self, slot: int) -> int:
        return self._slots_off + slot * _SLOT.size

    def is_up(self, slot: int) -> bool:
        return self.mem[self._off(slot) + 8] == 1

    def admin(self, slot: int) -> int:
        return self.mem[self._off(slot) + 9]

    def available(self, slot: int) -> bool:
        """Up and enabled: may take new clients."""
        off = self._off(slot) + 8
        return self.mem[off] == 1 and self.mem[off + 1] == ENABLED

    def since(self, slot: int) -> float:
        return struct.unpack_from("<d", self.mem, self._off(slot) + 16)[0]

    def admin_since(self, slot: int) -> float:
        return struct.unpack_from("<d", self.mem, self._off(slot) + 24)[0]

    def set_up(self, slot: int, up: bool) -> bool:
        """Set up/down; True when that changed the state."""
        off = self._off(slot)
        if self.mem[off + 8] == int(up):
            return False
        self.mem[off + 8] = int(up)
        self.mem[off + 10] = 0
        struct.pack_into("<d", self.mem, off + 16, time.time())
        self._bump()
        return True

    def mark_passive_down(self, slot: int) -> bool:
        """A worker saw a connect failure: down at once, and tell the health checker."""
        off = self._off(slot)
        if self.mem[off + 8] == 0:
            return False
        self.mem[off + 8] = 0
        self.mem[off + 10] = 1
        struct.pack_into("<d", self.mem, off + 16, time.time())
        self._bump()
        return True

    def take_passive(self, slot: int) -> bool:
        """True (once) when a worker marked the slot down since the last call."""
        off = self._off(slot) + 10
        if self.mem[off]:
            self.mem[off] = 0
            return True
        return False

    def set_admin(self, slot: int, state: int) -> bool:
        off = self._off(slot)
        if self.mem[off + 9] == state:
            return False
        self.mem[off + 9] = state
        struct.pack_into("<d", self.mem, off + 24, time.time())
        self._bump()
        return True

    def generation(self) -> int:
        return _HEADER.unpack_from(self.mem, 0)[0]

    def _bump(self) -> None:
        struct.pack_into("<Q", self.mem, 0, self.generation() + 1)
        if self.notify is not None:
            self.notify()

    # -- workers -----------------------------------------------------------------------------------------------
    def set_listening(self, worker: int, listening: bool) -> None:
        """A worker has (or no longer has) its listeners open."""
        self.mem[self._listening_off + worker] = int(listening)

    def is_listening(self, worker: int) -> bool:
        return self.mem[self._listening_off + worker] == 1

    def listening(self) -> int:
        """How many workers have their listeners open."""
        return sum(self.mem[self._listening_off:self._listening_off + self.workers])

    # -- counters ----------------------------------------------------------------------------------------------
    def write_counters(self, worker: int, slot: int, active: int, total: int, bytes_in: int, bytes_out: int) -> None:
        off = self._counters_off + (worker * SLOTS + slot) * _COUNTERS.size
        _COUNTERS.pack_into(self.mem, off, active, total, bytes_in, bytes_out)

    def request_refresh(self) -> int:
        """Ask for fresh counters; returns the request number that workers acknowledge once they have written."""
        req = _HEADER.unpack_from(self.mem, 0)[1] + 1
        struct.pack_into("<Q", self.mem, 8, req)
        return req

    def ack_refresh(self, worker: int) -> None:
        """`worker` has just written its counters: it answers every request made so far."""
        _ACK.pack_into(self.mem, self._acks_off + worker * _ACK.size, _HEADER.unpack_from(self.mem, 0)[1])

    def refreshed(self, worker: int, request: int) -> bool:
        return _ACK.unpack_from(self.mem, self._acks_off + worker * _ACK.size)[0] >= request

    def counters(self, slot: int) -> tuple[int, int, int, int]:
        """(active, total, bytes_in, bytes_out) summed over every worker."""
        sums = [0, 0, 0, 0]
        for w in range(self.workers):
            vals = _COUNTERS.unpack_from(self.mem, self._counters_off + (w * SLOTS + slot) * _COUNTERS.size)
            for i in range(4):
                sums[i] += vals[i]
        return sums[0], sums[1], sums[2], sums[3]
