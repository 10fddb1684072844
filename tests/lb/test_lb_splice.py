"""The raw (splice) data path's edge cases: ends of a connection arriving in every order, slow receivers while a
side is already closed, and many connections at once, each checked byte for byte."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
from pathlib import Path
from typing import BinaryIO, Callable

import pytest
from lbkit import (Balancer, Net, Proc, cpu_seconds, established, free_port, service_toml, socket_fds,
                   tcp_address)

from lb.dataplane import Keeper, Listener


def _config(net: Net, port: int) -> str:
    return service_toml(net, "raw", f"port = {port}", health='kind = "tcp"\ninterval = 0.5')


def _reports(report: Path) -> list[tuple[str, str]]:
    """The sink's reports of connections that sent something (health checks connect and send nothing)."""
    lines = report.read_text().split("\n") if report.exists() else []
    return [(c, d) for c, d in (line.split() for line in lines if line) if c != "0"]


def test_client_closes_while_a_slow_server_still_reads(net: Net, backend: Callable[..., Proc],
                                                       balancer: Callable[..., Balancer], tmp_path: Path) -> None:
    """The server ends its side first and reads slowly; the client then sends a few MB and closes at once, so its
    end often arrives while the balancer still holds bytes the server has not taken (sizes vary to meet that
    moment). Every byte is delivered, and the balancer does not spin while it waits."""
    report = tmp_path / "sink.report"
    backend("sink", "S", net.host(23), 8001, "--report", str(report))
    lb = balancer(_config(net, 8001))
    sent: list[tuple[str, str]] = []
    cpu_before, started = cpu_seconds([lb.proc.popen.pid]), time.monotonic()
    for size in (3_000_000, 4_000_000, 5_000_000, 6_000_000):
        payload = os.urandom(size)
        with socket.create_connection((net.vip, 8001), timeout=10) as s:
            greeting = b""
            while chunk := s.recv(100):  # the server's line, then its end
                greeting += chunk
            assert greeting == b"ready S\n"
            s.sendall(payload)
        sent.append((str(size), hashlib.sha256(payload).hexdigest()))
        lb.wait(lambda: len(_reports(report)) == len(sent), timeout=30, what="the sink's report")
    waited = time.monotonic() - started
    cpu = cpu_seconds([lb.proc.popen.pid]) - cpu_before
    assert _reports(report) == sent
    assert cpu < 0.5 * waited, f"balancer used {cpu:.2f} s CPU in {waited:.2f} s of waiting (spinning?)"
    lb.wait(lambda: lb.server("raw", net.host(23))["connections"] == 0, what="the sessions to end")


def test_many_connections_each_get_their_own_bytes_back(net: Net, backend: Callable[..., Proc],
                                                        balancer: Callable[..., Balancer]) -> None:
    """40 connections at once through the echo server, each with its own random lines: every reply is exact."""
    backend("echo", "E", net.host(23), 8002)
    balancer(_config(net, 8002))
    failures: list[str] = []

    def one(i: int) -> None:
        lines = [os.urandom(3000).hex().encode() + b"\n" for _ in range(20)]
        try:
            with socket.create_connection((net.vip, 8002), timeout=10) as s:
                f = s.makefile("rb")
                assert f.readline().startswith(b"hello E ")
                for line in lines:
                    s.sendall(line)
                    if f.readline() != line:
                        failures.append(f"connection {i}: reply differs")
                        return
                s.shutdown(socket.SHUT_WR)
                if f.read() != b"":
                    failures.append(f"connection {i}: bytes after the end")
        except OSError as exc:
            failures.append(f"connection {i}: {exc}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures and not any(t.is_alive() for t in threads)


def _epoll_sets(pid: int) -> tuple[set[int], set[int]]:
    """The fds the process's Poller watches and those its event loop's epoll watches. The Poller's set is the
    epoll whose own fd sits in another epoll's set (the loop watches the Poller as one reader)."""
    sets: dict[int, set[int]] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[eventpoll]":
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        sets[int(fd)] = {int(line.split()[1]) for line in info.splitlines() if line.startswith("tfd:")}
    poller = [fd for fd in sets if any(fd in targets for other, targets in sets.items() if other != fd)]
    assert len(poller) == 1 and len(sets) == 2, f"expected the loop's epoll and the Poller's, found {sets}"
    loop = next(fd for fd in sets if fd != poller[0])
    return sets[poller[0]], sets[loop]


def _session_fds(pid: int, client: socket.socket, server: tuple[str, int]) -> set[int]:
    """The balancer's two sockets of `client`'s session: the one whose peer is the client, the established one
    to `server` (the only session there; health checks to it come and go)."""
    peers = {tcp_address(*client.getsockname()), tcp_address(*server)}
    fds: set[int] = set()
    for _ in range(50):  # a health check's connection to the server may be open for a moment: look again
        inodes = established(pid, peers)
        fds = {fd for inode, fd in socket_fds(pid).items() if inode in inodes}
        if len(fds) == 2:
            return fds
        time.sleep(0.02)
    raise AssertionError(f"expected the session's two sockets in the balancer, found {fds}")


def _watched_by(pid: int, fds: set[int]) -> str:
    """"poller", "loop" or "none": which epoll set holds both of `fds` (an assertion error if they differ)."""
    poller, loop = _epoll_sets(pid)
    where = {"poller" if fd in poller else "loop" if fd in loop else "none" for fd in fds}
    assert len(where) == 1, f"the session's sockets are split: {where}"
    return where.pop()


def _released(pid: int, fds: set[int]) -> bool:
    """Neither epoll set holds `fds` any more (a health check may reuse one of the numbers for a moment)."""
    poller, loop = _epoll_sets(pid)
    return not poller and not (fds & loop)


def _echo_session(net: Net, port: int) -> tuple[socket.socket, BinaryIO]:
    """A connection through the balancer to the echo server, its greeting read."""
    s = socket.create_connection((net.vip, port), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"hello E ")
    return s, f


def _echo_rounds(s: socket.socket, f, count: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(count):
        line = f"round {i} {os.urandom(8).hex()}\n".encode()
        s.sendall(line)
        assert f.readline() == line


def test_a_long_lived_session_moves_to_the_loop_and_back(net: Net, backend: Callable[..., Proc],
                                                         balancer: Callable[..., Balancer]) -> None:
    """A session that has carried a few requests leaves the Poller for the event loop's readers; a slow client
    brings it back to the Poller (it must watch for writing), with every byte delivered; its end closes it."""
    backend("echo", "E", net.host(23), 8003)
    lb = balancer(_config(net, 8003))
    pid = lb.proc.popen.pid
    s, f = _echo_session(net, 8003)
    with s:
        _echo_rounds(s, f, 2)
        fds = _session_fds(pid, s, (net.host(23), 8003))
        assert _watched_by(pid, fds) == "poller", "a new session is watched by the Poller"
        _echo_rounds(s, f, 6)
        assert _watched_by(pid, fds) == "loop", "after a few requests both sockets are the loop's readers"
        # the client stops reading while 8 MB are echoed back: the balancer meets a full receiver
        blob = b"".join(os.urandom(1500).hex().encode() + b"\n" for _ in range(2700))
        sender = threading.Thread(target=s.sendall, args=(blob,))
        sender.start()
        lb.wait(lambda: _watched_by(pid, fds) == "poller", what="the session back in the Poller")
        got = f.read(len(blob))
        sender.join(10)
        assert got == blob
        _echo_rounds(s, f, 3)
        s.shutdown(socket.SHUT_WR)
        assert f.read() == b""
    lb.wait(lambda: lb.server("raw", net.host(23))["connections"] == 0, what="the session to end")
    lb.wait(lambda: _released(pid, fds), what="both epoll sets to let the ended session go")


def test_an_idle_long_lived_session_is_closed_from_the_loop(net: Net, backend: Callable[..., Proc],
                                                            balancer: Callable[..., Balancer]) -> None:
    """The idle timeout closes a promoted session (both of its event-loop readers go with it)."""
    backend("echo", "E", net.host(23), 8004)
    lb = balancer(_config(net, 8004).replace("[virtual_services.health]",
                                              "[virtual_services.timeouts]\nidle = 1.5\n[virtual_services.health]"))
    pid = lb.proc.popen.pid
    s, f = _echo_session(net, 8004)
    with s:
        _echo_rounds(s, f, 8)
        fds = _session_fds(pid, s, (net.host(23), 8004))
        assert _watched_by(pid, fds) == "loop"
        started = time.monotonic()
        assert f.read() == b""  # the balancer's end, after the idle timeout
        assert 1.0 < time.monotonic() - started < 5.0
    lb.wait(lambda: _released(pid, fds), what="both readers to go")
    assert lb.server("raw", net.host(23))["connections"] == 0


def test_a_connect_the_server_answers_late_still_carries_the_clients_bytes(net: Net,
                                                                         balancer: Callable[..., Balancer]) -> None:
    """Most connects to a server complete before connect() returns (the balancer then starts the session at
    once); one the server answers late goes through the Poller. Here the server's accept queue is full, so the
    balancer's first SYN is dropped and only its retransmission, a second later, is answered."""
    server = socket.socket()
    server.bind((net.host(23), 8005))
    server.listen(0)  # room for one connection, which the filler takes
    filler = socket.create_connection((net.host(23), 8005))
    got: list[bytes] = []

    def serve() -> None:  # free the queue once the balancer's SYN has been dropped, then answer it
        time.sleep(0.5)
        server.accept()[0].close()
        conn, _ = server.accept()
        with conn:
            got.append(conn.recv(100))
            conn.sendall(b"late " + got[0])

    balancer(service_toml(net, "raw", "port = 8005", health='kind = "none"'))
    thread = threading.Thread(target=serve, daemon=True)
    try:
        thread.start()
        started = time.monotonic()
        with socket.create_connection((net.vip, 8005), timeout=10) as c:
            c.sendall(b"hello")
            assert c.recv(100) == b"late hello"
        assert time.monotonic() - started > 0.9  # it waited for the retransmitted SYN
        thread.join(5)
    finally:
        filler.close()
        server.close()


def test_accepted_client_sockets_send_short_segments_at_once() -> None:
    """A raw listener's sockets carry TCP_NODELAY, so what it accepts does too: the last short segment of a large
    answer is not held back (Nagle) until the client's delayed ACK, 40 ms later."""
    async def scenario() -> None:
        port = free_port()
        loop = asyncio.get_running_loop()
        lst = Listener(loop, None, "127.0.0.1", port, Keeper(loop, lambda: False))  # type: ignore[arg-type]
        await lst.start(None, raw=True)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                accepted, _ = lst.raw_sock.accept()  # type: ignore[union-attr]  (before the loop's reader runs)
                with accepted:
                    assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        finally:
            lst.close()

    asyncio.run(scenario())


class _Segments:
    """Every TCP segment on the loopback interface while open (an AF_PACKET socket: needs root), as
    (source, destination, flags, payload length)."""

    def __init__(self) -> None:
        self.seen: list[tuple[tuple[str, int], tuple[str, int], int, int]] = []
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.05)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                frame, addr = self.sock.recvfrom(70000)
            except TimeoutError:
                continue
            ip = frame[14:]
            if addr[2] == socket.PACKET_OUTGOING or ip[0] >> 4 != 4 or ip[9] != 6:  # each frame once; TCP
                continue
            ihl = (ip[0] & 15) * 4
            tcp = ip[ihl:]
            length = int.from_bytes(ip[2:4], "big") - ihl - (tcp[12] >> 4) * 4
            self.seen.append(((socket.inet_ntoa(ip[12:16]), int.from_bytes(tcp[0:2], "big")),
                              (socket.inet_ntoa(ip[16:20]), int.from_bytes(tcp[2:4], "big")), tcp[13], length))

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


FIN = 0x01


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: watches the loopback interface (AF_PACKET)")
def test_a_servers_last_bytes_and_its_end_reach_the_client_in_one_segment(net: Net,
                                                                          balancer: Callable[..., Balancer]) -> None:
    """A server that answers and closes at once (HTTP with `Connection: close`) sends its answer and its FIN in
    one segment; the balancer passes them on the same way (the bytes held with MSG_MORE until the shutdown),
    not as a data segment and a FIN segment. That is one segment, and one wake-up of the client, less per
    connection."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\nConnection: close\r\n\r\n" + b"x" * 300
    server = socket.create_server((net.host(23), 8005))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            with conn:
                if conn.recv(4096):  # a client (health checks send nothing)
                    conn.send(answer, socket.MSG_MORE)
                    conn.shutdown(socket.SHUT_WR)  # the FIN goes out with the held bytes
                    conn.recv(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    balancer(_config(net, 8005))
    segments = _Segments()
    try:
        with socket.create_connection((net.vip, 8005), timeout=5) as c:
            me = c.getsockname()
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while chunk := c.recv(65536):
                got += chunk
        time.sleep(0.2)
    finally:
        segments.close()
        server.close()
    assert got == answer
    upstream = [s for s in segments.seen if s[0][0] == net.host(23) and s[0][1] == 8005 and s[3]]
    assert [(flags & FIN, length) for _, _, flags, length in upstream] == [(FIN, len(answer))]  # as the server sent
    to_client = [(flags & FIN, length) for src, dst, flags, length in segments.seen
                 if dst == me and (flags & FIN or length)]
    assert to_client == [(FIN, len(answer))], f"the balancer sent {to_client} (FIN flag, bytes) to the client"
