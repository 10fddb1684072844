"""Make the balancer VM: host name, address (moved from its first-boot address), resolvers and VIPs, then the
bundled balancer from this project's own wheel as a hardened systemd service.

Runs on the `balancers` group (inventory/lab.py). Desired values: group_data/balancers.py and all.py (`vip`);
the admin token comes from host data `balancer_admin_token` (secret, written 0600, never printed).
"""

from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server, systemd

from roles.balancer import model, operations as balancer, render, wheelhouse
from roles.balancer_host import operations as balancer_host

if "balancers" in host.groups:
    d = host.data
    spec = model.host_spec(d, host.name.split("/")[-1])
    name = spec.hostname

    balancer_host.hostname(name=f"Host name {name}", hostname=name, domain=spec.domain, address=spec.address)
    balancer_host.interface(name=f"eth0 {spec.address}/{spec.prefix_len}", address=spec.address,
                            prefix_len=spec.prefix_len, gateway=spec.gateway, hostname=name)
    balancer_host.resolvers(name="Resolvers", nameservers=list(spec.nameservers), search=list(spec.search))
    balancer_host.vips(name=f"VIPs {', '.join(spec.vips) or '(none)'}", addresses=list(spec.vips))

    services = model.services(d.get("balancer_services"), d.get("vip"), d.get("balancer_real_servers"))
    wh = wheelhouse.build(wheelhouse.Target(python_version=d.get("balancer_python", "3.11"),
                                            platform=d.get("balancer_platform", "manylinux2014_x86_64")))

    balancer.system_user(name=f"System user {render.USER}", user=render.USER)
    files.directory(name="Wheelhouse folder", path=f"{balancer.BASE}/wheelhouse", user="root", group="root",
                    mode="755")
    for wheel in wh.files:
        files.put(name=f"Wheel {wheel.name}", src=str(wheel), dest=f"{balancer.BASE}/wheelhouse/{wheel.name}",
                  mode="644")
    pkg = balancer.package(name=f"exha-lb {wh.version} in {render.VENV}", version=wh.version, digest=wh.digest)

    files.directory(name="Config folder", path="/etc/exha-lb", user="root", group=render.USER, mode="750")
    token = files.put(name="Admin token (mode 0600)", src=StringIO(str(d.get("balancer_admin_token") or "") + "\n"),
                      dest=f"/etc/exha-lb/{render.TOKEN_FILE}", user=render.USER, group=render.USER, mode="600")
    cfg = balancer.config(name=f"Config {render.CONFIG}", text=render.config_text(services, name),
                          path=render.CONFIG, group=render.USER)
    unit = balancer.unit(name="systemd unit exha-lb.service", text=render.unit_text(services))

    def _code_changed() -> bool:
        return pkg.did_change() or unit.did_change()

    def _config_changed() -> bool:
        return (cfg.did_change() or token.did_change()) and not _code_changed()

    server.shell(name="Restart exha-lb (code or unit changed)", commands=["systemctl restart exha-lb.service"],
                 _if=_code_changed)
    server.shell(name="Reload exha-lb (config changed)", commands=["systemctl reload-or-restart exha-lb.service"],
                 _if=_config_changed)
    systemd.service(name="exha-lb running and enabled", service="exha-lb.service", running=True, enabled=True)
