"""The raw sessions' epoll set on real sockets: handlers get their events, a closed fd's stale events are
dropped, and one failing handler ends only its own connection."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from lb import poller


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


class Owner:
    """A connection-like owner whose handler reads its socket, or raises when told to."""

    def __init__(self, sock: socket.socket, fail: bool = False) -> None:
        self.sock, self.fail = sock, fail
        self.got = b""
        self.aborted = False

    def on_event(self, events: int) -> None:
        if self.fail:
            raise ValueError("boom")
        self.got += self.sock.recv(100)

    def abort(self) -> None:
        self.aborted = True


def test_handlers_get_their_events_and_a_failure_stays_local(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        p = poller.Poller(asyncio.get_running_loop())
        (a, a_peer), (b, b_peer) = _pair(), _pair()
        good, bad = Owner(a), Owner(b, fail=True)
        p.watch(a.fileno(), poller.IN, good.on_event)
        p.watch(b.fileno(), poller.IN, bad.on_event)
        a_peer.send(b"hello")
        b_peer.send(b"x")
        for _ in range(50):
            await asyncio.sleep(0.01)
            if good.got and bad.aborted:
                break
        assert good.got == b"hello"
        assert bad.aborted and b.fileno() not in p.handlers  # ended and no longer watched: it cannot fail again
        a_peer.send(b" again")
        await asyncio.sleep(0.05)
        assert good.got == b"hello again"
        p.close()
        for s in (a, a_peer, b, b_peer):
            s.close()

    with caplog.at_level(logging.ERROR, logger="exha.lb"):
        asyncio.run(scenario())
    assert any("event=handler_failed" in r.getMessage() and "ValueError: boom" in r.getMessage()
               for r in caplog.records)


def test_events_of_an_fd_closed_in_the_same_batch_are_dropped() -> None:
    """Two sockets ready in one batch, each handler closing the other and opening a new socket that reuses its fd
    number: whichever runs first, the other's event is stale and must reach neither the old nor the new owner."""
    async def scenario() -> list[str]:
        p = poller.Poller(asyncio.get_running_loop())
        socks = {"a": _pair(), "b": _pair()}
        calls: list[str] = []
        reused: list[bool] = []
        fresh: list[socket.socket] = []

        def handler(me: str, other: str):  # type: ignore[no-untyped-def]
            def run(events: int) -> None:
                calls.append(me)
                mine, theirs = socks[me][0], socks[other][0]
                mine.recv(100)
                if theirs.fileno() >= 0:
                    fd = theirs.fileno()
                    p.forget(fd)
                    theirs.close()
                    new, new_peer = _pair()
                    fresh.extend((new, new_peer))
                    reused.append(new.fileno() == fd)
                    p.watch(new.fileno(), poller.IN, lambda events: calls.append("new"))
            return run

        p.watch(socks["a"][0].fileno(), poller.IN, handler("a", "b"))
        p.watch(socks["b"][0].fileno(), poller.IN, handler("b", "a"))
        socks["a"][1].send(b"x")
        socks["b"][1].send(b"y")  # both ready before the loop runs: one batch
        await asyncio.sleep(0.05)
        p.close()
        for s in fresh + [s for pair in socks.values() for s in pair]:
            s.close()
        assert reused == [True], "the new socket was meant to take the closed one's fd number"
        return calls

    calls = asyncio.run(scenario())
    assert calls in (["a"], ["b"])  # "new" never ran: its socket was never readable
