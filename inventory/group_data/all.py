"""Group data for every host. The site's values (VIP, zone, CAS array, ASA objects, services, balancer VM)
are not written here: they come from the site description the inventory loads (inventory/lab.site.toml,
validated by roles/site.py), as data of the `all` group. Put only values that are not part of the site here."""
