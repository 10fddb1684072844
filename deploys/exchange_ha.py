"""Put Exchange behind the balancer, in the seed's order, on every device of the inventory:

    1. import the balancer appliance into ESXi and power it on          (deploys/vsphere.py)
    2. configure its interface and VIPs, install and configure the balancer   (deploys/balancer.py)
    3. pre-switch gate: the VIP answers every service with every real server up
    4. repoint the CAS array's A record at the VIP                        (deploys/dns.py)
    5. point the ASA's network objects at the VIP, saved                  (deploys/asa.py)
    6. check (and ensure) Exchange's CAS array settings                   (deploys/exchange.py)

    pyinfra -y inventory/lab.py deploys/exchange_ha.py
    pyinfra inventory/lab.py deploys/exchange_ha.py --dry --diff          # what would change

Step barriers (roles/runbook/steps.py) make every host finish a step before the next one starts, and fail
every host after a step in which any host failed: nothing that moves traffic (DNS, ASA) runs before the gate
has proven the VIP, and nothing runs after a failure.
Every value comes from the site description the inventory loads (`site`, see docs/site.md).

Under `exha runbook` (host data `runbook_journal` / `runbook_snapshot`), journal operations record each
item's prior value just before the step that changes it (roles/runbook/record.py).
"""

from pathlib import Path

from pyinfra import host, inventory, local

from roles.runbook import gate, record, steps

HERE = Path(__file__).resolve().parent
site = host.data.get("site") or {}
runbook = bool(host.data.get("runbook_journal") or host.data.get("runbook_snapshot"))

local.include(str(HERE / "vsphere.py"))
steps.barrier(name="Step 2: configure the balancer VM", step="balancer")
local.include(str(HERE / "balancer.py"))
steps.barrier(name="Step 3: pre-switch gate", step="gate")

if "balancers" in host.groups:
    gate.vip_serves(
        name=f"Pre-switch gate: VIP {site.get('vip')} serves every service, all real servers up",
        vip=site.get("vip"),
        services=site.get("services") or [],
        real_servers=site.get("real_servers") or [],
        timeout=host.data.get("gate_timeout", 60),
    )
steps.barrier(name="Step 4: repoint the CAS array's A record (gate passed)", step="dns")

if runbook and "dns" in host.groups:
    record.dns_record(name="Journal: CAS array A record before the change", zone=host.data.get("zone"),
                      record=host.data.get("cas_array_name"), addresses=[host.data.get("vip")],
                      ttl=host.data.get("cas_array_ttl"))
local.include(str(HERE / "dns.py"))
steps.barrier(name="Step 5: ASA objects to the VIP", step="asa")

if runbook and "firewalls" in host.groups:
    record.asa_objects(name="Journal: ASA objects before the change",
                       object_names=host.data.get("asa_object_names") or [], address=host.data.get("vip"))
local.include(str(HERE / "asa.py"))
steps.barrier(name="Step 6: Exchange CAS array settings", step="exchange")

if runbook and "exchange" in host.groups:
    org_host = inventory.get_group("exchange")[0]
    record.exchange_settings(
        name="Journal: Exchange CAS array settings before the change",
        fqdn=host.data.get("cas_array_fqdn"),
        array=host.data.get("cas_array_name") if host == org_host else None,
        server=host.data.get("exchange_server") or host.name.rsplit("/", 1)[-1],
        rpc_port=host.data.get("exchange_rpc_port"), ab_port=host.data.get("exchange_ab_port"),
    )
local.include(str(HERE / "exchange.py"))
