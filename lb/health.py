"""Health checks: a pure up/down state machine (rise/fall) fed by probe coroutines (TCP, SMTP, HTTP, HTTPS).

Only the probe functions touch sockets; `observe` decides. The monitor runs one loop per real server, writes
state changes into the shared ServerTable and folds passive failures (seen by the data plane) back in.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from dataclasses import dataclass
from typing import Protocol

from lb import log
from lb.config import HealthCheck

# -- the pure state machine ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckState:
    up: bool = True
    checked: bool = False  # no result yet: the first result decides at once
    successes: int = 0     # consecutive
    failures: int = 0      # consecutive


def observe(state: CheckState, ok: bool, rise: int, fall: int) -> CheckState:
    """The state after one probe result."""
    if not state.checked:
        return CheckState(up=ok, checked=True, successes=int(ok), failures=int(not ok))
    if ok:
        successes = state.successes + 1
        up = state.up or successes >= rise
        return CheckState(up=up, checked=True, successes=0 if up and not state.up else successes, failures=0)
    failures = state.failures + 1
    up = state.up and failures < fall
    return CheckState(up=up, checked=True, successes=0, failures=0 if state.up and not up else failures)


def passive_down(state: CheckState) -> CheckState:
    """A connect failure seen by the data plane: down now; `rise` good probes bring it back."""
    return CheckState(up=False, checked=True, successes=0, failures=0)


# -- probes ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    elapsed_ms: float


def _client_ssl() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_SSL = _client_ssl()


async def _tcp(address: str, port: int) -> str:
    _, writer = await asyncio.open_connection(address, port)
    writer.transport.abort()
    return "connected"


async def _smtp(address: str, port: int) -> str:
    reader, writer = await asyncio.open_connection(address, port)
    try:
        banner = await reader.readline()
        if not banner.startswith(b"220"):
            raise ProbeFailure(f"banner {banner[:40]!r}, expected 220")
        # multi-line 220- banners end with "220 "
        while banner[3:4] == b"-":
            banner = await reader.readline()
        writer.write(b"QUIT\r\n")
        await writer.drain()
        await reader.readline()
        return "220"
    finally:
        writer.transport.abort()


async def _http(check: HealthCheck, address: str, port: int, tls: bool, path: str) -> str:
    reader, writer = await asyncio.open_connection(address, port, ssl=_SSL if tls else None,
                                                   server_hostname=(check.host or address) if tls else None)
    try:
        host = check.host or address
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: exha-lb-health\r\n"
                     f"Connection: close\r\n\r\n".encode())
        await writer.drain()
        line = await reader.readline()
        parts = line.split()
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ProbeFailure(f"{path}: no HTTP status line ({line[:40]!r})")
        status = int(parts[1])
        if not check.accepts(status):
            raise ProbeFailure(f"{path}: HTTP {status} not accepted")
        return f"HTTP {status}"
    finally:
        writer.transport.abort()


class ProbeFailure(Exception):
    """The server answered, but not as a healthy one."""


async def probe(check: HealthCheck, address: str, port: int) -> ProbeResult:
    """Run one check against address:port within check.timeout."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(check.timeout):
            if check.kind in ("tcp", "none"):
                detail = await _tcp(address, port)
            elif check.kind == "smtp":
                detail = await _smtp(address, port)
            else:
                results = []
                for path in check.paths:
                    try:
                        results.append((True, await _http(check, address, port, check.kind == "https", path)))
                    except ProbeFailure as exc:
                        results.append((False, str(exc)))
                    if check.require == "any" and results[-1][0]:
                        break
                bad = [d for ok, d in results if not ok]
                good = [d for ok, d in results if ok]
                if (check.require == "all" and bad) or (check.require == "any" and not good):
                    raise ProbeFailure("; ".join(bad))
                detail = f"{good[-1]} on {len(good)} path(s)"
        return ProbeResult(True, detail, (time.monotonic() - start) * 1000)
    except TimeoutError:
        return ProbeResult(False, f"timeout after {check.timeout:g}s", (time.monotonic() - start) * 1000)
    except ProbeFailure as exc:
        return ProbeResult(False, str(exc), (time.monotonic() - start) * 1000)
    except (OSError, ssl.SSLError, EOFError, asyncio.IncompleteReadError) as exc:
        if isinstance(exc, OSError) and exc.errno:
            text = os.strerror(exc.errno)
        else:
            text = str(exc) or type(exc).__name__
        return ProbeResult(False, text, (time.monotonic() - start) * 1000)


# -- the monitor ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One real server of one service, as the health checker sees it."""

    key: str
    service: str
    address: str
    port: int
    check: HealthCheck


@dataclass
class Status:
    target: Target
    state: CheckState
    last: ProbeResult | None = None
    last_at: float = 0.0


class TableLike(Protocol):
    """What the monitor needs from the shared server table."""

    def slot(self, key: str) -> int: ...
    def set_up(self, slot: int, up: bool) -> bool: ...
    def take_passive(self, slot: int) -> bool: ...


class Monitor:
    """One probe loop per target; keeps CheckState across reloads for targets that stay."""

    def __init__(self, table: TableLike) -> None:
        self.table = table
        self.status: dict[str, Status] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def apply(self, targets: list[Target]) -> None:
        """Start, keep or stop probe loops so they match `targets`."""
        wanted = {t.key: t for t in targets}
        for key in list(self._tasks):
            if key not in wanted or self.status[key].target != wanted[key]:
                self._tasks.pop(key).cancel()
        for key in list(self.status):
            if key not in wanted:
                del self.status[key]
        for key, target in wanted.items():
            st = self.status.get(key)
            self.status[key] = Status(target, st.state if st else CheckState(), st.last if st else None,
                                      st.last_at if st else 0.0)
            if key not in self._tasks:
                self._tasks[key] = asyncio.get_running_loop().create_task(self._loop(key))

    async def _loop(self, key: str) -> None:
        slot = self.table.slot(key)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            st = self.status[key]
            t = st.target
            if self.table.take_passive(slot):
                st.state = passive_down(st.state)
            if t.check.kind == "none" and st.state.up:
                await asyncio.sleep(min(t.check.interval, 1.0))  # only passive failures matter; watch for them
                continue
            result = await probe(t.check, t.address, t.port)
            st = self.status.get(key)
            if st is None or st.target != t:
                return
            if self.table.take_passive(slot):
                st.state = passive_down(st.state)
            before = st.state
            st.state = observe(before, result.ok, t.check.rise if before.checked else 1, t.check.fall)
            st.last, st.last_at = result, time.time()
            if self.table.set_up(slot, st.state.up) or (not before.checked):
                log.event(log.health, logging.WARNING if not st.state.up else logging.INFO,
                          "server_up" if st.state.up else "server_down", service=t.service,
                          server=f"{t.address}:{t.port}", check=t.check.kind, reason=result.detail,
                          elapsed_ms=f"{result.elapsed_ms:.1f}")
            elif not result.ok:
                log.event(log.health, logging.DEBUG, "check_failed", service=t.service,
                          server=f"{t.address}:{t.port}", reason=result.detail)
            await asyncio.sleep(max(0.0, started + t.check.interval - loop.time()))  # a probe every interval

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
