"""Placing long-lived connections on the worker processes: gathered on one while the load is light, spread
evenly when it is not.

The kernel hands each new connection to a worker by a hash of its addresses (SO_REUSEPORT). Over thousands of
clients that evens out; over a few dozen long-lived ones (a reverse proxy's pooled connections, Outlook's RPC
channels from one office, an SMTP relay) one worker can carry twice the other's load. So when a plain-TCP session
turns out to be long-lived (it has carried a few requests, see lb/splice.py) this worker may pass both of its
sockets to another worker (SCM_RIGHTS over a SOCK_SEQPACKET socket pair made before the fork) instead of keeping
it. The connection itself never notices.

Where it goes depends on the load. Every worker with open connections samples its own CPU time every PULSE
seconds. While all workers together use less than `consolidate_below` of one core, long-lived sessions are
gathered on the first listening worker: one process woken for all their events costs less per request than two
each woken for half of them (measured: 58.9 against 66.7 µs per request at 3,000 requests/s, see
docs/benchmarks.md). Above SPREAD_FACTOR times that, each worker evens out with the one that holds the fewest.
In between, the last decision stands, so a load near the line does not move sessions back and forth. The first
listening worker decides (one writer); after a quiet spell (no recent decision) sessions are spread, so a
sudden burst starts evenly shared and gathers only once a sample shows the load light.

Counts live in one shared map, each number written by one process only: `long[w]` (long-lived sessions worker
w holds), `sent[a][b]` (sessions a has passed to b), `taken[b][a]` (those b has taken in), `busy[w]` and
`stamp[w]` (w's last CPU sample) and the mode with its time. A worker judges another by `long + sent - taken`,
so sessions on their way count at once.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from lb import log

_Q = struct.Struct("<q")
MAX_META = 512
PULSE = 0.25  # seconds between a busy worker's CPU samples
STALE = 3 * PULSE  # a sample older than this is from a worker with nothing open: it is idle
SPREAD_FACTOR = 1.5  # spread above this multiple of `consolidate_below`
SPREAD, LIGHT = 0, 1  # the shared map starts at 0: spread until a sample shows the load is light


@dataclass(frozen=True)
class Moved:
    """What a worker needs to carry on a session another worker started: its sockets and whose it is."""

    client: int  # fd of the client's socket
    server: int  # fd of the server's socket
    service: str
    backend: str  # the real server's key (RealServer.key)
    client_ip: str
    dst_port: int
    sender: int

    def meta(self) -> bytes:
        return "\0".join((self.service, self.backend, self.client_ip, str(self.dst_port),
                          str(self.sender))).encode()

    @classmethod
    def parse(cls, data: bytes, fds: list[int]) -> Moved:
        service, backend, client_ip, dst_port, sender = data.decode().split("\0")
        return cls(fds[0], fds[1], service, backend, client_ip, int(dst_port), int(sender))


class Handoff:
    """The shared counts and one socket pair per worker; made by the supervisor before it forks."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.index = -1  # this process's worker index, once `start` has run in it
        n = workers
        self._long = 0
        self._sent = self._long + n * _Q.size
        self._taken = self._sent + n * n * _Q.size
        self._busy = self._taken + n * n * _Q.size
        self._stamp = self._busy + n * _Q.size
        self._mode = self._stamp + n * _Q.size  # the mode, then when it was last decided
        self.mem = mmap.mmap(-1, self._mode + 2 * _Q.size, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        self._sample: tuple[float, float] | None = None  # this worker's last (CPU seconds, monotonic time)
        self.below = 0.0  # the config's `consolidate_below` (cores); 0: always spread
        self.pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(n)]
        for receive, send in self.pairs:
            receive.setblocking(False)
            send.setblocking(False)
        self.adopt: Callable[[Moved], None] | None = None
        self.listening: Callable[[int], bool] = lambda w: True

    # -- counts ---------------------------------------------------------------------------------------------
    def _get(self, off: int) -> int:
        return _Q.unpack_from(self.mem, off)[0]

    def _add(self, off: int, delta: int) -> None:
        _Q.pack_into(self.mem, off, _Q.unpack_from(self.mem, off)[0] + delta)

    def long(self, worker: int) -> int:
        return self._get(self._long + worker * _Q.size)

    def held(self, delta: int) -> None:
        """This worker now holds `delta` more (or fewer) long-lived sessions."""
        self._add(self._long + self.index * _Q.size, delta)

    def _sent_off(self, src: int, dst: int) -> int:
        return self._sent + (src * self.workers + dst) * _Q.size

    def _taken_off(self, dst: int, src: int) -> int:
        return self._taken + (dst * self.workers + src) * _Q.size

    def load(self, worker: int) -> int:
        """Long-lived sessions `worker` holds, as this worker sees it (its own passes to it included)."""
        return (self.long(worker) + self._get(self._sent_off(self.index, worker))
                - self._get(self._taken_off(worker, self.index)))

    # -- load -----------------------------------------------------------------------------------------------
    def busy(self, worker: int, now: float) -> float:
        """Cores `worker` used over its last sample; 0 when it has not sampled lately (nothing open)."""
        if now - self._get(self._stamp + worker * _Q.size) / 1e6 > STALE:
            return 0.0
        return self._get(self._busy + worker * _Q.size) / 1000

    def sample(self, cpu: float, now: float) -> None:
        """Publish the cores this worker used since its last sample (`cpu`: its CPU seconds so far)."""
        last, self._sample = self._sample, (cpu, now)
        if last is not None and now - last[1] < STALE:
            share = (cpu - last[0]) / max(now - last[1], 1e-3)
            _Q.pack_into(self.mem, self._busy + self.index * _Q.size, round(share * 1000))
            _Q.pack_into(self.mem, self._stamp + self.index * _Q.size, round(now * 1e6))

    def first(self) -> int:
        """The worker long-lived sessions gather on while the load is light: the first one listening."""
        return next((w for w in range(self.workers) if self.listening(w)), self.index)

    def decide(self, now: float) -> int:
        """LIGHT or SPREAD. The first worker decides from everyone's samples; the others read its decision."""
        below = self.below
        if below <= 0:
            return SPREAD
        if self.first() != self.index:
            return self.mode(now)
        total = sum(self.busy(w, now) for w in range(self.workers) if self.listening(w))
        mode = self.mode(now)
        if total < below:
            mode = LIGHT
        elif total > below * SPREAD_FACTOR:
            mode = SPREAD
        _Q.pack_into(self.mem, self._mode, mode)
        _Q.pack_into(self.mem, self._mode + _Q.size, round(now * 1e6))
        return mode

    def mode(self, now: float | None = None) -> int:
        """The placement mode in force, as last decided; SPREAD when the deciding worker has gone quiet (a
        burst after a quiet spell then starts evenly spread, and gathers only once a sample shows it light)."""
        if self.below <= 0:
            return SPREAD
        if (time.monotonic() if now is None else now) - self._get(self._mode + _Q.size) / 1e6 > STALE:
            return SPREAD
        return self._get(self._mode)

    # -- placement ------------------------------------------------------------------------------------------
    def target(self) -> int:
        """The listening worker to pass a new long-lived session to, or -1 to keep it. Light load: the first
        worker. Otherwise the one holding the fewest, if it holds fewer than this one (passing it on to an
        equal would only move the imbalance)."""
        return self._gather() if self.mode() == LIGHT else self._fewest()

    def _gather(self) -> int:
        """The worker to gather on (the first listening one), or -1 when that is this one."""
        first = self.first()
        return -1 if first == self.index else first

    def _fewest(self) -> int:
        """The listening worker holding the fewest long-lived sessions if fewer than this one, else -1."""
        mine = self.long(self.index)
        best, best_load = -1, mine
        for w in range(self.workers):
            if w != self.index and self.listening(w):
                load = self.load(w)
                if load < best_load:
                    best, best_load = w, load
        return best

    def surplus(self, mode: int) -> tuple[int, int]:
        """(worker, how many) of this worker's long-lived sessions to pass on now; (-1, 0) for none. Light: all
        of them to the first worker. Spread: half the difference to the worker holding the fewest."""
        mine = self.long(self.index)
        if mine <= 0:
            return -1, 0
        if mode == LIGHT:
            first = self._gather()
            return (first, mine) if first >= 0 else (-1, 0)
        best = self._fewest()
        if best < 0:
            return -1, 0
        return best, (mine - self.load(best)) // 2

    # -- moving -----------------------------------------------------------------------------------------------
    def send(self, dst: int, moved: Moved) -> bool:
        """Pass `moved`'s sockets to worker `dst`; False (and nothing sent) when its queue is full."""
        try:
            socket.send_fds(self.pairs[dst][1], [moved.meta()], [moved.client, moved.server], socket.MSG_DONTWAIT)
        except OSError:  # full (EAGAIN) or gone: this worker keeps the session
            return False
        self._add(self._sent_off(self.index, dst), 1)
        return True

    def start(self, loop: asyncio.AbstractEventLoop, index: int, adopt: Callable[[Moved], None]) -> None:
        """In worker `index`: take in sessions passed to it (first those queued while no worker read them)."""
        self.index, self.adopt = index, adopt
        for w, (receive, send) in enumerate(self.pairs):
            if w != index:
                receive.close()  # only the owner reads its queue
        # a respawned worker starts with none held; its `taken` counts go on from its predecessor's, and what
        # was sent to that one and not yet taken is still in the queue (the supervisor holds every pair)
        _Q.pack_into(self.mem, self._long + index * _Q.size, 0)
        self.receive()
        loop.add_reader(self.pairs[index][0].fileno(), self.receive)

    def receive(self) -> None:
        """Take in every session waiting in this worker's queue."""
        sock = self.pairs[self.index][0]
        while True:
            try:
                data, fds, flags, _ = socket.recv_fds(sock, MAX_META, 2, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.event(log.access, logging.ERROR, "handoff_failed", reason=os.strerror(exc.errno or 0))
                return
            if not data and not fds:
                return
            try:
                moved = Moved.parse(data, fds) if len(fds) == 2 else None
            except ValueError:
                moved = None
            if moved is None or flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                for fd in fds:
                    os.close(fd)
                log.event(log.access, logging.ERROR, "handoff_failed", reason="malformed message")
                continue
            self._add(self._taken_off(self.index, moved.sender), 1)
            self.adopt(moved)  # type: ignore[misc]

    def close(self) -> None:
        """Close every socket pair and the shared map (the supervisor at its end; tests)."""
        for receive, send in self.pairs:
            receive.close()
            send.close()
        self.mem.close()
