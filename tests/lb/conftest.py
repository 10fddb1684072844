"""Fixtures for balancer tests: real back-end processes and a real balancer process, cleaned up after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest
from lbkit import _SECOND, BACKEND, REPO, Balancer, Net, Proc, _third, children, free_port, wait_port


@pytest.fixture
def net() -> Net:
    return Net(f"127.{_SECOND}.{next(_third)}")


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
    for p in procs:  # each process and its children (balancer workers), so nothing outlives the test
        pids = [p.popen.pid] + children(p.popen.pid)
        p.kill(signal.SIGCONT)
        p.kill(signal.SIGKILL)
        p.popen.wait(5)
        for pid in pids[1:]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


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
                listening = st["workers_listening"] >= st["workers"]  # every worker has its listeners open
                if listening and (not wait_up or all(s["last_check"] for svc in st["services"]
                                                     for s in svc["servers"] if svc["health"] != "none")):
                    return b
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"balancer did not come up: {proc.text()}")
            time.sleep(0.05)

    return start


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
