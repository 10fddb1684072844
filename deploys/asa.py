"""Point the ASA's Exchange network objects at the balancer's VIP (their object NAT follows them).

    pyinfra inventory/lab.py deploys/asa.py --limit firewalls [--dry --diff]

Desired values come from host/group data, i.e. the site description (inventory/lab.site.toml, validated by
roles/site.py): `asa_object_names` (e.g. EXCH-SMTP, EXCH-HTTPS) and `vip`;
`asa_backup_dir` (default backups/asa) receives each object's config as it was before the change.
"""

from pyinfra import host

from roles.asa import operations as asa

if "firewalls" in host.groups:
    for object_name in host.data.get("asa_object_names") or []:
        asa.network_object(
            name=f"ASA object {object_name} to the VIP",
            object_name=object_name,
            host=host.data.get("vip"),
            save=True,
            backup_dir=host.data.get("asa_backup_dir") or "backups/asa",
        )
