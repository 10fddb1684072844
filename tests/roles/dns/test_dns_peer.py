"""The DNS role against real BIND 9 on loopback: a primary taking TSIG-signed updates and a secondary fed by
NOTIFY and zone transfer, driven by the pyinfra CLI with deploys/dns.py (and the connector directly for the
concurrent-change guard). Every change is checked with independent dnspython queries to both servers."""

from __future__ import annotations

import base64
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update
import pytest
from harness import (ROOT, CliRun, Peer, free_port, loopback_addresses, run_pyinfra, site_data,
                     write_inventory)

PRIMARY, SECONDARY = "127.0.0.41", "127.0.0.42"
ZONE = "corp.example"
KEY_NAME = "exha-test-update"
DEPLOY = ROOT / "deploys" / "dns.py"

ZONE_TEXT = f"""$ORIGIN {ZONE}.
$TTL 3600
@        IN SOA dc1.{ZONE}. hostmaster.{ZONE}. ( 1 900 300 604800 300 )
@        IN NS  dc1.{ZONE}.
@        IN NS  dns2.{ZONE}.
dc1      IN A   {PRIMARY}
dns2     IN A   {SECONDARY}
ex13-1   IN A   10.0.0.23
ex13-2   IN A   10.0.0.24
outlook  IN A   10.0.0.23
"""


def _options(folder: Path, address: str, port: int) -> str:
    return f"""options {{
    directory "{folder}";
    pid-file "{folder}/named.pid";
    session-keyfile "{folder}/session.key";
    managed-keys-directory "{folder}";
    listen-on port {port} {{ {address}; }};
    listen-on-v6 {{ none; }};
    query-source address {address};
    transfer-source {address};
    notify-source {address};
    recursion no;
    dnssec-validation no;
    notify explicit;
}};
controls {{ }};
"""


@dataclass(frozen=True)
class Dns:
    primary: Peer
    secondary: Peer
    port: int
    secret: str
    work: Path

    def data(self, **over: Any) -> dict[str, Any]:
        data = {**site_data(), "dns_server": PRIMARY, "dns_port": self.port, "dns_zone": ZONE,
                "dns_tsig_name": KEY_NAME,
                "dns_tsig_secret": self.secret, "dns_tsig_algorithm": "hmac-sha256", "dns_timeout": 3.0,
                "dns_verify_timeout": 10.0}
        data.update(over)
        return data

    def run(self, *args: str, **over: Any) -> CliRun:
        inventory = write_inventory(self.work, {"dns": [("@exha-dns/dc1", self.data(**over))]})
        return run_pyinfra(self.work, inventory, DEPLOY, *args)

    def answer(self, server: str, record: str = f"outlook.{ZONE}") -> tuple[int, list[str]] | None:
        """Independent read: the A rrset `server` answers authoritatively (unsigned, TCP)."""
        # A server that was just (re)started answers SERVFAIL until its zone is loaded: wait, bounded.
        deadline = time.monotonic() + 10
        while True:
            response = dns.query.tcp(dns.message.make_query(record, "A"), server, port=self.port, timeout=3)
            if response.flags & dns.flags.AA or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert response.flags & dns.flags.AA, f"{server} is not authoritative"
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.A:
                return rrset.ttl, sorted(r.address for r in rrset)
        return None

    def serial(self, server: str) -> int:
        response = dns.query.tcp(dns.message.make_query(ZONE, "SOA"), server, port=self.port, timeout=3)
        return int(response.answer[0][0].serial) if response.answer else -1


@pytest.fixture
def bind(tmp_path: Path, peers: list[Peer]) -> Iterator[Dns]:
    named = shutil.which("named") or "/usr/sbin/named"
    if not Path(named).exists():
        pytest.skip("BIND 9 (named) is not installed: apt-get install bind9")
    with loopback_addresses(PRIMARY, SECONDARY):
        yield from _start_bind(named, tmp_path, peers)


def _start_bind(named: str, tmp_path: Path, peers: list[Peer]) -> Iterator[Dns]:
    port = free_port(PRIMARY)
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    key = f'key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};\n'
    started = []
    for role, address in (("primary", PRIMARY), ("secondary", SECONDARY)):
        folder = tmp_path / role
        folder.mkdir()
        if role == "primary":
            (folder / "zone.db").write_text(ZONE_TEXT)
            zone = f"""zone "{ZONE}" {{ type primary; file "zone.db"; allow-update {{ key "{KEY_NAME}"; }};
    allow-transfer {{ key "{KEY_NAME}"; }}; also-notify {{ {SECONDARY} port {port}; }}; }};
"""
        else:
            zone = f"""zone "{ZONE}" {{ type secondary; file "zone.db"; masterfile-format text;
    primaries {{ {PRIMARY} port {port} key "{KEY_NAME}"; }}; }};
"""
        (folder / "named.conf").write_text(_options(folder, address, port) + key + zone)
        peer = Peer(f"named-{role}", [named, "-g", "-4", "-c", str(folder / "named.conf")], address, port,
                    tmp_path / f"named-{role}.log")
        peers.append(peer.start())
        started.append(peer)
    work = tmp_path / "dns-work"
    work.mkdir()
    handle = Dns(started[0], started[1], port, secret, work)
    deadline = time.monotonic() + 20
    while handle.serial(SECONDARY) != handle.serial(PRIMARY):
        assert time.monotonic() < deadline, "the secondary never transferred the zone"
        time.sleep(0.1)
    yield handle
    for peer in started:   # stop before the addresses go away
        peer.stop()


def table_row(run: CliRun, label: str) -> list[str]:
    for line in run.stderr.splitlines():
        if line.strip().startswith(label):
            return line.strip()[len(label):].split()
    raise AssertionError(f"no table row {label!r} in:\n{run.stderr}")


def one_error_line(run: CliRun, needle: str) -> str:
    assert run.rc == 1, run.output
    assert "Traceback" not in run.output, run.output
    lines = [line for line in run.stderr.splitlines() if needle in line]
    assert len(lines) == 1, run.stderr
    assert "@exha-dns/dc1" in lines[0]
    return lines[0].strip()


LABEL = f"DNS outlook.{ZONE} to the VIP"


def test_dry_run_apply_and_second_apply(bind: Dns) -> None:
    dry = bind.run("--dry", "--diff")
    assert dry.rc == 0, dry.output
    assert (f"Will change outlook.{ZONE} A\n      - outlook.{ZONE} A 10.0.0.23 (ttl 3600)\n"
            f"      + outlook.{ZONE} A 10.0.0.28 (ttl 3600)\n") in dry.stderr, dry.stderr
    assert table_row(dry, LABEL) == ["1", "(@exha-dns/dc1)", "-"]
    assert bind.answer(PRIMARY) == bind.answer(SECONDARY) == (3600, ["10.0.0.23"]), "--dry changed the zone"
    assert bind.serial(PRIMARY) == 1

    first = bind.run("-y")
    assert first.rc == 0, first.output
    assert table_row(first, "Grand total") == ["1", "1", "-", "-"]
    # the op returns only once every nameserver answers, so no waiting here
    assert bind.answer(PRIMARY) == (3600, ["10.0.0.28"])
    assert bind.answer(SECONDARY) == (3600, ["10.0.0.28"])
    assert bind.answer(PRIMARY, f"ex13-1.{ZONE}") == (3600, ["10.0.0.23"]), "another record changed"

    second = bind.run("-y")
    assert second.rc == 0, second.output
    assert table_row(second, "Grand total") == ["1", "-", "-", "1"]
    serial = bind.serial(PRIMARY)
    print(f"\nDNS no-op apply (-y): {second.seconds:.2f}s")
    again = bind.run("--dry", "-v")
    assert again.rc == 0 and table_row(again, LABEL) == ["-", "-"]
    assert f"noop: outlook.{ZONE} A already 10.0.0.28 (ttl 3600)" in again.stderr
    assert bind.serial(PRIMARY) == serial, "a no-op run bumped the serial"
    print(f"DNS no-op --dry: {again.seconds:.2f}s")


def test_ttl_from_site_data(bind: Dns) -> None:
    run = bind.run("-y", cas_array_ttl=300)
    assert run.rc == 0, run.output
    assert bind.answer(PRIMARY) == bind.answer(SECONDARY) == (300, ["10.0.0.28"])


def test_concurrent_change_fails_and_overwrites_nothing(bind: Dns) -> None:
    """The guarded update read 10.0.0.23; someone else set 10.0.0.99 meanwhile: the update must fail."""
    from pyinfra.api import Config, Inventory, State

    inventory = Inventory(([("@exha-dns/dc1", bind.data())], {}))
    State(inventory, Config())   # gives the inventory's hosts their connectors
    connector = inventory.get_host("@exha-dns/dc1").connector
    seen = connector.api_dns_a_record(zone=ZONE, record="outlook")
    assert seen == {"ttl": 3600, "addresses": ["10.0.0.23"]}

    other = dns.update.UpdateMessage(ZONE + ".", keyring=dns.tsig.Key(KEY_NAME, bind.secret, "hmac-sha256"))
    other.replace("outlook", 3600, "A", "10.0.0.99")
    assert dns.query.tcp(other, PRIMARY, port=bind.port, timeout=3).rcode() == dns.rcode.NOERROR

    ok, output = connector.run_shell_command(_call("dns.replace_a", zone=ZONE, record="outlook",
                                                   addresses=["10.0.0.28"], ttl=3600,
                                                   expected=seen["addresses"]))
    assert not ok
    assert output.stderr_lines == [
        f"@exha-dns/dc1: command 'update outlook.{ZONE} A' rejected by device: {PRIMARY}:{bind.port}: "
        "prerequisite failed: the record changed since it was read (concurrent change?); nothing was "
        "overwritten, re-run to re-read it"]
    assert bind.answer(PRIMARY) == (3600, ["10.0.0.99"])


def _call(method: str, **params: Any) -> Any:
    from roles.api import ApiCall

    return ApiCall(method, **params)


def test_wrong_tsig_secret_is_one_line(bind: Dns) -> None:
    wrong = base64.b64encode(secrets.token_bytes(32)).decode()
    line = one_error_line(bind.run("-y", dns_tsig_secret=wrong), "TSIG")
    print("\n" + line)
    assert "TSIG BADSIG (PeerBadSignature)" in line and f"{PRIMARY}:{bind.port}" in line, line
    assert wrong not in line
    assert bind.answer(PRIMARY) == (3600, ["10.0.0.23"])


def test_unknown_tsig_key_is_one_line(bind: Dns) -> None:
    line = one_error_line(bind.run("-y", dns_tsig_name="no-such-key"), "TSIG")
    print("\n" + line)
    assert "does not know TSIG key 'no-such-key'" in line and "TSIG BADKEY (PeerBadKey)" in line, line
    assert bind.answer(PRIMARY) == (3600, ["10.0.0.23"])


def test_zone_not_served_is_one_line(bind: Dns) -> None:
    line = one_error_line(bind.run("-y", dns_zone="other.example", zone="other.example"), "not served")
    print("\n" + line)
    assert f"zone other.example is not served by {PRIMARY}:{bind.port} (REFUSED)" in line, line


def test_lagging_secondary_fails_after_verify_timeout(bind: Dns) -> None:
    bind.secondary.stop()
    run = bind.run("-y", dns_verify_timeout=1.5, dns_timeout=0.5)
    line = one_error_line(run, "still differ")
    print("\n" + line)
    assert f"{SECONDARY}:" in line and f"{PRIMARY}:" not in line.split("still differ")[1], line
    assert bind.answer(PRIMARY) == (3600, ["10.0.0.28"])

    # the secondary comes back serving its old copy, cut off from the primary: the record is not converged
    conf = Path(bind.secondary.argv[-1])
    good = conf.read_text()
    conf.write_text(good.replace(f"{PRIMARY} port {bind.port}", f"{PRIMARY} port {free_port(PRIMARY)}"))
    bind.secondary.start()
    assert bind.answer(SECONDARY) == (3600, ["10.0.0.23"])
    dry = bind.run("--dry", "--diff")
    assert table_row(dry, LABEL) == ["1", "(@exha-dns/dc1)", "-"], dry.output
    assert f"Will change outlook.{ZONE} A on the zone's nameservers" in dry.stderr
    assert (f"- {SECONDARY}: outlook.{ZONE} A 10.0.0.23 (ttl 3600)\n"
            f"      + {SECONDARY}: outlook.{ZONE} A 10.0.0.28 (ttl 3600)") in dry.stderr, dry.stderr
    serial = bind.serial(PRIMARY)
    line = one_error_line(bind.run("-y", dns_verify_timeout=1.0), "still differ")
    assert "'verify outlook.corp.example A'" in line and f"{SECONDARY}: outlook.{ZONE} A 10.0.0.23" in line
    assert bind.serial(PRIMARY) == serial, "waiting for a nameserver must not update the zone"

    # it is re-synced while the connector waits: the wait ends as soon as it answers the new record
    from pyinfra.api import Config, Inventory, State

    from roles.api import ApiCall

    inventory = Inventory(([("@exha-dns/dc1", bind.data())], {}))
    State(inventory, Config())
    connector = inventory.get_host("@exha-dns/dc1").connector
    result: list[Any] = []
    call = ApiCall("dns.verify_a", zone=ZONE, record="outlook", addresses=["10.0.0.28"], ttl=3600,
                   verify_timeout=30.0)
    waiter = threading.Thread(target=lambda: result.append(connector.run_shell_command(call)))
    waiter.start()
    time.sleep(1.0)
    bind.secondary.stop()
    conf.write_text(good)
    (conf.parent / "zone.db").unlink()   # a fresh copy: transferred now, not at the next refresh
    bind.secondary.start()
    waiter.join(40)
    ok, output = result[0]
    assert ok, output.stderr
    assert bind.answer(SECONDARY) == (3600, ["10.0.0.28"])
    assert bind.serial(PRIMARY) == serial
    assert table_row(bind.run("-y"), "Grand total") == ["1", "-", "-", "1"]


def test_facts_from_the_command_line(bind: Dns) -> None:
    import json

    inventory = write_inventory(bind.work, {"dns": [("@exha-dns/dc1", bind.data())]})
    record = run_pyinfra(bind.work, inventory, "fact", "roles.dns.facts.ARecord", f"zone={ZONE}",
                         "record=outlook", "--json")
    assert record.rc == 0, record.output
    assert json.loads(record.stdout) == {f"roles.dns.facts.ARecord (record=outlook, zone={ZONE})": {
        "@exha-dns/dc1": {"ttl": 3600, "addresses": ["10.0.0.23"]}}}
    servers = run_pyinfra(bind.work, inventory, "fact", "roles.dns.facts.ZoneNameservers", f"zone={ZONE}",
                          "--json")
    assert json.loads(servers.stdout) == {f"roles.dns.facts.ZoneNameservers (zone={ZONE})": {
        "@exha-dns/dc1": {f"dc1.{ZONE}": [PRIMARY], f"dns2.{ZONE}": [SECONDARY]}}}


def test_unreachable_primary_is_one_line(bind: Dns) -> None:
    closed = free_port("127.0.0.1")
    line = one_error_line(bind.run("-y", dns_server="127.0.0.1", dns_port=closed), "cannot connect")
    assert line.endswith(f"cannot connect: 127.0.0.1:{closed} refused the TCP connection for SOA {ZONE}"), \
        line


def test_silent_primary_times_out_in_one_line(bind: Dns) -> None:
    import socket

    with socket.socket() as silent:   # accepts TCP, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        line = one_error_line(bind.run("-y", dns_server="127.0.0.1", dns_port=port, dns_timeout=1.0),
                              "cannot connect")
    assert line.endswith(f"127.0.0.1:{port} did not answer SOA {ZONE} within 1s (dns_timeout)"), line


def test_lower_ttl_ahead_of_the_window(bind: Dns) -> None:
    deploy = bind.work / "lower.py"
    deploy.write_text("from roles.dns import operations as dns\n"
                      f"dns.lower_ttl(name='lower', zone='{ZONE}', record='outlook', ttl=60)\n")
    inventory = write_inventory(bind.work, {"dns": [("@exha-dns/dc1", bind.data())]})
    first = run_pyinfra(bind.work, inventory, deploy, "-y")
    assert first.rc == 0 and table_row(first, "lower") == ["1", "1", "-", "-"], first.output
    assert bind.answer(PRIMARY) == bind.answer(SECONDARY) == (60, ["10.0.0.23"])
    assert table_row(run_pyinfra(bind.work, inventory, deploy, "-y"), "lower") == ["1", "-", "-", "1"]
    # the repoint then keeps the lowered TTL
    assert bind.run("-y").rc == 0
    assert bind.answer(SECONDARY) == (60, ["10.0.0.28"])


def test_bad_site_value_is_one_line_and_changes_nothing(bind: Dns) -> None:
    run = bind.run("-y", vip="10.0.0.300")
    assert run.rc == 1 and "Traceback" not in run.output, run.output
    last = run.stderr.strip().splitlines()[-1]
    assert last.endswith("addresses: '10.0.0.300' is not an IPv4 address"), last
    assert "roles/dns/operations.py" in last
    assert bind.answer(PRIMARY) == (3600, ["10.0.0.23"])
