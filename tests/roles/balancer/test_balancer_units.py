"""The balancer role without a VM: operations against JSON fixtures, the wheelhouse (a minimal, reproducible
lb wheel that installs and runs without the toolkit's dependencies), the model and the rendered files (the
config is parsed by the balancer's own validator)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from harness import check_operation

from lb.config import parse
from roles.balancer import model, operations, render, wheelhouse

HERE = Path(__file__).parent


@pytest.mark.parametrize("op_name", ["package", "config", "system_user"])
def test_operations(op_name: str) -> None:
    from harness import load_cases

    for case in load_cases(HERE / "operations" / op_name):
        check_operation(getattr(operations, op_name), case)


def test_lb_wheel_is_reproducible_and_holds_only_the_balancer(tmp_path: Path) -> None:
    first = wheelhouse.build_lb_wheel(tmp_path / "a")
    second = wheelhouse.build_lb_wheel(tmp_path / "b")
    assert first.name == second.name and first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
        entry = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert {n.split("/")[0] for n in names} == {"lb", first.name.split("-py3")[0] + ".dist-info"}
    assert "lb/cli.py" in names and "lb/_templates/exchange2013-smtp.toml" in names
    assert sorted(line.split(": ")[1] for line in meta.splitlines() if line.startswith("Requires-Dist")) == [
        "click", "prometheus-client", "uvloop"]
    assert "exha-lb = lb.cli:main" in entry


def test_wheelhouse_installs_offline_into_a_bare_venv(tmp_path: Path) -> None:
    """The wheelhouse alone (no index) gives a working `exha-lb` that cannot import the toolkit."""
    try:
        wh = wheelhouse.build()
    except model.SiteError as e:
        pytest.skip(f"dependency wheels not cached and not downloadable here: {e}")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-index", "--find-links", str(wh.folder), f"exha-lb=={wh.version}"], check=True,
                   capture_output=True, timeout=300)
    example = Path(__file__).resolve().parents[3] / "docs" / "examples" / "exchange2010.toml"
    done = subprocess.run([str(venv / "bin" / "exha-lb"), "check", "--config", str(example)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and ": ok, 2 virtual services" in done.stdout, done.stderr
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import pyinfra"], capture_output=True, timeout=60)
    assert probe.returncode != 0


def test_rendered_config_passes_the_balancers_own_validation() -> None:
    services = model.services([{"name": "smtp", "template": "exchange2013-smtp", "health": {"interval": 2.0}},
                               {"name": "rpc", "template": "exchange2010-mapi-static",
                                "real_servers": [{"address": "10.0.0.23", "weight": 3}, "10.0.0.24"]}],
                              "10.0.0.28", ["10.0.0.23", "10.0.0.24"])
    text = render.config_text(services, "lb1")
    cfg = parse(text.replace('token_file = "admin.token"', 'token = "x"'), "exha-lb.toml")
    assert [(vs.name, vs.vip, vs.ports) for vs in cfg.virtual_services] == [
        ("smtp", "10.0.0.28", (25,)), ("rpc", "10.0.0.28", (135, 60000, 60001))]
    assert cfg.virtual_services[0].health.interval == 2.0
    assert [(rs.address, rs.weight) for rs in cfg.virtual_services[1].real_servers] == [
        ("10.0.0.23", 3), ("10.0.0.24", 1)]


def test_unit_is_hardened_and_grants_only_needed_capabilities() -> None:
    plain = model.services([{"name": "smtp", "template": "exchange2013-smtp"}], "10.0.0.28", ["10.0.0.23"])
    wild = model.services([{"name": "mapi", "template": "exchange2010-mapi"}], "10.0.0.28", ["10.0.0.23"])
    unit = render.unit_text(plain)
    for line in ("User=exha-lb", "ProtectSystem=strict", "Restart=on-failure", "NoNewPrivileges=yes",
                 "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in unit.splitlines()
    assert "CAP_NET_RAW" not in unit and "CAP_SYS_ADMIN" not in unit and "CAP_NET_ADMIN" not in unit
    assert "CAP_NET_ADMIN" in render.unit_text(wild)
    assert render.capabilities(plain)[0] == "CAP_NET_BIND_SERVICE"


def test_bad_service_data_is_one_line_naming_the_field() -> None:
    with pytest.raises(model.SiteError, match=r"balancer_services\[0\]\.real_servers\[1\]: expected an address"):
        model.services([{"name": "smtp", "real_servers": ["10.0.0.23", {"weight": 2}]}], "10.0.0.28", [])
    with pytest.raises(model.SiteError, match="balancer_services: expected a list of virtual services"):
        model.services("smtp", "10.0.0.28", [])


def test_host_spec_refuses_bad_host_data_before_planning() -> None:
    good = {"vm_address": "10.0.0.27", "balancer_prefix_len": 8, "balancer_gateway": "10.0.0.1",
            "balancer_nameservers": ["10.0.0.10", "10.0.0.11"], "vip": "10.0.0.28"}
    spec = model.host_spec(good, "lb1")
    assert (spec.hostname, spec.address, spec.gateway, spec.vips) == ("lb1", "10.0.0.27", "10.0.0.1", ("10.0.0.28",))
    with pytest.raises(model.SiteError, match=r"balancer_gateway: 192\.0\.2\.1 is not inside 10\.0\.0\.27/8"):
        model.host_spec({**good, "balancer_gateway": "192.0.2.1"}, "lb1")
    with pytest.raises(model.SiteError, match=r"balancer_nameservers\[1\]: expected an IPv4 address, got 'dc1'"):
        model.host_spec({**good, "balancer_nameservers": ["10.0.0.10", "dc1"]}, "lb1")
    with pytest.raises(model.SiteError, match="vm_address: expected an IPv4 address, got None"):
        model.host_spec({**good, "vm_address": None}, "lb1")


def test_tls_files_must_be_plain_names_of_readable_local_files(tmp_path: Path) -> None:
    key = tmp_path / "owa.key"
    key.write_text("not really a key\n")
    assert model.tls_files({"owa.key": str(key)}) == {"owa.key": str(key)}
    assert model.tls_files(None) == {}
    with pytest.raises(model.SiteError, match=r"balancer_tls_files\.\.\./x: expected a plain file name"):
        model.tls_files({"../x": str(key)})
    with pytest.raises(model.SiteError, match=r"balancer_tls_files\.owa\.pem: expected a readable local file"):
        model.tls_files({"owa.pem": str(tmp_path / "missing.pem")})
