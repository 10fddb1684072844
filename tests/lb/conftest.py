"""Fixtures for balancer tests: loopback addresses, real back-end processes and a real balancer process."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
BACKEND = Path(__file__).resolve().parent / "backend_server.py"
_SECOND = random.Random(os.getpid()).randrange(60, 250)
_third = iter(range(1, 250))


def wait_port(address: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{address}:{port} did not open within {timeout}s") from None
            time.sleep(0.05)


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@dataclass
class Net:
    """A loopback /24 of its own per test: VIP .28, servers .23 and .24, clients .50+."""

    prefix: str

    @property
    def vip(self) -> str:
        return f"{self.prefix}.28"

    def host(self, n: int) -> str:
        return f"{self.prefix}.{n}"


@pytest.fixture
def net() -> Net:
    return Net(f"127.{_SECOND}.{next(_third)}")


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


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    procs: list[Proc] = []

    def start(argv: list[str], name: str) -> Proc:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as fh:
            p = Proc(subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO), log)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill(signal.SIGCONT)
        p.kill(signal.SIGKILL)
        p.popen.wait(5)


@pytest.fixture
def backend(spawn: Callable[..., Proc]) -> Callable[..., Proc]:
    """backend(kind, name, address, ports, *extra) -> a running back-end process (killed at teardown)."""

    def start(kind: str, name: str, address: str, ports: list[int] | int, *extra: str) -> Proc:
        port_list = ports if isinstance(ports, list) else [ports]
        p = spawn([sys.executable, str(BACKEND), kind, name, address, ",".join(map(str, port_list)), *extra],
                  f"backend-{name}-{address}")
        for port in port_list:
            wait_port(address, port)
        return p

    return start


@pytest.fixture
def smtp_server(spawn: Callable[..., Proc]) -> Callable[[str, int], Proc]:
    def start(address: str, port: int) -> Proc:
        p = spawn([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{address}:{port}", "-c",
                   "aiosmtpd.handlers.Sink"], f"smtp-{address}")
        wait_port(address, port)
        return p

    return start


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


@pytest.fixture
def balancer(spawn: Callable[..., Proc], tmp_path: Path) -> Callable[..., Balancer]:
    """balancer(toml_text, token="") -> a running `exha-lb run` (admin address and port added here)."""

    def start(text: str, token: str = "", wait_up: bool = True, prefix: list[str] | None = None) -> Balancer:
        port = free_port()
        admin = f'[admin]\naddress = "127.0.0.1"\nport = {port}\n' + (f'token = "{token}"\n' if token else "")
        cfg = tmp_path / "lb.toml"
        cfg.write_text(text + "\n" + admin)
        proc = spawn((prefix or []) + [sys.executable, "-m", "lb", "run", "--config", str(cfg)], "balancer")
        b = Balancer(proc, cfg, f"127.0.0.1:{port}", token)
        deadline = time.monotonic() + 10
        while True:
            if proc.popen.poll() is not None:
                raise AssertionError(f"balancer exited: {proc.text()}")
            try:
                st = b.state()
                if not wait_up or all(s["last_check"] for svc in st["services"] for s in svc["servers"]
                                      if svc["health"] != "none"):
                    return b
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"balancer did not come up: {proc.text()}")
            time.sleep(0.05)

    return start


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


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate and key for outlook.corp.example (PEM paths)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "outlook.corp.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("outlook.corp.example")]), critical=False)
            .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("certs")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return str(d / "cert.pem"), str(d / "key.pem")
