"""Several worker processes (SO_REUSEPORT) sharing health state, counters and source-IP persistence."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from lb.state import ServerTable
from roles.balancer.render import health_text
from lbkit import (Balancer, Net, Proc, children, established, http_get, keepalive, service_toml, socket_fds,
                   tcp_address)


def _config(net: Net, extra: str = "") -> str:
    return "workers = 2\n" + service_toml(net, "web", f'port = 8001\nscheduler = "round_robin"\n{extra}',
                                          servers=(23, 24), health='kind = "tcp"\ninterval = 0.5')


def test_listening_workers_are_counted_in_the_shared_table() -> None:
    table = ServerTable(workers=3)
    assert table.listening() == 0
    table.set_listening(0, True)
    table.set_listening(2, True)
    assert table.listening() == 2
    table.set_listening(2, False)
    assert table.listening() == 1


def _worker_pids(lb: Balancer) -> list[int]:
    return children(lb.proc.popen.pid)


def test_workers_share_state_and_persistence(net: Net, backend: Callable[..., Proc],
                                             balancer: Callable[..., Balancer]) -> None:
    backend("http", "A", net.host(23), 8001)
    b = backend("http", "B", net.host(24), 8001)
    lb = balancer(_config(net, '[virtual_services.persistence]\nkind = "source_ip"\ntimeout = 600'))
    assert len(_worker_pids(lb)) == 2
    # many connections from one client land on different workers (SO_REUSEPORT hashes the source port),
    # yet every one reaches the same server: the persistence table is shared
    for client in (net.host(50), net.host(51), net.host(52), net.host(53)):
        assert len({http_get(net.vip, 8001, source=client)[1]["x-server"] for _ in range(12)}) == 1
    spread = Counter(http_get(net.vip, 8001, source=net.host(60 + i))[1]["x-server"] for i in range(20))
    assert set(spread) == {"A", "B"}
    st = lb.state()  # the supervisor asks the workers for their counters before it answers: exact at once
    assert sum(s["connections_total"] for s in st["services"][0]["servers"]) == 4 * 12 + 20
    b.kill()
    lb.wait(lambda: lb.server("web", net.host(24))["state"] == "down", 5, "B down")
    assert {http_get(net.vip, 8001, source=net.host(70 + i))[1]["x-server"] for i in range(10)} == {"A"}


def test_worker_respawn_and_stop(net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer],
                                 tmp_path: Path) -> None:
    backend("http", "A", net.host(23), 8001)
    backend("http", "B", net.host(24), 8001)
    lb = balancer(_config(net))
    first = _worker_pids(lb)
    assert lb.state()["workers_listening"] == 2
    os.kill(first[0], signal.SIGKILL)
    lb.wait(lambda: len(_worker_pids(lb)) == 2 and first[0] not in _worker_pids(lb), 5, "respawn")
    lb.wait(lambda: lb.state()["workers_listening"] == 2, 5, "the new worker listening")
    script = tmp_path / "exha-lb-health"
    script.write_text(health_text(lb.admin))  # keepalived's check, as the balancer role installs it
    assert subprocess.run([sys.executable, str(script)], timeout=10).returncode == 0
    assert lb.log_events("worker_exited")
    assert {http_get(net.vip, 8001)[1]["x-server"] for _ in range(8)} == {"A", "B"}
    lb.proc.popen.send_signal(signal.SIGTERM)
    assert lb.proc.popen.wait(15) == 0
    assert _worker_pids(lb) == []
    assert subprocess.run([sys.executable, str(script)], timeout=10).returncode == 1


def _wakeups(pid: int) -> int:
    """How many times `pid` has gone to sleep and been woken (its voluntary context switches)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches in /proc/{pid}/status")


def test_an_idle_supervisor_sleeps_until_a_worker_exits(net: Net, backend: Callable[..., Proc],
                                                        balancer: Callable[..., Balancer]) -> None:
    """The supervisor learns of a worker's exit from its pidfd instead of polling: with nothing to check for
    a while it does not wake at all, and a killed worker is still replaced at once."""
    backend("http", "A", net.host(23), 8001)
    lb = balancer("workers = 2\n" + service_toml(net, "web", "port = 8001", health='kind = "tcp"\ninterval = 60'))
    supervisor = lb.proc.popen.pid
    time.sleep(0.5)  # let the start-up's last steps (first checks, the fixture's API calls) settle
    before = _wakeups(supervisor)
    time.sleep(3)
    woke = _wakeups(supervisor) - before
    assert woke <= 2, f"an idle supervisor woke {woke} times in 3 s"
    first = _worker_pids(lb)
    os.kill(first[0], signal.SIGKILL)
    lb.wait(lambda: len(_worker_pids(lb)) == 2 and first[0] not in _worker_pids(lb), 2, "respawn")
    assert len(lb.log_events("worker_exited")) == 1


def test_idle_workers_set_no_timer(net: Net, backend: Callable[..., Proc],
                                   balancer: Callable[..., Balancer]) -> None:
    """Once its last connection has ended and one sweep has found nothing open, a worker does not wake at all
    (it used to tick ten times a second, about 3 ms of CPU per second each)."""
    backend("http", "A", net.host(23), 8001)
    lb = balancer("workers = 2\n" + service_toml(net, "web", "port = 8001", health='kind = "tcp"\ninterval = 60'))
    for i in range(10):  # from several source addresses: both workers get connections
        assert http_get(net.vip, 8001, source=net.host(60 + i))[0] == 200
    time.sleep(1.5)  # one sweep period (1 s with the default timeouts) and the sweep that finds nothing open
    workers = _worker_pids(lb)
    before = {pid: _wakeups(pid) for pid in workers}
    time.sleep(3)
    woke = {pid: _wakeups(pid) - before[pid] for pid in workers}
    assert len(woke) == 2 and all(n <= 1 for n in woke.values()), f"idle workers woke {woke} times in 3 s"
    assert http_get(net.vip, 8001)[0] == 200  # and a new client is served as before


def test_workers_close_a_disabled_servers_connections_at_once(net: Net, backend: Callable[..., Proc],
                                                              balancer: Callable[..., Balancer]) -> None:
    """A state change made in the supervisor (here the admin API) reaches every worker as a signal, not on a
    timer: the disabled server's connections end within a fraction of the 1 s sweep period, in both workers."""
    backend("http", "A", net.host(23), 8001)
    backend("http", "B", net.host(24), 8001)
    lb = balancer(_config(net), token="t0ken")
    held = [keepalive(net, 8001) for _ in range(12)]
    try:
        on_b = [s for s, server in held if server == "B"]
        on_a = [s for s, server in held if server == "A"]
        assert len(on_b) >= 2 and on_a
        started = time.monotonic()
        assert lb.post(f"/api/servers/web/{net.host(24)}/disable")[0] == 200
        for s in on_b:
            assert s.recv(4096) == b""  # the balancer closed it (the 5 s timeout would raise instead)
        elapsed = time.monotonic() - started
        assert elapsed < 0.5, f"closing took {elapsed:.2f} s"
        for s in on_a:  # untouched
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200" in s.recv(4096)
    finally:
        for s, _ in held:
            s.close()


class _EchoServer:
    """An echo server that greets with `hello <name>`; `stop_listening()` refuses new connections while the
    accepted ones go on (a server that is going away)."""

    def __init__(self, name: str, address: str, port: int) -> None:
        self.name = name
        self.listener = socket.create_server((address, port))
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # stopped listening
                return
            self.conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        try:
            conn.sendall(f"hello {self.name}\n".encode())
            while data := conn.recv(4096):
                conn.sendall(data)
        except OSError:
            pass

    def stop_listening(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone would not
        except OSError:
            pass
        self.listener.close()

    def close(self) -> None:
        self.stop_listening()
        for conn in self.conns:
            conn.close()


def _held_by(pid: int, server: tuple[str, int]) -> int:
    """How many established connections to `server` process `pid` holds."""
    return len(established(pid, {tcp_address(*server)}) & socket_fds(pid).keys())


def test_a_server_one_worker_finds_down_has_its_connections_closed_by_every_worker(
        net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer]) -> None:
    """A worker whose connect is refused marks the server down (passive) and signals the supervisor, which
    passes the signal on: every worker closes its established connections to that server at once."""
    backend("echo", "A", net.host(23), 8001)
    b = _EchoServer("B", net.host(24), 8001)
    held: list[socket.socket] = []
    try:
        lb = balancer("workers = 2\n" + service_toml(net, "web", 'port = 8001\nscheduler = "round_robin"',
                                                     servers=(23, 24), health='kind = "none"\ninterval = 60'))
        for i in range(16):
            s = socket.create_connection((net.vip, 8001), source_address=(net.host(60 + i), 0), timeout=5)
            held.append(s)
        on_b = [s for s in held if s.recv(100).startswith(b"hello B")]
        workers = _worker_pids(lb)
        assert all(_held_by(pid, (net.host(24), 8001)) for pid in workers), "B's connections not in both workers"
        b.stop_listening()
        started = time.monotonic()
        for i in range(6):  # round robin: one of these tries B, is refused and goes to A
            with socket.create_connection((net.vip, 8001), source_address=(net.host(80 + i), 0), timeout=5) as c:
                assert c.recv(100).startswith(b"hello A")
        for s in on_b:
            assert s.recv(100) == b""  # closed by the balancer (the 5 s timeout would raise instead)
        elapsed = time.monotonic() - started
        assert elapsed < 0.3, f"closing took {elapsed:.2f} s"  # about 6 ms; the 1 s sweep would take up to 1 s
        assert lb.server("web", net.host(24))["state"] == "down"
        assert "check=passive" in lb.log_events("server_down")[0]
        assert all(_held_by(pid, (net.host(24), 8001)) == 0 for pid in workers)
    finally:
        for s in held:
            s.close()
        b.close()


def test_workers_reload_on_sighup(net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer]) -> None:
    backend("http", "A", net.host(23), 8001)
    backend("http", "B", net.host(24), 8001)
    lb = balancer(_config(net))
    assert {http_get(net.vip, 8001)[1]["x-server"] for _ in range(8)} == {"A", "B"}
    text = lb.config.read_text()
    lb.config.write_text(text.replace(f'[[virtual_services.real_servers]]\naddress = "{net.host(24)}"\n', ""))
    lb.proc.popen.send_signal(signal.SIGHUP)
    lb.wait(lambda: len(lb.state()["services"][0]["servers"]) == 1, 5, "supervisor reload")
    time.sleep(0.5)  # the workers reload on the supervisor's SIGHUP
    assert {http_get(net.vip, 8001)[1]["x-server"] for _ in range(10)} == {"A"}


def test_workers_end_when_the_supervisor_is_killed(net: Net, backend: Callable[..., Proc],
                                                   balancer: Callable[..., Balancer]) -> None:
    backend("http", "A", net.host(23), 8001)
    lb = balancer(_config(net))
    workers = _worker_pids(lb)
    assert len(workers) == 2
    lb.proc.kill()  # SIGKILL: no chance to stop the workers itself
    deadline = time.monotonic() + 15
    while any(os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" for pid in workers):
        assert time.monotonic() < deadline, "orphaned workers kept running"
        time.sleep(0.1)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _relay(net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer], extra: str) -> Balancer:
    backend("echo", "A", net.host(23), 8001)
    backend("echo", "B", net.host(24), 8001)
    return balancer(f"workers = 2\n{extra}\n" + service_toml(
        net, "relay", 'port = 8001\nscheduler = "round_robin"', servers=(23, 24),
        health='kind = "tcp"\ninterval = 0.5'))


def _on_worker(net: Net, pid: int, first: int = 60) -> tuple[list[socket.socket], dict[socket.socket, bytes]]:
    """Connections (from .60 up) that the kernel's hash gave to worker `pid`, with their servers' greetings;
    the others are reset."""
    opened = [socket.create_connection((net.vip, 8001), source_address=(net.host(first + i), 0), timeout=5)
              for i in range(40)]
    greeting = {s: s.recv(100) for s in opened}
    held = socket_fds(pid).keys()
    mine = [s for s in opened if established(pid, {tcp_address(*s.getsockname())}) & held]
    for s in opened:
        if s not in mine:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
    assert len(mine) >= 8, f"the hash gave the worker only {len(mine)} of 40 connections"
    return mine, greeting


def _where(workers: list[int], conns: list[socket.socket]) -> list[int]:
    """How many of `conns` each worker holds."""
    remotes = {tcp_address(*s.getsockname()) for s in conns}
    return [len(established(pid, remotes) & socket_fds(pid).keys()) for pid in workers]


def _exchange(conns: list[socket.socket], rnd: int) -> None:
    for s in conns:  # each line comes back from the same server, wherever the connection now is
        s.sendall(f"line {rnd}\n".encode())
        assert s.recv(100) == f"line {rnd}\n".encode()


def test_long_lived_sessions_are_spread_over_the_workers(net: Net, backend: Callable[..., Proc],
                                                         balancer: Callable[..., Balancer]) -> None:
    """With consolidation off: connections the kernel's hash gave to one worker, once each has carried a few
    requests (long-lived), are half passed to the other, and every one goes on working with the same server."""
    lb = _relay(net, backend, balancer, "consolidate_below = 0")
    workers = _worker_pids(lb)
    mine, greeting = _on_worker(net, workers[0])
    try:
        assert _where(workers, mine) == [len(mine), 0]
        for rnd in range(6):  # long-lived after 4 requests
            _exchange(mine, rnd)
        counts = _where(workers, mine)
        assert sum(counts) == len(mine) and abs(counts[0] - counts[1]) <= 1, counts
        # each server's open connections, as the workers count them, are still the ones it greeted
        greeted = Counter(greeting[s].split()[1].decode() for s in mine)
        servers = {s["address"]: s["connections"] for s in lb.state()["services"][0]["servers"]}
        assert servers == {net.host(23): greeted["A"], net.host(24): greeted["B"]}
    finally:
        for s in mine:
            s.close()


def _first_worker(lb: Balancer, workers: list[int]) -> int:
    """The pid of worker 0 (the first listening one), from the workers' own log lines."""
    for line in lb.log_events("worker_started"):
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if fields.get("worker") == "0":
            assert int(fields["pid"]) in workers
            return int(fields["pid"])
    raise AssertionError("no worker_started line for worker 0")


def _gathered(workers: list[int], conns: list[socket.socket], first: int, other: int) -> None:
    """Wait (10 s at most) until worker `first` holds every one of `conns`."""
    deadline = time.monotonic() + 10
    while dict(zip(workers, _where(workers, conns))) != {first: len(conns), other: 0}:
        assert time.monotonic() < deadline, dict(zip(workers, _where(workers, conns)))
        time.sleep(0.1)


def test_at_light_load_long_lived_sessions_gather_on_the_first_worker(
        net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer]) -> None:
    """Below `consolidate_below` (default 0.3 of a core) every long-lived connection ends on worker 0 (once a
    sample has shown the load light), from whichever worker the hash gave it to, and keeps working with its
    server."""
    lb = _relay(net, backend, balancer, "")
    workers = _worker_pids(lb)
    first = _first_worker(lb, workers)
    other = next(pid for pid in workers if pid != first)
    conns: list[socket.socket] = []
    try:
        for pid, base in ((other, 60), (first, 110)):  # some from each worker
            mine, _ = _on_worker(net, pid, base)
            conns += mine
        for rnd in range(6):
            _exchange(conns, rnd)
        _gathered(workers, conns, first, other)
        _exchange(conns, 6)
        servers = {s["address"]: s["connections"] for s in lb.state()["services"][0]["servers"]}
        assert sum(servers.values()) == len(conns)
    finally:
        for s in conns:
            s.close()


def test_long_lived_sessions_spread_under_load_and_gather_again_when_it_falls(
        net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer]) -> None:
    """With a low line (0.02 of a core), a busy exchange spreads the connections over both workers; once it
    stops, they gather on worker 0 again. The busy loop is bounded (20 s, 200,000 lines)."""
    lb = _relay(net, backend, balancer, "consolidate_below = 0.02")
    workers = _worker_pids(lb)
    first = _first_worker(lb, workers)
    other = next(pid for pid in workers if pid != first)
    conns, _ = _on_worker(net, other)
    try:
        for rnd in range(6):
            _exchange(conns, rnd)
        _gathered(workers, conns, first, other)
        deadline, lines, spread = time.monotonic() + 20, 0, False
        while time.monotonic() < deadline and lines < 200_000 and not spread:
            for _ in range(20):
                _exchange(conns, 7)
            lines += 20 * len(conns)
            counts = _where(workers, conns)
            spread = sum(counts) == len(conns) and min(counts) >= len(conns) // 2 - 1
        assert spread, f"still {counts} after {lines} lines"
        _exchange(conns, 8)  # every connection still works
        _gathered(workers, conns, first, other)
        _exchange(conns, 9)
    finally:
        for s in conns:
            s.close()
