"""Exchange Client Access settings for a load-balanced CAS array, checked and ensured on every host
of the `exchange` group: the CAS array FQDN, each mailbox database's RPC Client Access server, and
static RPC ports for MSExchangeRPC / MSExchangeAB.

    pyinfra inventory/lab.py deploys/exchange.py --dry --diff     # show what would change
    pyinfra inventory/lab.py deploys/exchange.py -y               # ensure it
"""

from __future__ import annotations

from pyinfra import host

from roles.exchange import operations as exchange

if "exchange" in host.groups:
    fqdn = host.data.get("cas_array_fqdn") or "outlook.corp.example"
    exchange.client_access_array(
        name="Exchange: CAS array FQDN",
        identity=host.data.get("cas_array_name") or fqdn.split(".")[0],
        fqdn=fqdn,
        site=host.data.get("exchange_site"),
    )
    exchange.rpc_client_access_server(
        name="Exchange: mailbox databases use the CAS array",
        server_fqdn=fqdn,
    )
    exchange.static_rpc_ports(
        name="Exchange: static RPC ports",
        rpc_port=host.data.get("exchange_rpc_port") or 60000,
        ab_port=host.data.get("exchange_ab_port") or 60001,
    )
