"""The balancer VM as a Linux host: reaching it (the @exha-vm connector), its name, address, resolvers and VIPs."""
