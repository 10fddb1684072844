"""Point the CAS array name (outlook.corp.example) at the balancer's VIP on the zone's primary, and wait
until every nameserver of the zone answers it.

    pyinfra inventory/lab.py deploys/dns.py --limit dns [--dry --diff]

Desired values come from host/group data, i.e. the site description (inventory/lab.site.toml, validated by
roles/site.py): `zone`, `cas_array_name`, `vip`, and optionally `cas_array_ttl` (default: keep the TTL).
"""

from pyinfra import host

from roles.dns import operations as dns

if "dns" in host.groups:
    dns.a_record(
        name=f"DNS {host.data.get('cas_array_name')}.{host.data.get('zone')} to the VIP",
        zone=host.data.get("zone"),
        record=host.data.get("cas_array_name"),
        addresses=[host.data.get("vip")],
        ttl=host.data.get("cas_array_ttl"),
    )
