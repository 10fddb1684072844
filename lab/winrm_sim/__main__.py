"""Command line: `python -m lab.winrm_sim --listen ADDR --http-port 5985 --state DIR --role exchange|dns ...`
runs one simulated Windows host's WinRM endpoint."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lab.winrm_sim.cmdlets import Host
from lab.winrm_sim.dnscmdlets import DnsTarget
from lab.winrm_sim.server import CommandLog, Credentials, WinRMApp, make_servers, serve_forever
from lab.winrm_sim.state import HostIdentity, JsonStore, initial_host_state, initial_org_state


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab.winrm_sim", description="WinRM / PowerShell simulator")
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=5985, help="0 for no HTTP listener")
    p.add_argument("--https-port", type=int, default=0, help="HTTPS listener port (needs --cert and --key)")
    p.add_argument("--cert", type=Path, help="server certificate (PEM)")
    p.add_argument("--key", type=Path, help="server key (PEM)")
    p.add_argument("--state", type=Path, required=True, help="state folder (host.json, commands.jsonl)")
    p.add_argument("--username", default="Administrator")
    p.add_argument("--password", help="password (or $WINRM_SIM_PASSWORD)")
    p.add_argument("--role", choices=("exchange", "dns"), required=True)
    p.add_argument("--server-name", required=True, help="the host's NetBIOS name, e.g. EX13-1 or DC1")
    p.add_argument("--domain", default="corp.example")
    p.add_argument(
        "--org-state",
        type=Path,
        help="Exchange organization state shared by all Exchange servers (default: STATE/org.json)",
    )
    p.add_argument(
        "--exchange-servers", default="", help="comma-separated Exchange server names (CAS array members)"
    )
    p.add_argument("--cas-array-fqdn", default="outlook.corp.example")
    p.add_argument(
        "--dns-config",
        type=Path,
        help="JSON file with dns_server, dns_port, zone, tsig_name, tsig_secret, tsig_algorithm",
    )
    p.add_argument("--dns-server", help="DNS server address the DnsServer cmdlets manage")
    p.add_argument("--dns-port", type=int, default=53)
    p.add_argument("--zone")
    p.add_argument("--tsig-name")
    p.add_argument("--tsig-secret", help="TSIG secret (or $WINRM_SIM_TSIG_SECRET)")
    p.add_argument("--tsig-algorithm", default="hmac-sha256")
    return p


def _dns_target(p: argparse.ArgumentParser, a: argparse.Namespace) -> DnsTarget:
    conf: dict[str, object] = {}
    if a.dns_config is not None:
        try:
            conf = json.loads(a.dns_config.read_text())
        except (OSError, ValueError) as e:
            p.error(f"--dns-config: cannot read {a.dns_config}: {e}")
    server = a.dns_server or conf.get("dns_server")
    zone = a.zone or conf.get("zone")
    name = a.tsig_name or conf.get("tsig_name")
    secret = a.tsig_secret or os.environ.get("WINRM_SIM_TSIG_SECRET") or conf.get("tsig_secret")
    missing = [
        n
        for n, v in (
            ("--dns-server", server),
            ("--zone", zone),
            ("--tsig-name", name),
            ("--tsig-secret", secret),
        )
        if not v
    ]
    if missing:
        p.error(f"--role dns needs {', '.join(missing)} (or --dns-config)")
    return DnsTarget(
        server=str(server),
        port=int(str(conf.get("dns_port", a.dns_port))),
        zone=str(zone),
        tsig_name=str(name),
        tsig_secret=str(secret),
        tsig_algorithm=str(conf.get("tsig_algorithm", a.tsig_algorithm)),
        server_name=a.server_name.upper(),
    )


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    a = p.parse_args(argv)
    password = a.password or os.environ.get("WINRM_SIM_PASSWORD")
    if not password:
        p.error("--password (or $WINRM_SIM_PASSWORD) is required")
    if not a.http_port and not a.https_port:
        p.error("give --http-port and/or --https-port")
    if a.https_port and (a.cert is None or a.key is None):
        p.error("--https-port needs --cert and --key")
    for flag, path in (("--cert", a.cert), ("--key", a.key)):
        if path is not None and not path.is_file():
            p.error(f"{flag}: {path} is not a readable file")
    servers_list = tuple(s.strip() for s in a.exchange_servers.split(",") if s.strip())
    ident = HostIdentity(
        role=a.role,
        server_name=a.server_name,
        domain=a.domain,
        exchange_servers=servers_list or (a.server_name,),
        cas_array_fqdn=a.cas_array_fqdn,
    )
    host = Host(ident, JsonStore(a.state / "host.json", initial_host_state(ident)))
    if a.role == "exchange":
        host.org = JsonStore(a.org_state or a.state / "org.json", initial_org_state(ident))
    else:
        host.dns = _dns_target(p, a)
    for store in (host.host, host.org):
        if store is None:
            continue
        try:
            store.read()  # create it now (so it is there to inspect) and check it is readable JSON
        except OSError as e:
            print(f"winrm_sim: {store.path}: {e.strerror or e}", file=sys.stderr)
            return 1
        except ValueError as e:
            print(f"winrm_sim: {store.path}: not valid JSON ({e}); fix or delete it", file=sys.stderr)
            return 1
    log = CommandLog(a.state / "commands.jsonl")
    scheme, port = ("https", a.https_port) if a.https_port and not a.http_port else ("http", a.http_port)
    app = WinRMApp(host, Credentials(a.username, password), log, f"{scheme}://{a.listen}:{port}/wsman")
    try:
        servers = make_servers(app, a.listen, a.http_port or None, a.https_port or None, a.cert, a.key)
    except OSError as e:
        print(f"winrm_sim: cannot listen on {a.listen}: {e.strerror or e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"winrm_sim: {e}", file=sys.stderr)
        return 1
    log.write(
        event="start",
        role=a.role,
        server=a.server_name,
        listen=a.listen,
        http_port=a.http_port,
        https_port=a.https_port,
    )
    print(
        f"winrm_sim: {a.server_name} ({a.role}) listening on {a.listen} "
        f"http={a.http_port} https={a.https_port}",
        flush=True,
    )
    try:
        serve_forever(servers)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
