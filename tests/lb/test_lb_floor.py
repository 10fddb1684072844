"""The benchmark's yardstick (benchmarks/python_floor.py) is a working proxy: its figures mean something only if
it really carries requests to both servers, keeps a connection open across requests and passes each end on."""

from __future__ import annotations

import re
import socket
import sys
from typing import Callable

from lbkit import REPO, Net, Proc, http_get, wait_port


def test_the_python_floor_proxies_requests_over_both_servers(net: Net, backend: Callable[..., Proc],
                                                             spawn: Callable[..., Proc]) -> None:
    backend("http", "A", net.host(23), 8001)
    backend("http", "B", net.host(24), 8001)
    spawn([sys.executable, str(REPO / "benchmarks" / "python_floor.py"), f"{net.vip}:8002",
           f"{net.host(23)}:8001", f"{net.host(24)}:8001", "--workers", "1"], "floor")
    wait_port(net.vip, 8002)

    # a new connection per request, each ended by the server: the servers take turns (where the turn starts
    # depends on the connection wait_port made)
    answers = [http_get(net.vip, 8002) for _ in range(6)]
    assert [status for status, _, _ in answers] == [200] * 6
    order = [headers["x-server"] for _, headers, _ in answers]
    assert order in (["A", "B"] * 3, ["B", "A"] * 3)

    # one connection, several requests, each answered in full on it
    with socket.create_connection((net.vip, 8002), timeout=5) as s:
        servers = set()
        for _ in range(5):
            s.sendall(b"GET /bytes/5000 HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < 5000:
                chunk = s.recv(65536)
                assert chunk, "the connection ended before the answer"
                data += chunk
            servers.add(re.search(rb"X-Server: (\S+)", data).group(1))  # type: ignore[union-attr]
        assert len(servers) == 1  # the connection stays with its server

        # the client's end is passed on: the server answers what it had and ends the connection
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        rest = b""
        while chunk := s.recv(65536):
            rest += chunk
        assert rest.startswith(b"HTTP/1.1 200")
