"""Where the balancer appliance goes on ESXi, and the settings it boots with (deploys/vsphere.py)."""

import os as _os
from pathlib import Path as _Path


def _lab_appliance() -> str:
    """The lab's appliance OVA in the lab cache, written by lab.vm.appliance.build_ova when missing
    (if that fails, the deploy reports the missing file in one line)."""
    path = _Path(_os.environ.get("EXHA_LAB_CACHE", "/var/cache/exha-lab")) / "vm" / "exha-balancer.ova"
    if not path.exists():
        try:
            from lab.vm.appliance import build_ova

            build_ova(path)
        except (ImportError, OSError):
            pass
    return str(path)


balancer_vm_name = "exha-lb1"
balancer_ova = _lab_appliance()
balancer_datastore = "LocalDS_0"
balancer_network = "VM Network"
#: vApp properties set at import. ip0 stays unset: the VM comes up on its first-boot address
#: (10.0.0.200 in the lab) and a later step moves it to 10.0.0.27 over SSH.
balancer_properties = {
    "hostname": "lb1",
    "gateway": "10.0.0.1",
    "DNS": "10.0.0.10,10.0.0.11",
}
balancer_ip_timeout = 300
