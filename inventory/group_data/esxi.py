"""Where the balancer appliance goes on ESXi, and the settings it boots with (deploys/vsphere.py)."""

import os as _os
from pathlib import Path as _Path

balancer_vm_name = "exha-lb1"
#: the appliance OVA; the lab builds it with lab.vm.appliance.build_ova into its cache
balancer_ova = str(_Path(_os.environ.get("EXHA_LAB_CACHE", "/var/cache/exha-lab")) / "vm" / "exha-balancer.ova")
balancer_datastore = "LocalDS_0"
balancer_network = "VM Network"
balancer_properties = {
    "hostname": "lb1",
    "ip0": "10.0.0.27",
    "netmask0": "255.255.255.0",
    "gateway": "10.0.0.1",
    "DNS": "10.0.0.10,10.0.0.11",
}
balancer_ip_timeout = 300
