"""Import the balancer appliance (an OVA) into ESXi as its VM, power it on and wait for its address.

Runs on the `esxi` group. Placement and appliance settings come from group data (inventory/group_data/
esxi.py): balancer_vm_name, balancer_ova, balancer_datastore, balancer_network, balancer_properties.
"""

from pyinfra import host

from roles.vsphere import operations as vsphere

if "esxi" in host.groups:
    vsphere.vm_from_ovf(
        name=f"Balancer VM {host.data.get('balancer_vm_name', 'exha-lb1')}",
        vm_name=host.data.get("balancer_vm_name", "exha-lb1"),
        ovf_path=host.data.get("balancer_ova"),
        datastore=host.data.get("balancer_datastore", "LocalDS_0"),
        network=host.data.get("balancer_network", "VM Network"),
        folder=host.data.get("balancer_folder"),
        resource_pool=host.data.get("balancer_resource_pool"),
        properties=host.data.get("balancer_properties", {}),
        wait_for_ip=host.data.get("balancer_wait_for_ip", True),
        ip_timeout=host.data.get("balancer_ip_timeout", 300),
    )
