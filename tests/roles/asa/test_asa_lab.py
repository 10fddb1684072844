"""deploys/asa.py on the rehearsal lab through inventory/lab.py: the ASA simulator in asa1's namespace,
reached over the admin link. Dry run, apply, second apply with no change, checked with a separate netmiko
session; the seed objects are put back (and saved) afterwards so other lab tests see the lab as it came up
(a lab another run already moved to the VIP is only checked for the no-op, and left as found).
Needs root and the lab (the session `lab` fixture brings it up)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from netmiko import ConnectHandler

from lab.context import Lab

pytestmark = [pytest.mark.lab]

REPO = Path(__file__).resolve().parents[3]


def _deploy(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(Path(sys.executable).with_name("pyinfra")), str(REPO / "inventory" / "lab.py"),
            str(REPO / "deploys" / "asa.py"), "--limit", "firewalls", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=cwd, check=False,
                          env={**os.environ, "PYINFRA_PROGRESS": "off"})


def _session(creds: dict[str, Any]) -> Any:
    return ConnectHandler(device_type="cisco_asa", host=creds["host"], port=creds["port"],
                          username=creds["username"], password=creds["password"],
                          secret=creds["enable_secret"], fast_cli=True, conn_timeout=10)


def _hosts(lines: list[str]) -> dict[str, str]:
    out, current = {}, None
    for line in lines:
        if line.startswith("object network "):
            current = line.split()[2]
        elif current and line.startswith(" host "):
            out[current] = line.split()[1]
    return out


def _row(stderr: str, label: str) -> list[str]:
    for line in stderr.splitlines():
        if line.strip().startswith(label):
            return line.strip()[len(label):].split()
    raise AssertionError(f"no row {label!r} in:\n{stderr}")


def test_repoint_objects_on_the_lab(lab: Lab, tmp_path: Path) -> None:
    creds = lab.credentials()["asa1"]
    seed = dict(lab.topology.asa_objects)
    with _session(creds) as c:
        running = str(c.send_command("show running-config")).splitlines()
    vip = "10.0.0.28"
    found = {k: v for k, v in _hosts(running).items() if k in seed}
    assert found in (seed, {k: vip for k in seed}), found
    if found != seed:   # another run already moved them: check the no-op half, leave the lab as found
        again = _deploy(tmp_path, "-y")
        assert again.returncode == 0, again.stderr
        assert _row(again.stderr, "Grand total")[-1] == str(len(seed)), again.stderr
        with _session(creds) as c:
            assert {k: v for k, v in _hosts(str(c.send_command("show running-config")).splitlines()).items()
                    if k in seed} == found
        return
    try:
        dry = _deploy(tmp_path, "--dry", "--diff")
        assert dry.returncode == 0, dry.stderr
        assert dry.stderr.count("+  host 10.0.0.28") == len(seed)
        with _session(creds) as c:
            assert str(c.send_command("show running-config")).splitlines() == running, "--dry changed it"

        first = _deploy(tmp_path, "-y")
        assert first.returncode == 0, first.stderr
        assert _row(first.stderr, "Grand total") == [str(len(seed)), str(len(seed)), "-", "-"]
        with _session(creds) as c:
            after = str(c.send_command("show running-config")).splitlines()
            startup = str(c.send_command("show startup-config")).splitlines()
        assert {k: _hosts(after)[k] for k in seed} == {k: vip for k in seed}
        assert {k: _hosts(startup)[k] for k in seed} == {k: vip for k in seed}
        assert [l for l in after if " nat " in l] == [l for l in running if " nat " in l]
        assert len(list((tmp_path / "backups" / "asa").rglob("*.cfg"))) == len(seed)

        second = _deploy(tmp_path, "-y")
        assert second.returncode == 0, second.stderr
        assert _row(second.stderr, "Grand total") == [str(len(seed)), "-", "-", str(len(seed))]
    finally:
        with _session(creds) as c:
            lines: list[str] = []
            for name, address in seed.items():
                lines += [f"object network {name}", f" host {address}"]
            c.send_config_set(lines)
            assert "[OK]" in str(c.send_command("write memory"))
