"""The rehearsal lab's inventory: every device the toolkit drives, with connection data read from the
lab's credentials file (<state>/credentials.json, state folder /var/lib/exha-lab or $EXHA_LAB_STATE).

The site itself (VIP, services, real servers, CAS array, ASA objects, balancer VM, which device is which) is
described once in lab.site.toml, validated at load (roles/site.py) and handed to every host as the
group-data names the role deploys read. Secrets stay in host data; operations read them through their
connector and never take them as arguments.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from roles.balancer.model import SiteError
from roles.site import check_credentials, load_site

SITE = load_site(Path(__file__).with_name("lab.site.toml"))
STATE_DIR = Path(os.environ.get("EXHA_LAB_STATE", "/var/lib/exha-lab"))
CREDENTIALS_FILE = STATE_DIR / "credentials.json"


def _credentials() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(CREDENTIALS_FILE.read_text())
    except FileNotFoundError:
        return {}  # lab not up yet: hosts are listed, connecting fails with a clear per-host error
    except (OSError, json.JSONDecodeError) as e:
        raise SiteError(f"cannot read the lab credentials ({e}); run `exha lab up`",
                        source=str(CREDENTIALS_FILE), field="*") from e
    if not isinstance(data, dict):
        raise SiteError("expected a JSON object", source=str(CREDENTIALS_FILE), field="*")
    check_credentials(SITE, data, f"{CREDENTIALS_FILE} (run `exha lab up` to complete it)")
    return data


_CREDS = _credentials()


def _endpoint(key: str) -> dict[str, Any]:
    value = _CREDS.get(key, {})
    return value if isinstance(value, dict) else {}


def _prefixed(prefix: str, endpoint: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    """Host data `<prefix>_<name>` from the endpoint's `<key>` values that are present."""
    return {f"{prefix}_{name}": endpoint[key] for name, key in keys.items() if endpoint.get(key) is not None}


def _winrm(host: str) -> dict[str, Any]:
    return _prefixed("winrm", _endpoint(f"winrm-{host}"), {
        "host": "host", "port": "port", "scheme": "scheme", "username": "username",
        "password": "password", "ca_file": "ca_file"})


def _asa(host: str) -> dict[str, Any]:
    return _prefixed("asa", _endpoint(host), {
        "host": "host", "port": "port", "username": "username", "password": "password",
        "enable_secret": "enable_secret", "known_hosts": "known_hosts"})


def _dns() -> dict[str, Any]:
    return _prefixed("dns", _endpoint("dns"), {
        "server": "primary", "zone": "zone", "tsig_name": "tsig_name", "tsig_secret": "tsig_secret",
        "tsig_algorithm": "tsig_algorithm"})


def _esxi(host: str) -> dict[str, Any]:
    return _prefixed("esxi", _endpoint(host), {
        "host": "host", "port": "port", "username": "username", "password": "password",
        "ca_file": "ca_file"})


def _balancer_token() -> str:
    """The balancers' admin API token, made once in the state folder (mode 0600); empty before the lab exists."""
    path = STATE_DIR / "lb-admin.token"
    if not path.exists() and STATE_DIR.is_dir():
        import secrets

        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip() if path.exists() else ""


def _vm(host: str) -> dict[str, Any]:
    """A balancer VM: where it ends up, how vSphere names it (from the site), SSH (verified host key) and the
    lookup through the site's ESXi host."""
    ssh = _endpoint(f"ssh-{host}")
    return {**SITE.balancer_host_data(),
            "balancer_admin_token": _balancer_token(), "ssh_strict_host_key_checking": "yes",
            **_prefixed("vm", ssh, {"bootstrap_address": "host"}),
            **_prefixed("ssh", ssh, {"user": "user", "key": "key_file", "known_hosts_file": "known_hosts"}),
            **_esxi(SITE.devices.esxi[0])}


def _lab_appliance() -> str:
    """The lab's appliance OVA in the lab cache, written by lab.vm.appliance.build_ova when missing
    (if that fails, the deploy reports the missing file in one line)."""
    path = Path(os.environ.get("EXHA_LAB_CACHE", "/var/cache/exha-lab")) / "vm" / "exha-balancer.ova"
    if not path.exists():
        try:
            from lab.vm.appliance import build_ova

            build_ova(path)
        except (ImportError, OSError):
            pass
    return str(path)


_D = SITE.devices
esxi = [(f"@exha-esxi/{h}", {**_esxi(h), "balancer_ova": SITE.balancer.placement.ova or _lab_appliance()})
        for h in _D.esxi]
dns = [(f"@exha-dns/{h}", _dns()) for h in _D.dns]
firewalls = [(f"@exha-asa/{h}", _asa(h)) for h in _D.firewalls]
exchange = [(f"@exha-winrm/{h}", _winrm(h)) for h in _D.exchange]
windows_dns = [(f"@exha-winrm/{h}", _winrm(h)) for h in _D.windows_dns]
balancers = [(f"@exha-vm/{h}", _vm(h)) for h in _D.balancers]
#: every host, with the site's values as data of the `all` group (the names the role deploys read)
all = ([h for g in (esxi, dns, firewalls, exchange, windows_dns, balancers) for h, _ in g],  # noqa: A001
       SITE.group_data())
