"""TLS offload (with and without re-encrypt), reload with open connections, and graceful stop."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from typing import Callable

from lbkit import Balancer, Net, Proc, http_get, service_toml


def _offload(net: Net, certs: tuple[str, str], server_port: int, reencrypt: bool) -> str:
    return service_toml(net, "owa", f"""port = 8443
template = "exchange2010-https-offloaded"
server_port = {server_port}
scheduler = "round_robin"
[virtual_services.tls]
cert = "{certs[0]}"
key = "{certs[1]}"
reencrypt = {str(reencrypt).lower()}""", servers=(23, 24),
                        health=f'kind = "{"https" if reencrypt else "http"}"\ninterval = 0.5')


def test_tls_offload_with_cookie(net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer],
                                 certs: tuple[str, str]) -> None:
    backend("http", "A", net.host(23), 8080)
    backend("http", "B", net.host(24), 8080)
    balancer(_offload(net, certs, 8080, reencrypt=False))
    status, headers, _ = http_get(net.vip, 8443, "/owa/", tls=True)
    assert status == 302
    cookie = headers["set-cookie"]
    assert "Secure" in cookie and cookie.startswith("EXHALB=")
    server = headers["x-server"]
    for path in ("/owa/", "/ecp/"):
        h = http_get(net.vip, 8443, path, tls=True, headers={"Cookie": cookie.split(";")[0]})[1]
        assert h["x-server"] == server


def test_tls_offload_reencrypt(net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer],
                               certs: tuple[str, str]) -> None:
    backend("https", "A", net.host(23), 9443, "--cert", certs[0], "--key", certs[1])
    backend("https", "B", net.host(24), 9443, "--cert", certs[0], "--key", certs[1])
    lb = balancer(_offload(net, certs, 9443, reencrypt=True))
    # from four addresses: the template keeps cookie-less requests of one address on one server
    servers = {http_get(net.vip, 8443, "/x", tls=True, source=net.host(60 + i))[1]["x-server"] for i in range(4)}
    assert servers == {"A", "B"}
    assert lb.server("owa", net.host(23))["last_check"]["ok"]
    # plain text to the TLS listener is not proxied
    s = socket.create_connection((net.vip, 8443), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        assert b"X-Server" not in s.recv(4096)
    except ConnectionResetError:
        pass
    s.close()


def _simple(net: Net, scheduler: str, servers: list[int], extra: str = "") -> str:
    return service_toml(net, "web", f'port = 8001\nscheduler = "{scheduler}"\n{extra}', servers=tuple(servers),
                        health='kind = "tcp"\ninterval = 0.5')


def test_reload_keeps_connections_and_persistence(net: Net, backend: Callable[..., Proc],
                                                  balancer: Callable[..., Balancer]) -> None:
    for n, name in ((23, "A"), (24, "B"), (25, "C")):
        backend("http", name, net.host(n), 8001)
    persist = '[virtual_services.persistence]\nkind = "source_ip"\ntimeout = 600'
    lb = balancer(_simple(net, "round_robin", [23, 24], persist))
    held = socket.create_connection((net.vip, 8001), timeout=5)
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200" in held.recv(4096)
    client = net.host(70)
    pinned = http_get(net.vip, 8001, source=client)[1]["x-server"]
    # a good new config: a third server, another scheduler
    lb.config.write_text(lb.config.read_text().replace(
        _simple(net, "round_robin", [23, 24], persist), _simple(net, "least_connections", [23, 24, 25], persist)))
    lb.proc.popen.send_signal(signal.SIGHUP)
    lb.wait(lambda: len(lb.state()["services"][0]["servers"]) == 3, 5, "reload")
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200" in held.recv(4096)                       # established connection survived
    assert {http_get(net.vip, 8001, source=client)[1]["x-server"] for _ in range(5)} == {pinned}
    assert lb.log_events("reloaded")
    # a bad new config is refused and the old one keeps running
    good = lb.config.read_text()
    lb.config.write_text(good.replace('scheduler = "least_connections"', 'scheduler = "random"'))
    lb.proc.popen.send_signal(signal.SIGHUP)
    lb.wait(lambda: bool(lb.log_events("reload_failed")), 5, "reload_failed event")
    line = lb.log_events("reload_failed")[0]
    assert "virtual_services[0].scheduler: expected one of" in line and "kept=old" in line
    assert len(lb.state()["services"][0]["servers"]) == 3
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200" in held.recv(4096)
    held.close()


def test_sigterm_waits_for_open_connections(net: Net, backend: Callable[..., Proc],
                                            balancer: Callable[..., Balancer]) -> None:
    backend("http", "A", net.host(23), 8001)
    lb = balancer(_simple(net, "round_robin", [23]))
    held = socket.create_connection((net.vip, 8001), timeout=5)
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200" in held.recv(4096)
    lb.proc.popen.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert lb.proc.popen.poll() is None                    # still serving the open connection
    try:
        socket.create_connection((net.vip, 8001), timeout=2).close()
        raise AssertionError("listener still open after SIGTERM")
    except ConnectionRefusedError:
        pass
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200" in held.recv(4096)
    held.close()
    assert lb.proc.popen.wait(5) == 0
    assert lb.log_events("stopped")


def test_bad_config_refuses_to_start(tmp_path: Path, spawn: Callable[..., Proc]) -> None:
    import sys

    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[virtual_services]]\nname = "x"\nvip = "127.0.0.28"\nport = 25\n')
    p = spawn([sys.executable, "-m", "lb", "run", "--config", str(cfg)], "bad")
    assert p.popen.wait(10) == 2
    assert p.text().strip() == (f"exha-lb: {cfg}: virtual_services[0].real_servers: expected at least one "
                                "[[virtual_services.real_servers]] table")


def test_vip_not_on_this_host_stops_start_with_one_line(tmp_path: Path, spawn: Callable[..., Proc]) -> None:
    import sys

    from lbkit import free_port

    cfg = tmp_path / "novip.toml"
    cfg.write_text(f'[admin]\nport = {free_port()}\n[[virtual_services]]\nname = "x"\nvip = "192.0.2.1"\nport = 2525\n'
                   '[[virtual_services.real_servers]]\naddress = "127.0.0.23"\n')
    p = spawn([sys.executable, "-m", "lb", "run", "--config", str(cfg)], "novip")
    assert p.popen.wait(10) == 1
    lines = p.text().strip().splitlines()
    assert len(lines) == 1 and "event=start_failed" in lines[0]
    assert 'reason="cannot listen on 192.0.2.1:2525: Cannot assign requested address"' in lines[0]
