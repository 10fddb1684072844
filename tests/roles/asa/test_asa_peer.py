"""The ASA role against the real ASA simulator on loopback, driven by the pyinfra CLI with deploys/asa.py.

Every change is checked with an independent netmiko session (`show running-config`, `show startup-config`).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from harness import ROOT, CliRun, Peer, free_port, run_pyinfra, site_data, write_inventory
from netmiko import ConnectHandler

ADDRESS = "127.0.0.31"
DEPLOY = ROOT / "deploys" / "asa.py"
NAT = " nat (inside,outside) static 198.51.100.25"


@dataclass(frozen=True)
class Asa:
    peer: Peer
    state: Path
    password: str
    secret: str
    work: Path

    def data(self, **over: Any) -> dict[str, Any]:
        data = {**site_data(), "asa_host": ADDRESS, "asa_port": self.peer.port, "asa_username": "admin",
                "asa_password": self.password, "asa_enable_secret": self.secret}
        data.update(over)
        return data

    def inventory(self, **over: Any) -> Path:
        return write_inventory(self.work, {"firewalls": [("@exha-asa/asa1", self.data(**over))]})

    def run(self, *args: str, deploy: Path = DEPLOY, **over: Any) -> CliRun:
        return run_pyinfra(self.work, self.inventory(**over), deploy, *args)

    def show(self, command: str) -> list[str]:
        """An independent read over its own netmiko session."""
        with ConnectHandler(device_type="cisco_asa", host=ADDRESS, port=self.peer.port, username="admin",
                            password=self.password, secret=self.secret, fast_cli=True, conn_timeout=10) as c:
            return str(c.send_command(command)).splitlines()

    def configure(self, lines: list[str], save: bool) -> None:
        with ConnectHandler(device_type="cisco_asa", host=ADDRESS, port=self.peer.port, username="admin",
                            password=self.password, secret=self.secret, fast_cli=True, conn_timeout=10) as c:
            c.send_config_set(lines)
            if save:
                assert "[OK]" in str(c.send_command("write memory"))


def bodies(lines: list[str], object_name: str) -> list[str]:
    """The body lines of every `object network NAME` block in config text (definition, then NAT)."""
    out: list[str] = []
    inside = False
    for line in lines:
        if not line.startswith(" "):
            inside = line.strip() == f"object network {object_name}"
        elif inside:
            out.append(line.rstrip())
    return out


def table_row(run: CliRun, label: str) -> list[str]:
    """The cells of the results/changes table row for operation `label`."""
    for line in run.stderr.splitlines():
        if line.strip().startswith(label):
            return line.strip()[len(label):].split()
    raise AssertionError(f"no table row {label!r} in:\n{run.stderr}")


@pytest.fixture
def asa(tmp_path: Path, peers: list[Peer]) -> Iterator[Asa]:
    port = free_port(ADDRESS)
    password, secret = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    state = tmp_path / "asa-state"
    peer = Peer("asa-sim", [sys.executable, "-m", "lab.asa_sim", "--listen", ADDRESS, "--port", str(port),
                            "--state", str(state), "--hostname", "asa1", "--username", "admin"],
                ADDRESS, port, tmp_path / "asa-sim.log",
                {"ASA_SIM_PASSWORD": password, "ASA_SIM_ENABLE_SECRET": secret})
    peers.append(peer.start())
    work = tmp_path / "asa-work"
    work.mkdir()
    yield Asa(peer, state, password, secret, work)


def assert_clean(run: CliRun) -> None:
    assert "Traceback" not in run.output, run.output


def test_dry_run_apply_and_second_apply(asa: Asa) -> None:
    running_before = asa.show("show running-config")
    startup_before = asa.show("show startup-config")

    dry = asa.run("--dry", "--diff")
    assert dry.rc == 0, dry.output
    assert_clean(dry)
    for object_name in ("EXCH-SMTP", "EXCH-HTTPS"):
        assert (f"Will change object network {object_name}\n"
                "      -  host 10.0.0.23\n      +  host 10.0.0.28\n") in dry.stderr
        assert table_row(dry, f"ASA object {object_name} to the VIP") == ["1", "(@exha-asa/asa1)", "-"]
    assert dry.stderr.count("Will change") == 2
    assert asa.show("show running-config") == running_before, "--dry changed the running-config"
    assert asa.show("show startup-config") == startup_before, "--dry changed the startup-config"
    assert not (asa.work / "backups").exists(), "--dry wrote a backup"

    first = asa.run("-y")
    assert first.rc == 0, first.output
    assert_clean(first)
    running = asa.show("show running-config")
    startup = asa.show("show startup-config")
    for object_name in ("EXCH-SMTP", "EXCH-HTTPS"):
        assert bodies(running, object_name) == [" host 10.0.0.28", NAT]
        assert bodies(startup, object_name) == [" host 10.0.0.28", NAT]
        backups = list((asa.work / "backups" / "asa" / "exha-asa_asa1").glob(f"{object_name}-*.cfg"))
        assert len(backups) == 1
        assert backups[0].read_text().splitlines()[1:] == [f"object network {object_name}", " host 10.0.0.23",
                                                           NAT]
    assert [l for l in running if "access-list" in l] == [l for l in running_before if "access-list" in l]

    second = asa.run("-y")
    assert second.rc == 0, second.output
    assert table_row(second, "Grand total") == ["2", "-", "-", "2"]
    assert asa.show("show running-config") == running
    print(f"\nASA no-op apply (-y): {second.seconds:.2f}s")

    again = asa.run("--dry")
    assert again.rc == 0 and "Will change" not in again.stderr
    assert table_row(again, "ASA object EXCH-SMTP to the VIP") == ["-", "-"]
    print(f"ASA no-op --dry: {again.seconds:.2f}s")


def test_unsaved_running_config_is_saved(asa: Asa) -> None:
    asa.configure(["object network EXCH-SMTP", " host 10.0.0.28", "object network EXCH-HTTPS",
                   " host 10.0.0.28"], save=False)
    assert bodies(asa.show("show startup-config"), "EXCH-SMTP") == [" host 10.0.0.23", NAT]

    dry = asa.run("--dry", "--diff")
    assert dry.rc == 0 and dry.stderr.count("(unsaved: startup-config)") == 2, dry.output

    run = asa.run("-y")
    assert run.rc == 0, run.output
    # one `write memory` saves the whole running-config, so the second object is already saved by then
    assert table_row(run, "Grand total") == ["2", "1", "-", "1"]
    assert bodies(asa.show("show startup-config"), "EXCH-SMTP") == [" host 10.0.0.28", NAT]
    assert asa.run("-y").stderr.count("No changes") == 2


def test_device_rejection_is_one_line_and_changes_nothing(asa: Asa) -> None:
    deploy = asa.work / "remove.py"
    deploy.write_text("from roles.asa import operations as asa\n"
                      "asa.network_object(name='remove SMTP', object_name='EXCH-SMTP', present=False)\n")
    before = asa.show("show running-config")
    run = asa.run("-y", deploy=deploy)
    assert run.rc == 1
    assert_clean(run)
    expected = ("@exha-asa/asa1: command 'no object network EXCH-SMTP' rejected by device: "
                "ERROR: unable to delete object (EXCH-SMTP). Object is being used.")
    assert [l for l in run.stderr.splitlines() if "rejected by device" in l] == [
        f"    [@exha-asa/asa1] {expected}"], run.stderr
    assert asa.show("show running-config") == before


def test_wrong_password_is_one_line(asa: Asa) -> None:
    run = asa.run("--dry", asa_password="not-the-password")
    assert run.rc == 1
    assert_clean(run)
    lines = [l for l in run.stderr.splitlines() if "authentication failed" in l]
    assert len(lines) == 1 and "@exha-asa/asa1" in lines[0] and "refused user 'admin'" in lines[0], run.stderr


def test_host_key_is_verified_when_known_hosts_given(asa: Asa) -> None:
    real = asyncssh.read_private_key(str(asa.state / "ssh_host_ed25519_key"))
    entry = f"[{ADDRESS}]:{asa.peer.port} "
    good = asa.work / "known_hosts"
    good.write_text(entry + real.export_public_key().decode())
    assert asa.run("--dry", asa_known_hosts=str(good)).rc == 0

    bad = asa.work / "known_hosts.bad"
    bad.write_text(entry + asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode())
    run = asa.run("--dry", asa_known_hosts=str(bad))
    assert run.rc == 1
    assert_clean(run)
    assert f"host key of {ADDRESS}:{asa.peer.port} is not the one in {bad}" in run.stderr, run.stderr


def test_facts_from_the_command_line(asa: Asa) -> None:
    import json

    run = run_pyinfra(asa.work, asa.inventory(), "fact", "roles.asa.facts.NetworkObject",
                      "object_name=EXCH-SMTP", "--json")
    assert run.rc == 0, run.output
    state = {"kind": "host", "value": "10.0.0.23", "nat": [NAT.strip()]}
    assert json.loads(run.stdout) == {"roles.asa.facts.NetworkObject (object_name=EXCH-SMTP)": {
        "@exha-asa/asa1": {"running": state, "startup": state}}}
    run = run_pyinfra(asa.work, asa.inventory(), "fact", "roles.asa.facts.NetworkObjects", "--json")
    assert set(json.loads(run.stdout)["roles.asa.facts.NetworkObjects"]["@exha-asa/asa1"]) == {"EXCH-SMTP",
                                                                                         "EXCH-HTTPS"}


def test_unreachable_asa_is_one_line(asa: Asa) -> None:
    closed = free_port(ADDRESS)
    run = asa.run("--dry", asa_port=closed, asa_connect_timeout=2.0)
    assert run.rc == 1
    assert_clean(run)
    lines = [l for l in run.stderr.splitlines() if "cannot connect" in l]
    assert lines == [f"    [@exha-asa/asa1] @exha-asa/asa1: cannot connect: {ADDRESS}:{closed} "
                     "unreachable or not answering SSH within 2s"], run.stderr


def test_wrong_enable_secret_is_one_line(asa: Asa) -> None:
    run = asa.run("--dry", asa_enable_secret="not-the-secret", asa_connect_timeout=3.0)
    assert run.rc == 1
    assert_clean(run)
    lines = [l for l in run.stderr.splitlines() if "authentication failed" in l]
    assert len(lines) == 1, run.stderr
    assert "did not reach privileged mode (check asa_enable_secret)" in lines[0], run.stderr
    assert "not-the-secret" not in run.output


def test_create_and_remove_an_object(asa: Asa) -> None:
    deploy = asa.work / "lbnet.py"
    body = ("from roles.asa import operations as asa\n"
            "asa.network_object(name='LB-NET', object_name='LB-NET', {args})\n")
    deploy.write_text(body.format(args="subnet='10.0.0.24/29'"))
    created = asa.run("-y", deploy=deploy)
    assert created.rc == 0 and table_row(created, "LB-NET") == ["1", "1", "-", "-"], created.output
    assert bodies(asa.show("show running-config object network LB-NET"), "LB-NET") == [
        " subnet 10.0.0.24 255.255.255.248"]
    assert bodies(asa.show("show startup-config"), "LB-NET") == [" subnet 10.0.0.24 255.255.255.248"]
    assert table_row(asa.run("-y", deploy=deploy), "LB-NET") == ["1", "-", "-", "1"]

    deploy.write_text(body.format(args="present=False"))
    removed = asa.run("-y", deploy=deploy)
    assert removed.rc == 0 and table_row(removed, "LB-NET") == ["1", "1", "-", "-"], removed.output
    assert "LB-NET" not in "\n".join(asa.show("show running-config"))
    assert "LB-NET" not in "\n".join(asa.show("show startup-config"))
    assert table_row(asa.run("-y", deploy=deploy), "LB-NET") == ["1", "-", "-", "1"]


def test_silent_ssh_port_times_out_in_one_line(asa: Asa) -> None:
    import socket

    with socket.socket() as silent:   # accepts TCP, never says a word
        silent.bind((ADDRESS, 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        run = asa.run("--dry", asa_port=port, asa_connect_timeout=2.0)
    assert run.rc == 1
    assert_clean(run)
    assert [l.strip() for l in run.stderr.splitlines() if "cannot connect" in l] == [
        f"[@exha-asa/asa1] @exha-asa/asa1: cannot connect: {ADDRESS}:{port} unreachable or not answering SSH "
        "within 2s"], run.stderr


def test_bad_site_value_is_one_line_and_changes_nothing(asa: Asa) -> None:
    before = asa.show("show running-config")
    run = asa.run("-y", vip="10.0.0.300")
    assert run.rc == 1
    assert_clean(run)
    assert run.stderr.strip().splitlines()[-1].endswith(
        "host: '10.0.0.300' is not a valid IPv4 host: Octet 300 (> 255) not permitted in '10.0.0.300'"), run.stderr
    assert "roles/asa/operations.py" in run.stderr.strip().splitlines()[-1]
    assert asa.show("show running-config") == before


def test_dropped_session_is_reopened(asa: Asa) -> None:
    """The ASA restarts (or drops an idle session) between the plan and the change: the connector logs in
    again instead of failing."""
    from pyinfra.api import Config, Inventory, State

    from roles.api import ApiCall

    inventory = Inventory(([("@exha-asa/asa1", asa.data())], {}))
    State(inventory, Config())
    connector = inventory.get_host("@exha-asa/asa1").connector
    connector.connect()
    try:
        ok, first = connector.run_shell_command(ApiCall("asa.show", commands=["show running-config nat"]))
        assert ok, first.stderr
        asa.peer.stop()
        asa.peer.start()
        connector._cache = {}
        ok, again = connector.run_shell_command(ApiCall("asa.show", commands=["show running-config nat"]))
        assert ok, again.stderr
        assert again.stdout_lines == first.stdout_lines
    finally:
        connector.disconnect()
