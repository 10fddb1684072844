"""The rehearsal lab's inventory: every device the toolkit drives, with connection data read from the
lab's credentials file (<state>/credentials.json, state folder /var/lib/exha-lab or $EXHA_LAB_STATE).

Site-wide desired values live in group_data/all.py. Secrets stay in host data; operations read them
through their connector and never take them as arguments.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from roles.errors import SiteConfigError

STATE_DIR = Path(os.environ.get("EXHA_LAB_STATE", "/var/lib/exha-lab"))
CREDENTIALS_FILE = STATE_DIR / "credentials.json"


def _credentials() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(CREDENTIALS_FILE.read_text())
    except FileNotFoundError:
        return {}  # lab not up yet: hosts are listed, connecting fails with a clear per-host error
    except (OSError, json.JSONDecodeError) as e:
        raise SiteConfigError(f"cannot read the lab credentials ({e}); run `exha lab up`",
                              source=str(CREDENTIALS_FILE), field="*") from e
    if not isinstance(data, dict):
        raise SiteConfigError("expected a JSON object", source=str(CREDENTIALS_FILE), field="*")
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


def _vm(host: str, vm_name: str, final_address: str) -> dict[str, Any]:
    """A balancer VM: where it ends up, how vSphere names it, SSH (verified host key) and the esxi1 lookup."""
    ssh = _endpoint(f"ssh-{host}")
    return {"vm_name": vm_name, "vm_address": final_address, "balancer_hostname": host,
            "balancer_admin_token": _balancer_token(), "ssh_strict_host_key_checking": "yes",
            **_prefixed("vm", ssh, {"bootstrap_address": "host"}),
            **_prefixed("ssh", ssh, {"user": "user", "key": "key_file", "known_hosts_file": "known_hosts"}),
            **_esxi("esxi1")}


esxi = [("@exha-esxi/esxi1", _esxi("esxi1"))]
dns = [("@exha-dns/dc1", _dns())]
firewalls = [("@exha-asa/asa1", _asa("asa1"))]
exchange = [("@exha-winrm/ex13-1", _winrm("ex13-1")), ("@exha-winrm/ex13-2", _winrm("ex13-2"))]
windows_dns = [("@exha-winrm/dc1", _winrm("dc1"))]
balancers = [("@exha-vm/lb1", _vm("lb1", "exha-lb1", "10.0.0.27"))]
