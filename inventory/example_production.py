"""An example production inventory (documented, not runnable here): the same groups and the same site
description as the lab's, with credentials from the environment instead of the lab's credentials file.

    export EXHA_ESXI_PASSWORD=... EXHA_DNS_TSIG_SECRET=... EXHA_ASA_PASSWORD=... EXHA_ASA_ENABLE_SECRET=...
    export EXHA_WINRM_PASSWORD=...                       # the Exchange administration account
    pyinfra inventory/example_production.py deploys/exchange_ha.py --dry --diff
    exha runbook plan --inventory inventory/example_production.py

The site (VIP, services, CAS array, ASA objects, balancer placement, which device is which) is
example_production.site.toml, validated at load; a missing credential stops the load with one line naming
the environment variable to set. Secrets stay in host data and are never printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from roles.site import check_credentials, load_site

SITE = load_site(Path(__file__).with_name("example_production.site.toml"))
CA_FILE = os.environ.get("EXHA_CA_FILE", "/etc/ssl/certs/ca-certificates.crt")
ENV_SOURCE = ("environment (needs EXHA_ESXI_PASSWORD, EXHA_DNS_TSIG_SECRET, EXHA_ASA_PASSWORD, "
              "EXHA_ASA_ENABLE_SECRET, EXHA_WINRM_PASSWORD)")


def _env(name: str) -> str:
    return os.environ.get(name, "")


_CREDS: dict[str, dict[str, Any]] = {
    **{h: {"host": h, "username": _env("EXHA_ESXI_USERNAME") or "root", "password": _env("EXHA_ESXI_PASSWORD")}
       for h in SITE.devices.esxi},
    "dns": {"primary": SITE.devices.dns[0], "zone": SITE.zone, "tsig_name": _env("EXHA_DNS_TSIG_NAME") or "exha",
            "tsig_secret": _env("EXHA_DNS_TSIG_SECRET")},
    **{h: {"host": h, "username": _env("EXHA_ASA_USERNAME") or "exha", "password": _env("EXHA_ASA_PASSWORD"),
           "enable_secret": _env("EXHA_ASA_ENABLE_SECRET")} for h in SITE.devices.firewalls},
    **{f"winrm-{h}": {"host": h, "username": _env("EXHA_WINRM_USERNAME") or "CORP\\exha-admin",
                      "password": _env("EXHA_WINRM_PASSWORD")} for h in SITE.devices.exchange},
    **{f"ssh-{h}": {"user": "root", "key_file": _env("EXHA_SSH_KEY") or str(Path.home() / ".ssh/id_ed25519"),
                    "known_hosts": _env("EXHA_SSH_KNOWN_HOSTS") or str(Path.home() / ".ssh/known_hosts")}
       for h in SITE.devices.balancers},
}
check_credentials(SITE, _CREDS, ENV_SOURCE)

_esxi = {"esxi_host": SITE.devices.esxi[0], "esxi_username": _CREDS[SITE.devices.esxi[0]]["username"],
         "esxi_password": _CREDS[SITE.devices.esxi[0]]["password"], "esxi_ca_file": CA_FILE}

esxi = [(f"@exha-esxi/{h}", {**_esxi, "esxi_host": h}) for h in SITE.devices.esxi]
dns = [(f"@exha-dns/{h}", {"dns_server": h, "dns_zone": SITE.zone, "dns_tsig_name": _CREDS["dns"]["tsig_name"],
                           "dns_tsig_secret": _CREDS["dns"]["tsig_secret"]}) for h in SITE.devices.dns]
firewalls = [(f"@exha-asa/{h}", {f"asa_{k}": v for k, v in _CREDS[h].items()}) for h in SITE.devices.firewalls]
exchange = [(f"@exha-winrm/{h}", {"winrm_host": h, "winrm_scheme": "https", "winrm_transport": "ntlm",
                                  "winrm_ca_file": CA_FILE, "exchange_server": h.split(".")[0],
                                  **{f"winrm_{k}": v for k, v in _CREDS[f"winrm-{h}"].items() if k != "host"}})
            for h in SITE.devices.exchange]
balancers = [(f"@exha-vm/{h}", {**SITE.balancer_host_data(), "ssh_user": _CREDS[f"ssh-{h}"]["user"],
                                "ssh_key": _CREDS[f"ssh-{h}"]["key_file"],
                                "ssh_known_hosts_file": _CREDS[f"ssh-{h}"]["known_hosts"],
                                "ssh_strict_host_key_checking": "yes",
                                "balancer_admin_token": _env("EXHA_LB_ADMIN_TOKEN"), **_esxi})
             for h in SITE.devices.balancers]
#: every host, with the site's values as data of the `all` group (the names the role deploys read)
all = ([h for g in (esxi, dns, firewalls, exchange, balancers) for h, _ in g], SITE.group_data())  # noqa: A001
