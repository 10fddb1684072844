"""The lab's DNS: BIND 9 primary for the lab domain in dc1's namespace (TSIG-signed dynamic
updates allowed) and a secondary in dns2's namespace fed by NOTIFY and zone transfer.

Everything named reads or writes lives under <state>/dns/<host>/; it is started directly with
`named -g -c <conf>` (no system service, nothing from /etc/bind), and each `lab up` after a
`lab down` starts from the seed zone again.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype

from lab.context import Lab, ServiceStatus, run
from lab.errors import LabError
from lab.network import require_routed, routed
from lab.topology import LabHost, Topology

TSIG_ALGORITHM = "hmac-sha256"
TSIG_NAME = "exha-lab-update"
RECORD_TTL = 3600
CAS_TTL = 3600
ZONE_FILE = "zone.db"
READY_TIMEOUT = 20.0


@dataclass(frozen=True)
class DnsPlan:
    """Who serves the zone, derived from the topology."""

    zone: str
    primary: LabHost
    secondaries: tuple[LabHost, ...]


def plan(topology: Topology) -> DnsPlan:
    primaries = topology.by_role("dns-primary")
    return DnsPlan(topology.domain, primaries[0], tuple(topology.by_role("dns-secondary")))


def _label(host: LabHost, domain: str) -> str:
    """The host's name relative to the zone (EX13-1.corp.example -> ex13-1)."""
    fqdn = host.fqdn.lower().rstrip(".")
    suffix = "." + domain.lower()
    return fqdn.removesuffix(suffix) if fqdn.endswith(suffix) else host.name


def zone_text(topology: Topology, serial: int) -> str:
    """The seed zone: SOA, NS for every DNS server, A for every host, the CAS array name."""
    p = plan(topology)
    dom = p.zone
    servers = [p.primary, *p.secondaries]
    lines = [
        f"$ORIGIN {dom}.",
        f"$TTL {RECORD_TTL}",
        f"@ IN SOA {_label(p.primary, dom)}.{dom}. hostmaster.{dom}. ( {serial} 900 300 604800 300 )",
        *(f"@ IN NS {_label(s, dom)}.{dom}." for s in servers),
        f"@ {RECORD_TTL} IN MX 10 {topology.cas_array_fqdn}.",
    ]
    for h in topology.hosts.values():
        address = h.target_address or h.address  # a balancer VM is listed at its planned address
        lines.append(f"{_label(h, dom)} {RECORD_TTL} IN A {address}")
    cas = topology.cas_array_fqdn
    if cas.endswith("." + dom):
        rel = cas.removesuffix("." + dom)
        lines.append(f"{rel} {CAS_TTL} IN A {topology.cas_array_address}")
        if rel != "autodiscover":
            lines.append(f"autodiscover {CAS_TTL} IN CNAME {cas}.")
    return "\n".join(lines) + "\n"


def _tsig(lab: Lab) -> dict[str, str]:
    """The lab's TSIG key, made once and kept in the state folder (stable across ups)."""
    path = lab.folder("dns") / "tsig.json"
    try:
        stored = json.loads(path.read_text())
        if isinstance(stored, dict) and stored.get("name") and stored.get("secret"):
            return {str(k): str(v) for k, v in stored.items()}
    except (FileNotFoundError, ValueError):
        pass
    key = {
        "name": TSIG_NAME,
        "algorithm": TSIG_ALGORITHM,
        "secret": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(key) + "\n")
    return key


def _options(folder: Path, listen: str) -> str:
    return f"""options {{
    directory "{folder}";
    pid-file "{folder}/named.pid";
    session-keyfile "{folder}/session.key";
    managed-keys-directory "{folder}";
    bindkeys-file "{folder}/bind.keys";
    geoip-directory none;
    listen-on port 53 {{ {listen}; 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    allow-query {{ any; }};
    notify yes;
    version "9";
}};
controls {{ }};
"""


def _key_clause(key: dict[str, str]) -> str:
    return f'key "{key["name"]}" {{\n    algorithm {key["algorithm"]};\n    secret "{key["secret"]}";\n}};\n'


def primary_conf(folder: Path, p: DnsPlan, key: dict[str, str]) -> str:
    sec = " ".join(f"{s.address};" for s in p.secondaries)
    return (
        _options(folder, p.primary.address)
        + _key_clause(key)
        + f"""zone "{p.zone}" {{
    type primary;
    file "{ZONE_FILE}";
    allow-update {{ key "{key["name"]}"; }};
    allow-transfer {{ key "{key["name"]}"; {sec} }};
    also-notify {{ {sec} }};
}};
"""
    )


def secondary_conf(folder: Path, host: LabHost, p: DnsPlan, key: dict[str, str]) -> str:
    return (
        _options(folder, host.address)
        + _key_clause(key)
        + f"""zone "{p.zone}" {{
    type secondary;
    file "{ZONE_FILE}";
    masterfile-format text;
    primaries {{ {p.primary.address} key "{key["name"]}"; }};
    allow-transfer {{ key "{key["name"]}"; }};
}};
"""
    )


def soa_serial(address: str, zone: str, timeout: float = 1.0) -> int | None:
    """The zone's SOA serial as `address` answers it authoritatively, or None."""
    q = dns.message.make_query(zone, dns.rdatatype.SOA)
    try:
        r = dns.query.udp(q, address, timeout=timeout)
    except (dns.exception.DNSException, OSError):
        return None
    if not r.flags & dns.flags.AA or not r.answer:
        return None
    return int(r.answer[0][0].serial)


def _daemon(host: LabHost) -> str:
    return f"named-{host.name}"


class DnsComponent:
    """BIND 9 primary (dc1) and secondary (dns2) for the lab domain."""

    name = "dns"

    def build(self, lab: Lab) -> None:
        if not shutil.which("named"):
            raise LabError("named not found: install Debian's bind9 package (lab/setup.sh does)")
        _tsig(lab)

    def _write(self, lab: Lab, host: LabHost, conf: str, zone: str | None) -> Path:
        folder = lab.folder("dns", host.name)
        for stale in folder.glob(f"{ZONE_FILE}*"):  # old copies and journals: start from the seed
            stale.unlink()
        if zone is not None:
            (folder / ZONE_FILE).write_text(zone)
        path = folder / "named.conf"
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(conf)
        run(["named-checkconf", str(path)])
        return path

    def start(self, lab: Lab) -> None:
        t = lab.topology
        p = plan(t)
        for host in (p.primary, *p.secondaries):
            require_routed(lab, host.address)
        key = _tsig(lab)
        serial = int(dt.datetime.now(dt.UTC).strftime("%Y%m%d00")) + 1
        servers = [(p.primary, True), *((s, False) for s in p.secondaries)]
        for host, is_primary in servers:
            if lab.pid(_daemon(host)):
                continue
            folder = lab.folder("dns", host.name)
            if is_primary:
                conf = self._write(lab, host, primary_conf(folder, p, key), zone_text(t, serial))
                run(["named-checkzone", "-q", p.zone, str(folder / ZONE_FILE)])
            else:
                conf = self._write(lab, host, secondary_conf(folder, host, p, key), None)
            lab.spawn(_daemon(host), host.namespace, ["named", "-g", "-c", str(conf)])
            # The primary first: a secondary whose first refresh is refused waits minutes to retry.
            self._wait(lab, host, p.zone)
        lab.set_credentials(
            "dns",
            {
                "zone": p.zone,
                "primary": p.primary.address,
                "secondary": p.secondaries[0].address if p.secondaries else None,
                "tsig_name": key["name"],
                "tsig_secret": key["secret"],
                "tsig_algorithm": key["algorithm"],
            },
        )

    def _wait(self, lab: Lab, host: LabHost, zone: str) -> None:
        lab.wait_ready(
            lambda: soa_serial(host.address, zone, timeout=0.5) is not None, READY_TIMEOUT,
            f"{host.name}: named does not serve {zone} on {host.address}; "
            f"see {lab.logs / (_daemon(host) + '.log')}",
            daemon=_daemon(host), interval=0.2,
        )

    def status(self, lab: Lab) -> list[ServiceStatus]:
        p = plan(lab.topology)
        creds = lab.credentials().get("dns", {})
        primary_serial = soa_serial(p.primary.address, p.zone) if routed(lab, p.primary.address) else None
        out: list[ServiceStatus] = []
        for host in (p.primary, *p.secondaries):
            if not routed(lab, host.address):
                out.append(
                    ServiceStatus(host.name, "dns", host.address, 53, "down", "lab network is not up", creds)
                )
                continue
            serial = primary_serial if host is p.primary else soa_serial(host.address, p.zone)
            role = "primary" if host is p.primary else "secondary"
            if serial is None:
                running = "runs but gives" if lab.pid(_daemon(host)) else "not running:"
                state, detail = "down", f"named {running} no authoritative answer for {p.zone}"
            else:
                state, detail = "up", f"{role} for {p.zone}, serial {serial}"
                if host is not p.primary and primary_serial is not None and serial != primary_serial:
                    detail += f" (primary has {primary_serial})"
            out.append(ServiceStatus(host.name, f"dns-{role}", host.address, 53, state, detail, creds))
        return out

    def stop(self, lab: Lab) -> None:
        p = plan(lab.topology)
        for host in (*p.secondaries, p.primary):
            lab.stop_daemon(_daemon(host))
