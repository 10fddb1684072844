"""Moving long-lived sessions between workers (lb/handoff.py): the choice of worker, the counts that cover
sessions on their way, and the sockets arriving intact. Real socket pairs and TCP connections on loopback;
one process plays the workers in turn."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lb.config import load
from lb.dataplane import Dataplane
from lb.handoff import LIGHT, PULSE, SPREAD, Handoff, Moved
from lb.persistence import SharedSourceMemory
from lb.state import ServerTable
from lbkit import free_port


@pytest.fixture
def handoff() -> Iterator[Callable[[int], Handoff]]:
    made: list[Handoff] = []

    def make(workers: int) -> Handoff:
        made.append(Handoff(workers))
        return made[-1]

    yield make
    for h in made:
        h.close()


def _as(h: Handoff, worker: int) -> Handoff:
    h.index = worker
    return h


def _tcp_pair() -> tuple[socket.socket, socket.socket, socket.socket]:
    """A connected TCP client/server pair on loopback (and the listener, to close later)."""
    lst = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(lst.getsockname(), timeout=5)
    server, _ = lst.accept()
    server.settimeout(5)
    return client, server, lst


def test_a_session_goes_to_the_worker_holding_the_fewest_and_only_when_that_is_fewer(
        handoff: Callable[[int], Handoff]) -> None:
    h = handoff(3)
    _as(h, 1).held(2)
    _as(h, 2).held(1)
    h.index = 0
    assert h.target() == -1  # worker 0 holds none: nobody holds fewer
    h.held(2)
    assert h.target() == 2  # 2 holds one, 1 holds two
    h.listening = lambda w: w != 2  # a worker that is not listening (stopping, or dead) gets nothing
    assert h.target() == -1  # 1 holds as many as 0: moving would only move the imbalance
    h.held(1)
    assert h.target() == 1


def _busy(h: Handoff, worker: int, cores: float, now: float) -> None:
    """Worker `worker` samples: it used `cores` of one core over the last PULSE seconds."""
    h.index, h._sample = worker, (0.0, now - PULSE)
    h.sample(cores * PULSE, now)


def test_light_load_gathers_long_lived_sessions_on_the_first_worker(handoff: Callable[[int], Handoff]) -> None:
    h = handoff(2)
    h.below = 0.3
    now = time.monotonic()
    _as(h, 0).held(3)
    _as(h, 1).held(2)
    _busy(h, 1, 0.1, now)
    _busy(h, 0, 0.1, now)
    assert h.decide(now) == LIGHT  # 0.2 cores in all
    assert h.target() == -1  # the first worker keeps what it has
    assert h.surplus(LIGHT) == (-1, 0)
    h.index = 1
    assert h.mode() == LIGHT and h.target() == 0  # the other passes new ones to it, and all it holds
    assert h.surplus(LIGHT) == (0, 2)
    h.below = 0  # consolidation off: even out
    assert h.mode() == SPREAD and h.target() == -1


def test_the_load_spreads_above_the_line_and_gathers_only_well_below_it(
        handoff: Callable[[int], Handoff]) -> None:
    h = handoff(2)
    h.below = 0.3
    now = time.monotonic()
    _as(h, 0).held(10)
    for cores, mode in ((0.2, LIGHT), (0.4, LIGHT), (0.5, SPREAD), (0.4, SPREAD), (0.25, LIGHT)):
        _busy(h, 0, cores, now)  # 0.3 x 1.5 = 0.45: spread above, gather below 0.3, keep the mode between
        assert h.decide(now) == mode, cores
    _busy(h, 0, 0.9, now)
    assert h.decide(now) == SPREAD
    assert h.surplus(SPREAD) == (1, 5)  # half the difference to the worker with the fewest
    h.index = 1
    assert h.mode(now) == SPREAD and h.target() == -1  # it holds none: nothing to even out from there
    # the deciding worker has gone quiet (nothing open): a burst after it starts spread
    assert h.mode(now + 1.0) == SPREAD
    assert h.busy(0, now + 1.0) == 0.0 and h.busy(0, now) == 0.9
    _busy(h, 0, 0.4, now + 1.0)
    assert h.decide(now + 1.0) == SPREAD  # between the lines after a quiet spell: spread until shown light


def test_sessions_on_their_way_count_for_their_receiver_at_once(handoff: Callable[[int], Handoff]) -> None:
    h = handoff(2)
    sent: list[tuple[socket.socket, socket.socket, socket.socket]] = []
    taken: list[Moved] = []
    _as(h, 0).held(3)
    try:
        for expect in (1, 1, -1):  # 3/0 -> 2/1 (in flight) -> 1/2 would be worse than 2/1: keep
            assert h.target() == expect
            if expect < 0:
                break
            pair = _tcp_pair()
            sent.append(pair)
            assert h.send(1, Moved(pair[0].fileno(), pair[1].fileno(), "svc", "svc/10.0.0.23:25", "10.0.0.50",
                                   25, 0))
            h.held(-1)  # the sender no longer holds it
        assert h.load(1) == 2 and h.long(1) == 0  # two on their way, none taken in yet
        _as(h, 1).adopt = lambda m: (taken.append(m), h.held(1))
        h.receive()
        assert len(taken) == 2 and h.long(1) == 2
        h.index = 0
        assert h.load(1) == 2  # taken in: counted once, not twice
    finally:
        for pair in sent:
            for s in pair:
                s.close()
        for m in taken:
            os.close(m.client)
            os.close(m.server)


def test_the_receiver_gets_working_sockets_and_the_sessions_details(handoff: Callable[[int], Handoff]) -> None:
    h = handoff(2)
    client, server, lst = _tcp_pair()
    up_client, up_server, up_lst = _tcp_pair()
    got: list[Moved] = []
    try:
        _as(h, 0)
        assert h.send(1, Moved(server.fileno(), up_client.fileno(), "owa", "owa/10.0.0.24:443", "10.0.0.77",
                               443, 0))
        server.close()  # the sender lets go of its copies
        up_client.close()
        _as(h, 1).adopt = got.append
        h.receive()
        (m,) = got
        assert (m.service, m.backend, m.client_ip, m.dst_port, m.sender) == (
            "owa", "owa/10.0.0.24:443", "10.0.0.77", 443, 0)
        moved_client = socket.socket(fileno=m.client)
        moved_up = socket.socket(fileno=m.server)
        client.sendall(b"request")  # the client's bytes arrive at the moved socket, and back
        assert moved_client.recv(100) == b"request"
        moved_up.sendall(b"request")
        assert up_server.recv(100) == b"request"
        up_server.sendall(b"answer")
        assert moved_up.recv(100) == b"answer"
        moved_client.sendall(b"answer")
        assert client.recv(100) == b"answer"
        moved_client.close()
        moved_up.close()
    finally:
        for s in (client, lst, up_server, up_lst):
            s.close()


def test_a_malformed_message_is_dropped_with_its_sockets_closed(
        handoff: Callable[[int], Handoff], caplog: pytest.LogCaptureFixture) -> None:
    h = handoff(2)
    r, w = os.pipe()
    try:
        socket.send_fds(h.pairs[1][1], [b"not a session"], [r])
        got: list[Moved] = []
        _as(h, 1).adopt = got.append
        h.receive()
        assert got == []
        assert "event=handoff_failed" in caplog.text and "malformed" in caplog.text
        assert h.long(1) == 0
        pipe = os.readlink(f"/proc/self/fd/{r}")
        copies = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") == pipe:
                    copies.append(fd)
            except OSError:  # the directory's own fd, gone by now
                pass
        assert sorted(copies) == sorted([str(r), str(w)])  # the received copy was closed
    finally:
        os.close(r)
        os.close(w)


def test_a_worker_carries_on_a_session_it_is_given_also_for_a_server_its_config_has_dropped(
        handoff: Callable[[int], Handoff], tmp_path: Path) -> None:
    """Dataplane.adopt on a real loop: the moved session's bytes flow both ways through this process, counted
    on its server; a session for a server this worker's (reloaded) config no longer has drains as a removed
    server's does."""
    port = free_port()
    cfg = tmp_path / "lb.toml"
    cfg.write_text(f'[admin]\naddress = "127.0.0.1"\nport = {free_port()}\n[[virtual_services]]\nname = "relay"\n'
                   f'vip = "127.0.0.1"\nport = {port}\n[virtual_services.health]\nkind = "none"\n'
                   '[[virtual_services.real_servers]]\naddress = "127.0.0.23"\n')
    h = handoff(2)
    h.index = 1

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        dp = Dataplane(ServerTable(2), SharedSourceMemory(), 1, h)
        await dp.apply(load(str(cfg)))
        pairs = [_tcp_pair() for _ in range(4)]  # per session: client <-> balancer, balancer <-> server
        try:
            for (client, from_client, _), (to_server, server, _), key in (
                    (pairs[0], pairs[1], "relay/127.0.0.23:*"), (pairs[2], pairs[3], "relay/127.0.0.99:25")):
                dp.adopt(Moved(os.dup(from_client.fileno()), os.dup(to_server.fileno()), "relay", key,
                               "127.0.0.50", port, 0))
                from_client.close()
                to_server.close()
                for s in (client, server):
                    s.setblocking(False)
                await loop.sock_sendall(client, b"request")
                assert await asyncio.wait_for(loop.sock_recv(server, 100), 5) == b"request"
                await loop.sock_sendall(server, b"answer")
                assert await asyncio.wait_for(loop.sock_recv(client, 100), 5) == b"answer"
            known = dp.backends["relay/127.0.0.23:*"]
            assert known.active == 1 and known.bytes_in == len(b"request") and known.bytes_out == len(b"answer")
            dropped, _ = dp.retired["relay/127.0.0.99:25"]
            assert dropped.active == 1 and (dropped.address, dropped.port) == ("127.0.0.99", 25)
            assert h.long(1) == 2
            dp.retired["relay/127.0.0.99:25"] = (dropped, 0.0)  # its drain time is up
            dp.sweep()
            assert await asyncio.wait_for(loop.sock_recv(pairs[2][0], 100), 5) == b""  # closed by the sweep
            assert h.long(1) == 1 and known.active == 1
        finally:
            await dp.drain(0)
            dp.close_listeners()
            for pair in pairs:
                for s in pair:
                    s.close()

    asyncio.run(scenario())
