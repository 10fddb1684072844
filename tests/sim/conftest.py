"""Fixtures for the device simulator tests: simulators as real subprocesses on loopback ports, and a
real BIND 9 primary with a TSIG key in a temporary folder."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bindkit import Bind, prepare_bind

ROOT = Path(__file__).resolve().parents[2]


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def wait_tcp(
    address: str, port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {address}:{port} after {timeout}s: {log.read_text()[-2000:]}")


@dataclass
class Daemon:
    """A simulator subprocess on loopback that a test can stop and start again."""

    argv: list[str]
    address: str
    port: int
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **self.env}
            )
        try:
            wait_tcp(self.address, self.port, self.proc, self.log)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.stop()


@dataclass(frozen=True)
class AsaHandle:
    daemon: Daemon
    state: Path
    host: str
    port: int
    username: str
    password: str
    secret: str

    def netmiko_args(self, **over: object) -> dict[str, object]:
        args: dict[str, object] = {
            "device_type": "cisco_asa",
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "secret": self.secret,
            "fast_cli": True,
            "conn_timeout": 10,
        }
        args.update(over)
        return args


@pytest.fixture
def asa(tmp_path: Path, daemons: list[Daemon]) -> AsaHandle:
    """A running ASA simulator on 127.0.0.3 and a random port, state in tmp_path/asa."""
    host = "127.0.0.3"
    port = free_port(host)
    state = tmp_path / "asa"
    password, secret = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    argv = [
        sys.executable,
        "-m",
        "lab.asa_sim",
        "--listen",
        host,
        "--port",
        str(port),
        "--state",
        str(state),
        "--hostname",
        "asa1",
        "--username",
        "admin",
    ]
    d = Daemon(
        argv,
        host,
        port,
        tmp_path / "asa.log",
        {"ASA_SIM_PASSWORD": password, "ASA_SIM_ENABLE_SECRET": secret},
    )
    daemons.append(d.start())
    return AsaHandle(d, state, host, port, "admin", password, secret)


# -- BIND 9 ------------------------------------------------------------------------------------
@pytest.fixture
def bind(tmp_path: Path, daemons: list[Daemon]) -> Bind:
    """A real BIND 9 primary for corp.example on 127.0.0.1 (BIND listens only on interface addresses)
    that accepts RFC 2136 updates and zone
    transfers signed with a fresh TSIG key."""
    host = "127.0.0.1"
    argv, endpoint = prepare_bind(tmp_path / "bind", host, free_port(host))
    daemons.append(Daemon(argv, host, endpoint.port, tmp_path / "named.log", {}).start())
    return endpoint


@pytest.fixture
def make_daemon(tmp_path: Path, daemons: list[Daemon]) -> Callable[..., Daemon]:
    def make(
        name: str, argv: list[str], address: str, port: int, env: dict[str, str] | None = None
    ) -> Daemon:
        d = Daemon(argv, address, port, tmp_path / f"{name}.log", env or {})
        daemons.append(d.start())
        return d

    return make


# -- WinRM ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WinRMHandle:
    daemon: Daemon
    state: Path
    host: str
    http_port: int
    https_port: int
    username: str
    password: str
    ca_file: Path

    def session(self, password: str | None = None, https: bool = False) -> Any:
        import winrm

        if https:
            return winrm.Session(
                f"https://{self.host}:{self.https_port}/wsman",
                auth=(self.username, password or self.password),
                transport="basic",
                server_cert_validation="validate",
                ca_trust_path=str(self.ca_file),
            )
        return winrm.Session(
            f"http://{self.host}:{self.http_port}/wsman",
            auth=(self.username, password or self.password),
            transport="basic",
        )


def _start_winrm(
    tmp_path: Path,
    daemons: list[Daemon],
    name: str,
    host: str,
    role: str,
    extra: list[str],
    env: dict[str, str],
) -> WinRMHandle:
    from lab.pki import ensure_ca, issue_cert

    ca = ensure_ca(tmp_path / "pki")
    cert = issue_cert(ca, tmp_path / "pki", name, [f"{name}.corp.example"], [host])
    http_port, https_port = free_port(host), free_port(host)
    state = tmp_path / name
    password = secrets.token_urlsafe(12)
    argv = [
        sys.executable,
        "-m",
        "lab.winrm_sim",
        "--listen",
        host,
        "--http-port",
        str(http_port),
        "--https-port",
        str(https_port),
        "--cert",
        str(cert.cert),
        "--key",
        str(cert.key),
        "--state",
        str(state),
        "--username",
        "Administrator",
        "--role",
        role,
        "--server-name",
        name.upper(),
        *extra,
    ]
    d = Daemon(argv, host, http_port, tmp_path / f"{name}.log", {"WINRM_SIM_PASSWORD": password, **env})
    daemons.append(d.start())
    wait_tcp(host, https_port, d.proc, d.log) if d.proc else None
    return WinRMHandle(d, state, host, http_port, https_port, "Administrator", password, ca.cert)


@pytest.fixture
def exchange(tmp_path: Path, daemons: list[Daemon]) -> WinRMHandle:
    """A simulated Exchange server EX13-1 (HTTP and HTTPS with a lab CA) on 127.0.0.5."""
    return _start_winrm(
        tmp_path, daemons, "ex13-1", "127.0.0.5", "exchange", ["--exchange-servers", "EX13-1,EX13-2"], {}
    )


@pytest.fixture
def dc1(tmp_path: Path, daemons: list[Daemon], bind: Bind) -> WinRMHandle:
    """A simulated domain controller DC1 on 127.0.0.6 whose DnsServer cmdlets act on the `bind` zone."""
    return _start_winrm(
        tmp_path,
        daemons,
        "dc1",
        "127.0.0.6",
        "dns",
        [
            "--dns-server",
            bind.address,
            "--dns-port",
            str(bind.port),
            "--zone",
            bind.zone,
            "--tsig-name",
            bind.tsig_name,
            "--tsig-algorithm",
            bind.tsig_algorithm,
        ],
        {"WINRM_SIM_TSIG_SECRET": bind.tsig_secret},
    )
