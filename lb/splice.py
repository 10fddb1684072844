"""Plain TCP services on raw sockets: accept in batches, connect without a task or transport, and move the
bytes with splice(2) through a pipe so they never enter Python.

Used for services in mode `tcp` without TLS when `splice = true` (the default); everything else goes through
the Protocol-based path in dataplane.py. A session's sockets start in the process's Poller (lb/poller.py), which
costs little to enter and leave: right for the many connections that carry one request. A session that has moved
PROMOTE_AFTER requests is long-lived (keep-alive HTTP, Outlook's RPC, an SMTP conversation): it moves to the event
loop's own readers, which wake it without the Poller's second epoll_wait and dispatch (measured: 4-7 % less CPU per
request at a fixed rate, the same at saturation, in docs/benchmarks.md). It goes back to the Poller as soon as
anything but plain reading is needed (a slow receiver, an end). With several workers, a session that turns
long-lived, and later one that is between two exchanges, may be passed to another worker: gathered on one while
the load is light, evened out when it is not (lb/handoff.py). A RawSession offers
the same face to the data plane's housekeeping (`last`, `abort()`, `connect_timed_out()`) as a Protocol session.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
from _socket import socket as Socket  # the C socket type: socket.socket adds a Python layer to every call
from typing import TYPE_CHECKING

from lb import log
from lb.handoff import Handoff, Moved
from lb.poller import ERR, HUP, IN, OUT, RDHUP, Poller
from lb.sockopts import original_dst, transparent_socket

if TYPE_CHECKING:
    from lb.dataplane import Backend, Listener, ServiceRuntime

AVAILABLE = hasattr(os, "splice")
FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
# the sender's end follows these bytes: hold them (MSG_MORE) so that the FIN leaves in the same segment
LAST = FLAGS | getattr(os, "SPLICE_F_MORE", 4)
PIPE_SIZE = 1 << 18
CHUNK = PIPE_SIZE
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
ACCEPT_BATCH = 64
PARKED = -1  # a side taken out of the poller while its last bytes drain
WATCH = IN | RDHUP  # RDHUP: the peer's end arrives with its last bytes, taken in the same round
LOOP = -2  # both sides read through the event loop's own readers (a promoted session)
PROMOTE_AFTER = 4  # client requests moved through the Poller before a session counts as long-lived


class PipePool:
    """Empty pipes to reuse. Bytes normally pass through the one `scratch` pipe and leave it at once; a session
    keeps a pipe only while its receiver is slow, and returns it empty."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self.free: list[tuple[int, int]] = []
        self.scratch: tuple[int, int] | None = None  # made on first use, in the process that splices

    def renew(self) -> tuple[int, int]:
        """A new scratch pipe (none yet, or the last one was retired with a session that kept its bytes)."""
        self.scratch = self.fresh()
        return self.scratch

    def fresh(self) -> tuple[int, int]:
        if self.free:
            return self.free.pop()
        pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:  # a bigger pipe moves a bulk transfer in fewer, larger splices
            fcntl.fcntl(pipe[1], F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # over the user's pipe-buffer allowance: the default size still works
            pass
        return pipe

    def put(self, pipe: tuple[int, int]) -> None:
        if len(self.free) < self.keep:
            self.free.append(pipe)
        else:
            os.close(pipe[0])
            os.close(pipe[1])


POOL = PipePool()
CLOCK = [0.0]  # the loop's time at the last accept or sweep: idle timeouts need no finer clock
_splice = getattr(os, "splice", None)


def accept(listener: Listener, lsock: socket.socket) -> None:
    """Reader callback of a raw listening socket: accept what is waiting, start a session for each.

    Accepted and new sockets are plain C socket objects (`_socket.socket`): socket.socket's accept(), __init__
    and close() are Python code and its family/type properties build enums, about 5 µs per connection."""
    for _ in range(ACCEPT_BATCH):
        try:
            fd, addr = lsock._accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EMFILE and friends: leave the rest in the backlog for now
            log.event(log.access, logging.ERROR, "accept_failed", listener=f"{listener.address}:{listener.port}",
                      reason=os.strerror(exc.errno or 0))
            return
        try:
            csock = Socket(socket.AF_INET, socket.SOCK_STREAM, 0, fd)
        except OSError:  # the client's socket already failed: nothing to serve
            os.close(fd)
            continue
        csock.setblocking(False)
        RawSession(listener, csock, addr[0]).start()


class RawSession:
    """One proxied connection on raw sockets; direction 0 is client->server, 1 is server->client.

    Side 0 is the client socket, side 1 the server socket; direction d reads side d and writes side 1-d.
    Each socket is registered once in the process's Poller; `masks` holds what each side is watched for.
    """

    __slots__ = ("listener", "loop", "poller", "csock", "usock", "cfd", "ufd", "backend", "service", "client_ip",
                 "dst_port", "last", "closed", "connect_deadline", "timed_out", "exclude", "pipes", "pending",
                 "shut", "port", "masks", "rounds")

    def __init__(self, listener: Listener, csock: Socket, client_ip: str) -> None:
        self.listener = listener
        self.loop = listener.loop
        self.poller: Poller = listener.poller  # type: ignore[assignment]
        self.csock = csock
        self.cfd = csock.fileno()
        self.usock: Socket | None = None
        self.ufd = -1
        self.backend: Backend | None = None
        self.client_ip = client_ip
        self.last = CLOCK[0] = self.loop.time()
        self.closed = False
        self.timed_out = False
        self.exclude: set[Backend] | None = None
        self.pipes: list[tuple[int, int] | None] = [None, None]
        self.pending = [0, 0]
        self.shut = [False, False]
        self.port = 0
        self.masks = [0, 0]
        self.rounds = 0

    def start(self) -> None:
        service = self.listener.service
        if service is None:
            try:
                dst_ip, self.dst_port = original_dst(self.csock)
            except OSError:
                dst_ip, self.dst_port = "", 0
            service = self.listener.wildcard.get(dst_ip)
            if service is None:
                self.csock.close()
                self.closed = True
                return
        else:
            self.dst_port = self.listener.port
        self.service: ServiceRuntime = service
        self._try_connect()

    # -- connecting -----------------------------------------------------------------------------------------
    def _try_connect(self) -> None:
        service = self.service
        b = service.choose(self.client_ip, self.exclude, None)
        if b is None:
            log.event(log.access, logging.WARNING, "no_server", service=service.name, client=self.client_ip)
            self._close()
            return
        self.backend = b
        self.port = service.target_port(b, self.dst_port)
        try:
            if service.vs.transparent:
                sock = transparent_socket(self.client_ip)
            else:
                sock = Socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            self._connect_failed(exc.errno or errno.EIO)
            return
        self.usock, self.ufd = sock, sock.fileno()
        addr = (b.address, self.port)
        err = sock.connect_ex(addr)
        if err == errno.EINPROGRESS:
            # ask once more: a server on this host (or a fast one) has answered before connect() returned, and
            # then the session starts now, without a round through the poller for the connect's completion
            err = sock.connect_ex(addr)
            if err == errno.EISCONN:
                err = 0
            elif err == errno.EALREADY:
                err = errno.EINPROGRESS
        if err == 0:
            self.listener.keeper.wake()
            self._connected()
        elif err == errno.EINPROGRESS:
            self.timed_out = False
            self.connect_deadline = self.loop.time() + service.connect_timeout
            self.listener.keeper.connect_started(self)  # one timer for all connects
            self.poller.watch(self.ufd, OUT, self._on_connect)
        else:
            self._connect_failed(err)

    def _on_connect(self, events: int) -> None:
        self.listener.keeper.connecting.discard(self)
        if events & (ERR | HUP):  # a failed connect reports an error; a good one only that it can write
            err = self.usock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)  # type: ignore[union-attr]
            self._connect_failed(err or errno.ECONNREFUSED)
        else:
            self._connected()

    def connect_timed_out(self) -> None:
        if self.closed or self.usock is None:
            return
        self.timed_out = True
        self._connect_failed(errno.ETIMEDOUT)

    def _connect_failed(self, err: int) -> None:
        b = self.backend
        if self.usock is not None:
            self.poller.forget(self.ufd)
            self.usock.close()
            self.usock, self.ufd = None, -1
        if b is not None:
            if self.listener.table.mark_passive_down(b.slot):
                log.event(log.health, logging.WARNING, "server_down", service=self.service.name,
                          server=f"{b.address}:{self.port}", check="passive",
                          reason="TimeoutError" if self.timed_out else os.strerror(err))
            self.exclude = (self.exclude or set()) | {b}
            self.backend = None
        if self.closed:
            return
        self._try_connect()

    def _connected(self) -> None:
        b = self.backend
        if b is None:
            return
        b.total += 1
        b.sessions.add(self)  # type: ignore[arg-type]
        self._watch_both()
        self._pump(0)  # most clients have spoken by now (HTTP); for those that wait (SMTP) this is one EAGAIN

    # -- events ---------------------------------------------------------------------------------------------
    def _client_event(self, events: int) -> None:
        if events == IN and self.masks[0] == WATCH:  # the common case: bytes to move, nothing else going on
            if self._pump(0):
                self.rounds += 1
                if self.rounds == PROMOTE_AFTER:
                    self._long_lived()
        else:
            self._event(0, events)

    def _server_event(self, events: int) -> None:
        if events == IN and self.masks[1] == WATCH:
            self._pump(1)
        else:
            self._event(1, events)

    def _event(self, side: int, events: int) -> None:
        """`side`'s socket is ready: write what the other direction holds, read what this one brings."""
        if events & ERR:
            self._close()
            return
        if events & OUT:
            self._flush(1 - side)
            if self.closed:
                return
        if events & (IN | HUP):
            if self.masks[side] & IN:
                if not events & RDHUP:
                    self._pump(side)
                elif self._pump(side, LAST) and not self.closed and self.masks[side] & IN:
                    # the peer has finished sending: take its end now, not on the next round; the shutdown
                    # sends the bytes just held back together with the FIN (one segment, as HAProxy does)
                    self._pump(side)
            elif events & HUP and not self.closed:  # both directions of this socket are over
                if self.pipes[side] is None:
                    self._close()
                else:  # its last bytes still wait for the other side: stop hearing HUP until they are gone
                    self._park(side)

    def _long_lived(self) -> None:
        """The session has carried PROMOTE_AFTER requests: pass it to the worker the load says (lb/handoff.py),
        or keep it and, when nothing else is going on, promote it."""
        handoff = self.listener.handoff
        if self.masks[1] == WATCH:
            if handoff is not None:
                worker = handoff.target()
                if worker >= 0 and self._hand_off(handoff, worker):
                    return
            self._promote()
        if handoff is not None:
            handoff.held(1)

    def _hand_off(self, handoff: Handoff, worker: int) -> bool:
        """Give both sockets to `worker`; True when it has them (this process then forgets the session)."""
        b: Backend = self.backend  # type: ignore[assignment]
        promoted = self.masks[0] == LOOP
        # out of the poller (or the loop's readers) first: epoll would go on reporting a socket that another
        # process still holds open
        if promoted:
            self._leave_loop()
        else:
            self.poller.unwatch(self.cfd)
            self.poller.unwatch(self.ufd)
        moved = Moved(self.cfd, self.ufd, self.service.name, b.key, self.client_ip, self.dst_port, handoff.index)
        if not handoff.send(worker, moved):
            if promoted:
                self._promote()
            else:
                self._watch_both()
            return False
        self.closed = True
        self.csock.close()
        self.usock.close()  # type: ignore[union-attr]
        b.sessions.discard(self)  # type: ignore[arg-type]
        if promoted:
            handoff.held(-1)
        return True

    def move(self, handoff: Handoff, worker: int) -> bool:
        """Pass a long-lived session this worker holds to `worker` (lb/handoff.py), if it is between two
        exchanges (read through the loop, nothing waiting in a pipe); True when it went."""
        if self.closed or self.masks[0] != LOOP or self.masks[1] != LOOP:
            return False
        return self._hand_off(handoff, worker)

    @classmethod
    def adopt(cls, home: Listener, moved: Moved, service: ServiceRuntime | None, backend: Backend) -> RawSession:
        """Carry on a long-lived session another worker passed to this one: straight onto the loop's readers."""
        s = cls(home, Socket(socket.AF_INET, socket.SOCK_STREAM, 0, moved.client), moved.client_ip)
        usock = Socket(socket.AF_INET, socket.SOCK_STREAM, 0, moved.server)
        s.usock, s.ufd = usock, usock.fileno()
        if service is not None:
            s.service = service
        s.dst_port = moved.dst_port
        s.backend = backend
        s.rounds = PROMOTE_AFTER
        backend.sessions.add(s)  # type: ignore[arg-type]
        s._promote()
        home.handoff.held(1)  # type: ignore[union-attr]
        home.keeper.wake()
        return s

    def _promote(self) -> None:
        """Long-lived: read both sides through the event loop's readers from now on (see the module's doc)."""
        self.poller.unwatch(self.cfd)
        self.poller.unwatch(self.ufd)
        self.masks = [LOOP, LOOP]
        self.loop.add_reader(self.cfd, self._read, 0)
        self.loop.add_reader(self.ufd, self._read, 1)

    def _read(self, d: int) -> None:
        """Event-loop reader of a promoted session's side `d`."""
        try:
            self._pump(d)
        except Exception as exc:  # as in the Poller: a bug ends this connection, not the others
            self.poller.failed(self.cfd if d == 0 else self.ufd, self._read, exc)

    def _demote(self) -> None:
        """Back to the Poller, both sides watched for reading, before any other mask change."""
        self._leave_loop()
        self._watch_both()

    def _leave_loop(self) -> None:
        """Remove a promoted session's event-loop readers."""
        self.loop.remove_reader(self.cfd)
        self.loop.remove_reader(self.ufd)

    def _watch_both(self) -> None:
        """Both sockets in the Poller, watched for reading."""
        self.masks = [WATCH, WATCH]
        self.poller.watch(self.ufd, WATCH, self._server_event)
        self.poller.watch(self.cfd, WATCH, self._client_event)

    def _set(self, side: int, add: int, drop: int) -> None:
        if self.masks[side] == LOOP:
            self._demote()
        old = self.masks[side]
        fd = self.cfd if side == 0 else self.ufd
        if old == PARKED:
            if add:
                self.masks[side] = add
                self.poller.watch(fd, add, self._client_event if side == 0 else self._server_event)
            return
        mask = (old | add) & ~drop
        if mask != old:
            self.masks[side] = mask
            self.poller.modify(fd, mask)

    def _park(self, side: int) -> None:
        """Take `side`'s socket out of the poller for now (level-triggered HUP would be reported on every round)."""
        self.poller.unwatch(self.cfd if side == 0 else self.ufd)
        self.masks[side] = PARKED

    # -- moving bytes ---------------------------------------------------------------------------------------
    def _pump(self, d: int, out_flags: int = FLAGS) -> bool:
        """Move what direction `d` has waiting; True when all of it went through. `out_flags` for the write."""
        if d == 0:
            src, dst = self.cfd, self.ufd
        else:
            src, dst = self.ufd, self.cfd
        pipe = POOL.scratch or POOL.renew()
        try:
            n = _splice(src, pipe[1], CHUNK, None, None, FLAGS)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self._close()
            return False
        if n == 0:
            self._eof(d)
            return False
        self.last = CLOCK[0]
        b = self.backend
        if d == 0:
            b.bytes_in += n  # type: ignore[union-attr]
        else:
            b.bytes_out += n  # type: ignore[union-attr]
        try:
            m = _splice(pipe[0], dst, n, None, None, out_flags)
        except (BlockingIOError, InterruptedError):
            m = 0
        except OSError:
            POOL.scratch = None  # the scratch pipe may hold bytes now: retire it with this session
            self.pipes[d] = pipe
            self._close()
            return False
        if m == n:
            return True
        POOL.scratch = None  # the receiver is slow: this session keeps the pipe and its bytes
        self.pipes[d] = pipe
        self.pending[d] = n - m
        self._set(d, 0, WATCH)
        self._set(1 - d, OUT, 0)
        return False

    def _flush(self, d: int) -> None:
        pipe = self.pipes[d]
        if pipe is None:
            return
        try:
            m = _splice(pipe[0], self.ufd if d == 0 else self.cfd, self.pending[d], None, None, FLAGS)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close()
            return
        self.pending[d] -= m
        if self.pending[d]:
            return
        self.pipes[d] = None
        POOL.put(pipe)
        self._set(1 - d, 0, OUT)
        self._set(d, WATCH, 0)

    def _eof(self, d: int) -> None:
        self.shut[d] = True
        if self.shut[0] and self.shut[1]:
            self._close()
            return
        self._set(d, 0, WATCH)
        try:
            (self.usock if d == 0 else self.csock).shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
        except OSError:
            self._close()

    # -- ending ---------------------------------------------------------------------------------------------
    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        poller = self.poller
        self.listener.keeper.connecting.discard(self)
        if self.rounds >= PROMOTE_AFTER and self.listener.handoff is not None:
            self.listener.handoff.held(-1)
        if self.masks[0] == LOOP:
            self._leave_loop()
        poller.forget(self.cfd)
        self.csock.close()
        if self.usock is not None:
            poller.forget(self.ufd)
            self.usock.close()
        for pipe in self.pipes:
            if pipe is not None:
                os.close(pipe[0])
                os.close(pipe[1])
        self.pipes = [None, None]
        if self.backend is not None:
            self.backend.sessions.discard(self)  # type: ignore[arg-type]

    def abort(self) -> None:
        """Close both sides now."""
        self._close()
