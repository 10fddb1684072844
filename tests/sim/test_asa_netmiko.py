"""The ASA simulator driven by netmiko's `cisco_asa` driver, unchanged, over real SSH on loopback."""

from __future__ import annotations

import json

import pytest
from netmiko import ConnectHandler
from netmiko.exceptions import NetmikoAuthenticationException

from tests.sim.conftest import AsaHandle


def _commands(asa: AsaHandle) -> list[str]:
    lines = (asa.state / "commands.jsonl").read_text().splitlines()
    return [e["command"] for e in map(json.loads, lines) if e["event"] == "command"]


def test_login_reads_the_seed_objects(asa: AsaHandle) -> None:
    with ConnectHandler(**asa.netmiko_args()) as conn:
        assert conn.find_prompt() == "asa1#"
        out = conn.send_command("show running-config object network")
        nat = conn.send_command("show running-config nat")
        curpriv = conn.send_command("show curpriv")
    assert out.splitlines() == [
        "object network EXCH-SMTP",
        " host 10.0.0.23",
        "object network EXCH-HTTPS",
        " host 10.0.0.23",
    ]
    assert nat.splitlines() == [
        "object network EXCH-SMTP",
        " nat (inside,outside) static 198.51.100.25",
        "object network EXCH-HTTPS",
        " nat (inside,outside) static 198.51.100.25",
    ]
    assert "Current privilege level : 15" in curpriv
    sent = _commands(asa)
    # netmiko's cisco_asa session preparation, in order, as the simulator received it
    prep = [c for c in sent if c]
    assert prep[:6] == [
        "show curpriv",
        "enable",
        "********",
        "terminal pager 0",
        "configure terminal",
        "terminal width 511",
    ]
    assert asa.secret not in (asa.state / "commands.jsonl").read_text()


def test_saved_change_survives_restart_and_unsaved_is_lost(asa: AsaHandle) -> None:
    with ConnectHandler(**asa.netmiko_args()) as conn:
        conn.send_config_set(["object network EXCH-SMTP", "host 10.0.0.28"])
        saved = conn.save_config()
        conn.send_config_set(["object network EXCH-HTTPS", "host 10.0.0.29"])
        running = conn.send_command("show running-config object network EXCH-HTTPS")
    assert "Building configuration..." in saved and "[OK]" in saved
    assert "bytes copied in" in saved and "Cryptochecksum: " in saved
    assert running.splitlines() == ["object network EXCH-HTTPS", " host 10.0.0.29"]
    asa.daemon.restart()
    with ConnectHandler(**asa.netmiko_args()) as conn:
        smtp = conn.send_command("show running-config object network EXCH-SMTP")
        https = conn.send_command("show running-config object network EXCH-HTTPS")
        nat = conn.send_command("show running-config nat")
    assert smtp.splitlines() == ["object network EXCH-SMTP", " host 10.0.0.28"]
    assert https.splitlines() == ["object network EXCH-HTTPS", " host 10.0.0.23"]
    assert " nat (inside,outside) static 198.51.100.25" in nat.splitlines()
    assert "write mem" in _commands(asa)


def test_copy_running_config_startup_config_saves(asa: AsaHandle) -> None:
    with ConnectHandler(**asa.netmiko_args()) as conn:
        conn.send_config_set(["object network WEB", "subnet 10.1.0.0 255.255.0.0"])
        out = conn.send_command("copy running-config startup-config", expect_string=r"Source filename")
        out += conn.send_command("\n", expect_string=r"asa1#")
    assert "[OK]" in out
    assert "object network WEB\n subnet 10.1.0.0 255.255.0.0" in (asa.state / "startup-config").read_text()


def test_bad_command_gives_the_asa_error(asa: AsaHandle) -> None:
    with ConnectHandler(**asa.netmiko_args()) as conn:
        out = conn.send_command("show running-config objekt")
        cfg = conn.send_config_set(["object network EXCH-SMTP", "host 10.0.0.300"])
    assert out.splitlines()[-1] == "ERROR: % Invalid input detected at '^' marker."
    caret = out.splitlines()[-2]
    assert caret.index("^") == len("asa1# show running-config ")
    assert "ERROR: % Invalid input detected at '^' marker." in cfg


def test_object_in_use_is_not_deleted(asa: AsaHandle) -> None:
    with ConnectHandler(**asa.netmiko_args()) as conn:
        out = conn.send_config_set(["no object network EXCH-SMTP"])
        conn.send_config_set(
            ["object network SPARE", "host 10.9.9.9", "nat (inside,outside) static 198.51.100.9"]
        )
        conn.send_config_set(["no object network SPARE"])
        left = conn.send_command("show running-config object")
        nat = conn.send_command("show running-config nat")
    assert "ERROR: unable to delete object (EXCH-SMTP). Object is being used." in out
    assert "EXCH-SMTP" in left and "SPARE" not in left and "SPARE" not in nat


def test_wrong_password_is_refused_at_ssh(asa: AsaHandle) -> None:
    with pytest.raises(NetmikoAuthenticationException):
        ConnectHandler(**asa.netmiko_args(password="not-the-password"))
    entries = [json.loads(x) for x in (asa.state / "commands.jsonl").read_text().splitlines()]
    assert {"event": "login", "user": "admin", "ok": False}.items() <= entries[-1].items()
