"""The data plane: listeners per virtual service, server choice, and the Protocol-based TCP/TLS proxy (HTTP
mode builds on it in lb/httpmode.py; plain TCP runs on raw sockets in lb/splice.py).

One `Dataplane` per process. It reads server state from the shared ServerTable, marks a server down the moment
a connect to it fails (and retries the client elsewhere), closes or drains connections when servers go down
or are disabled, and swaps its configuration in place on reload without touching established connections.
Its timers (the `Keeper`) are armed only while there is something to time: an idle process sets none.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable

from lb import log, poller, splice
from lb.config import Config, VirtualService
from lb.handoff import PULSE, Handoff, Moved
from lb.persistence import SharedSourceMemory, SourceTable, cookie_value
from lb.scheduling import Scheduler, make
from lb.sockopts import original_dst, transparent_socket
from lb.state import DISABLED, DRAIN, ServerTable

MOVE_BATCH = 256  # long-lived sessions one pulse passes to another worker at most
SWEEP = 1.0  # longest period of the idle/drain sweep; shorter when a service's idle or drain timeout is short
HIGH_WATER = 256 * 1024


class Backend:
    """One real server of one service, in this process: counters and open sessions."""

    __slots__ = ("key", "service", "address", "port", "weight", "slot", "total", "bytes_in", "bytes_out",
                 "sessions", "current_weight", "cookie")

    def __init__(self, key: str, service: str, address: str, port: int | None, weight: int, slot: int) -> None:
        self.key, self.service, self.address, self.port, self.weight = key, service, address, port, weight
        self.slot = slot
        self.total = self.bytes_in = self.bytes_out = 0
        self.sessions: set[Session | splice.RawSession] = set()  # open now: joining and leaving are idempotent
        self.current_weight = 0
        self.cookie = cookie_value(address)

    @property
    def active(self) -> int:
        """Sessions open to this server in this process."""
        return len(self.sessions)


class ServiceRuntime:
    """A virtual service as the data plane runs it: its backends, scheduler, persistence and TLS contexts."""

    def __init__(self, vs: VirtualService, backends: list[Backend], table: ServerTable,
                 persist: SourceTable | None, by_header: SourceTable | None = None) -> None:
        self.vs = vs
        self.name = vs.name
        self.backends = backends
        self.table = table
        self.persist = persist
        self.scheduler: Scheduler = make(vs.scheduler)
        self.by_address = {b.address: b for b in backends}
        self.by_cookie = {b.cookie: b for b in backends}
        self.server_ssl = _server_context(vs) if vs.tls.offload else None
        self.client_ssl = _client_context(vs) if vs.tls.reencrypt else None
        self.http = vs.mode == "http"
        self.cookie_name = vs.persistence.cookie_name.encode() if vs.persistence.kind == "cookie" else b""
        # header persistence (HTTP mode): the header's lower-case name, the lower-case path prefixes, the table
        self.header = vs.persistence.header.lower().encode()
        self.header_paths = tuple(p.lower().encode() for p in vs.persistence.header_paths)
        self.by_header = by_header
        self.connect_timeout = vs.timeouts.connect
        self.generation = -1  # of the shared table when `ready` was worked out
        self.ready: list[Backend] = []  # the servers that may take new clients (weight > 0, up and enabled)

    def for_cookie(self, cookie: str, exclude: set[Backend] | None = None) -> Backend | None:
        """The server persistence cookie `cookie` names, if it may take clients now."""
        b = self.by_cookie.get(cookie)
        return b if b is not None and self.table.available(b.slot) and (not exclude or b not in exclude) else None

    def persisted(self, table: SourceTable, key: str | bytes, now: float,
                  exclude: set[Backend] | None = None) -> Backend | None:
        """The server `key` (a client address, a header's value) went to last in `table`, if it may take
        clients now."""
        addr = table.get(key, now)
        b = self.by_address.get(addr) if addr is not None else None
        return b if b is not None and self.table.available(b.slot) and (not exclude or b not in exclude) else None

    def choose(self, client_ip: str, exclude: set[Backend] | None, cookie: str | None) -> Backend | None:
        table = self.table
        if cookie is not None:
            b = self.for_cookie(cookie, exclude)
            if b is not None:
                return b
        persist = self.persist
        if persist is not None:
            now = time.monotonic()
            b = self.persisted(persist, client_ip, now, exclude)
            if b is not None:
                persist.put(client_ip, b.address, now)
                return b
        gen = table.generation()
        if gen != self.generation:  # availability changes only with the shared table's generation
            self.generation = gen
            self.ready = [b for b in self.backends if b.weight > 0 and table.available(b.slot)]
        cands = self.ready if not exclude else [b for b in self.ready if b not in exclude]
        if not cands:
            return None
        b = self.scheduler.pick(cands)  # type: ignore[assignment]
        if persist is not None:
            persist.put(client_ip, b.address, time.monotonic())
        return b

    def target_port(self, b: Backend, dst_port: int) -> int:
        if b.port is not None:
            return b.port
        if self.vs.server_port is not None:
            return self.vs.server_port
        return dst_port


def _server_context(vs: VirtualService) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(vs.tls.cert, vs.tls.key)
    return ctx


def _client_context(vs: VirtualService) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=vs.tls.ca_file or None)
    if not vs.tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Upstream(asyncio.Protocol):
    """The server side of one proxied connection."""

    __slots__ = ("s", "b")

    def __init__(self, session: Session, backend: Backend) -> None:
        self.s = session
        self.b = backend

    def data_received(self, data: bytes) -> None:
        s = self.s
        s.last = s.loop.time()
        self.b.bytes_out += len(data)
        s.transport.write(data)

    def eof_received(self) -> bool:
        return self.s.half_close(from_client=False)

    def pause_writing(self) -> None:
        self.s.transport.pause_reading()

    def resume_writing(self) -> None:
        self.s.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.s.upstream_lost()


class Session(asyncio.Protocol):
    """The client side of one proxied connection; owns the pairing with its Upstream."""

    upstream_class: type[Upstream] = Upstream

    __slots__ = ("listener", "loop", "transport", "upstream", "backend", "service", "client_ip", "dst_port",
                 "pending", "last", "closed", "eofs", "timed_out", "task",
                 "connect_deadline")

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.loop = listener.loop
        self.upstream: asyncio.Transport | None = None
        self.backend: Backend | None = None
        self.pending: list[bytes] = []
        self.closed = False
        self.eofs = 0
        self.task: asyncio.Task[None] | None = None

    # -- client events ------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.last = self.loop.time()
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else "0.0.0.0"
        service = self.listener.service
        if service is None:  # port `*`: find the service by the original destination
            try:
                dst_ip, self.dst_port = original_dst(transport.get_extra_info("socket"))
            except OSError:
                dst_ip, self.dst_port = "", 0
            service = self.listener.wildcard.get(dst_ip)
            if service is None:
                transport.abort()
                self.closed = True
                return
        else:
            self.dst_port = self.listener.port
        self.service = service
        if not service.http:
            transport.pause_reading()
            self.task = self.loop.create_task(self._connect(None))
        else:
            self.listener.keeper.wait_started(self)  # until its first request head arrives (idle timeout applies)

    def data_received(self, data: bytes) -> None:
        self.last = self.loop.time()
        up = self.upstream
        if up is not None:
            self.backend.bytes_in += len(data)  # type: ignore[union-attr]
            up.write(data)
            return
        self.pending.append(data)  # while the connect is under way

    def eof_received(self) -> bool:
        if self.upstream is None:
            if not self.transport.can_write_eof():
                self._close()
                return False
            self.eofs = -1  # the client finished sending while we connect: pass the EOF on after attaching
            return True
        return self.half_close(from_client=True)

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._close()

    # -- pairing ------------------------------------------------------------------------------------------
    async def _connect(self, cookie: str | None) -> None:
        service = self.service
        exclude: set[Backend] | None = None
        while not self.closed:
            b = service.choose(self.client_ip, exclude, cookie)
            if b is None:
                log.event(log.access, logging.WARNING, "no_server", service=service.name, client=self.client_ip)
                self.no_server()
                return
            port = service.target_port(b, self.dst_port)
            self.timed_out = False
            self.connect_deadline = self.loop.time() + service.connect_timeout
            connecting = self.listener.keeper.connecting
            self.listener.keeper.connect_started(self)  # one timer for all pending connects, none per connect
            try:
                if service.vs.transparent:
                    sock = transparent_socket(self.client_ip)
                    try:
                        await self.loop.sock_connect(sock, (b.address, port))
                    except BaseException:
                        sock.close()
                        raise
                    tr, _ = await self.loop.create_connection(
                        lambda: self.upstream_class(self, b), sock=sock, ssl=service.client_ssl,
                        server_hostname=(service.vs.tls.server_name or b.address) if service.client_ssl else None)
                else:
                    tr, _ = await self.loop.create_connection(
                        lambda: self.upstream_class(self, b), b.address, port, ssl=service.client_ssl,
                        server_hostname=(service.vs.tls.server_name or b.address) if service.client_ssl else None)
            except (OSError, ssl.SSLError, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and not self.timed_out:
                    raise
                if self.listener.table.mark_passive_down(b.slot):
                    log.event(log.health, logging.WARNING, "server_down", service=service.name,
                              server=f"{b.address}:{port}", check="passive",
                              reason="TimeoutError" if self.timed_out else
                              (getattr(exc, "strerror", None) or type(exc).__name__))
                exclude = (exclude or set()) | {b}
                continue
            finally:
                connecting.discard(self)
            if self.closed:
                tr.close()
                return
            self._attach(b, tr)  # type: ignore[arg-type]
            return

    def no_server(self) -> None:
        """No server can take this client."""
        self._close()

    def connect_timed_out(self) -> None:
        """The connect to a server took longer than the service's connect timeout: give up on that server."""
        self.timed_out = True
        if self.task is not None:
            self.task.cancel()

    def _pair(self, b: Backend, tr: asyncio.Transport) -> None:
        """Take `tr`, a new connection to `b`, as this session's server side (counted on `b`)."""
        tr.set_write_buffer_limits(HIGH_WATER)
        self.transport.set_write_buffer_limits(HIGH_WATER)
        self.upstream = tr
        self.backend = b
        b.total += 1
        b.sessions.add(self)

    def _attach(self, b: Backend, tr: asyncio.Transport) -> None:
        self._pair(b, tr)
        if self.pending:
            data = b"".join(self.pending)
            self.pending = []
            b.bytes_in += len(data)
            tr.write(data)
        if self.eofs == -1:
            self.eofs = 0
            self.half_close(from_client=True)
            return
        self.transport.resume_reading()

    def half_close(self, from_client: bool) -> bool:
        """One side sent EOF: pass it on; close both once both sides are done."""
        self.eofs += 1
        other = self.upstream if from_client else self.transport
        if self.eofs >= 2 or other is None or not other.can_write_eof():
            self._close()
            return False
        try:
            other.write_eof()
        except (OSError, RuntimeError):
            self._close()
            return False
        return True

    def upstream_lost(self) -> None:
        self._close()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.listener.keeper.waiting.discard(self)
        self.transport.close()
        if self.upstream is not None:
            self.upstream.close()
        if self.backend is not None:
            self.backend.sessions.discard(self)

    def abort(self) -> None:
        """Close both sides now, dropping unsent data."""
        if self.closed:
            return
        self.closed = True
        self.listener.keeper.waiting.discard(self)
        self.transport.abort()
        if self.upstream is not None:
            self.upstream.abort()
        if self.backend is not None:
            self.backend.sessions.discard(self)


class Keeper:
    """When this process's housekeeping runs: no periodic tick, timers only while there is something to time.

    Pending connects share one timer, due at the earliest connect deadline (so a timeout is enforced on time, not
    on the next tick). The sweep (idle and drain timeouts, counters) runs every `period` seconds from the first
    session until a sweep finds nothing open. Server state changes reach the process as a signal (lb/runner.py),
    not through a timer. Every wake-up of an idle process costs about 0.1 ms of CPU, so an idle worker sets none.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sweep: Callable[[], bool]) -> None:
        self.loop = loop
        self.sweep = sweep  # True while something is still open
        self.period = SWEEP
        self.connecting: set[Session | splice.RawSession] = set()
        self.waiting: set[Session] = set()  # HTTP-mode clients that have not sent a request head yet
        self.connect_timer: asyncio.TimerHandle | None = None
        self.connect_due = 0.0
        self.sweep_timer: asyncio.TimerHandle | None = None
        # the workers' load sample and placement (lb/handoff.py); pulse(False) only samples
        self.pulse: Callable[[bool], None] | None = None
        self.pulse_timer: asyncio.TimerHandle | None = None

    def connect_started(self, s: Session | splice.RawSession) -> None:
        """`s` is connecting to a server until `s.connect_deadline` (loop time)."""
        self.connecting.add(s)
        due = s.connect_deadline
        timer = self.connect_timer
        if timer is None or due < self.connect_due:
            if timer is not None:
                timer.cancel()
            self.connect_due = due
            self.connect_timer = self.loop.call_at(due, self._connect_check)
        self.wake()

    def wait_started(self, s: Session) -> None:
        """`s` waits for its client's first request head (the idle timeout applies)."""
        self.waiting.add(s)
        self.wake()

    def wake(self) -> None:
        """A session is open: make sure the sweep runs."""
        if self.sweep_timer is None:
            self.sweep_timer = self.loop.call_later(self.period, self._sweep)
        if self.pulse_timer is None and self.pulse is not None:
            self.pulse(False)  # the first sample, so the first pulse already knows this worker's load
            self.pulse_timer = self.loop.call_later(PULSE, self._pulse)

    def _pulse(self) -> None:
        self.pulse_timer = None
        if self.pulse is None:
            return
        try:
            self.pulse(True)
        except Exception:
            log.root.exception("pulse failed")
        if self.sweep_timer is not None:  # something is still open
            self.pulse_timer = self.loop.call_later(PULSE, self._pulse)

    def _sweep(self) -> None:
        self.sweep_timer = None
        try:
            busy = self.sweep()
        except Exception:  # keep sweeping whatever happens; log the cause
            log.root.exception("sweep failed")
            busy = True
        if busy:
            self.wake()

    def _connect_check(self) -> None:
        self.connect_timer = None
        now = self.loop.time() + 0.001  # a timer may fire a little before its due time
        for s in [s for s in self.connecting if s.connect_deadline <= now]:
            self.connecting.discard(s)
            s.connect_timed_out()  # may start the next connect, which arms the timer again
        if self.connecting and self.connect_timer is None:
            self.connect_due = min(s.connect_deadline for s in self.connecting)
            self.connect_timer = self.loop.call_at(self.connect_due, self._connect_check)

    def stop(self) -> None:
        for timer in (self.connect_timer, self.sweep_timer, self.pulse_timer):
            if timer is not None:
                timer.cancel()
        self.connect_timer = self.sweep_timer = self.pulse_timer = None


class Listener:
    """One listening socket; `service` is swapped on reload. A port-`*` listener has `wildcard` instead."""

    def __init__(self, loop: asyncio.AbstractEventLoop, table: ServerTable, address: str, port: int,
                 keeper: Keeper, handoff: Handoff | None = None) -> None:
        self.loop, self.table, self.address, self.port = loop, table, address, port
        self.keeper = keeper  # the process's: its pending connects and waiting clients
        self.handoff = handoff  # the workers' (lb/handoff.py), when there are several
        self.service: ServiceRuntime | None = None
        self.wildcard: dict[str, ServiceRuntime] = {}
        self.server: asyncio.AbstractServer | None = None
        self.raw_sock: socket.socket | None = None
        self.poller: poller.Poller | None = None

    async def start(self, ssl_ctx: ssl.SSLContext | None, raw: bool = False) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # accepted sockets inherit it: without it the last short segment of a large answer can wait for the
        # client's delayed ACK (Nagle), 40 ms on Linux
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.address, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(4096)
        sock.setblocking(False)
        if raw:
            self.raw_sock = sock
            self.poller = poller.for_loop(self.loop)
            self.loop.add_reader(sock.fileno(), splice.accept, self, sock)
            return
        from lb.httpmode import HttpSession  # it builds on this module's Session

        def session() -> Session:  # per-request routing for an HTTP-mode service (looked up per connection:
            service = self.service  # a reload may change the mode)
            return HttpSession(self) if service is not None and service.http else Session(self)

        self.server = await self.loop.create_server(session, sock=sock, ssl=ssl_ctx, backlog=4096)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.raw_sock is not None:
            self.loop.remove_reader(self.raw_sock.fileno())
            self.raw_sock.close()
            self.raw_sock = None


class Dataplane:
    """Every listener and session of this process; `apply` swaps configuration in place."""

    def __init__(self, table: ServerTable, memory: SharedSourceMemory, worker: int = 0,
                 handoff: Handoff | None = None) -> None:
        self.table = table
        self.memory = memory
        self.worker = worker
        self.loop = asyncio.get_running_loop()
        self.listeners: dict[tuple[str, int, str], Listener] = {}
        self.services: dict[str, ServiceRuntime] = {}
        self.backends: dict[str, Backend] = {}
        self.persist: dict[str, SourceTable] = {}
        self.generation = -1
        self.retired: dict[str, tuple[Backend, float]] = {}
        self.keeper = Keeper(self.loop, self.sweep)
        self.handoff = handoff
        # where sessions passed from another worker live: a listener of this process that never listens
        self.home = Listener(self.loop, table, "", 0, self.keeper, handoff)
        self.config: Config | None = None

    async def apply(self, config: Config) -> None:
        """Switch to `config`; on a bind error the old configuration stays in force (and the error is raised)."""
        backends: dict[str, Backend] = {}
        services: dict[str, ServiceRuntime] = {}
        persist: dict[str, SourceTable] = {}

        def shared(name: str, timeout: float) -> SourceTable:  # one table per name: a group's services share it
            persist[name] = persist.get(name) or self.memory.table(name, timeout)
            return persist[name]

        for vs in config.virtual_services:
            blist = []
            for rs in vs.real_servers:
                key = rs.key(vs.name)
                old = self.backends.get(key)
                b = old if old is not None else Backend(key, vs.name, rs.address, rs.port, rs.weight,
                                                        self.table.slot(key))
                b.weight = rs.weight
                backends[key] = b
                blist.append(b)
            p, base = vs.persistence, vs.persistence.table_name(vs.name)
            table = shared(base, p.timeout) if "source_ip" in (p.kind, p.fallback) else None
            by_header = shared(f"{base}/header:{p.header.lower()}", p.timeout) if p.header else None
            services[vs.name] = ServiceRuntime(vs, blist, self.table, table, by_header)
        # listeners: bind what is new first, so a failure leaves the running config alone
        def kind(rt: ServiceRuntime) -> str:
            if rt.server_ssl is not None:
                return "tls"
            raw = config.splice and splice.AVAILABLE and not rt.http and rt.client_ssl is None
            return "raw" if raw else "proto"

        wanted: dict[tuple[str, int, str], list[ServiceRuntime]] = {}
        wild = [rt for rt in services.values() if rt.vs.wildcard]
        if wild:
            wild_kind = "raw" if all(kind(rt) == "raw" for rt in wild) else "proto"
            wanted[("0.0.0.0", config.wildcard_port, wild_kind)] = wild
        for rt in services.values():
            for port in rt.vs.ports or ():
                wanted.setdefault((rt.vs.vip, port, kind(rt)), []).append(rt)
        created: dict[tuple[str, int, str], Listener] = {}
        try:
            for key, rts in wanted.items():
                if key in self.listeners and key[2] != "tls":
                    continue
                lst = Listener(self.loop, self.table, key[0], key[1], self.keeper, self.handoff)
                # a TLS listener is re-created to pick up new certificates
                await lst.start(rts[0].server_ssl, raw=key[2] == "raw")
                created[key] = lst
        except OSError as exc:
            for lst in created.values():
                lst.close()
            raise OSError(exc.errno, f"cannot listen on {key[0]}:{key[1]}: {exc.strerror}") from exc
        for key in [k for k in self.listeners if k not in wanted or k in created]:
            self.listeners.pop(key).close()
        self.listeners.update(created)
        for key, rts in wanted.items():
            lst = self.listeners[key]
            if key[0] == "0.0.0.0" and rts[0].vs.wildcard:
                lst.service = None
                lst.wildcard = {rt.vs.vip: rt for rt in rts}
            else:
                lst.service = rts[0]
        now = time.time()
        for key, b in self.backends.items():
            if key not in backends and b.sessions:  # removed from the config: sessions end by drain timeout
                old = self.services.get(b.service)
                self.retired[key] = (b, now + (old.vs.timeouts.drain if old else 0.0))
        self.backends, self.services, self.persist, self.config = backends, services, persist, config
        self.generation = -1
        if self.handoff is not None:
            self.handoff.below = config.consolidate_below
            self.keeper.pulse = self.pulse if config.consolidate_below > 0 else None
        # a tenth of the shortest idle or drain timeout, so neither runs over by more than 10 %
        shortest = min((min(vs.timeouts.idle, vs.timeouts.drain) for vs in config.virtual_services), default=SWEEP)
        self.keeper.period = min(SWEEP, max(0.05, shortest / 10))
        self.changed()
        if self.retired:
            self.keeper.wake()

    def adopt(self, moved: Moved) -> None:
        """A long-lived session another worker passed to this one (lb/handoff.py)."""
        if self.home.poller is None:
            self.home.poller = poller.for_loop(self.loop)
        rt = self.services.get(moved.service)
        b = self.backends.get(moved.backend)
        if b is None:  # this worker has reloaded to a config without that server: it drains as a removed one
            b = self.retired.get(moved.backend, (None, 0.0))[0]
            if b is None:  # named as its key says ("service/address:port"), so its log lines name it
                address, _, port = moved.backend.rpartition("/")[2].rpartition(":")
                b = Backend(moved.backend, moved.service, address, int(port) if port.isdigit() else None, 0,
                            self.table.slot(moved.backend))
                drain = rt.vs.timeouts.drain if rt is not None else 0.0
                self.retired[moved.backend] = (b, time.time() + drain)
        splice.RawSession.adopt(self.home, moved, rt, b)

    def pulse(self, place: bool = True) -> None:
        """Every PULSE seconds while something is open: sample this worker's CPU, then pass on the long-lived
        sessions that the load says belong elsewhere (gathered while light, evened out when not)."""
        handoff = self.handoff
        if handoff is None:
            return
        now = time.monotonic()
        handoff.sample(time.process_time(), now)
        if not place:
            return
        worker, count = handoff.surplus(handoff.decide(now))
        count = min(count, MOVE_BATCH)
        if count <= 0:
            return
        for b in list(self.backends.values()):
            for s in list(b.sessions):
                if isinstance(s, splice.RawSession) and s.move(handoff, worker):
                    count -= 1
                    if count == 0:
                        return

    def publish(self) -> None:
        """Write this process's counters into the shared table."""
        table = self.table
        for b in self.backends.values():
            table.write_counters(self.worker, b.slot, b.active, b.total, b.bytes_in, b.bytes_out)

    def refresh(self) -> None:
        """The supervisor's signal: react to server state changes, then write counters and say so."""
        self.changed()
        self.publish()
        self.table.ack_refresh(self.worker)

    def changed(self) -> None:
        """Close the sessions of servers that went down or were disabled (when the shared state has changed)."""
        table = self.table
        gen = table.generation()
        if gen != self.generation:
            self.generation = gen
            for rt in self.services.values():
                for b in rt.backends:
                    if not b.sessions:
                        continue
                    admin = table.admin(b.slot)
                    if admin == DISABLED or (not table.is_up(b.slot) and rt.vs.close_on_server_down):
                        reason = "server_disabled" if admin == DISABLED else "server_down"
                        log.event(log.access, logging.INFO, "close_sessions", service=rt.name,
                                  server=b.address, count=len(b.sessions), reason=reason)
                        for s in list(b.sessions):
                            s.abort()

    def sweep(self) -> bool:
        """Idle and drain timeouts, retired servers, counters; True while any session is still open."""
        table = self.table
        now = splice.CLOCK[0] = self.loop.time()
        self.changed()  # a safety net: changes normally arrive as a signal
        wall = time.time()
        for rt in self.services.values():
            idle = rt.vs.timeouts.idle
            for b in rt.backends:
                draining = table.admin(b.slot) == DRAIN and wall - table.admin_since(b.slot) > rt.vs.timeouts.drain
                for s in list(b.sessions):
                    if draining or now - s.last > idle:
                        s.abort()
        for s in [s for s in self.keeper.waiting if now - s.last > s.service.vs.timeouts.idle]:
            s.abort()
        for key, (b, deadline) in list(self.retired.items()):
            if not b.sessions:
                del self.retired[key]
            elif wall > deadline:
                for s in list(b.sessions):
                    s.abort()
        self.publish()
        return bool(self.keeper.connecting or self.keeper.waiting or self.retired or
                    any(b.sessions for b in self.backends.values()))

    def connections(self) -> int:
        return sum(b.active for b in self.backends.values()) + sum(
            b.active for b, _ in self.retired.values())

    def close_listeners(self) -> None:
        for lst in self.listeners.values():
            lst.close()
        self.listeners.clear()

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for open sessions to end, then abort the rest."""
        deadline = self.loop.time() + timeout
        while self.connections() and self.loop.time() < deadline:
            await asyncio.sleep(0.1)
        for b in list(self.backends.values()) + [b for b, _ in self.retired.values()]:
            for s in list(b.sessions):
                s.abort()
        for s in list(self.keeper.waiting):
            s.abort()
        self.keeper.stop()
        self.publish()
