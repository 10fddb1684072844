"""Failover: a back end killed under load, a hung back end, closing and draining connections."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from lbkit import Balancer, Net, Proc, http_get, keepalive


def _config(net: Net, port: int, health: str, extra: str = "") -> str:
    return f"""
[[virtual_services]]
name = "web"
vip = "{net.vip}"
port = {port}
scheduler = "round_robin"
{extra}
[virtual_services.health]
{health}
[[virtual_services.real_servers]]
address = "{net.host(23)}"
[[virtual_services.real_servers]]
address = "{net.host(24)}"
"""


def test_killed_backend_under_load(net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer]) -> None:
    backend("http", "A", net.host(23), 8001)
    b = backend("http", "B", net.host(24), 8001)
    lb = balancer(_config(net, 8001, 'kind = "tcp"\ninterval = 1.0'))
    total, threads, per_thread = 2000, 8, 250
    results: list[tuple[float, str]] = []  # (start, outcome)
    lock = threading.Lock()
    done = Counter[str]()

    def client() -> None:
        for _ in range(per_thread):
            start = time.time()
            try:
                outcome = http_get(net.vip, 8001, timeout=5)[1]["x-server"]
            except ConnectionRefusedError:
                outcome = "refused"
            except (OSError, IndexError, KeyError):
                outcome = "error"
            with lock:
                results.append((start, outcome))
                done[outcome] += 1
            time.sleep(0.02)  # bounded rate: 8 clients x 250 requests spread over a few seconds

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    while len(results) < total // 3:
        time.sleep(0.01)
    killed_at = time.time()
    b.kill()
    for w in workers:
        w.join(30)
    assert len(results) == total
    down_lines = lb.log_events("server_down")
    assert down_lines, lb.proc.text()
    detected = min(_log_time(ln) for ln in down_lines)
    assert killed_at - 0.5 <= detected <= killed_at + 5
    counts = Counter(outcome for _, outcome in results)
    assert counts["refused"] == 0, counts
    late_errors = [s for s, o in results if o == "error" and s > detected]
    assert late_errors == [], (counts, detected)
    assert counts["error"] <= threads  # at most the requests in flight on B when it died
    assert counts["B"] > 0 and counts["A"] > total // 2
    assert lb.server("web", net.host(24))["state"] == "down"


def _log_time(line: str) -> float:
    import calendar

    stamp = line.split(" ", 1)[0]  # 2026-01-01T00:00:00.123Z
    whole, frac = stamp.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1000


def test_hung_backend_detected_within_interval_times_fall(net: Net, backend: Callable[..., Proc],
                                                          balancer: Callable[..., Balancer]) -> None:
    backend("http", "A", net.host(23), 8001)
    b = backend("http", "B", net.host(24), 8001)
    interval, timeout, fall = 0.4, 0.3, 3
    lb = balancer(_config(net, 8001, f'kind = "http"\npaths = ["/owa/healthcheck.htm"]\ninterval = {interval}\n'
                                     f'timeout = {timeout}\nfall = {fall}\nrise = 2'))
    assert lb.server("web", net.host(24))["state"] == "up"
    b.kill(signal.SIGSTOP)  # the process is frozen: TCP still connects, nothing answers
    took = lb.wait(lambda: lb.server("web", net.host(24))["state"] == "down", 10, "B down")
    assert took <= interval * fall + timeout + 1.0, took
    assert "timeout after 0.3s" in lb.server("web", net.host(24))["last_check"]["detail"]
    assert {http_get(net.vip, 8001)[1]["x-server"] for _ in range(6)} == {"A"}
    b.kill(signal.SIGCONT)
    lb.wait(lambda: lb.server("web", net.host(24))["state"] == "up", 10, "B up again")
    assert Counter(http_get(net.vip, 8001)[1]["x-server"] for _ in range(6)) == {"A": 3, "B": 3}


_OPEN: list[socket.socket] = []


def teardown_function() -> None:
    while _OPEN:
        _OPEN.pop().close()


def _held(net: Net, port: int, want: str) -> socket.socket:
    """A keep-alive connection through the balancer that landed on server `want`."""
    for _ in range(6):
        s, server = keepalive(net, port)
        _OPEN.append(s)
        if server == want:
            return s
        s.close()
    raise AssertionError(f"no connection landed on {want}")


def _alive(s: socket.socket) -> bool:
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return b"200" in s.recv(4096)
    except OSError:
        return False


def test_connections_closed_when_server_goes_down(net: Net, backend: Callable[..., Proc],
                                                  balancer: Callable[..., Balancer], tmp_path: Path) -> None:
    flag = tmp_path / "b-down"
    backend("http", "A", net.host(23), [8001, 8002])
    backend("http", "B", net.host(24), [8001, 8002], "--down-flag", str(flag))
    health = 'kind = "http"\npaths = ["/owa/healthcheck.htm"]\ninterval = 0.3\nfall = 1'
    text = _config(net, 8001, health) + _config(net, 8002, health, "close_on_server_down = false").replace(
        'name = "web"', 'name = "keep"')
    lb = balancer(text)
    a, b = _held(net, 8001, "A"), _held(net, 8001, "B")
    b_keep = _held(net, 8002, "B")
    flag.write_text("")  # B's health page now answers 503
    lb.wait(lambda: lb.server("web", net.host(24))["state"] == "down", 5, "B down")
    time.sleep(0.6)
    assert not _alive(b)           # closed by the balancer
    assert _alive(a)               # untouched
    assert _alive(b_keep)          # close_on_server_down = false: established connection stays
    assert lb.log_events("close_sessions")


def test_drain_and_disable(net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer]) -> None:
    backend("http", "A", net.host(23), 8001)
    backend("http", "B", net.host(24), 8001)
    lb = balancer(_config(net, 8001, 'kind = "tcp"\ninterval = 0.5', "[virtual_services.timeouts]\ndrain = 1.5"),
                  token="t0ken")
    held = _held(net, 8001, "B")
    assert lb.post(f"/api/servers/web/{net.host(24)}/drain")[0] == 200
    assert {http_get(net.vip, 8001)[1]["x-server"] for _ in range(6)} == {"A"}  # no new clients on B
    assert _alive(held)                                                          # existing one goes on
    time.sleep(2.0)                                                              # drain timeout 1.5 s
    assert not _alive(held)
    assert lb.post(f"/api/servers/web/{net.host(24)}:8001/enable")[0] == 200
    held = _held(net, 8001, "B")
    assert lb.post(f"/api/servers/web/{net.host(24)}/disable")[0] == 200
    time.sleep(0.6)
    assert not _alive(held)                                                      # disable closes at once
    assert lb.server("web", net.host(24))["admin"] == "disabled"


class _Blackhole:
    """A listening socket whose accept queue is full: further SYNs are dropped, so connects hang."""

    def __init__(self, address: str, port: int) -> None:
        self.listener = socket.socket()
        self.listener.bind((address, port))
        self.listener.listen(0)
        self.fillers = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((address, port))
            self.fillers.append(s)
        time.sleep(0.2)

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.listener.close()


def test_connect_timeout_retries_on_another_server(net: Net, backend: Callable[..., Proc],
                                                   balancer: Callable[..., Balancer]) -> None:
    backend("http", "A", net.host(23), 8001)
    hole = _Blackhole(net.host(24), 8001)
    try:
        lb = balancer(_config(net, 8001, 'kind = "none"', "[virtual_services.timeouts]\nconnect = 0.5"))
        got = [http_get(net.vip, 8001)[1]["x-server"] for _ in range(4)]
        assert got == ["A"] * 4  # the one that went to B waited 0.5 s, then went to A
        assert lb.server("web", net.host(24))["state"] == "down"
        assert "reason=TimeoutError" in lb.log_events("server_down")[0]
    finally:
        hole.close()


def test_blackholed_backend_detected_within_interval_times_fall(net: Net, backend: Callable[..., Proc],
                                                                balancer: Callable[..., Balancer]) -> None:
    backend("http", "A", net.host(23), 8001)
    interval, timeout, fall = 0.4, 0.3, 3
    with socket.socket() as b_listener:
        b_listener.bind((net.host(24), 8001))
        b_listener.listen(64)
        lb = balancer(_config(net, 8001, f'kind = "tcp"\ninterval = {interval}\ntimeout = {timeout}\nfall = {fall}'))
        assert lb.server("web", net.host(24))["state"] == "up"
        b_listener.close()
        hole = _Blackhole(net.host(24), 8001)  # same address, now dropping SYNs
        try:
            took = lb.wait(lambda: lb.server("web", net.host(24))["state"] == "down", 10, "B down")
            assert took <= interval * fall + timeout + 1.0, took
            assert lb.server("web", net.host(24))["last_check"]["detail"] == "timeout after 0.3s"
        finally:
            hole.close()


def test_idle_timeout_closes_quiet_connections(net: Net, backend: Callable[..., Proc],
                                               balancer: Callable[..., Balancer]) -> None:
    backend("http", "A", net.host(23), 8001)
    backend("http", "B", net.host(24), 8001)
    balancer(_config(net, 8001, 'kind = "tcp"\ninterval = 0.5', "[virtual_services.timeouts]\nidle = 0.6"))
    busy, quiet = _held(net, 8001, "A"), _held(net, 8001, "B")
    for _ in range(6):
        time.sleep(0.25)
        assert _alive(busy)
    assert not _alive(quiet)
