"""Scheduling and persistence, as policies and through a running balancer to real back ends."""

from __future__ import annotations

import socket
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from lb.scheduling import LeastConnections, RoundRobin, WeightedRoundRobin
from lbkit import Balancer, Net, Proc, http_get, service_toml


@dataclass
class _S:
    name: str
    weight: int = 1
    active: int = 0
    current_weight: int = 0


def test_round_robin_alternates() -> None:
    servers = [_S("a"), _S("b"), _S("c")]
    rr = RoundRobin()
    assert [rr.pick(servers).name for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]  # type: ignore[attr-defined]


def test_weighted_round_robin_is_smooth_and_proportional() -> None:
    servers = [_S("a", 3), _S("b", 1)]
    wrr = WeightedRoundRobin()
    picks = [wrr.pick(servers).name for _ in range(400)]  # type: ignore[attr-defined]
    assert Counter(picks) == {"a": 300, "b": 100}
    assert "bb" not in "".join(picks)


def test_least_connections_prefers_the_idle_server() -> None:
    a, b = _S("a", active=5), _S("b", active=2)
    lc = LeastConnections()
    assert {lc.pick([a, b]).name for _ in range(4)} == {"b"}  # type: ignore[attr-defined]
    a2, b2 = _S("a", weight=4, active=4), _S("b", weight=1, active=2)
    assert lc.pick([a2, b2]).name == "a"  # type: ignore[attr-defined]


def _service(name: str, port: int, net: Net, scheduler: str, extra: str = "",
             weights: tuple[int, int] = (1, 1)) -> str:
    return service_toml(net, name, f'port = {port}\nscheduler = "{scheduler}"\n{extra}', servers=(23, 24),
                        health='kind = "tcp"\ninterval = 0.5', weights=weights)


def _servers(backend: Callable[..., Proc], net: Net, ports: list[int]) -> None:
    backend("http", "A", net.host(23), ports)
    backend("http", "B", net.host(24), ports)


def test_distribution_through_the_balancer(net: Net, backend: Callable[..., Proc],
                                           balancer: Callable[..., Balancer]) -> None:
    _servers(backend, net, [8001, 8002, 8003])
    lb = balancer(_service("rr", 8001, net, "round_robin")
                  + _service("wrr", 8002, net, "weighted_round_robin", weights=(3, 1))
                  + _service("lc", 8003, net, "least_connections"))
    rr = Counter(http_get(net.vip, 8001)[1]["x-server"] for _ in range(40))
    assert rr == {"A": 20, "B": 20}
    wrr = Counter(http_get(net.vip, 8002)[1]["x-server"] for _ in range(40))
    assert wrr == {"A": 30, "B": 10}
    # least connections: while one client holds a connection on a server, new clients go to the other
    held = socket.create_connection((net.vip, 8003))
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    first = held.recv(4096).split(b"X-Server: ")[1][:1].decode()
    other = {"A": "B", "B": "A"}[first]
    assert Counter(http_get(net.vip, 8003)[1]["x-server"] for _ in range(10)) == {other: 10}
    held.close()
    st = lb.state()
    assert sum(s["connections_total"] for s in st["services"][0]["servers"]) >= 40


def test_source_ip_persistence_and_expiry(net: Net, backend: Callable[..., Proc],
                                          balancer: Callable[..., Balancer]) -> None:
    _servers(backend, net, [8001])
    extra = '[virtual_services.persistence]\nkind = "source_ip"\ntimeout = 1.5'
    balancer(_service("web", 8001, net, "round_robin", extra))
    c1, c2 = net.host(50), net.host(51)
    first = {http_get(net.vip, 8001, source=c1)[1]["x-server"] for _ in range(10)}
    second = {http_get(net.vip, 8001, source=c2)[1]["x-server"] for _ in range(10)}
    assert len(first) == 1 and len(second) == 1 and first != second  # each client sticks, round robin between
    time.sleep(2.0)  # persistence timeout 1.5 s: forgotten; round robin goes on where it was
    assert http_get(net.vip, 8001, source=net.host(52))[1]["x-server"] == next(iter(first))
    after = http_get(net.vip, 8001, source=c1)[1]["x-server"]
    assert {after} != first


def test_persisted_client_moves_when_its_server_goes_down(net: Net, backend: Callable[..., Proc],
                                                          balancer: Callable[..., Balancer]) -> None:
    a = backend("http", "A", net.host(23), [8001])
    backend("http", "B", net.host(24), [8001])
    extra = '[virtual_services.persistence]\nkind = "source_ip"\ntimeout = 600'
    lb = balancer(_service("web", 8001, net, "round_robin", extra))
    c = net.host(60)
    if http_get(net.vip, 8001, source=c)[1]["x-server"] != "A":
        c = net.host(61)
    assert http_get(net.vip, 8001, source=c)[1]["x-server"] == "A"
    a.kill()
    assert {http_get(net.vip, 8001, source=c)[1]["x-server"] for _ in range(5)} == {"B"}
    assert lb.server("web", net.host(23))["state"] == "down"


def test_cookie_persistence_owa_and_ecp_share_one(net: Net, backend: Callable[..., Proc],
                                                  balancer: Callable[..., Balancer]) -> None:
    _servers(backend, net, [8001])
    extra = 'mode = "http"\n[virtual_services.persistence]\nkind = "cookie"\ncookie_name = "EXHALB"'
    balancer(_service("owa", 8001, net, "round_robin", extra))
    status, headers, _ = http_get(net.vip, 8001, "/owa/")
    assert status == 302
    cookie = headers["set-cookie"]
    assert cookie.startswith("EXHALB=") and "Path=/" in cookie and "HttpOnly" in cookie
    value = cookie.split(";")[0]
    server = headers["x-server"]
    for path in ("/owa/", "/ecp/", "/owa/x", "/ecp/y"):
        st, h, _ = http_get(net.vip, 8001, path, headers={"Cookie": f"a=1; {value}"})
        assert h["x-server"] == server and "set-cookie" not in h
        assert value in h["x-cookie"]  # the request reached the server unchanged
    # a client without the cookie is balanced as usual and gets the other server's cookie
    others = {http_get(net.vip, 8001, "/ecp/")[1]["set-cookie"].split(";")[0] for _ in range(4)}
    assert len(others) == 2


def test_port_list_keeps_one_server_per_client(net: Net, backend: Callable[..., Proc],
                                               balancer: Callable[..., Balancer]) -> None:
    ports = [13135, 16000, 16001]
    backend("echo", "A", net.host(23), ports)
    backend("echo", "B", net.host(24), ports)
    text = f"""
[[virtual_services]]
name = "mapi"
vip = "{net.vip}"
template = "exchange2010-mapi-static"
ports = {ports}
scheduler = "round_robin"
[virtual_services.health]
port = 13135
interval = 0.5
[[virtual_services.real_servers]]
address = "{net.host(23)}"
[[virtual_services.real_servers]]
address = "{net.host(24)}"
"""
    balancer(text)
    seen: dict[str, set[str]] = {}
    for client in (net.host(50), net.host(51)):
        for port in ports + ports:
            with socket.create_connection((net.vip, port), timeout=5, source_address=(client, 0)) as s:
                _, name, local_port, _ = s.makefile("rb").readline().decode().split()
            assert int(local_port) == port
            seen.setdefault(client, set()).add(name)
    assert seen[net.host(50)] != seen[net.host(51)] and all(len(v) == 1 for v in seen.values())


def test_client_that_half_closes_at_once_still_gets_its_answer(net: Net, backend: Callable[..., Proc],
                                                               balancer: Callable[..., Balancer]) -> None:
    _servers(backend, net, [8001])
    balancer(_service("web", 8001, net, "round_robin"))
    with socket.create_connection((net.vip, 8001), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.shutdown(socket.SHUT_WR)  # before the balancer has even reached a server
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b"X-Server: " in data


def test_protocol_path_when_splice_is_off(net: Net, backend: Callable[..., Proc],
                                          balancer: Callable[..., Balancer]) -> None:
    """`splice = false` sends plain TCP services through the Protocol path: same behaviour."""
    a = backend("http", "A", net.host(23), [8001])
    backend("http", "B", net.host(24), [8001])
    lb = balancer("splice = false\n" + _service("web", 8001, net, "round_robin"))
    assert Counter(http_get(net.vip, 8001)[1]["x-server"] for _ in range(10)) == {"A": 5, "B": 5}
    big = http_get(net.vip, 8001, "/bytes/3000000")[2]
    assert len(big) == 3_000_000
    a.kill()
    assert {http_get(net.vip, 8001)[1]["x-server"] for _ in range(6)} == {"B"}
    assert lb.server("web", net.host(23))["state"] == "down"


def test_bulk_transfer_through_splice(net: Net, backend: Callable[..., Proc],
                                      balancer: Callable[..., Balancer]) -> None:
    _servers(backend, net, [8001])
    lb = balancer(_service("web", 8001, net, "round_robin"))
    for _ in range(2):
        body = http_get(net.vip, 8001, "/bytes/5000000")[2]
        assert len(body) == 5_000_000 and body == b"x" * 5_000_000
    st = lb.state()["services"][0]
    assert st["bytes_out"] > 10_000_000


def test_slow_reader_gets_every_byte(net: Net, backend: Callable[..., Proc],
                                     balancer: Callable[..., Balancer]) -> None:
    """A client that reads slowly makes the balancer hold bytes and wait (flow control), losing none."""
    _servers(backend, net, [8001])
    balancer(_service("web", 8001, net, "round_robin"))
    size = 4_000_000
    with socket.create_connection((net.vip, 8001), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.sendall(f"GET /bytes/{size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if len(data) < size // 2:
                time.sleep(0.005)
    assert data.endswith(b"x" * size)


def test_http_mode_client_that_never_sends_is_closed_at_idle_timeout(
        net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer]) -> None:
    _servers(backend, net, [8001])
    extra = 'mode = "http"\n[virtual_services.timeouts]\nidle = 0.5'
    balancer(_service("web", 8001, net, "round_robin", extra))
    with socket.create_connection((net.vip, 8001), timeout=5) as s:
        start = time.monotonic()
        assert s.recv(10) == b""  # closed by the balancer, not by our 5 s timeout
        assert time.monotonic() - start < 4
