"""The runbook's parts that need no lab: the journal file, the plan comparison, the per-item post-checks, the
pre-switch gate's decisions and probes (real sockets on loopback), the SMTP session, the command line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from roles.errors import SiteConfigError
from roles.runbook import journal
from roles.runbook.checks import smtp_server_name, smtp_session
from roles.runbook.engine import _item_checks, _moved
from roles.runbook.gate import problems, probe, service_ports
from roles.runbook.restore import _asa_address

REPO = Path(__file__).resolve().parents[2]
SITE = {"vip": "10.0.0.28", "cas_array": {"fqdn": "outlook.corp.example"},
        "exchange": {"rpc_port": 60000, "ab_port": 60001}}


def test_journal_keeps_the_first_prior_value_of_an_item(tmp_path: Path) -> None:
    path = tmp_path / "rb" / "journal.json"
    first = journal.append(path, step="dns", host="@exha-dns/dc1", kind="dns.a_record", item="outlook.corp.example",
                           target={"zone": "corp.example", "record": "outlook"},
                           prior={"ttl": 3600, "addresses": ["10.0.0.23"]},
                           desired={"ttl": 3600, "addresses": ["10.0.0.28"]})
    again = journal.append(path, step="dns", host="@exha-dns/dc1", kind="dns.a_record", item="outlook.corp.example",
                           target={}, prior={"ttl": 3600, "addresses": ["10.0.0.99"]}, desired={})
    second = journal.append(path, step="asa", host="@exha-asa/asa1", kind="asa.network_object", item="EXCH-SMTP",
                            target={}, prior=None, desired={"kind": "host", "value": "10.0.0.28"})
    assert again == first and first.seq == 1 and second.seq == 2
    assert [e.prior for e in journal.entries(path)] == [{"ttl": 3600, "addresses": ["10.0.0.23"]}, None]
    assert not list(path.parent.glob("*.tmp"))
    journal.mark(path, rolled_back_at="2026-11-25T00:00:00Z")
    assert journal.read(path)["rolled_back_at"] == "2026-11-25T00:00:00Z"


def test_a_journal_that_is_not_one_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    path.write_text(json.dumps({"version": 99, "entries": []}))
    with pytest.raises(SiteConfigError, match=r"journal.json: version: not a version 1 journal"):
        journal.read(path)
    path.write_text("{")
    with pytest.raises(SiteConfigError, match=r"cannot read the journal"):
        journal.read(path)


def test_values_moved_since_the_plan_are_named() -> None:
    planned = {"@exha-dns/dc1 dns.a_record outlook": {"ttl": 3600, "addresses": ["10.0.0.23"]}, "x": 1}
    now = {"@exha-dns/dc1 dns.a_record outlook": {"ttl": 3600, "addresses": ["10.0.0.99"]}, "x": 1}
    assert _moved(planned, dict(planned)) == []
    assert _moved(planned, now) == ['@exha-dns/dc1 dns.a_record outlook: planned {"ttl": 3600, "addresses": '
                                    '["10.0.0.23"]}, now {"ttl": 3600, "addresses": ["10.0.0.99"]}']


def test_values_this_runbook_already_set_are_not_moved(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    e = journal.append(path, step="asa", host="@exha-asa/asa1", kind="asa.network_object", item="EXCH-SMTP",
                       target={}, prior={"running": {"kind": "host", "value": "10.0.0.23"}, "startup": None},
                       desired={"kind": "host", "value": "10.0.0.28"})
    key = "@exha-asa/asa1 asa.network_object EXCH-SMTP"
    planned = {key: {"running": {"kind": "host", "value": "10.0.0.23", "nat": []},
                     "startup": {"kind": "host", "value": "10.0.0.23", "nat": []}}}
    ours = {key: {"running": {"kind": "host", "value": "10.0.0.28", "nat": []},
                  "startup": {"kind": "host", "value": "10.0.0.28", "nat": []}}}
    unsaved = {key: {"running": {"kind": "host", "value": "10.0.0.28", "nat": []},
                     "startup": {"kind": "host", "value": "10.0.0.23", "nat": []}}}
    assert _moved(planned, ours, [e]) == []
    assert len(_moved(planned, ours)) == 1 and len(_moved(planned, unsaved, [e])) == 1


def test_item_checks_need_running_and_saved_config_at_the_vip() -> None:
    values = {
        "@exha-asa/asa1 asa.network_object EXCH-SMTP": {"running": {"kind": "host", "value": "10.0.0.28"},
                                                        "startup": {"kind": "host", "value": "10.0.0.23"}},
        "@exha-winrm/ex13-1 exchange.database DB01": "outlook.corp.example",
        "@exha-winrm/ex13-1 exchange.rpc_ports": {"rpc_port": 60000, "ab_port": None},
        "@exha-dns/dc1 dns.a_record outlook.corp.example": {"ttl": 3600, "addresses": ["10.0.0.28"]},
    }
    checks = {c.name: (c.ok, c.detail) for c in _item_checks(SITE, values)}
    assert checks == {
        "ASA EXCH-SMTP on @exha-asa/asa1": (False, "running 10.0.0.28, startup (saved) 10.0.0.23"),
        "Exchange DB01 RpcClientAccessServer": (True, "outlook.corp.example"),
        "Exchange static RPC ports on @exha-winrm/ex13-1": (False, "60000 / None"),
    }


@pytest.mark.parametrize(("prior", "expected"), [
    ({"kind": "host", "value": "10.0.0.23"}, {"host": "10.0.0.23"}),
    ({"kind": "subnet", "value": "10.0.0.0 255.255.255.0"}, {"subnet": "10.0.0.0 255.255.255.0"}),
    ({"kind": "range", "value": "10.0.0.20 10.0.0.29"}, {"ip_range": "10.0.0.20 10.0.0.29"}),
    (None, {"present": False}),
])
def test_asa_objects_are_restored_to_their_own_kind(prior: Any, expected: dict[str, Any]) -> None:
    assert _asa_address(prior) == expected


def _state(up: dict[str, list[str]], vip: str = "10.0.0.28") -> dict[str, Any]:
    return {"services": [{"name": n, "vip": vip, "servers": [
        {"address": a, "state": "up" if a in servers else "down", "admin": "enabled"}
        for a in ("10.0.0.23", "10.0.0.24")]} for n, servers in up.items()]}


def test_gate_decisions() -> None:
    servers = {"smtp": ["10.0.0.23", "10.0.0.24"], "rpc": ["10.0.0.23", "10.0.0.24"]}
    ports = service_ports([{"name": "smtp", "template": "exchange2013-smtp"},
                           {"name": "rpc", "template": "exchange2010-mapi-static"}])
    assert ports == {"smtp": [25], "rpc": [135, 60000, 60001]}
    both = ["10.0.0.23", "10.0.0.24"]
    assert problems(None, "10.0.0.28", ports, servers) == ["the balancer is not running (no state from exha-lb status)"]
    assert problems(_state({"smtp": both, "rpc": both}), "10.0.0.28", ports, servers, do_probe=False) == []
    assert problems(_state({"smtp": both, "rpc": ["10.0.0.24"]}), "10.0.0.28", ports, servers, do_probe=False) == [
        "service rpc: real server(s) 10.0.0.23 not up"]
    assert problems(_state({"smtp": both}, vip="10.0.0.29"), "10.0.0.28", ports, servers, do_probe=False) == [
        "service smtp listens on 10.0.0.29, not 10.0.0.28", "service rpc is not configured on the balancer"]


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, int]]:
    """A one-connection SMTP greeter on loopback that answers like an Exchange 2013 front end."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            f = conn.makefile("rwb")
            f.write(b"220 EX13-2.corp.example Microsoft ESMTP MAIL Service ready\r\n")
            f.flush()
            for line in f:
                if line.upper().startswith(b"EHLO"):
                    f.write(b"250-EX13-2.corp.example\r\n250 HELP\r\n")
                elif line.upper().startswith(b"QUIT"):
                    f.write(b"221 Bye\r\n")
                    f.flush()
                    return
                f.flush()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield "127.0.0.1", port
    srv.close()
    t.join(timeout=5)


def test_smtp_session_names_the_server_that_answered(smtp_server: tuple[str, int]) -> None:
    transcript = smtp_session(*smtp_server)
    assert transcript[1] == "S: 220 EX13-2.corp.example Microsoft ESMTP MAIL Service ready"
    assert transcript[-2:] == ["C: QUIT", "S: 221 Bye"]
    assert smtp_server_name(transcript) == "EX13-2.corp.example"


def test_probe_a_closed_port_says_so() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    why = probe("127.0.0.1", port, timeout=1.0)
    assert why is not None and why.startswith(f"127.0.0.1:{port} ")


def _exha(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from roles.cli import main; main()", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO, check=False)


def test_command_line_errors_are_one_line() -> None:
    cp = _exha("runbook", "plan", "--inventory", "inventory/nope.py")
    assert cp.returncode == 2 and cp.stderr.strip() == (
        "exha: inventory inventory/nope.py does not exist (run from the project folder or pass --inventory)")
    cp = _exha("runbook", "apply", "--data", "no-equals-sign")
    assert cp.returncode == 2 and cp.stderr.strip() == "exha: --data 'no-equals-sign': expected KEY=VALUE"
    cp = _exha("runbook", "rollback", "--dir", "/nonexistent/runbook")
    assert cp.returncode == 1 and "no journal at /nonexistent/runbook/journal.json: nothing to roll back" in cp.stdout
