"""Start-up, signals, reload and ordered shutdown of the balancer (one process, or a supervisor with workers).

workers = 1: one process runs the data plane, health checks and admin API on one event loop.
workers > 1: the supervisor runs health checks, the admin API and nftables; N forked workers each run the
data plane on their own SO_REUSEPORT listeners. State is shared through ServerTable and SharedSourceMemory.
SIGHUP reloads (a bad config is logged and the old one kept), SIGTERM/SIGINT stop gracefully.
SIGUSR1 means "look at the shared table": the supervisor sends it to every worker when a server's state changes
(a health check, the admin API, a reload) or when it wants fresh counters; a worker that marks a server down
sends it to the supervisor, which passes it on. So workers react at once and need no polling timer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable

from lb import log, nft
from lb.admin import Admin, View
from lb.config import Config, load
from lb.dataplane import Dataplane
from lb.errors import ConfigError, NftError
from lb.handoff import Handoff
from lb.health import Monitor, Target
from lb.persistence import SharedSourceMemory
from lb.state import DRAIN, ENABLED, ServerTable


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when installed, else the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def targets(config: Config) -> list[Target]:
    """What the health checker probes: one target per real server of each service."""
    out = []
    for vs in config.virtual_services:
        for rs in vs.real_servers:
            port = vs.health.port or rs.port or vs.server_port or (vs.ports[0] if vs.ports else 0)
            out.append(Target(rs.key(vs.name), vs.name, rs.address, port, vs.health))
    return out


def redirects(config: Config) -> list[nft.Redirect]:
    """nftables redirects for every port-`*` service, sparing ports other listeners on that VIP own."""
    out = []
    for vs in config.virtual_services:
        if vs.wildcard:
            other = [p for o in config.virtual_services if o.vip == vs.vip and o.ports for p in o.ports]
            if config.admin.address == vs.vip:
                other.append(config.admin.port)
            out.append(nft.Redirect(vs.vip, tuple(other)))
    return out


def apply_enabled(table: ServerTable, old: Config | None, new: Config) -> None:
    """Config `enabled` flags become admin states when they are new or changed (API changes otherwise stay)."""
    before = {rs.key(vs.name): rs.enabled for vs in old.virtual_services for rs in vs.real_servers} if old else {}
    for vs in new.virtual_services:
        for rs in vs.real_servers:
            key = rs.key(vs.name)
            slot = table.slot(key)
            if before.get(key) != rs.enabled:
                table.set_admin(slot, ENABLED if rs.enabled else DRAIN)


class Runner:
    """Owns one balancer instance from start to stop."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.config = load(path)
        self.table = ServerTable(self.config.workers)
        self.memory = SharedSourceMemory()
        # long-lived sessions move to the least loaded worker (made here so that every worker inherits it)
        self.handoff = Handoff(self.config.workers) if self.config.workers > 1 else None
        if self.handoff is not None:
            self.handoff.listening = self.table.is_listening
        self.children: dict[int, int] = {}  # pid -> worker index
        self.pidfds: dict[int, int] = {}  # pid -> its pidfd, readable once the worker has exited
        self.polling: asyncio.Task[None] | None = None  # reaps by polling where a pidfd could not be had
        self.dataplane: Dataplane | None = None
        self.monitor: Monitor | None = None
        self.admin: Admin | None = None
        self.stopping = False
        self.started = time.time()
        self.pid = os.getpid()  # the supervisor's, as its workers know it
        apply_enabled(self.table, None, self.config)

    # -- entry ----------------------------------------------------------------------------------------------
    def run(self) -> int:
        log.setup(self.config.log_level)
        if self.config.workers > 1:
            # held until the supervisor's handler is in place (a worker may mark a server down at once)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            for i in range(self.config.workers):
                self._spawn(i)
        with asyncio.Runner(loop_factory=loop_factory()) as r:
            return r.run(self._main())

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        try:
            if self.config.workers == 1:
                self.dataplane = Dataplane(self.table, self.memory, 0)
                await self.dataplane.apply(self.config)
                self.table.set_listening(0, True)
            wanted = redirects(self.config)
            if wanted:  # nothing to redirect: leave nftables alone (no CAP_NET_ADMIN needed)
                nft.install(self.config.nft_table, wanted, self.config.wildcard_port)
            if self.dataplane is not None:
                dp = self.dataplane
                self.table.notify = lambda: loop.call_soon(dp.changed)
            else:
                self.table.notify = self._tell_workers
                loop.add_signal_handler(signal.SIGUSR1, self._tell_workers)  # a worker changed the table
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
            self.monitor = Monitor(self.table)
            self.monitor.apply(targets(self.config))
            self.admin = Admin(View(self.config, self.table, self.monitor, self.started, self.refresh))
            await self.admin.start()
        except (OSError, NftError) as exc:
            log.event(log.runner, logging.ERROR, "start_failed", config=self.path, reason=_reason(exc))
            self._signal_children(signal.SIGTERM)
            await self._shutdown(0.0)
            return 1
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        for pid in list(self.children):  # workers forked before the loop ran
            self._watch(pid)
        log.event(log.runner, logging.INFO, "started", config=self.path, pid=os.getpid(),
                  workers=self.config.workers, services=len(self.config.virtual_services),
                  admin=self.config.admin.listen)
        await stop.wait()
        self.stopping = True
        if self.polling is not None:
            self.polling.cancel()
        log.event(log.runner, logging.INFO, "stopping", signal="TERM", open=self._open())
        self._signal_children(signal.SIGTERM)
        await self._shutdown(self.config.stop_timeout)
        log.event(log.runner, logging.INFO, "stopped")
        return 0

    def _tell_workers(self) -> None:
        """The shared table changed: every worker looks at it now."""
        self._signal_children(signal.SIGUSR1)

    async def refresh(self) -> None:
        """Fresh counters in the shared table before the admin API reads them (at most 0.25 s of waiting)."""
        if self.dataplane is not None:
            self.dataplane.publish()
            return
        request = self.table.request_refresh()
        self._tell_workers()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.25
        while not all(self.table.refreshed(i, request) for i in self.children.values()) and loop.time() < deadline:
            await asyncio.sleep(0.002)

    def _open(self) -> int:
        return sum(self.table.counters(self.table.slot(t.key))[0] for t in targets(self.config))

    async def reload(self) -> bool:
        """Re-read the config; on any problem keep running the old one. True when the new one is in force."""
        try:
            new = load(self.path)
        except ConfigError as exc:
            log.event(log.runner, logging.ERROR, "reload_failed", config=self.path, reason=str(exc), kept="old")
            return False
        if new.workers != self.config.workers:
            log.event(log.runner, logging.WARNING, "reload_note", reason="workers changes need a restart",
                      workers=self.config.workers)
        try:
            if self.dataplane is not None:
                await self.dataplane.apply(new)
            had, wanted = redirects(self.config), redirects(new)
            if had and self.config.nft_table != new.nft_table:
                nft.remove(self.config.nft_table)
            if had or wanted:
                nft.install(new.nft_table, wanted, new.wildcard_port)
        except (OSError, NftError) as exc:
            log.event(log.runner, logging.ERROR, "reload_failed", config=self.path, reason=_reason(exc),
                      kept="old")
            if self.dataplane is not None:
                await self.dataplane.apply(self.config)
            return False
        apply_enabled(self.table, self.config, new)
        old, self.config = self.config, new
        if self.monitor is not None:
            self.monitor.apply(targets(new))
        if self.admin is not None:
            self.admin.view.config = new
        if self.admin is not None and old.admin.listen != new.admin.listen:
            self.admin.close()
            await self.admin.start()
        self._signal_children(signal.SIGHUP)
        log.event(log.runner, logging.INFO, "reloaded", config=self.path, services=len(new.virtual_services))
        return True

    async def _shutdown(self, timeout: float) -> None:
        if self.admin is not None:
            self.admin.close()
        if self.dataplane is not None:
            self.dataplane.close_listeners()
            await self.dataplane.drain(timeout)
        deadline = time.monotonic() + timeout + 2
        while self.children and time.monotonic() < deadline:
            self._reap()
            await asyncio.sleep(0.05)
        self._signal_children(signal.SIGKILL)
        if self.handoff is not None:
            self.handoff.close()
        if self.monitor is not None:
            await self.monitor.close()
        try:
            if redirects(self.config):
                nft.remove(self.config.nft_table)
        except NftError as exc:
            log.event(log.runner, logging.ERROR, "nft_remove_failed", reason=str(exc))

    # -- workers --------------------------------------------------------------------------------------------
    def _spawn(self, index: int) -> int:
        """Fork worker `index`; returns its pid (in the supervisor; the worker never returns)."""
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})  # the worker unblocks it when ready
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            self.children[pid] = index
            return pid
        for fd in self.pidfds.values():  # the worker has no use for its siblings' pidfds
            os.close(fd)
        self.pidfds = {}
        code = 1
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            die_with_parent()
            asyncio.events._set_running_loop(None)  # forked from inside the supervisor's running loop
            asyncio.set_event_loop_policy(None)
            with asyncio.Runner(loop_factory=loop_factory()) as r:
                code = r.run(self._worker(index))
        except BaseException:  # the worker must never return into the supervisor's code
            log.root.exception("worker %d crashed", index)
        finally:
            os._exit(code)

    async def _worker(self, index: int) -> int:
        loop = asyncio.get_running_loop()
        self.children = {}
        dp = Dataplane(self.table, self.memory, index, self.handoff)
        try:
            await dp.apply(self.config)
        except OSError as exc:
            log.event(log.runner, logging.ERROR, "worker_failed", worker=index, reason=str(exc))
            return 1
        self.table.set_listening(index, True)
        if self.handoff is not None:
            self.handoff.start(loop, index, dp.adopt)
        log.event(log.runner, logging.INFO, "worker_started", worker=index, pid=os.getpid())
        stop = asyncio.Event()
        supervisor = self.pid

        def tell_supervisor() -> None:  # this worker changed the table (a passive mark): the supervisor tells all
            try:
                os.kill(supervisor, signal.SIGUSR1)
            except ProcessLookupError:
                pass

        async def reload() -> None:
            try:
                new = load(self.path)
                await dp.apply(new)
                self.config = new
            except (ConfigError, OSError) as exc:
                log.event(log.runner, logging.ERROR, "reload_failed", worker=index, reason=str(exc), kept="old")

        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, lambda: None)  # the supervisor decides
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload()))
        loop.add_signal_handler(signal.SIGUSR1, dp.refresh)
        self.table.notify = tell_supervisor
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        await stop.wait()
        dp.close_listeners()
        self.table.set_listening(index, False)
        await dp.drain(self.config.stop_timeout)
        return 0

    def _watch(self, pid: int) -> None:
        """Reap (and respawn) the worker the moment it exits: its pidfd turns readable. uvloop keeps SIGCHLD for
        itself, and polling waitpid would wake the supervisor several times a second for nothing."""
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(pid)
        except (OSError, AttributeError):  # no pidfd (Linux < 5.3, or out of fds): reap by polling
            if self.polling is None:
                self.polling = loop.create_task(self._poll_children())
            return
        self.pidfds[pid] = fd
        loop.add_reader(fd, self._exited, pid)

    def _exited(self, pid: int) -> None:
        fd = self.pidfds.pop(pid)
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        self._reap()

    async def _poll_children(self) -> None:
        """Without pidfds: reap and respawn workers by polling."""
        while True:
            await asyncio.sleep(0.2)
            self._reap()

    def _signal_children(self, sig: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                self.children.pop(pid, None)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            index = self.children.pop(pid, None)
            if index is None:
                continue
            self.table.set_listening(index, False)  # a killed worker could not say so itself
            if not self.stopping:
                log.event(log.runner, logging.ERROR, "worker_exited", worker=index, pid=pid,
                          status=os.waitstatus_to_exitcode(status), action="respawn")
                self._watch(self._spawn(index))


def _reason(exc: Exception) -> str:
    """What went wrong, in one line: an OS error's own words, or the error's message."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def die_with_parent() -> None:
    """Ask the kernel to send SIGTERM to this worker if the supervisor dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def run(path: str) -> int:
    """`exha-lb run`: raises ConfigError before anything starts when the config is bad."""
    return Runner(path).run()
