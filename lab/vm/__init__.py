"""The lab's balancer VMs: a Debian bookworm root filesystem booted under systemd in a namespace."""
