"""Config model: templates merge, every error names file, field path and what is allowed."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

from lb import config, templates
from lb.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "exchange2010.toml"

BASE = """
[[virtual_services]]
name = "svc"
vip = "127.0.0.28"
{extra}
[[virtual_services.real_servers]]
address = "127.0.0.23"
"""


def test_template_copies_are_identical() -> None:
    repo = sorted(p.name for p in templates.REPO_DIR.glob("*.toml"))
    pkg = sorted(p.name for p in templates.PACKAGE_DIR.glob("*.toml"))
    assert repo == pkg and len(repo) >= 7
    for name in repo:
        assert filecmp.cmp(templates.REPO_DIR / name, templates.PACKAGE_DIR / name, shallow=False), name


@pytest.mark.parametrize("name", templates.available())
def test_every_template_makes_a_valid_service(name: str, tmp_path: Path) -> None:
    cfg = config.parse(BASE.format(extra=f'template = "{name}"'), str(tmp_path / "c.toml"))
    vs = cfg.virtual_services[0]
    assert vs.template == name
    assert vs.health.kind in ("tcp", "smtp", "http", "https")


def test_example_config_values() -> None:
    cfg = config.load(EXAMPLE)
    smtp, https = cfg.virtual_services
    assert (smtp.vip, smtp.ports, smtp.health.kind) == ("127.0.0.28", (25,), "smtp")
    assert (https.ports, https.health.kind, https.persistence.kind) == ((443,), "https", "source_ip")
    assert https.persistence.timeout == 2700.0
    assert [r.address for r in https.real_servers] == ["127.0.0.23", "127.0.0.24"]
    assert cfg.admin.listen == "127.0.0.1:9443"


def test_templates_carry_exchange_values(tmp_path: Path) -> None:
    def vs(tpl: str) -> config.VirtualService:
        return config.parse(BASE.format(extra=f'template = "{tpl}"'), "c.toml").virtual_services[0]

    mapi = vs("exchange2010-mapi")
    assert mapi.wildcard and mapi.persistence.kind == "source_ip" and mapi.health.port == 135
    assert vs("exchange2010-mapi-static").ports == (135, 60000, 60001)
    off = vs("exchange2010-https-offloaded")
    assert off.mode == "http" and off.persistence.kind == "cookie" and off.persistence.group == "owa-ecp"
    assert off.persistence.fallback == "source_ip"  # Outlook Anywhere's two connections carry no cookie
    e13 = vs("exchange2013-https")
    assert "/owa/healthcheck.htm" in e13.health.paths and "/ecp/healthcheck.htm" in e13.health.paths
    assert vs("exchange2010-https").health.accepts(401) and vs("exchange2010-https").health.accepts(204)
    assert not vs("exchange2010-https").health.accepts(500)


def test_service_overrides_template_fields() -> None:
    extra = 'template = "exchange2010-https"\nport = 8443\n[virtual_services.persistence]\ntimeout = 60'
    vs = config.parse(BASE.format(extra=extra), "c.toml").virtual_services[0]
    assert vs.ports == (8443,)
    assert vs.persistence.kind == "source_ip" and vs.persistence.timeout == 60.0


@pytest.mark.parametrize(("extra", "message"), [
    ("port = 70000", "c.toml: virtual_services[0].port: expected 1-65535 (or \"*\" for every port), got 70000"),
    ('port = 25\nscheduler = "fastest"', "c.toml: virtual_services[0].scheduler: expected one of round_robin, "
                                         "weighted_round_robin, least_connections, got 'fastest'"),
    ('port = 25\ntemplate = "nope"', "c.toml: virtual_services[0].template: unknown template; available: "),
    ('port = 25\ncolour = 1', "c.toml: virtual_services[0].colour: unknown field; allowed: name, vip"),
    ('port = 25\n[virtual_services.persistence]\nkind = "cookie"',
     "c.toml: virtual_services[0].persistence.kind: cookie persistence needs mode = \"http\""),
    ('port = 25\n[virtual_services.persistence]\nkind = "source_ip"\nfallback = "source_ip"',
     "c.toml: virtual_services[0].persistence.fallback: a fallback applies to kind = \"cookie\" only"),
    ('port = 25\nmode = "http"\n[virtual_services.persistence]\nkind = "cookie"\nfallback = "ip"',
     "c.toml: virtual_services[0].persistence.fallback: expected one of none, source_ip, got 'ip'"),
    ('port = 25\n[virtual_services.persistence]\nheader = "Authorization"',
     "c.toml: virtual_services[0].persistence.header: header persistence needs mode = \"http\""),
    ('port = 25\nmode = "http"\n[virtual_services.persistence]\nheader = "Authori zation"',
     "c.toml: virtual_services[0].persistence.header: expected a header name"),
    ('port = 25\nmode = "http"\n[virtual_services.persistence]\nheader_paths = ["/Microsoft-Server-ActiveSync"]',
     "c.toml: virtual_services[0].persistence.header_paths: applies only with persistence.header"),
    ('port = 25\nmode = "http"\n[virtual_services.persistence]\nheader = "Authorization"\n'
     'header_paths = ["eas"]',
     "c.toml: virtual_services[0].persistence.header_paths: expected a list of URL path prefixes"),
    ('port = 25\n[virtual_services.health]\naccepted_codes = ["2xx", "abc"]',
     "c.toml: virtual_services[0].health.accepted_codes[1]: expected a code 100-599"),
    ('port = 25\n[virtual_services.timeouts]\nidle = -1', "c.toml: virtual_services[0].timeouts.idle: expected a number"),
    ('ports = "*"', 'c.toml: virtual_services[0].health.port: a port "*" service needs a health-check port'),
    ("", 'c.toml: virtual_services[0].ports: required: a port, a list of ports or "*"'),
])
def test_errors_name_file_field_and_allowed(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.parse(BASE.format(extra=extra), "c.toml")
    assert str(err.value).startswith(message), str(err.value)


def test_top_level_error_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^c.toml: consolidate_below: expected a number of cores 0-64, got -0.5"):
        config.parse("consolidate_below = -0.5\n" + BASE.format(extra="port = 25"), "c.toml")
    assert config.parse("consolidate_below = 0\n" + BASE.format(extra="port = 25"), "c.toml").consolidate_below == 0
    assert config.parse(BASE.format(extra="port = 25"), "c.toml").consolidate_below == 0.3


def test_real_server_error_path() -> None:
    text = BASE.format(extra="port = 25") + '[[virtual_services.real_servers]]\naddress = "127.0.0.24"\nport = 0\n'
    with pytest.raises(ConfigError, match=r"^c.toml: virtual_services\[0\].real_servers\[1\].port: expected an "
                                          r"integer 1-65535, got 0$"):
        config.parse(text, "c.toml")


def test_duplicate_listeners_rejected() -> None:
    text = BASE.format(extra="port = 25") + BASE.format(extra="port = 25").replace('"svc"', '"svc2"')
    with pytest.raises(ConfigError, match=r"virtual_services\[1\].ports: 127.0.0.28:25 is already used by service"):
        config.parse(text, "c.toml")


def test_invalid_toml_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^c.toml: not valid TOML"):
        config.parse("[[virtual_services]\n", "c.toml")


def test_check_command(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "lb", "check", "--config", str(EXAMPLE)], capture_output=True,
                        text=True, cwd=REPO)
    assert ok.returncode == 0 and "ok, 2 virtual services" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.format(extra='port = 25\nvip = "10.0.0.999"').replace('vip = "127.0.0.28"\n', "", 1))
    res = subprocess.run([sys.executable, "-m", "lb", "check", "--config", str(bad)], capture_output=True,
                         text=True, cwd=REPO)
    assert res.returncode == 2
    assert res.stderr.strip() == f"exha-lb: {bad}: virtual_services[0].vip: expected an IPv4 address, got '10.0.0.999'"
    assert "Traceback" not in res.stderr
    missing = subprocess.run([sys.executable, "-m", "lb", "check", "--config", str(tmp_path / "none.toml")],
                             capture_output=True, text=True, cwd=REPO)
    assert missing.returncode == 2 and "cannot read the config file" in missing.stderr


def test_installed_package_finds_its_own_templates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """In a wheel there is no templates/lb/ next to the package: the copy in lb/_templates/ is used."""
    monkeypatch.setattr(templates, "REPO_DIR", tmp_path / "absent")
    assert templates.search_dirs() == (templates.PACKAGE_DIR,)
    cfg = config.load(EXAMPLE)
    assert cfg.virtual_services[1].health.paths == ("/owa/",)
