"""Facts read from a vSphere endpoint, one property-collector round trip per stage (memoized in the
connector): the virtual machines and the names a VM can be placed on."""

from __future__ import annotations

from typing import Any

from roles.api import ApiCall, JsonFact


class VirtualMachines(JsonFact[dict[str, dict[str, Any]]]):
    """
    Returns the VMs of the datacenter (all datacenters when esxi_datacenter is unset), by name:

    .. code:: python

        {
            "exha-lb1": {
                "power_state": "poweredOn", "cpu": 2, "memory_mb": 512,
                "guest_ip": "10.0.0.27", "guest_hostname": "lb1",
                "datastore": ["LocalDS_0"], "network": ["VM Network"],
                "folder": "vm", "resource_pool": "localhost.localdomain/Resources",
                "vapp_properties": {"hostname": "lb1"},
                "path": "[LocalDS_0] exha-lb1/exha-lb1.vmx",
                "import_complete": True,
            },
        }
    """

    def command(self) -> ApiCall:
        return ApiCall("vsphere.virtual_machines")

    @staticmethod
    def default() -> dict[str, dict[str, Any]]:
        return {}

    def parse(self, data: Any) -> dict[str, dict[str, Any]]:
        return {str(k): dict(v) for k, v in (data or {}).items()}


class Inventory(JsonFact[dict[str, list[str]]]):
    """
    Returns the names a VM can be placed on, in the datacenter (all when esxi_datacenter is unset):

    .. code:: python

        {
            "datacenters": ["ha-datacenter"],
            "datastores": ["LocalDS_0"],
            "networks": ["VM Network"],
            "compute_resources": ["localhost.localdomain"],
            "resource_pools": ["localhost.localdomain/Resources"],
            "folders": ["vm"],
        }
    """

    def command(self) -> ApiCall:
        return ApiCall("vsphere.inventory")

    @staticmethod
    def default() -> dict[str, list[str]]:
        return {}

    def parse(self, data: Any) -> dict[str, list[str]]:
        keys = ("datacenters", "datastores", "networks", "compute_resources", "resource_pools", "folders")
        return {k: [str(v) for v in (data or {}).get(k, [])] for k in keys}
