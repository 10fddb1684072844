"""The WinRM simulators as lab services: one per Windows host (dc1 with the DnsServer cmdlets on
the lab's BIND primary, and each Exchange stand-in), HTTP 5985 and HTTPS 5986 with the lab CA, each
with its state folder and its credentials endpoint "winrm-<host>"."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from lab.context import Lab, ServiceStatus, tcp_open
from lab.errors import LabError
from lab.simcommon import spawn_simulator
from lab.topology import LabHost

HTTP_PORT = 5985
HTTPS_PORT = 5986
USERNAME = "Administrator"
READY_TIMEOUT = 15.0
ROLES = {"dns-primary": "dns", "exchange": "exchange"}


def _daemon(host: LabHost) -> str:
    return f"winrm-{host.name}"


def _hosts(lab: Lab) -> list[LabHost]:
    return [h for h in lab.topology.hosts.values() if h.role in ROLES]


def server_name(host: LabHost) -> str:
    """The Windows computer name (EX13-1, DC1) from the host's FQDN."""
    return host.fqdn.split(".")[0].upper()


def credentials(lab: Lab, host: LabHost) -> dict[str, object]:
    """The endpoint's credentials: the ones already in credentials.json, or a new random password."""
    old = lab.credentials().get(_daemon(host), {})
    return {
        "host": host.address,
        "port": HTTPS_PORT,
        "scheme": "https",
        "http_port": HTTP_PORT,
        "username": old.get("username") or USERNAME,
        "password": old.get("password") or secrets.token_urlsafe(18),
        "ca_file": str(lab.ca.cert),
    }


def _dns_config(lab: Lab, host: LabHost) -> Path:
    dns = lab.credentials().get("dns")
    if not dns:
        raise LabError(
            f"{host.name}: the DNS component has not recorded the 'dns' credentials yet; "
            "start the lab with `exha lab up` (DNS starts before WinRM)"
        )
    path = lab.folder(_daemon(host)) / "dns.json"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(
        json.dumps(
            {
                "dns_server": dns["primary"],
                "dns_port": 53,
                "zone": dns["zone"],
                "tsig_name": dns["tsig_name"],
                "tsig_secret": dns["tsig_secret"],
                "tsig_algorithm": dns.get("tsig_algorithm", "hmac-sha256"),
            }
        )
        + "\n"
    )
    return path


class WinRMComponent:
    """WinRM/PowerShell endpoints of the lab's Windows hosts."""

    name = "winrm"

    def build(self, lab: Lab) -> None:
        for host in _hosts(lab):
            lab.server_cert(host)

    def start(self, lab: Lab) -> None:
        exchange = [server_name(h) for h in lab.topology.by_role("exchange")]
        for host in _hosts(lab):
            role = ROLES[host.role]
            creds = credentials(lab, host)
            lab.set_credentials(_daemon(host), creds)
            cert = lab.server_cert(host)
            argv = lab.python_argv(
                "lab.winrm_sim",
                "--listen",
                host.address,
                "--http-port",
                str(HTTP_PORT),
                "--https-port",
                str(HTTPS_PORT),
                "--cert",
                str(cert.cert),
                "--key",
                str(cert.key),
                "--state",
                str(lab.folder(_daemon(host))),
                "--username",
                str(creds["username"]),
                "--role",
                role,
                "--server-name",
                server_name(host),
                "--domain",
                lab.topology.domain,
            )
            if role == "exchange":
                argv += [
                    "--org-state",
                    str(lab.folder("winrm-org") / "org.json"),
                    "--exchange-servers",
                    ",".join(exchange),
                    "--cas-array-fqdn",
                    lab.topology.cas_array_fqdn,
                ]
            else:
                argv += ["--dns-config", str(_dns_config(lab, host))]
            env = {"WINRM_SIM_PASSWORD": str(creds["password"])}
            spawn_simulator(
                lab, host, _daemon(host), argv, env, (HTTP_PORT, HTTPS_PORT), "WinRM simulator", READY_TIMEOUT
            )

    def status(self, lab: Lab) -> list[ServiceStatus]:
        out = []
        for host in _hosts(lab):
            running = lab.pid(_daemon(host)) is not None
            netns = Path(f"/run/netns/{host.namespace}").exists()
            creds = {k: v for k, v in lab.credentials().get(_daemon(host), {}).items() if k != "password"}
            for service, port in (("winrm-http", HTTP_PORT), ("winrm-https", HTTPS_PORT)):
                ok = running and netns and tcp_open(host.address, port, namespace=host.namespace)
                detail = "listening" if ok else ("not started" if not running else "port closed")
                out.append(
                    ServiceStatus(
                        host.name, service, host.address, port, "up" if ok else "down", detail, creds
                    )
                )
        return out

    def stop(self, lab: Lab) -> None:
        for host in _hosts(lab):
            lab.stop_daemon(_daemon(host))
