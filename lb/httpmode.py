"""HTTP mode: each request of a keep-alive connection is routed on its own, as KEMP's and HAProxy's layer-7
services do.

A request that carries a valid persistence cookie goes to that cookie's server; else, with header persistence
(`persistence.header`, e.g. ActiveSync's `Authorization` on `/Microsoft-Server-ActiveSync`: phones keep no
cookies and change addresses), to the server its header's value went to last; else it stays on the
server the connection already uses (NTLM and Kerberos authenticate the connection, not the request), or, when
that server is gone or the connection has none yet, is balanced as usual. When a request must go to another
server, it waits until the answer to the last request has been sent in full, then the connection to the old
server is closed and one to the new server opened. A `Set-Cookie` naming the server is added to every final
answer to a request that did not carry that server's cookie.

`Framer` finds where each message of one direction starts and ends (Content-Length, chunked, until close,
no body) and passes its bytes on unchanged; nothing is buffered beyond one request or answer head. A request to
switch protocols (`Upgrade`, `CONNECT`) turns the connection into a plain tunnel once the server agrees. A
server that closes an idle keep-alive connection does not end the client's: its next request opens a new one,
and an idempotent request the close raced with is sent again.
A request that cannot be framed gets `400 Bad Request`, one that no server can take `503 Service Unavailable`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from lb.dataplane import Backend, Session, Upstream
from lb.state import DISABLED

MAX_HEAD = 65536  # a longer head is not HTTP this balancer will route
HEAD, LENGTH, CHUNK_SIZE, CHUNK_DATA, TRAILER, CLOSE, TUNNEL = range(7)
NONE = -1  # a message without a body
RETRYABLE = frozenset((b"GET", b"HEAD", b"OPTIONS"))  # sent again when a server's idle close raced them


class BadMessage(ValueError):
    """A message this balancer cannot frame: a request gets 400 and the connection ends; an answer is passed on
    as it comes, and the connection stays with its server from then on."""


@dataclass
class Head:
    """What routing and framing need from one message head; `raw` is the head as received, `low` the same
    in lower case (for finding fields)."""

    raw: bytes
    low: bytes
    method: bytes  # requests
    status: int  # responses
    length: int | None
    chunked: bool
    upgrade: bool
    close: bool  # the connection ends after this message (Connection: close; HTTP/1.0 without keep-alive)
    target: bytes = b""  # requests: the request target as written (path and query, or absolute form)
    persist: str | None = None  # the persistence cookie's value (requests), filled in by the session
    affinity: bytes | None = None  # the persistence header's value (requests), when header persistence applies

    def cookie(self, name: bytes) -> str | None:
        """The value of cookie `name` in this (request) head, or None."""
        for value in _fields(self.raw, self.low, b"cookie"):
            for part in value.split(b";"):
                k, sep, v = part.strip().partition(b"=")
                if sep and k == name:
                    return v.decode("latin-1")
        return None


def affinity(head: Head, name: bytes, prefixes: tuple[bytes, ...]) -> bytes | None:
    """The value of request header `name` (lower case) if the request's path starts with one of `prefixes`
    (lower case; none: any path), else None."""
    if prefixes:
        path = head.target.lower()
        if path.startswith((b"http://", b"https://")):  # absolute form: the path starts after the authority
            slash = path.find(b"/", path.find(b"//") + 2)
            path = path[slash:] if slash >= 0 else b"/"
        if not path.startswith(prefixes):
            return None
    values = _fields(head.raw, head.low, name)
    return values[0] if values and values[0] else None


def _fields(raw: bytes, low: bytes, name: bytes) -> list[bytes]:
    """The values of every `name` field of a head (`low` is `raw` in lower case), as written."""
    key = b"\r\n" + name + b":"
    out = []
    at = low.find(key)
    while at >= 0:
        start = at + len(key)
        end = low.find(b"\r\n", start)
        out.append(raw[start:end].strip())
        at = low.find(key, end)
    return out


_FIELDS = re.compile(rb"\n(content-length|transfer-encoding|connection|upgrade)[ \t]*:[ \t]*([^\r]*)")


def parse_head(raw: bytes, request: bool) -> Head:
    """Parse a head (through its blank line). Only the fields framing and routing need are looked at, found in
    one scan of the lower-cased head."""
    eol = raw.find(b"\r\n")
    start = raw[:eol].split(b" ", 2)
    if len(start) < 2:
        raise BadMessage("bad start line")
    method, target, status = b"", b"", 0
    if request:
        method, target = start[0], start[1]
        version = start[2] if len(start) > 2 else b""
    else:
        if not start[1][:3].isdigit():
            raise BadMessage("bad status")
        status = int(start[1][:3])
        version = start[0]
    low = raw.lower()
    length: int | None = None
    chunked = upgrade = False
    close = version == b"HTTP/1.0"
    for name, value in _FIELDS.findall(low):
        if name == b"content-length":
            try:
                n = int(value)
            except ValueError:
                raise BadMessage("bad Content-Length") from None
            if n < 0 or (length is not None and length != n):
                raise BadMessage("conflicting Content-Length")
            length = n
        elif name == b"connection":
            tokens = [t.strip() for t in value.split(b",")]
            if b"close" in tokens:
                close = True
            elif b"keep-alive" in tokens:
                close = False
        elif name == b"transfer-encoding":
            codings = [c.strip() for c in value.split(b",") if c.strip()]
            chunked = bool(codings) and codings[-1] == b"chunked"
            if not chunked and request:
                raise BadMessage("request body without a length")
        else:
            upgrade = True
    return Head(raw, low, method, status, length, chunked, upgrade or method == b"CONNECT", close, target)


class Framer:
    """One direction's messages: `on_head(head)` says how the body is framed (NONE, LENGTH with
    `head.length`, CHUNK_SIZE, CLOSE or TUNNEL); `on_body(bytes)` and `on_end()` follow. The sink may set
    `paused` in any callback; `run()` carries on from there."""

    def __init__(self, request: bool, on_head: Callable[[Head], int], on_body: Callable[[bytes], None],
                 on_end: Callable[[], None]) -> None:
        self.request = request
        self.on_head, self.on_body, self.on_end = on_head, on_body, on_end
        self.state = HEAD
        self.remaining = 0
        self.buf = b""
        self.paused = False

    def feed(self, data: bytes) -> None:
        self.buf = self.buf + data if self.buf else data
        self.run()

    def run(self) -> None:
        while self.buf and not self.paused:
            state, buf = self.state, self.buf
            if state == HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        raise BadMessage("head too long")
                    return
                head = parse_head(buf[:end + 4], self.request)  # a bad head stays in `buf`
                self.buf = buf[end + 4:]
                mode = self.on_head(head)
                if mode == NONE or (mode == LENGTH and not head.length):
                    self._end()
                else:
                    self.state, self.remaining = mode, head.length or 0
            elif state == LENGTH or state == CHUNK_DATA:
                take = min(len(buf), self.remaining)
                self.buf = buf[take:]
                self.remaining -= take
                self.on_body(buf[:take])
                if not self.remaining:
                    if state == LENGTH:
                        self._end()
                    else:
                        self.state = CHUNK_SIZE
            elif state == CHUNK_SIZE or state == TRAILER:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    if len(buf) > 4096:
                        raise BadMessage("chunk line too long")
                    return
                line, self.buf = buf[:eol + 2], buf[eol + 2:]
                if state == TRAILER:
                    self.on_body(line)
                    if eol == 0:
                        self._end()
                    continue
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self.buf = buf  # a bad line stays in `buf`
                    raise BadMessage("bad chunk size") from None
                self.on_body(line)
                if size == 0:
                    self.state = TRAILER
                else:
                    self.state, self.remaining = CHUNK_DATA, size + 2  # the data and its CRLF
            else:  # CLOSE, TUNNEL: everything until the end of the stream
                self.buf = b""
                self.on_body(buf)

    def _end(self) -> None:
        self.state = HEAD
        self.on_end()


class HttpUpstream(Upstream):
    """The server side of an HTTP-mode session: answers go through the session's response framer."""

    __slots__ = ("detached",)

    def __init__(self, session: HttpSession, backend: Backend) -> None:
        super().__init__(session, backend)
        self.detached = False  # the session has moved on to another server: its end is no loss

    def data_received(self, data: bytes) -> None:
        s: HttpSession = self.s  # type: ignore[assignment]
        if self.detached:
            return
        s.last = s.loop.time()
        self.b.bytes_out += len(data)
        s.answer(data)

    def eof_received(self) -> bool:
        if not self.detached:
            self.s.upstream_ended()  # type: ignore[attr-defined]
        return False

    def pause_writing(self) -> None:
        if not self.detached:
            self.s.flow(full=True)  # type: ignore[attr-defined]

    def resume_writing(self) -> None:
        if not self.detached:
            self.s.flow(full=False)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.detached:
            self.s.upstream_ended()  # type: ignore[attr-defined]


class HttpSession(Session):
    """An HTTP-mode client connection whose requests are routed one by one."""

    __slots__ = ("requests", "answers", "inflight", "held", "full", "client_done", "proto", "cout", "sout",
                 "set_cookie", "reused", "retry")
    upstream_class = HttpUpstream

    def __init__(self, listener) -> None:  # type: ignore[no-untyped-def]
        super().__init__(listener)
        self.requests = Framer(True, self._request_head, self._request_body, self._request_end)
        self.answers: Framer | None = None  # per server connection
        # per request sent and not yet answered: its method, the Set-Cookie line its answer gets, and whether
        # the connection ends after the answer
        self.inflight: deque[tuple[bytes, bytes | None, bool]] = deque()
        self.held: Head | None = None  # a request waiting for its server connection
        self.full = False  # the server connection's write buffer is full
        self.client_done = False
        self.proto: HttpUpstream | None = None
        self.cout: list[bytes] = []  # bytes for the client, written once per round (`_flush`)
        self.sout: list[bytes] = []  # bytes for the server
        self.set_cookie = b""  # the Set-Cookie line naming the current server
        self.reused = False  # the server connection has carried a request already
        self.retry: Head | None = None  # the request to send again if the server closes before answering it

    # -- client side --------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.last = self.loop.time()
        try:
            self.requests.feed(data)
        except BadMessage:
            self._bad_request()
        self._flush()

    def _request_head(self, head: Head) -> int:
        self.listener.keeper.waiting.discard(self)  # a head has arrived: no longer waiting for the first one
        if head.upgrade:
            mode = TUNNEL
        elif head.chunked:
            mode = CHUNK_SIZE
        else:
            mode = LENGTH if head.length else NONE
        service = self.service
        name = service.cookie_name
        head.persist = head.cookie(name) if name else None
        if service.header:
            head.affinity = affinity(head, service.header, service.header_paths)
        target = self._target(head)
        if self.upstream is not None and target is self.backend:
            self._send_head(head)
            return mode
        # another server (or none yet): hold the request until the last answer is out, then switch
        self.held = head
        self.requests.paused = True
        self._flow()
        if not self.inflight:
            self._switch(target)
        return mode

    def _target(self, head: Head) -> Backend | None:
        """The server for this request: its cookie's while up and enabled, else its persistence header's, else
        the connection's; None to let the scheduler (and source-IP persistence) choose."""
        service = self.service
        b = service.for_cookie(head.persist) if head.persist is not None else None
        if b is None and head.affinity is not None and service.by_header is not None:
            b = service.persisted(service.by_header, head.affinity, time.monotonic())
        if b is not None:
            return b
        table = service.table
        b = self.backend  # the connection's server: it keeps its clients while up and not disabled (drain too)
        return b if b is not None and table.is_up(b.slot) and table.admin(b.slot) != DISABLED else None

    def _send_head(self, head: Head) -> None:
        set_cookie = None
        if self.service.cookie_name and head.persist != self.backend.cookie:  # type: ignore[union-attr]
            set_cookie = self.set_cookie
        # a server may close a keep-alive connection just as a request is sent on it: an idempotent request
        # without a body that was alone on a reused connection can be sent again (upstream_ended)
        self.retry = head if (self.reused and not self.inflight and head.method in RETRYABLE and
                              not head.length and not head.chunked and not head.upgrade) else None
        self.reused = True
        by_header = self.service.by_header
        if head.affinity is not None and by_header is not None:  # from now on this value means this server
            by_header.put(head.affinity, self.backend.address, time.monotonic())  # type: ignore[union-attr]
        self.inflight.append((head.method, set_cookie, head.close))
        self._to_server(head.raw)

    def _request_body(self, data: bytes) -> None:
        self._to_server(data)

    def _request_end(self) -> None:
        pass

    def _to_server(self, data: bytes) -> None:
        self.backend.bytes_in += len(data)  # type: ignore[union-attr]
        self.sout.append(data)

    def _flush(self) -> None:
        """Write what this round produced: one write per direction, however many pieces framing cut."""
        if self.cout:
            out, self.cout = self.cout, []
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if self.sout:
            out, self.sout = self.sout, []
            if self.upstream is not None:
                self.upstream.write(out[0] if len(out) == 1 else b"".join(out))

    def _bad_request(self) -> None:
        """The client sent something that cannot be framed: answer 400 (when no answer is due) and close, as a
        layer-7 balancer does, rather than pass on bytes whose end neither side can agree on."""
        if not self.inflight:
            self._reply(b"400 Bad Request", b"The request could not be read.\n")
        self._close()

    def _reply(self, status: bytes, text: bytes) -> None:
        """An answer of the balancer's own; the connection closes after it."""
        self.cout.append(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\nContent-Length: " +
                             str(len(text)).encode() + b"\r\nConnection: close\r\n\r\n" + text)

    def eof_received(self) -> bool:
        self.client_done = True
        if self.upstream is None or self.held is not None:
            if self.held is None and not self.inflight:
                self._close()
                return False
            return True  # passed on once the held request has gone out
        if not self.inflight:
            self._close()
            return False
        if self.upstream.can_write_eof():
            self.upstream.write_eof()
        return True

    # -- switching servers ------------------------------------------------------------------------------------
    def _switch(self, target: Backend | None) -> None:
        self._detach()
        self.task = self.loop.create_task(self._connect(target.cookie if target is not None else None))

    def _detach(self) -> None:
        self._flush()
        if self.answers is not None:
            self.answers.paused = True  # its remaining bytes, if any, belong to no request of ours
        if self.proto is not None:
            self.proto.detached = True
        if self.upstream is not None:
            self.upstream.close()
        self.upstream = self.proto = self.answers = None
        if self.backend is not None:  # kept: the next request prefers it
            self.backend.sessions.discard(self)
        self.full = False

    def _attach(self, b: Backend, tr: asyncio.Transport) -> None:  # type: ignore[override]
        self._pair(b, tr)
        self.proto = tr.get_protocol()  # type: ignore[assignment]
        self.reused = False
        service = self.service
        if service.cookie_name:  # read only for services with cookie persistence
            self.set_cookie = (b"Set-Cookie: " + service.cookie_name + b"=" + b.cookie.encode() +
                               b"; Path=/; HttpOnly" + (b"; Secure" if service.server_ssl else b"") + b"\r\n")
        self.answers = Framer(False, self._answer_head, self._answer_body, self._answer_end)
        head, self.held = self.held, None
        if head is not None:
            self._send_head(head)
            self.requests.paused = False
            try:
                self.requests.run()
            except BadMessage:
                self._bad_request()
        self._flush()
        if self.client_done and self.held is None and self.upstream is not None and self.upstream.can_write_eof():
            self.upstream.write_eof()
        self._flow()

    # -- server side ------------------------------------------------------------------------------------------
    def answer(self, data: bytes) -> None:
        self.retry = None  # the server has begun to answer
        try:
            self.answers.feed(data)  # type: ignore[union-attr]
            self._flush()
        except BadMessage:  # pass the rest on as it comes; where answers end is unknown now, so is routing
            framer = self.answers
            rest, framer.buf, framer.state = framer.buf, b"", TUNNEL  # type: ignore[union-attr]
            self.requests.state = TUNNEL
            self.cout.append(rest)
            self._flush()

    def _answer_head(self, head: Head) -> int:
        status = head.status
        if 100 <= status < 200 and status != 101:  # interim: the final answer follows
            self.cout.append(head.raw)
            return NONE
        method, set_cookie, close = self.inflight[0] if self.inflight else (b"", None, False)
        if head.close and self.inflight:
            self.inflight[0] = (method, set_cookie, True)
        raw = head.raw
        if set_cookie is not None:
            raw = raw[:-2] + set_cookie + b"\r\n"
        self.cout.append(raw)
        if status == 101 or (method == b"CONNECT" and 200 <= status < 300):
            self.requests.state = TUNNEL
            return TUNNEL
        if method == b"HEAD" or status in (204, 304):
            return NONE
        if head.chunked:
            return CHUNK_SIZE
        if head.length is not None:
            return LENGTH
        return CLOSE

    def _answer_body(self, data: bytes) -> None:
        self.cout.append(data)

    def _answer_end(self) -> None:
        if self.inflight and self.inflight.popleft()[2]:  # the client or server said this answer is the last
            self._close()
            return
        if not self.inflight:
            if self.held is not None:
                self._switch(self._target(self.held))
            elif self.client_done:
                self._close()

    def upstream_ended(self) -> None:
        """The server closed its connection (or it failed)."""
        answers = self.answers
        if answers is not None and answers.state == CLOSE:  # an answer framed by the close is complete: so
            self._close()  # is the client's connection (closing sends what is buffered first)
            return
        if self.retry is not None and len(self.inflight) == 1 and self.held is None:
            head, self.retry = self.retry, None  # closed before a byte of the answer: send it again
            self.inflight.clear()
            self.held = head
            self.requests.paused = True
            self._flow()
            self._switch(self._target(head))
            return
        if self.inflight or (answers is not None and answers.state != HEAD) or self.requests.state == TUNNEL:
            self._close()  # in the middle of an answer: the client sees the end, as it would without us
            return
        self._detach()  # an idle keep-alive connection the server closed: the next request opens a new one
        self._flow()

    # -- flow control -----------------------------------------------------------------------------------------
    def flow(self, full: bool) -> None:
        self.full = full
        self._flow()

    def _flow(self) -> None:
        want = self.held is None and not self.full
        if not self.closed and want != self.transport.is_reading():
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def no_server(self) -> None:
        """No server can take the request: answer 503 and close, as a layer-7 balancer does."""
        self._reply(b"503 Service Unavailable", b"No server is available.\n")
        self._close()

    def _stop_framing(self) -> None:
        """Nothing more is parsed for this session (it ends, or has left this server connection)."""
        self.requests.paused = True
        if self.answers is not None:
            self.answers.paused = True
        if self.proto is not None:
            self.proto.detached = True

    def _close(self) -> None:
        self._stop_framing()
        if not self.closed:
            self._flush()
        super()._close()

    def abort(self) -> None:
        self._stop_framing()
        super().abort()
