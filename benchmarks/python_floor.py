"""The least CPython can do per proxied connection: a yardstick for exha-lb's speed targets, not a balancer.

A plain-TCP proxy with none of exha-lb's features: one epoll loop per process (no asyncio, no uvloop), accept,
connect to the next server in turn, move the bytes with splice(2) through one pipe, pass each side's end on,
close. No health checks, retries, timeouts, counters, persistence or draining, and small messages only: a
receiver too slow to take a message at once ends that connection (the benchmark's 100-byte requests never
meet one). N processes share the port with SO_REUSEPORT, as exha-lb's workers do.

    python benchmarks/python_floor.py VIP:PORT SERVER:PORT [SERVER:PORT ...] [--workers N]

`exha-lb bench --floor` runs it beside HAProxy and exha-lb on the same back ends: where even this is not
faster than HAProxy, a Python balancer that does more per connection cannot be (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import socket
from _socket import socket as Socket

from lb.runner import die_with_parent
from lb.splice import F_SETPIPE_SZ, FLAGS, PIPE_SIZE  # the balancer's own: the two move bytes alike

IN_END = select.EPOLLIN | select.EPOLLRDHUP


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _drain(rpipe: int) -> None:
    try:
        while os.read(rpipe, PIPE_SIZE):
            pass
    except BlockingIOError:
        pass


def serve(listen: tuple[str, int], servers: list[tuple[str, int]]) -> None:
    """Proxy connections to `listen` over `servers` in turn, forever."""
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    lsock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    lsock.bind(listen)
    lsock.listen(4096)
    lsock.setblocking(False)
    lfd = lsock.fileno()
    ep = select.epoll()
    ep.register(lfd, select.EPOLLIN)
    rpipe, wpipe = os.pipe2(os.O_NONBLOCK)
    fcntl.fcntl(wpipe, F_SETPIPE_SZ, PIPE_SIZE)
    # fd -> (the connection's [client, server, sides ended], this fd's side)
    conns: dict[int, tuple[list, int]] = {}
    splice = os.splice
    turn = 0
    while True:
        for fd, events in ep.poll():
            if fd == lfd:
                while True:
                    try:
                        cfd, _ = lsock._accept()
                    except BlockingIOError:
                        break
                    client = Socket(socket.AF_INET, socket.SOCK_STREAM, 0, cfd)
                    client.setblocking(False)
                    server = Socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    server.connect_ex(servers[turn])
                    turn = (turn + 1) % len(servers)
                    conn = [client, server, 0]
                    conns[cfd] = (conn, 0)
                    conns[server.fileno()] = (conn, 1)
                    ep.register(server.fileno(), IN_END)
                    ep.register(cfd, IN_END)
                continue
            entry = conns.get(fd)
            if entry is None:
                continue
            conn, side = entry
            out = conn[1 - side].fileno()
            try:
                n = splice(fd, wpipe, PIPE_SIZE, None, None, FLAGS)
                while n:
                    try:
                        sent = splice(rpipe, out, n, None, None, FLAGS)
                    except BlockingIOError:
                        sent = 0
                    if sent != n:
                        raise OSError("slow receiver")
                    if not events & select.EPOLLRDHUP:
                        break
                    n = splice(fd, wpipe, PIPE_SIZE, None, None, FLAGS)  # its end came with these bytes
            except BlockingIOError:
                continue
            except OSError:  # reset, or a slow receiver: end the connection, empty the pipe
                conn[2] = 3
                _drain(rpipe)
            else:
                if n:
                    continue
                conn[2] |= 1 << side
            if conn[2] == 3:
                for sock in conn[:2]:
                    conns.pop(sock.fileno(), None)
                    sock.close()
            else:
                ep.modify(fd, 0)
                try:
                    conn[1 - side].shutdown(socket.SHUT_WR)
                except OSError:
                    pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("listen", type=_address)
    ap.add_argument("servers", type=_address, nargs="+")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    parent = os.getpid()
    for _ in range(args.workers - 1):
        if os.fork() == 0:  # a worker ends with the first process (the balancer's own helper), so none outlives
            die_with_parent()  # the benchmark; it may have ended before that took effect
            if os.getppid() != parent:
                os._exit(0)
            break
    serve(args.listen, args.servers)


if __name__ == "__main__":
    main()
