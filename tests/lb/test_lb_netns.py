"""Root-only tests in network namespaces this test creates: port `*` through nftables + SO_ORIGINAL_DST,
transparent SMTP (IP_TRANSPARENT) with its routing, and docs/examples/exchange2010.toml run as is."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from lbkit import BACKEND, REPO, Balancer, Net, Proc, http_get, service_toml

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces and nftables rules"),
    pytest.mark.skipif(shutil.which("nft") is None or shutil.which("ip") is None, reason="needs nft and iproute2"),
]
CLIENT = Path(__file__).resolve().parent / "ns_client.py"
_count = iter(range(1000))


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=20).stdout


class Namespaces:
    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self) -> str:
        name = f"exlbt{os.getpid()}n{next(_count)}"
        sh("ip", "netns", "add", name)
        self.names.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def run(self, ns: str, *argv: str) -> str:
        return sh("ip", "netns", "exec", ns, *argv)

    def client(self, ns: str, *args: str) -> str:
        return self.run(ns, sys.executable, str(CLIENT), *args).strip()

    def state(self, ns: str, admin: str) -> dict[str, Any]:
        return json.loads(self.client(ns, "state", admin))  # type: ignore[no-any-return]


@pytest.fixture
def netns() -> Iterator[Namespaces]:
    n = Namespaces()
    yield n
    for name in n.names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (subprocess.CalledProcessError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _wait_listening(netns: Namespaces, ns: str, addresses: tuple[str, ...], ports: tuple[int, ...]) -> None:
    """Wait until every address:port has a listening TCP socket in namespace `ns`: a back end still starting
    when the balancer's first check runs would count as down until its next checks."""
    wanted = {f"{a}:{p}" for a in addresses for p in ports}
    _wait(lambda: wanted <= {line.split()[3] for line in netns.run(ns, "ss", "-Hltn").splitlines() if line.strip()},
          f"back ends listening on {sorted(wanted)}")


def _start_lb(netns: Namespaces, spawn: Callable[..., Proc], ns: str, cfg: Path, admin: str) -> Proc:
    p = spawn(["ip", "netns", "exec", ns, sys.executable, "-m", "lb", "run", "--config", str(cfg)], f"lb-{ns}")
    _wait(lambda: all(s["last_check"] for svc in netns.state(ns, admin)["services"] for s in svc["servers"]),
          f"balancer in {ns}")
    return p


def test_port_wildcard_keeps_the_port_and_the_server(netns: Namespaces, spawn: Callable[..., Proc],
                                                      tmp_path: Path) -> None:
    ns = netns.add()
    ports = "135,5000,60000,60001"
    for name, addr in (("A", "127.0.0.23"), ("B", "127.0.0.24")):
        spawn(["ip", "netns", "exec", ns, sys.executable, str(BACKEND), "echo", name, addr, ports], f"b-{name}")
    cfg = tmp_path / "mapi.toml"
    cfg.write_text("""
nft_table = "exha_lb_test"
wildcard_port = 64999
[admin]
port = 9443
[[virtual_services]]
name = "mapi"
vip = "127.0.0.28"
template = "exchange2010-mapi"
scheduler = "round_robin"
[virtual_services.health]
interval = 0.5
[[virtual_services.real_servers]]
address = "127.0.0.23"
[[virtual_services.real_servers]]
address = "127.0.0.24"
""")
    _wait_listening(netns, ns, ("127.0.0.23", "127.0.0.24"), tuple(int(p) for p in ports.split(",")))
    lb = _start_lb(netns, spawn, ns, cfg, "127.0.0.1:9443")
    assert "redirect to :64999" in netns.run(ns, "nft", "list", "table", "ip", "exha_lb_test")
    seen: dict[str, set[str]] = {}
    for client in ("127.0.0.51", "127.0.0.52"):
        for port in (135, 60000, 60001, 5000, 135):
            name, local_port, peer = netns.client(ns, "line", "127.0.0.28", str(port), client).split()[1:]
            assert int(local_port) == port            # the original port reached the server
            seen.setdefault(client, set()).add(name)
    assert all(len(v) == 1 for v in seen.values())    # one server per client across every port
    assert seen["127.0.0.51"] != seen["127.0.0.52"]   # and different clients spread
    lb.popen.send_signal(signal.SIGTERM)
    assert lb.popen.wait(15) == 0
    tables = netns.run(ns, "nft", "list", "tables")
    assert "exha_lb_test" not in tables                # the balancer removed its redirect


def test_transparent_smtp_keeps_the_client_address(netns: Namespaces, spawn: Callable[..., Proc],
                                                    tmp_path: Path) -> None:
    client, lbns, server = netns.add(), netns.add(), netns.add()
    tag = f"{os.getpid() % 10000}"
    sh("ip", "link", "add", f"tc{tag}", "netns", client, "type", "veth", "peer", "name", f"tl{tag}", "netns", lbns)
    sh("ip", "link", "add", f"ts{tag}", "netns", server, "type", "veth", "peer", "name", f"tm{tag}", "netns", lbns)
    for ns, dev, addr in ((client, f"tc{tag}", "172.31.1.2/24"), (lbns, f"tl{tag}", "172.31.1.1/24"),
                          (lbns, f"tm{tag}", "172.31.2.1/24"), (server, f"ts{tag}", "172.31.2.2/24")):
        sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
    sh("ip", "-n", lbns, "addr", "add", "172.31.1.28/24", "dev", f"tl{tag}")        # the VIP
    sh("ip", "-n", server, "route", "add", "default", "via", "172.31.2.1")          # replies go back via the LB
    # the routing transparent mode needs on the balancer (docs/lb.md): replies to client addresses that belong to
    # a transparent socket are delivered locally
    subprocess.run(["ip", "netns", "exec", lbns, "nft", "-f", "-"], check=True, text=True, input=(
        "table ip exha_tproxy {\n chain prerouting {\n  type filter hook prerouting priority mangle; policy accept;\n"
        "  meta l4proto tcp socket transparent 1 meta mark set 0x1\n }\n}\n"))
    sh("ip", "-n", lbns, "rule", "add", "fwmark", "1", "lookup", "100")
    sh("ip", "-n", lbns, "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")
    spawn(["ip", "netns", "exec", server, sys.executable, str(BACKEND), "echo", "EX", "172.31.2.2", "25"], "smtp")
    cfg = tmp_path / "smtp.toml"
    cfg.write_text("""
[admin]
port = 9443
[[virtual_services]]
name = "smtp"
vip = "172.31.1.28"
template = "exchange2010-smtp"
transparent = true
[virtual_services.health]
kind = "tcp"
interval = 0.5
[[virtual_services.real_servers]]
address = "172.31.2.2"
""")
    _wait_listening(netns, server, ("172.31.2.2",), (25,))
    _start_lb(netns, spawn, lbns, cfg, "127.0.0.1:9443")
    words = netns.client(client, "line", "172.31.1.28", "25").split()
    assert words[1:] == ["EX", "25", "172.31.1.2"]      # Exchange sees the client's own address


def test_example_config_runs_as_is(netns: Namespaces, spawn: Callable[..., Proc], certs: tuple[str, str]) -> None:
    ns = netns.add()
    for name, addr in (("A", "127.0.0.23"), ("B", "127.0.0.24")):
        spawn(["ip", "netns", "exec", ns, sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{addr}:25", "-c",
               "aiosmtpd.handlers.Sink"], f"smtp-{name}")
        spawn(["ip", "netns", "exec", ns, sys.executable, str(BACKEND), "https", name, addr, "443", "--cert",
               certs[0], "--key", certs[1]], f"https-{name}")
    _wait_listening(netns, ns, ("127.0.0.23", "127.0.0.24"), (25, 443))  # the SMTP check runs every 10 s
    example = REPO / "docs" / "examples" / "exchange2010.toml"
    _start_lb(netns, spawn, ns, example, "127.0.0.1:9443")
    st = netns.state(ns, "127.0.0.1:9443")
    assert {(svc["name"], s["address"], s["state"]) for svc in st["services"] for s in svc["servers"]} == {
        ("smtp", "127.0.0.23", "up"), ("smtp", "127.0.0.24", "up"),
        ("https", "127.0.0.23", "up"), ("https", "127.0.0.24", "up")}
    assert netns.client(ns, "line", "127.0.0.28", "25").startswith("220 ")
    assert netns.client(ns, "https", "127.0.0.28", "443", "/owa/") in ("A", "B")


NO_NET_ADMIN = ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", "--"]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_runs_without_net_admin_unless_it_must_redirect(net: Net, backend: Callable[..., Proc],
                                                        balancer: Callable[..., Balancer],
                                                        tmp_path: Path) -> None:
    """Without a port-`*` service the balancer never touches nftables, so it starts without CAP_NET_ADMIN;
    a port-`*` service under the same restriction is refused at start with the nftables reason."""
    backend("http", "A", net.host(23), 8001)
    plain = service_toml(net, "web", 'port = 8001\ntemplate = "exchange2013-https"')
    b = balancer(plain, prefix=NO_NET_ADMIN)
    status = Path(f"/proc/{b.proc.popen.pid}/status").read_text()
    cap_eff = int(next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1], 16)
    assert not cap_eff & (1 << 12), "the balancer was meant to run without CAP_NET_ADMIN"
    assert b.server("web", net.host(23))["state"] == "up"
    assert http_get(net.vip, 8001, "/owa/")[1]["x-server"] == "A"

    wild = tmp_path / "wild.toml"
    wild.write_text(f'nft_table = "exha_lb_capt{os.getpid()}"\n'
                    + service_toml(net, "rpc", 'ports = "*"', health='kind = "tcp"\nport = 8001'))
    out = subprocess.run(NO_NET_ADMIN + [sys.executable, "-m", "lb", "run", "--config", str(wild)], cwd=REPO,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "start_failed" in out.stdout + out.stderr and "nft" in (out.stdout + out.stderr).lower()
    assert "Traceback" not in out.stdout + out.stderr
