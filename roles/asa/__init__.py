"""Cisco ASA role: network objects and the NAT statements that use them, over netmiko (`@exha-asa/<name>`)."""
