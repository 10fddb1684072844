"""exchange-ha device roles: pyinfra connectors, facts and operations for ESXi, DNS, the ASA, Exchange
and the balancer host."""
