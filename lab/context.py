"""The lab's shared context: where state lives, daemons inside host namespaces, credentials, and
the `Component` protocol every lab service (DNS, vSphere, Exchange stand-ins, simulators, VM) follows."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lab.errors import LabError
from lab.pki import CertPair, ensure_ca, issue_cert
from lab.topology import LabHost, Topology, load_topology

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

DEFAULT_STATE = Path(os.environ.get("EXHA_LAB_STATE", "/var/lib/exha-lab"))
DEFAULT_CACHE = Path(os.environ.get("EXHA_LAB_CACHE", "/var/cache/exha-lab"))


@dataclass
class ServiceStatus:
    """One service's state as `exha lab status` reports it."""

    host: str
    service: str
    address: str
    port: int | None
    state: str  # "up", "down", "absent" (not started yet, e.g. a VM that is not powered on)
    detail: str = ""
    credentials: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Component(Protocol):
    """A lab service. Every method is idempotent; `lab up` calls build then start, `lab down` stop."""

    name: str

    def build(self, lab: Lab) -> None:
        """Build or fetch what the service needs into the cache (fast when cached)."""

    def start(self, lab: Lab) -> None:
        """Start the service unless it already runs; leave it ready to answer."""

    def status(self, lab: Lab) -> list[ServiceStatus]:
        """Check each endpoint for real (connect, query) and report."""

    def stop(self, lab: Lab) -> None:
        """Stop every process and remove every mount or file outside the state folder it made."""


class Lab:
    """Paths, topology, CA, credentials and daemon management for one lab instance."""

    def __init__(self, topology: Topology | None = None, state_dir: Path | None = None,
                 cache_dir: Path | None = None) -> None:
        self.topology = topology or load_topology()
        self.state_dir = Path(state_dir or DEFAULT_STATE)
        self.cache_dir = Path(cache_dir or DEFAULT_CACHE)
        self.project_root = Path(__file__).resolve().parent.parent

    # -- folders -----------------------------------------------------------------------------
    def folder(self, *parts: str) -> Path:
        p = self.state_dir.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def cache(self, *parts: str) -> Path:
        p = self.cache_dir.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def logs(self) -> Path:
        return self.folder("logs")

    # -- TLS -------------------------------------------------------------------------------
    @property
    def ca(self) -> CertPair:
        return ensure_ca(self.folder("pki"))

    def server_cert(self, host: LabHost, extra_dns: list[str] | None = None) -> CertPair:
        dns = [host.fqdn, host.fqdn.lower(), host.name, *(extra_dns or [])]
        return issue_cert(self.ca, self.folder("pki"), host.name, list(dict.fromkeys(dns)), [host.address])

    # -- credentials -------------------------------------------------------------------------
    @property
    def credentials_file(self) -> Path:
        return self.state_dir / "credentials.json"

    def credentials(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self.credentials_file.read_text())
        except FileNotFoundError:
            return {}

    def set_credentials(self, endpoint: str, values: dict[str, Any]) -> None:
        """Record one endpoint's credentials in credentials.json (mode 0600)."""
        creds = self.credentials()
        creds[endpoint] = values
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.credentials_file.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.chmod(0o600)
        tmp.write_text(json.dumps(creds, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.credentials_file)

    # -- daemons ---------------------------------------------------------------------------
    def _pidfile(self, name: str) -> Path:
        return self.folder("run") / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        """The pid of daemon `name` if it is running, else None. A pidfile that also records the
        process's start time only matches that very process, never a later one given the same pid."""
        try:
            fields = self._pidfile(name).read_text().split()
            pid = int(fields[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        if len(fields) > 1 and fields[1] != _start_time(pid):
            return None
        child = _CHILDREN.get(pid)
        if child is not None and child.poll() is not None:  # our own child has exited: reaped now
            del _CHILDREN[pid]
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        try:  # a zombie left by an exited child is not running
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                os.waitpid(pid, os.WNOHANG)
                return None
        except (FileNotFoundError, ChildProcessError, IndexError):
            return None
        return pid

    def spawn(self, name: str, namespace: str | None, argv: list[str],
              env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
        """Start `argv` as daemon `name` inside `namespace` (None: the root namespace), logging to
        logs/<name>.log. No-op if it already runs. Returns its pid."""
        running = self.pid(name)
        if running:
            return running
        cmd = (["ip", "netns", "exec", namespace] if namespace else []) + argv
        log = open(self.logs / f"{name}.log", "ab")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=full_env, cwd=cwd)
        log.close()
        # Keep the Popen alive for this process's life: a collected Popen of a running daemon warns
        # ("subprocess N is still running"), and poll() reaps it once it exits.
        _CHILDREN[proc.pid] = proc
        self._pidfile(name).write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
        return proc.pid

    def python_argv(self, module: str, *args: str) -> list[str]:
        """argv that runs `python -m module args` with this interpreter (the project's venv)."""
        return [sys.executable, "-m", module, *args]

    def stop_daemon(self, name: str, timeout: float = 5.0) -> None:
        """Stop daemon `name` (its whole process group): SIGTERM, then SIGKILL after `timeout`."""
        pid = self.pid(name)
        if pid:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and self.pid(name):
                    time.sleep(0.05)
                if not self.pid(name):
                    break
        self._pidfile(name).unlink(missing_ok=True)

    def netns_run(self, namespace: str, argv: list[str], check: bool = True,
                  timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command to completion inside `namespace`."""
        return run(["ip", "netns", "exec", namespace, *argv], check=check, timeout=timeout)

    def wait_ready(self, ready: Callable[[], bool], timeout: float, failure: str,
                   daemon: str | None = None, interval: float = 0.1) -> None:
        """Poll `ready()` until it is true; give up after `timeout` seconds, or at once when `daemon`
        (if given) is no longer running, raising LabError(`failure`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if daemon is not None and not self.pid(daemon):
                break
            time.sleep(interval)
        raise LabError(failure)

    def wait_port(self, namespace: str, address: str, port: int, timeout: float = 15.0) -> None:
        """Wait until something accepts TCP on address:port inside `namespace`."""
        self.wait_ready(lambda: tcp_open(address, port, namespace=namespace), timeout,
                        f"{namespace}: nothing listens on {address}:{port} after {timeout:.0f}s; "
                        f"see {self.logs}")


def build_once(artifact: Path, build: Callable[[], None]) -> Path:
    """Return `artifact`, running `build` first when it is missing. Builds of one cache folder take
    turns under a lock there, and a build that waited finds the other's result instead of building again."""
    if artifact.exists():
        return artifact
    with open(artifact.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not artifact.exists():
            build()
    return artifact


def run(argv: list[str], check: bool = True, timeout: float = 60,
        input: str | None = None) -> subprocess.CompletedProcess[str]:  # noqa: A002 - subprocess's name
    """Run a command, capture its output; on failure raise LabError with the command and its stderr."""
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    except FileNotFoundError:
        raise LabError(f"command not found: {argv[0]} (install it; see README)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from None
    if check and cp.returncode != 0:
        raise LabError(f"failed ({cp.returncode}): {' '.join(argv)}: {(cp.stderr or cp.stdout).strip()}")
    return cp


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or ""."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _netns_fd(namespace: str) -> int:
    return os.open(f"/run/netns/{namespace}", os.O_RDONLY)


def tcp_open(address: str, port: int, namespace: str | None = None, timeout: float = 1.0) -> bool:
    """True if a TCP connect to address:port succeeds (from inside `namespace` when given)."""
    if namespace is None:
        try:
            with socket.create_connection((address, port), timeout=timeout):
                return True
        except OSError:
            return False
    cp = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c",
                         "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), "
                         f"timeout={timeout}).close()", address, str(port)],
                        capture_output=True, timeout=timeout + 10)
    return cp.returncode == 0
