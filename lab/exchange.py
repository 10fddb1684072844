"""The Exchange stand-ins: one asyncio process (`lab.exchange_standin`) per exchange host, in that
host's namespace, plus the controls failover rehearsals use (stop/start a server, put its health
pages into maintenance) and the real probes `lab status` runs against each service."""

from __future__ import annotations

import http.client
import socket
import ssl
from pathlib import Path

from lab.context import Lab, ServiceStatus, tcp_open
from lab.errors import LabError
from lab.network import require_routed, routed
from lab.topology import LabHost

SMTP_PORT = 25
HTTPS_PORT = 443
RPC_PORT = 135
HEALTH_PATH = "/owa/healthcheck.htm"
READY_TIMEOUT = 15.0
PROBE_TIMEOUT = 2.0


def server_name(host: LabHost) -> str:
    """The NetBIOS-style name Exchange shows (EX13-1) from the host's FQDN."""
    return host.fqdn.split(".")[0].upper()


def exchange_host(lab: Lab, name: str) -> LabHost:
    """Find an exchange host by lab name (ex13-1) or server name (EX13-1), case-insensitively."""
    for h in lab.topology.by_role("exchange"):
        if name.lower() in (h.name.lower(), server_name(h).lower(), h.fqdn.lower()):
            return h
    known = ", ".join(server_name(h) for h in lab.topology.by_role("exchange"))
    raise LabError(f"{name}: not an Exchange server in {lab.topology.path} (known: {known})")


def _daemon(host: LabHost) -> str:
    return f"exchange-{host.name}"


def folder(lab: Lab, host: LabHost) -> Path:
    return lab.folder("exchange", host.name)


def start_server(lab: Lab, host: LabHost) -> None:
    """Start one stand-in unless it runs; wait until SMTP and HTTPS accept connections."""
    require_routed(lab, host.address)
    cert = lab.server_cert(
        host, extra_dns=[lab.topology.cas_array_fqdn, f"autodiscover.{lab.topology.domain}"]
    )
    argv = lab.python_argv(
        "lab.exchange_standin",
        "--name",
        server_name(host),
        "--fqdn",
        host.fqdn,
        "--folder",
        str(folder(lab, host)),
        "--cert",
        str(cert.cert),
        "--key",
        str(cert.key),
    )
    lab.spawn(_daemon(host), host.namespace, argv, cwd=lab.project_root)
    lab.wait_ready(
        lambda: tcp_open(host.address, HTTPS_PORT) and tcp_open(host.address, SMTP_PORT), READY_TIMEOUT,
        f"{host.name}: the Exchange stand-in did not come up on {host.address}; "
        f"see {lab.logs / (_daemon(host) + '.log')}",
        daemon=_daemon(host),
    )


def stop_server(lab: Lab, host: LabHost) -> None:
    """Stop one stand-in (all its listeners go away: connections are refused)."""
    lab.stop_daemon(_daemon(host))


def set_maintenance(lab: Lab, host: LabHost, on: bool) -> None:
    """Mark the server offline: its /<vdir>/healthcheck.htm pages answer 503 while other paths work."""
    flag = folder(lab, host) / "maintenance"
    if on:
        flag.touch()
    else:
        flag.unlink(missing_ok=True)


def in_maintenance(lab: Lab, host: LabHost) -> bool:
    return (folder(lab, host) / "maintenance").exists()


# -- probes ---------------------------------------------------------------------------------


def probe_smtp(host: LabHost) -> tuple[bool, str]:
    try:
        with socket.create_connection((host.address, SMTP_PORT), timeout=PROBE_TIMEOUT) as s:
            banner = s.makefile("rb").readline().decode(errors="replace").strip()
            s.sendall(b"QUIT\r\n")
    except OSError as e:
        return False, f"no SMTP: {e}"
    return banner.startswith("220 ") and host.fqdn in banner, banner


def probe_https(lab: Lab, host: LabHost) -> tuple[bool, str]:
    ctx = ssl.create_default_context(cafile=str(lab.ca.cert))
    conn = http.client.HTTPSConnection(host.address, HTTPS_PORT, timeout=PROBE_TIMEOUT, context=ctx)
    try:
        conn.request("GET", HEALTH_PATH, headers={"Host": host.fqdn})
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        fe = resp.getheader("X-FEServer", "")
    except (OSError, http.client.HTTPException) as e:
        return False, f"no HTTPS: {e}"
    finally:
        conn.close()
    return resp.status == 200 and fe == server_name(
        host
    ), f"{HEALTH_PATH} {resp.status} {body[:40]!r} from {fe}"


def probe_rpc(host: LabHost) -> tuple[bool, str]:
    try:
        with socket.create_connection((host.address, RPC_PORT), timeout=PROBE_TIMEOUT) as s:
            line = s.makefile("rb").readline().decode(errors="replace").strip()
    except OSError as e:
        return False, f"no RPC: {e}"
    return line.startswith(server_name(host)), line


class ExchangeComponent:
    """Stand-ins for the Exchange 2013 CAS/Hub Transport servers."""

    name = "exchange"

    def build(self, lab: Lab) -> None:
        for host in lab.topology.by_role("exchange"):
            folder(lab, host)
            lab.server_cert(
                host, extra_dns=[lab.topology.cas_array_fqdn, f"autodiscover.{lab.topology.domain}"]
            )

    def start(self, lab: Lab) -> None:
        for host in lab.topology.by_role("exchange"):
            start_server(lab, host)

    def status(self, lab: Lab) -> list[ServiceStatus]:
        out: list[ServiceStatus] = []
        for host in lab.topology.by_role("exchange"):
            if not routed(lab, host.address):
                out += [
                    ServiceStatus(host.name, svc, host.address, port, "down", "lab network is not up")
                    for svc, port in (("smtp", SMTP_PORT), ("https", HTTPS_PORT), ("rpc", RPC_PORT))
                ]
                continue
            maint = " (maintenance: health pages answer 503)" if in_maintenance(lab, host) else ""
            for service, port, (ok, detail) in (
                ("smtp", SMTP_PORT, probe_smtp(host)),
                ("https", HTTPS_PORT, probe_https(lab, host)),
                ("rpc", RPC_PORT, probe_rpc(host)),
            ):
                creds = {"ca_file": str(lab.ca.cert)} if service == "https" else {}
                out.append(
                    ServiceStatus(
                        host.name,
                        service,
                        host.address,
                        port,
                        "up" if ok else "down",
                        detail + (maint if service == "https" else ""),
                        creds,
                    )
                )
        return out

    def stop(self, lab: Lab) -> None:
        for host in lab.topology.by_role("exchange"):
            stop_server(lab, host)
