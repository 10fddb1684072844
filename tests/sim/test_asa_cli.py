"""The ASA simulator's command line as a pure state machine: prompts per mode, outputs and errors."""

from __future__ import annotations

import pytest

from lab.asa_sim.cli import INCOMPLETE, INVALID_INPUT, CliSession, Device
from lab.asa_sim.config import AsaConfig, seed_config

SECRET = "s3cret"


def _session(mode: str = "user") -> CliSession:
    saved: list[str] = []
    cfg = AsaConfig.parse(seed_config("asa1", {"EXCH-SMTP": "10.0.0.23"}, "198.51.100.25"), "asa1")
    dev = Device(config=cfg, enable_secret=SECRET, save=saved.append, load_startup=lambda: "".join(saved))
    s = CliSession(dev, "admin")
    path = {
        "user": [],
        "enable": ["enable", SECRET],
        "config": ["enable", SECRET, "configure terminal"],
        "config-network-object": ["enable", SECRET, "configure terminal", "object network EXCH-SMTP"],
    }
    for line in path[mode]:
        s.feed(line)
    assert s.mode == mode
    return s


@pytest.mark.parametrize(
    ("mode", "prompt"),
    [
        pytest.param("user", "asa1> ", id="user-exec"),
        pytest.param("enable", "asa1# ", id="privileged"),
        pytest.param("config", "asa1(config)# ", id="global-config"),
        pytest.param("config-network-object", "asa1(config-network-object)# ", id="network-object"),
    ],
)
def test_prompt_per_mode(mode: str, prompt: str) -> None:
    assert _session(mode).prompt == prompt


@pytest.mark.parametrize(
    ("mode", "line", "next_mode"),
    [
        pytest.param("user", "enable", "user", id="enable-asks-password-first"),
        pytest.param("enable", "configure terminal", "config", id="conf-t"),
        pytest.param("enable", "conf t", "config", id="conf-t-abbreviated"),
        pytest.param("enable", "disable", "user", id="disable"),
        pytest.param("config", "end", "enable", id="end"),
        pytest.param("config", "exit", "enable", id="exit-config"),
        pytest.param("config", "object network NEW", "config-network-object", id="object-creates"),
        pytest.param("config-network-object", "exit", "config", id="exit-object"),
        pytest.param("config-network-object", "end", "enable", id="end-object"),
        pytest.param(
            "config-network-object", "object network OTHER", "config-network-object", id="object-to-object"
        ),
    ],
)
def test_mode_transitions(mode: str, line: str, next_mode: str) -> None:
    s = _session(mode)
    s.feed(line)
    assert s.mode == next_mode


@pytest.mark.parametrize(
    ("mode", "line", "bad_word", "error"),
    [
        pytest.param("enable", "shw version", "shw", INVALID_INPUT, id="unknown-command"),
        pytest.param(
            "user", "show running-config", "running-config", INVALID_INPUT, id="show-run-needs-enable"
        ),
        pytest.param("enable", "show running-config objekt", "objekt", INVALID_INPUT, id="bad-show-run-arg"),
        pytest.param(
            "config-network-object", "host 10.0.0.300", "10.0.0.300", INVALID_INPUT, id="bad-host-address"
        ),
        pytest.param(
            "config-network-object",
            "subnet 10.0.0.0 255.0.255.0",
            "255.0.255.0",
            INVALID_INPUT,
            id="bad-mask",
        ),
        pytest.param(
            "config-network-object",
            "nat (inside,outside) statik 1.2.3.4",
            "statik",
            INVALID_INPUT,
            id="bad-nat",
        ),
        pytest.param("config", "object network", None, INCOMPLETE, id="object-needs-name"),
        pytest.param("enable", "terminal pager", None, INCOMPLETE, id="pager-needs-lines"),
    ],
)
def test_errors(mode: str, line: str, bad_word: str | None, error: str) -> None:
    s = _session(mode)
    out = s.feed(line).output.splitlines()
    assert out[-1] == error
    if bad_word is not None:
        # the caret sits under the bad word as typed after the prompt
        assert out[-2] == " " * (len(s.prompt) + line.index(bad_word)) + "^"


@pytest.mark.parametrize(
    ("line", "mode", "error"),
    [
        pytest.param("show running-config object", "config-network-object", False, id="show-stays-in-object"),
        pytest.param("write memory", "config-network-object", False, id="write-stays-in-object"),
        pytest.param("frobnicate", "config-network-object", True, id="error-stays-in-object"),
        pytest.param("object network OTHER", "config-network-object", False, id="global-command-switches"),
        pytest.param("hostname fw9", "config", False, id="global-command-leaves-object"),
    ],
)
def test_commands_in_the_object_sub_mode(line: str, mode: str, error: bool) -> None:
    s = _session("config-network-object")
    out = s.feed(line).output
    assert s.mode == mode
    assert (INVALID_INPUT in out) is error
    if error:
        assert out.splitlines()[0] == " " * len("asa1(config-network-object)# ") + "^"


def test_enable_password_three_tries() -> None:
    s = _session()
    assert s.feed("enable").hide_input
    assert s.feed("wrong").output == "Invalid password"
    s.feed("wrong")
    r = s.feed("wrong")
    assert (r.output, s.mode, r.prompt) == ("Access denied.", "user", "asa1> ")


@pytest.mark.parametrize(
    ("lines", "shown"),
    [
        pytest.param(["host 10.0.0.28"], [" host 10.0.0.28"], id="host"),
        pytest.param(["subnet 10.1.0.0 255.255.0.0"], [" subnet 10.1.0.0 255.255.0.0"], id="subnet"),
        pytest.param(["range 10.0.0.5 10.0.0.9"], [" range 10.0.0.5 10.0.0.9"], id="range"),
        pytest.param(["fqdn v4 mail.corp.example"], [" fqdn v4 mail.corp.example"], id="fqdn"),
        pytest.param(
            ["host 10.0.0.28", "description Exchange VIP"],
            [" host 10.0.0.28", " description Exchange VIP"],
            id="description",
        ),
    ],
)
def test_object_lines(lines: list[str], shown: list[str]) -> None:
    s = _session("config-network-object")
    for line in lines:
        assert s.feed(line).output == ""
    s.feed("end")
    out = s.feed("show running-config object network EXCH-SMTP").output
    assert out.splitlines() == ["object network EXCH-SMTP", *shown]


def test_write_memory_output_and_saved_text() -> None:
    s = _session("enable")
    r = s.feed("write memory")
    lines = r.output.splitlines()
    assert lines[0] == "Building configuration..."
    assert lines[1].startswith("Cryptochecksum: ") and len(lines[1].split()) == 5
    assert lines[3].split()[1:4] == ["bytes", "copied", "in"]
    assert lines[-1] == "[OK]"
    assert r.saved
    startup = s.feed("show startup-config").output
    assert "object network EXCH-SMTP\n host 10.0.0.23" in startup
    assert startup.splitlines()[-1] == ": end"


def test_parse_render_round_trip() -> None:
    text = seed_config("asa1", {"A": "10.0.0.1", "B": "10.0.0.2"}, "198.51.100.25")
    cfg = AsaConfig.parse(text, "x")
    again = AsaConfig.parse(cfg.render(), "x")
    assert again.render() == cfg.render()
    assert cfg.hostname == "asa1"
    assert [o.nat for o in cfg.objects.values()] == ["(inside,outside) static 198.51.100.25"] * 2
    body = cfg.body_lines()
    # definitions come before the object NAT section, as in a real running-config
    assert body.index("object network A") < body.index(" nat (inside,outside) static 198.51.100.25")
