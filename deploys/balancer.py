"""Make the balancer VM: host name, address (moved from its first-boot address), resolvers and VIPs, then the
bundled balancer from this project's own wheel as a hardened systemd service.

Runs on the `balancers` group (inventory/lab.py). Desired values: group_data/balancers.py and all.py (`vip`);
the admin token comes from host data `balancer_admin_token` (secret, written 0600, never printed).
"""

from io import StringIO

from pyinfra import host, inventory
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
    vrrp = model.vrrp_spec(d, spec, [h.data.get("vm_address") for h in inventory.get_group("balancers")
                                     if h is not host])
    if vrrp is None:
        balancer_host.vips(name=f"VIPs {', '.join(spec.vips) or '(none)'}", addresses=list(spec.vips))
    else:  # keepalived moves the VIPs between the pair; none is configured for boot
        balancer_host.vips(name="VIPs held by keepalived", addresses=[], vrrp=list(spec.vips))
        balancer.system_file(name="Listen on VIPs the peer holds (sysctl)", path=render.SYSCTL_FILE,
                             text=render.sysctl_text(), after=f"sysctl -q -p {render.SYSCTL_FILE}")

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
    tls = [files.directory(name="TLS folder", path="/etc/exha-lb/tls", user="root", group=render.USER, mode="750")]
    for remote, local in model.tls_files(d.get("balancer_tls_files")).items():
        secret = remote.endswith(".key")
        tls.append(files.put(name=f"TLS {'key (mode 0600)' if secret else 'certificate'} {remote}", src=local,
                             dest=f"/etc/exha-lb/tls/{remote}", user=render.USER if secret else "root",
                             group=render.USER, mode="600" if secret else "644"))
    cfg = balancer.config(name=f"Config {render.CONFIG}", text=render.config_text(services, name),
                          path=render.CONFIG, group=render.USER)
    unit = balancer.unit(name="systemd unit exha-lb.service", text=render.unit_text(services))

    def _code_changed() -> bool:
        return pkg.did_change() or unit.did_change()

    def _config_changed() -> bool:
        tls_changed = any(op.did_change() for op in tls)
        return (cfg.did_change() or token.did_change() or tls_changed) and not _code_changed()

    server.shell(name="Restart exha-lb (code or unit changed)", commands=["systemctl restart exha-lb.service"],
                 _if=_code_changed)
    server.shell(name="Reload exha-lb (config changed)", commands=["systemctl reload-or-restart exha-lb.service"],
                 _if=_config_changed)
    systemd.service(name="exha-lb running and enabled", service="exha-lb.service", running=True, enabled=True)

    if vrrp is not None:
        balancer.system_file(name="keepalived health check", path=render.HEALTH_SCRIPT, text=render.health_text(),
                             mode="0755")
        keepalived = balancer.system_file(name=f"keepalived VRRP {', '.join(spec.vips)} (priority {vrrp.priority})",
                                          path=render.KEEPALIVED_CONF, text=render.keepalived_text(spec, vrrp))
        server.shell(name="Reload keepalived (config changed)", commands=["systemctl reload-or-restart keepalived"],
                     _if=keepalived.did_change)
        systemd.service(name="keepalived running and enabled", service="keepalived.service", running=True,
                        enabled=True)
