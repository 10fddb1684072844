"""The vSphere role: an ESXi host or vCenter driven through pyVmomi (`@exha-esxi/<name>` hosts)."""
