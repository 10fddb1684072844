"""The balancer VM end to end on a scratch lab (conftest.py): plan before the VM exists, import and power it
on through vSphere, then deploys/balancer.py moves its address (reconnecting), sets name, resolvers and VIP,
installs the balancer from the project's wheel and serves Exchange on the VIP. Then: a second apply changes
nothing, a stopped Exchange server is routed around, a config change reloads without dropping a connection,
and a config the balancer refuses leaves the old one serving. Tests run in order and share the VM."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from balancer_lab import NET, PREFIX, BalancerLab
from harness import CliRun, run_pyinfra, write_inventory

from lab.exchange import start_server, stop_server
from lab.network import network_up
from lab.vm.appliance import build_ova, write_ovf
from lab.vm.component import ssh_run
from lab.vm.ssh import ssh_argv
from lab.vsphere.client import session
from lab.vsphere.importer import find_vm, import_ovf, power

pytestmark = [
    pytest.mark.root,
    pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
]

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploys" / "balancer.py"
VIP = f"{NET}.28"
FINAL = f"{NET}.27"
FIRST_BOOT = f"{NET}.200"
HEALTH = {"interval": 1.0, "timeout": 0.8, "fall": 2, "rise": 2}


OFFLOAD_PORT = 8443


def services(real_servers: list[Any]) -> list[dict[str, Any]]:
    return [{"name": "smtp", "template": "exchange2013-smtp", "health": HEALTH, "real_servers": real_servers},
            {"name": "https", "template": "exchange2013-https", "health": HEALTH, "real_servers": real_servers},
            {"name": "rpc", "template": "exchange2010-mapi-static", "health": HEALTH, "real_servers": real_servers},
            # TLS ends at the balancer: its certificate and key are shipped as files (the key 0600)
            {"name": "owa-offload", "template": "exchange2010-https-offloaded", "ports": [OFFLOAD_PORT],
             "tls": {"cert": "tls/owa.pem", "key": "tls/owa.key"}, "health": HEALTH,
             "real_servers": real_servers}]


TWO = [f"{NET}.23", f"{NET}.24"]


def tls_files(bl: BalancerLab) -> dict[str, str]:
    """A lab-CA certificate for the CAS array name, for the offloading service."""
    pair = bl.lab.server_cert(bl.lab.topology.host("lb1"), extra_dns=["outlook.corp.example"])
    return {"owa.pem": str(pair.cert), "owa.key": str(pair.key)}


def host_data(bl: BalancerLab, balancer_services: list[dict[str, Any]], vm_address: str = FINAL,
              bootstrap: bool = True, vm: str = "lb1") -> dict[str, Any]:
    creds = bl.lab.credentials()
    ssh, esxi = creds[f"ssh-{vm}"], creds["esxi1"]
    data: dict[str, Any] = {
        "vm_name": f"{PREFIX}{vm}", "vm_address": vm_address, "balancer_hostname": vm,
        "balancer_admin_token": "test-token-not-shown", "ssh_user": ssh["user"], "ssh_key": ssh["key_file"],
        "ssh_known_hosts_file": ssh["known_hosts"], "ssh_strict_host_key_checking": "yes",
        "esxi_host": esxi["host"], "esxi_port": esxi["port"], "esxi_username": esxi["username"],
        "esxi_password": esxi["password"], "esxi_ca_file": esxi["ca_file"], "vm_wait_timeout": 120.0,
        "vip": VIP, "balancer_prefix_len": 8, "balancer_gateway": f"{NET}.1",
        "balancer_nameservers": [f"{NET}.10", f"{NET}.11"], "balancer_search": ["corp.example"],
        "balancer_domain": "corp.example", "balancer_services": balancer_services,
        "balancer_tls_files": tls_files(bl),
    }
    if bootstrap:
        data["vm_bootstrap_address"] = bl.lab.topology.host(vm).address
    return data


def inventory(bl: BalancerLab, balancer_services: list[dict[str, Any]], vm_address: str = FINAL,
              bootstrap: bool = True, name: str = "inv") -> Path:
    data = host_data(bl, balancer_services, vm_address, bootstrap)
    return write_inventory(bl.folder / name, {"balancers": [("@exha-vm/lb1", data)]})


def guard(bl: BalancerLab) -> None:
    """Stop before any traffic if the scratch lab's admin routes are gone: nothing may leave by other routes."""
    if not network_up(bl.lab):
        pytest.fail("the scratch lab network is down (admin link or routes missing); not sending anything")


def pyinfra(bl: BalancerLab, inv: Path, *args: str, timeout: float = 400) -> CliRun:
    guard(bl)
    return run_pyinfra(inv.parent, inv, *args, timeout=timeout)


def apply(bl: BalancerLab, inv: Path, *args: str) -> CliRun:
    return pyinfra(bl, inv, str(DEPLOY), "-y", *args)


def vm(bl: BalancerLab, command: str, host: str = "lb1") -> str:
    cp = ssh_run(bl.lab, bl.lab.topology.host(host), "sh", "-c", f"'{command}'")
    assert cp.returncode == 0, f"{command}: {cp.stderr}"
    return cp.stdout


def banner(port: int, timeout: float = 3.0) -> str:
    """The first line a service sends through the VIP (routed through the scratch lab's admin link)."""
    with socket.create_connection((VIP, port), timeout=timeout) as s:
        return s.recv(200).decode(errors="replace").strip()


def owa_health(ctx: ssl.SSLContext, port: int) -> bytes:
    """The whole answer to GET /owa/healthcheck.htm over TLS through the VIP on `port` (certificate verified)."""
    with socket.create_connection((VIP, port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="outlook.corp.example") as tls:
        tls.sendall(b"GET /owa/healthcheck.htm HTTP/1.1\r\nHost: outlook.corp.example\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := tls.recv(4096):
            reply += chunk
    return reply


def changed_ops(run: CliRun) -> list[str]:
    """Operations that changed something, from `pyinfra --json` results."""
    data = json.loads(run.stdout[run.stdout.index("{"):])
    return [op["name"] for op in data["results"]["operations"] if op["success"]]


@pytest.fixture(autouse=True)
def network_guard(balancer_lab: BalancerLab) -> Iterator[None]:
    """Every test starts and ends with the scratch lab's routes in place (else it fails without sending)."""
    guard(balancer_lab)
    yield
    guard(balancer_lab)


def power_on(bl: BalancerLab, vm: str) -> None:
    """Import the appliance as the VM and power it on; the agent boots it and reports its first address."""
    creds = bl.lab.credentials()["esxi1"]
    files = write_ovf(bl.folder / f"ovf-{vm}")
    first = bl.lab.topology.host(vm).address
    with session(creds) as si:
        import_ovf(si, creds, files.ovf, f"{PREFIX}{vm}", properties={"hostname": vm})
        power(find_vm(si, f"{PREFIX}{vm}"), on=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and find_vm(si, f"{PREFIX}{vm}").guest.ipAddress != first:
            time.sleep(1)
        assert find_vm(si, f"{PREFIX}{vm}").guest.ipAddress == first, f"the agent did not report {vm}"


@pytest.fixture(scope="module")
def imported(balancer_lab: BalancerLab) -> BalancerLab:
    """The plan before the VM exists, then the VM imported and powered on (the agent boots it)."""
    bl = balancer_lab
    inv = inventory(bl, services(TWO), name="dry")
    dry = pyinfra(bl, inv, str(DEPLOY), "--dry", timeout=120)
    assert dry.rc == 0, dry.output[-3000:]
    assert f"VM {PREFIX}lb1 does not exist yet: planning against an empty machine" in dry.output
    for label in ("Host name lb1", f"eth0 {FINAL}/8", "Resolvers", f"VIPs {VIP}", "Config /etc/exha-lb/exha-lb.toml",
                  "systemd unit exha-lb.service", "exha-lb running and enabled"):
        assert label in dry.output, f"{label!r} missing from the plan:\n{dry.output[-3000:]}"
    assert "test-token-not-shown" not in dry.output
    power_on(bl, "lb1")
    return bl


def test_first_apply_configures_the_vm_and_serves_exchange_on_the_vip(imported: BalancerLab) -> None:
    bl = imported
    run = apply(bl, inventory(bl, services(TWO)))
    assert run.rc == 0, run.output[-4000:]
    assert f"reconnecting from {FIRST_BOOT} to {FINAL}" in run.output
    assert "test-token-not-shown" not in run.output
    assert vm(bl, "hostname").strip() == "lb1"
    addrs = vm(bl, "ip -4 -o addr show dev eth0")
    assert f"inet {FINAL}/8" in addrs and f"inet {VIP}/32" in addrs and FIRST_BOOT not in addrs
    assert f"default via {NET}.1 dev eth0" in vm(bl, "ip -4 route show default")
    interfaces = vm(bl, "cat /etc/network/interfaces /etc/network/interfaces.d/exha-vips")
    assert f"address {FINAL}/8" in interfaces and f"gateway {NET}.1" in interfaces
    assert f"address {VIP}/32" in interfaces
    resolv = vm(bl, "cat /etc/resolv.conf")
    assert f"nameserver {NET}.10\nnameserver {NET}.11\n" in resolv and "search corp.example" in resolv
    assert f"{FINAL}\tlb1.corp.example lb1" in vm(bl, "cat /etc/hosts")
    assert vm(bl, "stat -c %a:%U /etc/exha-lb/admin.token").strip() == "600:exha-lb"
    assert vm(bl, "systemctl is-active exha-lb").strip() == "active"
    assert vm(bl, "ps -o user= -C exha-lb || ps -eo user,args | grep [e]xha-lb").split()[0] == "exha-lb"
    # the services, through the VIP
    assert banner(25).startswith("220 EX13-") and "Microsoft ESMTP MAIL Service ready" in banner(25)
    for port in (135, 60000, 60001):
        assert banner(port).split()[0] in ("EX13-1", "EX13-2")
    ctx = ssl.create_default_context(cafile=str(bl.lab.ca.cert))
    reply = owa_health(ctx, 443)
    assert reply.startswith(b"HTTP/1.1 200") and b"200 OK<br/>EX13-" in reply
    # the offloading service presents the balancer's certificate (verified) and speaks HTTP to the servers
    assert vm(bl, "stat -c %a:%U /etc/exha-lb/tls/owa.key /etc/exha-lb/tls/owa.pem").split() == [
        "600:exha-lb", "644:root"]
    reply = owa_health(ctx, OFFLOAD_PORT)
    assert reply.startswith(b"HTTP/1.1 200") and b"200 OK<br/>EX13-" in reply


def test_second_apply_changes_nothing_and_connects_to_the_final_address(
        imported: BalancerLab, record_property: Any) -> None:
    bl = imported
    run = apply(bl, inventory(bl, services(TWO)), "--json")
    record_property("noop_apply_seconds", round(run.seconds, 2))
    assert run.rc == 0, run.output[-3000:]
    assert changed_ops(run) == []
    assert "reconnecting" not in run.output


def test_stopped_exchange_server_gets_no_new_clients(imported: BalancerLab) -> None:
    bl = imported
    ex1 = bl.lab.topology.host("ex13-1")
    stop_server(bl.lab, ex1)
    try:
        deadline = time.monotonic() + 15  # health window: 2 failed checks 1 s apart, plus slack
        seen: list[str] = []
        while time.monotonic() < deadline:
            seen = [banner(25).split()[1] for _ in range(6)]
            if set(seen) == {"EX13-2.corp.example"}:
                break
            time.sleep(0.5)
        assert set(seen) == {"EX13-2.corp.example"}, seen
    finally:
        start_server(bl.lab, ex1)


def test_config_change_reloads_without_dropping_a_connection(imported: BalancerLab) -> None:
    bl = imported
    pid = vm(bl, "systemctl show -p MainPID --value exha-lb").strip()
    with socket.create_connection((VIP, 60000), timeout=5) as held:
        greeting = held.recv(200).decode()
        server = greeting.split()[0]
        third = [{"address": f"{NET}.23", "weight": 2}, f"{NET}.24", f"{NET}.25"]
        run = apply(bl, inventory(bl, services(third)), "--json")
        assert run.rc == 0, run.output[-3000:]
        assert "Reload exha-lb (config changed)" in changed_ops(run)
        assert "Restart exha-lb (code or unit changed)" not in changed_ops(run)
        assert vm(bl, "systemctl show -p MainPID --value exha-lb").strip() == pid
        held.sendall(b"still here\n")
        assert held.recv(200).decode().startswith(server)
    assert f'address = "{NET}.25"' in vm(bl, "cat /etc/exha-lb/exha-lb.toml")
    # least connections over concurrent SMTP sessions reaches the new server once its checks pass (rise 2)
    deadline = time.monotonic() + 20
    seen: set[str] = set()
    while time.monotonic() < deadline and "EX13-3.corp.example" not in seen:
        held_open = [socket.create_connection((VIP, 25), timeout=3) for _ in range(6)]
        try:
            seen |= {(s.recv(200).decode(errors="replace").split() or ["?", "?"])[1] for s in held_open}
        finally:
            for s in held_open:
                s.close()
        time.sleep(0.5)
    assert "EX13-3.corp.example" in seen, seen


def test_dry_run_shows_exactly_the_pending_change_and_leaves_the_vm_alone(imported: BalancerLab) -> None:
    bl = imported
    before = vm(bl, "sha256sum /etc/exha-lb/exha-lb.toml")
    inv = inventory(bl, services(TWO), name="dry-change")
    plan = pyinfra(bl, inv, str(DEPLOY), "--dry", "--json", timeout=120)
    assert plan.rc == 0, plan.output[-3000:]
    ops = json.loads(plan.stdout[plan.stdout.index("{"):])["plan"]
    assert [op["name"] for op in ops if op["hosts_with_change"]] == ["Config /etc/exha-lb/exha-lb.toml"]
    diff = pyinfra(bl, inv, str(DEPLOY), "--dry", "--diff", timeout=120)
    assert "Will change /etc/exha-lb/exha-lb.toml" in diff.output
    removed = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", diff.output).splitlines()
               if line.strip().startswith("- ")]
    assert any(f'address = "{NET}.25"' in line for line in removed), removed
    assert "test-token-not-shown" not in diff.output
    assert vm(bl, "sha256sum /etc/exha-lb/exha-lb.toml") == before


def test_bad_inventory_value_is_one_line_and_changes_nothing(imported: BalancerLab) -> None:
    bl = imported
    inv = inventory(bl, services(TWO), name="bad-input")
    text = inv.read_text().replace(f"'balancer_gateway': '{NET}.1'", "'balancer_gateway': '192.0.2.1'")
    inv.write_text(text)
    run = apply(bl, inv)
    assert run.rc != 0
    assert f"balancer_gateway: 192.0.2.1 is not inside {FINAL}/8" in run.output
    assert "Traceback" not in run.output
    assert f"default via {NET}.1 dev eth0" in vm(bl, "ip -4 route show default")


def test_broken_config_is_refused_on_the_host_and_the_old_one_keeps_serving(imported: BalancerLab) -> None:
    bl = imported
    before = vm(bl, "sha256sum /etc/exha-lb/exha-lb.toml")
    broken = [{"address": f"{NET}.23", "weight": 5000}, f"{NET}.24"]
    run = apply(bl, inventory(bl, services(broken)))
    assert run.rc != 0
    assert "real_servers[0].weight: expected an integer 0-1000, got 5000" in run.output
    assert vm(bl, "sha256sum /etc/exha-lb/exha-lb.toml") == before
    assert vm(bl, "ls /etc/exha-lb").split() == ["admin.token", "exha-lb.toml", "tls"]
    assert vm(bl, "systemctl is-active exha-lb").strip() == "active"
    assert banner(25).startswith("220 EX13-")


def test_connector_finds_the_vm_through_vsphere(imported: BalancerLab) -> None:
    """The final address in the inventory does not answer and there is no first-boot address: the connector
    asks vSphere for the VM's guest IP and connects there (host key still verified)."""
    bl = imported
    inv = inventory(bl, services(TWO), vm_address=f"{NET}.25", bootstrap=False, name="via-vsphere")
    run = pyinfra(bl, inv, "fact", "roles.balancer_host.facts.RunningHostname", "--json", timeout=60)
    assert run.rc == 0, run.output[-2000:]
    facts = json.loads(run.stdout[run.stdout.index("{"):])
    assert facts == {"roles.balancer_host.facts.RunningHostname": {"@exha-vm/lb1": "lb1"}}


PAIR = (("lb1", FINAL, 150), ("lb2", f"{NET}.29", 100))


def vip_holders(bl: BalancerLab) -> list[str]:
    return [vm_ for vm_, _, _ in PAIR if f" {VIP}/32 " in vm(bl, "ip -4 -o addr show dev eth0", vm_)]


def test_pair_created_and_configured_in_one_run_moves_the_vip_within_3_s(
        imported: BalancerLab, record_property: Any) -> None:
    """One pyinfra run imports lb2 into vSphere and powers it on (deploys/vsphere.py), then configures lb1 and
    the not-yet-existing lb2 as a keepalived pair (deploys/balancer.py): lb2 is planned as an empty machine and
    reached at execute time. Then killing the active balancer moves the VIP to the standby within 3 s."""
    bl = imported
    esxi = bl.lab.credentials()["esxi1"]
    ova = build_ova(bl.folder / "appliance" / "exha-balancer.ova")
    esxi_data = {"esxi_host": esxi["host"], "esxi_port": esxi["port"], "esxi_username": esxi["username"],
                 "esxi_password": esxi["password"], "esxi_ca_file": esxi["ca_file"],
                 "balancer_vm_name": f"{PREFIX}lb2", "balancer_ova": str(ova), "balancer_datastore": "LocalDS_0",
                 "balancer_network": "VM Network", "balancer_properties": {"hostname": "lb2"},
                 "balancer_ip_timeout": 120}
    hosts = [(f"@exha-vm/{vm_}", {**host_data(bl, services(TWO), vm_address=address, vm=vm_),
                                  "balancer_vrrp_router_id": 28, "balancer_vrrp_priority": priority})
             for vm_, address, priority in PAIR]
    inv = write_inventory(bl.folder / "pair", {"esxi": [("@exha-esxi/esxi1", esxi_data)], "balancers": hosts})
    run = pyinfra(bl, inv, str(ROOT / "deploys" / "vsphere.py"), str(DEPLOY), "-y")
    assert run.rc == 0, run.output[-5000:]
    assert f"VM {PREFIX}lb2 does not exist yet: planning against an empty machine" in run.output
    assert f"waiting up to 120s for VM {PREFIX}lb2 to answer" in run.output
    assert f"reconnecting from {NET}.201 to {NET}.29" in run.output
    assert vm(bl, "hostname; systemctl is-active exha-lb keepalived", "lb2").split() == ["lb2", "active", "active"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(vip_holders(bl)) != 1:
        time.sleep(0.5)
    [active] = vip_holders(bl)
    [standby] = [vm_ for vm_, _, _ in PAIR if vm_ != active]
    assert banner(25).startswith("220 EX13-")
    # Watch from the standby (same kernel clock as the active VM), then kill the active balancer hard.
    standby_address = dict((vm_, a) for vm_, a, _ in PAIR)[standby]
    watch = ("timeout 10 sh -c 'while ! ip -4 -o addr show dev eth0 | grep -q \" " + VIP + "/32 \"; "
             "do sleep 0.02; done; cut -d\" \" -f1 /proc/uptime'")
    waiter = subprocess.Popen(ssh_argv(bl.lab, standby_address, watch), stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    killed = vm(bl, "cut -d\" \" -f1 /proc/uptime; kill -9 $(systemctl show -p MainPID --value exha-lb)", active)
    out, _ = waiter.communicate(timeout=20)
    assert waiter.returncode == 0 and out.strip(), "the standby never took the VIP"
    failover = float(out.split()[0]) - float(killed.split()[0])
    record_property("vip_failover_seconds", round(failover, 2))
    assert failover < 3.0, f"the VIP moved after {failover:.2f}s"
    assert vip_holders(bl) == [standby]
    deadline = time.monotonic() + 10
    served = ""
    while time.monotonic() < deadline and not served.startswith("220 EX13-"):
        try:
            served = banner(25, timeout=1.0)
        except OSError:
            time.sleep(0.2)
    assert served.startswith("220 EX13-")
    again = pyinfra(bl, inv, str(ROOT / "deploys" / "vsphere.py"), str(DEPLOY), "-y", "--json")
    assert again.rc == 0 and changed_ops(again) == [], again.output[-3000:]
