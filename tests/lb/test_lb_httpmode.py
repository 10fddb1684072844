"""HTTP mode (lb/httpmode.py): every request of a keep-alive connection routed on its own, message framing,
a server's idle close, 503 when no server is left, protocol switches. Real back ends and clients on loopback."""

from __future__ import annotations

import hashlib
import socket
import time
from typing import Callable

import pytest

from lb.httpmode import CHUNK_SIZE, LENGTH, NONE, BadMessage, Framer, Head, parse_head
from lbkit import Balancer, Net, Proc, service_toml

COOKIE = 'mode = "http"\n[virtual_services.persistence]\nkind = "cookie"\ncookie_name = "EXHALB"'


class Client:
    """One keep-alive HTTP/1.1 connection; `request` sends one request and reads its whole answer."""

    def __init__(self, address: str, port: int, source: str | None = None) -> None:
        self.sock = socket.create_connection((address, port), timeout=5,
                                             source_address=(source, 0) if source else None)
        self.buf = b""

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed by the balancer; had {self.buf[:200]!r}")
            self.buf += data
        out, self.buf = self.buf.split(marker, 1)
        return out

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed in the middle of a body")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def request(self, method: str = "GET", path: str = "/", cookie: str = "", body: bytes | None = None,
                chunked: bool = False, extra: str = "") -> tuple[int, dict[str, str], bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}" + (f"Cookie: a=1; {cookie}\r\n" if cookie else "")
        if body is not None and chunked:
            parts = [body[i:i + 7000] for i in range(0, len(body), 7000)]
            payload = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nX-Trailer: 1\r\n\r\n"
            head += "Transfer-Encoding: chunked\r\n"
        elif body is not None:
            payload = body
            head += f"Content-Length: {len(body)}\r\n"
        else:
            payload = b""
        self.sock.sendall(head.encode() + b"\r\n" + payload)
        return self.answer(method)

    def answer(self, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        lines = self._read_until(b"\r\n\r\n").decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        if method == "HEAD" or status == 101:
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self._read_until(b"\r\n").split(b";")[0], 16):
                body += self._read(size)
                self._read(2)
            self._read_until(b"\r\n")
            return status, headers, body
        return status, headers, self._read(int(headers.get("content-length", "0")))

    def closed(self) -> bool:
        return self.sock.recv(1) == b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def two(net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer]) -> Callable[[str], Balancer]:
    """Servers A (.23) and B (.24) on port 8001 and a balancer in front with `extra` service fields."""
    backend("http", "A", net.host(23), 8001)
    backend("http", "B", net.host(24), 8001)

    def start(extra: str) -> Balancer:
        return balancer(service_toml(net, "owa", f'port = 8001\nscheduler = "round_robin"\n{extra}',
                                     servers=(23, 24), health='kind = "tcp"\ninterval = 0.5'))

    return start


def _cookies(net: Net) -> dict[str, str]:
    """Each server's persistence cookie (`EXHALB=...`), as new clients are given them."""
    out: dict[str, str] = {}
    for i in range(4):  # from four addresses (source-IP fallback keeps one address on one server)
        with Client(net.vip, 8001, net.host(40 + i)) as c:
            _, h, _ = c.request()
        out[h["x-server"]] = h["set-cookie"].split(";")[0]
    assert set(out) == {"A", "B"}
    return out


def test_each_request_of_a_connection_goes_to_its_cookies_server(net: Net, two: Callable[[str], Balancer]) -> None:
    """A proxy in front that pools connections sends several users' requests down one connection: each
    reaches the server its cookie names, and a request without one stays on the connection's server."""
    two(COOKIE)
    cookie = _cookies(net)
    with Client(net.vip, 8001) as c:
        _, h, _ = c.request()
        first = h["x-server"]
        other = "B" if first == "A" else "A"
        assert h["set-cookie"].startswith(cookie[first])
        for who in (other, first, other, other, first):
            _, h, body = c.request(path="/owa/x", cookie=cookie[who])
            assert h["x-server"] == who and body == f"{who}\n".encode()
            assert "set-cookie" not in h  # the cookie named the server that answered
            assert cookie[who] in h["x-cookie"]  # the request reached it unchanged
        for _ in range(3):  # no cookie: the server the connection is on now (NTLM authenticates the connection)
            _, h, _ = c.request()
            assert h["x-server"] == first and h["set-cookie"].startswith(cookie[first])


def test_requests_without_a_cookie_fall_back_to_the_clients_address(net: Net,
                                                                    two: Callable[[str], Balancer]) -> None:
    """Outlook Anywhere opens RPC_IN_DATA and RPC_OUT_DATA as two connections without cookies, and both must
    reach one CAS: with `fallback = "source_ip"` every cookie-less connection from one address goes where the
    first went (round robin would alternate), while a cookie still wins."""
    two(COOKIE + '\nfallback = "source_ip"')
    cookie = _cookies(net)
    for client in (net.host(60), net.host(61)):
        first = None
        for method in ("RPC_IN_DATA", "RPC_OUT_DATA", "RPC_IN_DATA", "RPC_OUT_DATA"):
            with Client(net.vip, 8001, client) as c:
                _, h, _ = c.request(method, "/rpc/rpcproxy.dll?mail.corp.example:6001", body=b"")
                first = first or h["x-server"]
                assert h["x-server"] == first
        with Client(net.vip, 8001, client) as c:
            other = "B" if first == "A" else "A"
            assert c.request(cookie=cookie[other])[1]["x-server"] == other


def test_activesync_requests_persist_by_their_authorization_header(net: Net,
                                                                  two: Callable[[str], Balancer]) -> None:
    """Phones keep no cookies and change addresses: with `header = "Authorization"` on the ActiveSync path,
    each device's requests reach the server its first request went to, from any address and on any connection,
    while other paths (and requests without the header) are balanced as before; the value never shows in the
    balancer's log."""
    lb = two(COOKIE + '\nheader = "Authorization"\nheader_paths = ["/Microsoft-Server-ActiveSync"]')
    devices = [f"Basic ZGV2aWNl{i}c2VjcmV0" for i in range(6)]
    first: dict[str, str] = {}
    for rnd in range(3):
        for i, auth in enumerate(devices):  # a new connection from a new address each time
            with Client(net.vip, 8001, net.host(60 + (rnd * 6 + i) % 30)) as c:
                _, h, _ = c.request("POST", "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=d%d" % i, body=b"x",
                                    extra=f"Authorization: {auth}\r\n")
                first.setdefault(auth, h["x-server"])
                assert h["x-server"] == first[auth], (rnd, i)
    assert set(first.values()) == {"A", "B"}  # the devices were balanced over both servers
    # one connection carrying several devices' requests (a reverse proxy in front): each goes to its server
    with Client(net.vip, 8001) as c:
        for auth in devices + devices[::-1]:
            _, h, _ = c.request("GET", "/microsoft-server-activesync?Cmd=Ping", extra=f"Authorization: {auth}\r\n")
            assert h["x-server"] == first[auth]
    # another path with the same header is not persisted by it: new connections alternate (round robin)
    seen = set()
    for i in range(4):
        with Client(net.vip, 8001, net.host(90)) as c:
            seen.add(c.request("GET", "/ews/exchange.asmx", extra=f"Authorization: {devices[0]}\r\n")[1]["x-server"])
    assert seen == {"A", "B"}
    assert "ZGV2aWNl" not in lb.proc.text()


def test_bodies_and_answers_are_framed_across_switches(net: Net, two: Callable[[str], Balancer]) -> None:
    two(COOKIE)
    cookie = _cookies(net)
    big = bytes(range(256)) * 800  # 200 KiB
    digest = hashlib.sha256(big).hexdigest()[:16]
    with Client(net.vip, 8001) as c:
        for who in ("A", "B", "A", "B"):
            _, h, _ = c.request("POST", "/ews/exchange.asmx", cookie[who], big)
            assert h["x-server"] == who and h["x-body"] == f"{len(big)} {digest}"
            _, h, _ = c.request("POST", "/ews/exchange.asmx", cookie[who], big, chunked=True)
            assert h["x-server"] == who and h["x-body"] == f"{len(big)} {digest}"
            _, h, body = c.request(path="/chunked/5500", cookie=cookie[who])
            assert h["x-server"] == who and body == b"y" * 5500
            status, h, body = c.request("HEAD", "/", cookie[who])
            assert status == 200 and h["x-server"] == who and h["content-length"] == "2"
            _, h, body = c.request(path="/bytes/300000", cookie=cookie[who])
            assert h["x-server"] == who and body == b"x" * 300000


def test_pipelined_requests_for_different_servers_wait_their_turn(net: Net, two: Callable[[str], Balancer]) -> None:
    two(COOKIE)
    cookie = _cookies(net)
    with Client(net.vip, 8001) as c:
        order = ["A", "B", "B", "A", "B"]
        c.sock.sendall(b"".join(f"GET /bytes/{20000 + i} HTTP/1.1\r\nHost: x\r\nCookie: {cookie[who]}\r\n\r\n"
                                .encode() for i, who in enumerate(order)))
        for i, who in enumerate(order):
            _, h, body = c.answer()
            assert h["x-server"] == who and len(body) == 20000 + i


def test_a_server_closing_an_idle_connection_does_not_end_the_clients(net: Net,
                                                                      two: Callable[[str], Balancer]) -> None:
    two(COOKIE)
    with Client(net.vip, 8001) as c:
        _, h, _ = c.request(path="/bye")  # the server answers, then closes its connection
        server = h["x-server"]
        for _ in range(3):
            _, h, body = c.request()
            assert h["x-server"] == server and body == f"{server}\n".encode()  # a new connection, same server


def test_a_request_that_raced_a_servers_idle_close_is_sent_again(net: Net, two: Callable[[str], Balancer]) -> None:
    """The server closes its keep-alive connection as the next request arrives, without a byte of answer: a
    GET is sent again on a new connection (to the same server); a POST is not (it may have been acted on)."""
    two(COOKIE)
    with Client(net.vip, 8001) as c:
        _, h, _ = c.request(path="/drop-next")
        server = h["x-server"]
        for _ in range(2):
            _, h, body = c.request()  # dropped by the server, answered after the retry
            assert h["x-server"] == server and body == f"{server}\n".encode()
            assert c.request(path="/drop-next")[0] == 200
        with pytest.raises(ConnectionError):
            c.request("POST", "/ews/exchange.asmx", body=b"<soap/>")


def test_connection_close_ends_the_clients_connection_after_the_answer(net: Net,
                                                                       two: Callable[[str], Balancer]) -> None:
    two("")
    with Client(net.vip, 8001) as c:
        status, _, _ = c.request(extra="Connection: close\r\n")
        assert status == 200 and c.closed()


def test_no_server_left_answers_503(net: Net, balancer: Callable[..., Balancer]) -> None:
    lb = balancer(service_toml(net, "owa", f"port = 8001\n{COOKIE}", servers=(23, 24),
                               health='kind = "tcp"\ninterval = 0.3'), wait_up=False)
    lb.wait(lambda: all(s["state"] == "down" for s in lb.state()["services"][0]["servers"]), what="both down")
    with Client(net.vip, 8001) as c:
        status, _, body = c.request()
        assert status == 503 and b"No server" in body and c.closed()


def test_a_request_that_cannot_be_framed_gets_400_and_the_connection_ends(net: Net,
                                                                          two: Callable[[str], Balancer]) -> None:
    two(COOKIE)
    with Client(net.vip, 8001) as c:
        assert c.request()[0] == 200
        c.sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello")
        status, h, body = c.answer()
        assert status == 400 and "x-server" not in h and c.closed()


def test_a_protocol_switch_turns_the_connection_into_a_tunnel(net: Net, two: Callable[[str], Balancer]) -> None:
    two(COOKIE)
    with Client(net.vip, 8001) as c:
        _, h, _ = c.request()
        server = h["x-server"]
        status, h, _ = c.request(path="/upgrade", extra="Connection: Upgrade\r\nUpgrade: echo\r\n")
        assert status == 101 and h["x-server"] == server
        for line in (b"GET / HTTP/1.1\r\n", b"not http at all\n"):  # passed on as bytes, not parsed
            c.sock.sendall(line)
            assert c._read_until(b"\n") + b"\n" == line


# -- the framer alone -------------------------------------------------------------------------------------------

def _frames(stream: bytes, request: bool, step: int, methods: list[bytes] | None = None) -> list[tuple[str, bytes]]:
    """Feed `stream` `step` bytes at a time; the messages found, as (head start line, body bytes)."""
    out: list[tuple[str, bytes]] = []
    cur: list[bytes] = []
    heads: list[Head] = []

    def on_head(head: Head) -> int:
        heads.append(head)
        cur.clear()
        if not request and methods and methods.pop(0) == b"HEAD":
            return NONE
        if head.chunked:
            return CHUNK_SIZE
        return LENGTH if head.length else NONE

    def on_end() -> None:
        out.append((heads[-1].raw.split(b"\r\n")[0].decode(), b"".join(cur)))

    f = Framer(request, on_head, cur.append, on_end)
    for i in range(0, len(stream), step):
        f.feed(stream[i:i + step])
    assert f.buf == b"" and f.state == 0
    return out


def test_the_framer_finds_the_same_messages_however_the_bytes_arrive() -> None:
    chunked = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nTrailer: t\r\n\r\n"
    stream = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
              b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
              b"POST /b HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + chunked +
              b"GET /c HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    want = [("GET / HTTP/1.1", b""), ("POST /a HTTP/1.1", b"hello"), ("POST /b HTTP/1.1", chunked),
            ("GET /c HTTP/1.1", b"")]
    for step in (1, 2, 3, 7, len(stream)):
        assert _frames(stream, True, step) == want
    answers = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"  # to a HEAD: no body whatever it says
               b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    assert _frames(answers, False, 1, [b"HEAD", b"GET"]) == [("HTTP/1.1 200 OK", b""), ("HTTP/1.1 200 OK", b"abc")]


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: five\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"garbage\r\n\r\n",
])
def test_heads_that_cannot_be_framed_are_refused(head: bytes) -> None:
    with pytest.raises(BadMessage):
        parse_head(head, True)


def test_head_fields_routing_needs() -> None:
    h = parse_head(b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n\r\n", True)
    assert (h.method, h.close, h.upgrade) == (b"GET", False, True)
    assert h.target == b"/x"
    assert parse_head(b"GET /x HTTP/1.0\r\n\r\n", True).close
    r = parse_head(b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n", False)
    assert (r.status, r.close) == (304, True)
    assert parse_head(b"CONNECT host:443 HTTP/1.1\r\n\r\n", True).upgrade


def test_a_bad_head_or_chunk_line_stays_unread() -> None:
    for stream in (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                   b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"):
        f = Framer(True, lambda h: CHUNK_SIZE if h.chunked else NONE, lambda b: None, lambda: None)
        with pytest.raises(BadMessage):
            f.feed(stream)
        assert f.buf and stream.endswith(f.buf)  # not consumed: nothing of it was passed on


def test_a_client_leaving_after_its_servers_idle_close_is_counted_off_once(net: Net,
                                                                         two: Callable[[str], Balancer]) -> None:
    lb = two(COOKIE)
    with Client(net.vip, 8001) as c:
        assert c.request(path="/bye")[0] == 200  # the server closes its side after answering
        time.sleep(0.2)
    # counted off its server once: when the server closed, not again when the client left (it showed -1)
    lb.wait(lambda: all(s["connections"] == 0 for s in lb.state()["services"][0]["servers"]), 2,
            "the connection counted off")
