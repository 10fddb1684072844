"""Exchange Client Access settings for a load-balanced CAS array, checked and ensured on the hosts of
the `exchange` group:

- the CAS array FQDN: an organization object, so only the group's first host in the run changes it;
- each server's mailbox databases hand out the array FQDN as their RPC Client Access server;
- static RPC ports for MSExchangeRPC / MSExchangeAB, each service restarted only if its port changed.

    pyinfra inventory/lab.py deploys/exchange.py --dry --diff     # show what would change
    pyinfra inventory/lab.py deploys/exchange.py -y               # ensure it

Site values (group data from the inventory's site description): cas_array_fqdn, cas_array_name,
exchange_site (only to create a missing array), exchange_rpc_port, exchange_ab_port; per host:
exchange_server (defaults to the inventory name, e.g. ex13-1).
"""

from __future__ import annotations

from pyinfra import host, inventory

from roles.exchange import operations as exchange

if "exchange" in host.groups:
    fqdn = host.data.get("cas_array_fqdn") or "outlook.corp.example"
    # the first Exchange host this run reaches (so --limit to one server still checks the array)
    active = inventory.get_active_hosts()
    org_host = next((h for h in inventory.get_group("exchange") if h in active), host)

    if host == org_host:
        exchange.client_access_array(
            name="Exchange: CAS array FQDN",
            identity=host.data.get("cas_array_name") or fqdn.split(".")[0],
            fqdn=fqdn,
            site=host.data.get("exchange_site"),
        )
    exchange.rpc_client_access_server(
        name="Exchange: mailbox databases use the CAS array",
        server_fqdn=fqdn,
        server=host.data.get("exchange_server") or host.name.rsplit("/", 1)[-1],
    )
    exchange.static_rpc_ports(
        name="Exchange: static RPC ports",
        rpc_port=host.data.get("exchange_rpc_port") or 60000,
        ab_port=host.data.get("exchange_ab_port") or 60001,
    )
