"""The ASA simulator as a lab service: asa1's SSH CLI in its own namespace on port 22, its state
folder and its credentials endpoint "asa1"."""

from __future__ import annotations

import secrets
from pathlib import Path

from lab.asa_sim.config import seed_config
from lab.context import Lab, ServiceStatus, tcp_open
from lab.simcommon import spawn_simulator
from lab.topology import LabHost

SSH_PORT = 22
USERNAME = "admin"
READY_TIMEOUT = 15.0


def _daemon(host: LabHost) -> str:
    return f"asa-{host.name}"


def _hosts(lab: Lab) -> list[LabHost]:
    return lab.topology.by_role("asa")


def credentials(lab: Lab, host: LabHost) -> dict[str, object]:
    """The endpoint's credentials: the ones already in credentials.json, or new random ones."""
    old = lab.credentials().get(host.name, {})
    return {
        "host": host.address,
        "port": SSH_PORT,
        "username": old.get("username") or USERNAME,
        "password": old.get("password") or secrets.token_urlsafe(18),
        "enable_secret": old.get("enable_secret") or secrets.token_urlsafe(18),
    }


def initial_config(lab: Lab, host: LabHost) -> Path:
    """The seed's configuration for `host` (network objects with object NAT), written once."""
    path = lab.folder(host.name) / "initial-config"
    if not path.exists():
        t = lab.topology
        path.write_text(seed_config(host.name, dict(t.asa_objects), t.outside_nat_address, host.address))
    return path


class AsaComponent:
    """Cisco ASA simulators (asa1) reachable over SSH on the lab network."""

    name = "asa"

    def build(self, lab: Lab) -> None:
        for host in _hosts(lab):
            initial_config(lab, host)

    def start(self, lab: Lab) -> None:
        for host in _hosts(lab):
            creds = credentials(lab, host)
            lab.set_credentials(host.name, creds)
            argv = lab.python_argv(
                "lab.asa_sim",
                "--listen",
                host.address,
                "--port",
                str(SSH_PORT),
                "--state",
                str(lab.folder(host.name)),
                "--hostname",
                host.name,
                "--username",
                str(creds["username"]),
                "--initial-config",
                str(initial_config(lab, host)),
            )
            env = {
                "ASA_SIM_PASSWORD": str(creds["password"]),
                "ASA_SIM_ENABLE_SECRET": str(creds["enable_secret"]),
            }
            spawn_simulator(lab, host, _daemon(host), argv, env, (SSH_PORT,), "ASA simulator", READY_TIMEOUT)

    def status(self, lab: Lab) -> list[ServiceStatus]:
        out = []
        for host in _hosts(lab):
            running = lab.pid(_daemon(host)) is not None
            ok = (
                running
                and Path(f"/run/netns/{host.namespace}").exists()
                and tcp_open(host.address, SSH_PORT, namespace=host.namespace)
            )
            detail = "SSH answers" if ok else ("not started" if not running else "SSH port closed")
            creds = {
                k: v
                for k, v in lab.credentials().get(host.name, {}).items()
                if k not in ("password", "enable_secret")
            }
            out.append(
                ServiceStatus(
                    host.name, "asa-ssh", host.address, SSH_PORT, "up" if ok else "down", detail, creds
                )
            )
        return out

    def stop(self, lab: Lab) -> None:
        for host in _hosts(lab):
            lab.stop_daemon(_daemon(host))
