"""Helpers for the balancer tests: loopback addresses, process handles, an HTTP client."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from benchmarks.lb_bench import children, cpu_seconds, socket_fds, wait_port  # noqa: F401 (the benchmark's)
from netkit import free_port  # noqa: F401 (shared with tests/roles)


REPO = Path(__file__).resolve().parents[2]
BACKEND = Path(__file__).resolve().parent / "backend_server.py"
_SECOND = random.Random(os.getpid()).randrange(60, 250)
_third = iter(range(1, 250))


def tcp_address(ip: str, port: int) -> str:
    """An IPv4 address and port as /proc/net/tcp writes them."""
    return f"{socket.inet_aton(ip)[::-1].hex().upper()}:{port:04X}"


def established(pid: int, remotes: set[str]) -> set[str]:
    """Inodes of the established TCP sockets (in `pid`'s network namespace) whose remote end is in `remotes`
    (written as `tcp_address` does)."""
    return {f[9] for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
            if (f := line.split())[2] in remotes and f[3] == "01"}


@dataclass
class Net:
    """A loopback /24 of its own per test: VIP .28, servers .23 and .24, clients .50+."""

    prefix: str

    @property
    def vip(self) -> str:
        return f"{self.prefix}.28"

    def host(self, n: int) -> str:
        return f"{self.prefix}.{n}"


def service_toml(net: Net, name: str, listen: str, servers: tuple[int, ...] = (23,),
                 health: str = 'kind = "tcp"\ninterval = 0.3', weights: tuple[int, ...] = ()) -> str:
    """One virtual service on `net`'s VIP: `listen` holds its port line(s) and any other service fields,
    `servers` the last octets of its real servers (with `weights`, when given), `health` the body of its
    health table."""
    reals = "".join(f'[[virtual_services.real_servers]]\naddress = "{net.host(n)}"\n'
                    + (f"weight = {weights[i]}\n" if weights else "") for i, n in enumerate(servers))
    return (f'[[virtual_services]]\nname = "{name}"\nvip = "{net.vip}"\n{listen}\n'
            f"[virtual_services.health]\n{health}\n{reals}")


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    log: Path

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            if sig == signal.SIGKILL:
                self.popen.wait(5)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Balancer:
    proc: Proc
    config: Path
    admin: str
    token: str = ""
    events: list[str] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{self.admin}/api/state", timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def server(self, service: str, address: str) -> dict[str, Any]:
        for svc in self.state()["services"]:
            if svc["name"] == service:
                for s in svc["servers"]:
                    if s["address"] == address:
                        return s  # type: ignore[no-any-return]
        raise KeyError((service, address))

    def post(self, path: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(f"http://{self.admin}{path}", method="POST", data=b"")
        tok = self.token if token is None else token
        if tok:
            req.add_header("Authorization", f"Bearer {tok}")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> float:
        start = time.monotonic()
        while not predicate():
            if time.monotonic() - start > timeout:
                raise AssertionError(f"timed out waiting for {what}; log:\n{self.proc.text()[-3000:]}")
            time.sleep(0.05)
        return time.monotonic() - start

    def log_events(self, name: str) -> list[str]:
        return [ln for ln in self.proc.text().splitlines() if f"event={name} " in ln or ln.endswith(f"event={name}")]


def keepalive(net: Net, port: int) -> tuple[socket.socket, str]:
    """A keep-alive connection through the balancer after one request, and the server (`X-Server`) that
    answered it."""
    s = socket.create_connection((net.vip, port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    server = re.search(rb"X-Server: (\S+)", s.recv(4096))
    return s, server.group(1).decode() if server else ""


def http_get(address: str, port: int, path: str = "/", headers: dict[str, str] | None = None,
             source: str | None = None, timeout: float = 5.0, tls: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a new connection (Connection: close); returns status, headers, body."""
    import ssl as _ssl

    sock = socket.create_connection((address, port), timeout=timeout,
                                    source_address=(source, 0) if source else None)
    if tls:
        ctx = _ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = _ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname="outlook.corp.example")
    hdrs = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{hdrs}Connection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    out: dict[str, str] = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        out.setdefault(k.strip().lower(), v.strip())
    return status, out, body
