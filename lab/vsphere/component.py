"""The lab's ESXi (or vCenter) endpoint: govmomi's simulator daemon, one per "vsphere" host.

The simulator keeps its inventory in memory: a restart forgets imported VMs (the lab keeps it
running while in use). Datastore files live under the state folder (vsphere/<host>/datastore).
"""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from lab.context import Lab, ServiceStatus, tcp_open
from lab.errors import LabError
from lab.topology import LabHost
from lab.vsphere.build import simulator_binary
from lab.vsphere.client import session

USERNAME = "root"
DEFAULT_PORT = 443


class VSphereComponent:
    """Builds, starts, checks and stops the vSphere simulator for each host with role "vsphere".

    + port: the HTTPS port (443 in the lab; tests pass a free one)
    + use_namespaces: run inside each host's namespace (False: the root namespace, for loopback tests)
    """

    name = "vsphere"

    def __init__(self, port: int = DEFAULT_PORT, use_namespaces: bool = True) -> None:
        self.port = port
        self.use_namespaces = use_namespaces

    # -- helpers ---------------------------------------------------------------------------
    def _hosts(self, lab: Lab) -> list[LabHost]:
        return lab.topology.by_role("vsphere")

    @staticmethod
    def daemon_name(host: LabHost) -> str:
        return f"vsphere-{host.name}"

    def _namespace(self, host: LabHost) -> str | None:
        return host.namespace if self.use_namespaces else None

    @staticmethod
    def _password_file(lab: Lab, host: LabHost) -> Path:
        """The host's password (stable across runs), created once with mode 0600."""
        path = lab.folder("vsphere", host.name) / "password"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(18) + "\n")
        return path

    def credentials(self, lab: Lab, host: LabHost) -> dict[str, Any]:
        """The credentials record for `host` (the "esxi1" endpoint shape)."""
        cert = lab.server_cert(host)
        return {
            "host": host.address,
            "port": self.port,
            "username": USERNAME,
            "password": self._password_file(lab, host).read_text().strip(),
            "ca_file": str(lab.ca.cert),
            "thumbprint": cert.sha1_thumbprint(),
        }

    def _wait_ready(self, lab: Lab, host: LabHost, timeout: float = 20.0) -> None:
        name = self.daemon_name(host)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if lab.pid(name) is None:
                raise LabError(f"{host.name}: the vSphere simulator exited; see {lab.logs / (name + '.log')}")
            if tcp_open(host.address, self.port, namespace=self._namespace(host), timeout=0.5):
                return
            time.sleep(0.2)
        raise LabError(f"{host.name}: the vSphere simulator does not listen on {host.address}:{self.port} "
                       f"after {timeout:.0f}s; see {lab.logs / (name + '.log')}")

    # -- Component ---------------------------------------------------------------------------
    def build(self, lab: Lab) -> None:
        simulator_binary(lab)

    def start(self, lab: Lab) -> None:
        binary = simulator_binary(lab)
        for host in self._hosts(lab):
            name = self.daemon_name(host)
            creds = self.credentials(lab, host)
            if lab.pid(name) is None:
                datastore = lab.folder("vsphere", host.name, "datastore")
                shutil.rmtree(datastore)  # the in-memory inventory starts empty, so old files are orphans
                datastore.mkdir()
                cert = lab.server_cert(host)
                argv = [str(binary), "--model", host.model, "--listen", f"{host.address}:{self.port}",
                        "--cert", str(cert.cert), "--key", str(cert.key), "--username", USERNAME,
                        "--password-file", str(self._password_file(lab, host))]
                lab.spawn(name, self._namespace(host), argv, env={"TMPDIR": str(datastore)})
            self._wait_ready(lab, host)
            lab.set_credentials(host.name, creds)

    def status(self, lab: Lab) -> list[ServiceStatus]:
        out = []
        for host in self._hosts(lab):
            creds = self.credentials(lab, host)
            shown = {k: v for k, v in creds.items() if k != "password"}
            if lab.pid(self.daemon_name(host)) is None:
                out.append(ServiceStatus(host.name, "vsphere", host.address, self.port, "down",
                                         "simulator not running", shown))
                continue
            try:
                with session(creds, timeout=5) as si:
                    about = si.content.about
                    detail = f"{about.fullName} ({about.apiType}), login as {USERNAME} ok, TLS verified"
                out.append(ServiceStatus(host.name, "vsphere", host.address, self.port, "up", detail, shown))
            except LabError as e:
                out.append(ServiceStatus(host.name, "vsphere", host.address, self.port, "down", str(e),
                                         shown))
        return out

    def stop(self, lab: Lab) -> None:
        for host in self._hosts(lab):
            lab.stop_daemon(self.daemon_name(host))
