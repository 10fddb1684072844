"""One epoll set per process for the raw (splice) sessions, watched by the event loop as a single reader.

uvloop's add_reader/add_writer cost a poll handle, an ioctl and one or two epoll_ctl calls every time a
session starts or stops watching a socket, and more again to stop. Raw sessions instead register each socket
once here, level-triggered, and change its mask only when a receiver is slow or a direction ends. Closing a
socket takes it out of the set by itself, so ending a session costs no epoll call at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
from typing import Callable

from lb import log

IN = select.EPOLLIN
OUT = select.EPOLLOUT
ERR = select.EPOLLERR
HUP = select.EPOLLHUP
RDHUP = select.EPOLLRDHUP
BATCH = 512

Handler = Callable[[int], None]


class Poller:
    """An epoll set and the handler of each registered fd; the loop calls `dispatch` when any is ready."""

    __slots__ = ("loop", "pid", "ep", "handlers", "gone")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pid = os.getpid()
        self.ep = select.epoll()
        self.handlers: dict[int, Handler] = {}
        self.gone: set[int] = set()  # fds closed while a batch is dispatched: their remaining events are stale
        loop.add_reader(self.ep.fileno(), self.dispatch)

    def watch(self, fd: int, mask: int, handler: Handler) -> None:
        """Register `fd` (or change its mask) with `handler(events)`."""
        if fd in self.handlers:
            self.ep.modify(fd, mask)
        else:
            self.ep.register(fd, mask)
        self.handlers[fd] = handler

    def modify(self, fd: int, mask: int) -> None:
        self.ep.modify(fd, mask)

    def unwatch(self, fd: int) -> None:
        """Take `fd` out of the set while it stays open."""
        if self.handlers.pop(fd, None) is not None:
            self.ep.unregister(fd)
            self.gone.add(fd)

    def forget(self, fd: int) -> None:
        """`fd` is about to be closed (which removes it from the set): drop its handler and stale events."""
        if self.handlers.pop(fd, None) is not None:
            self.gone.add(fd)

    def dispatch(self) -> None:
        handlers = self.handlers
        gone = self.gone
        gone.clear()  # only events of this batch can be stale: closing an fd drops its queued events
        for fd, events in self.ep.poll(0, BATCH):
            if gone and fd in gone:
                continue
            handler = handlers.get(fd)
            if handler is not None:
                try:
                    handler(events)
                except Exception as exc:  # a bug in one connection must not stall the others
                    self.failed(fd, handler, exc)

    def failed(self, fd: int, handler: Callable[..., None], exc: Exception) -> None:
        """Log a handler's failure, end its connection (its owner's `abort()`) and stop watching `fd`."""
        log.event(log.root, logging.ERROR, "handler_failed", fd=fd, error=f"{type(exc).__name__}: {exc}")
        abort = getattr(getattr(handler, "__self__", None), "abort", None)
        if abort is not None:
            try:
                abort()
            except Exception as again:
                log.event(log.root, logging.ERROR, "abort_failed", fd=fd, error=f"{type(again).__name__}: {again}")
        if self.handlers.get(fd) is handler:
            try:
                self.unwatch(fd)
            except OSError:  # already closed: nothing left to watch
                self.handlers.pop(fd, None)

    def close(self) -> None:
        self.loop.remove_reader(self.ep.fileno())
        self.ep.close()
        self.handlers.clear()


_current: Poller | None = None


def for_loop(loop: asyncio.AbstractEventLoop) -> Poller:
    """This process's poller for `loop` (a forked worker gets its own, never its parent's)."""
    global _current
    p = _current
    if p is None or p.loop is not loop or p.pid != os.getpid():
        p = _current = Poller(loop)
    return p
