"""`exha lab …` as a user runs it: idempotent up with its table, `status --json`, one-line errors
for bad input, and a clear refusal without root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.context import Lab
from lab.network import lab_namespaces

Runner = Callable[..., "subprocess.CompletedProcess[str]"]
SERVICE_KEYS = {"host", "service", "address", "port", "state", "detail", "credentials"}


def _one_line_error(cp: subprocess.CompletedProcess[str]) -> str:
    assert cp.returncode == 1, (cp.returncode, cp.stdout, cp.stderr)
    err = cp.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_up_again_is_idempotent_and_prints_table(lab: Lab, exha_run: Runner) -> None:
    pids = {n: lab.pid(n) for n in ("named-dc1", "exchange-ex13-1")}
    cp = exha_run("lab", "up")
    assert cp.returncode == 0, cp.stderr
    assert pids == {n: lab.pid(n) for n in pids}  # nothing restarted
    header = cp.stdout.splitlines()[0].split()
    assert header == ["HOST", "SERVICE", "ADDRESS", "STATE", "DETAIL"]
    assert f"credentials: {lab.credentials_file}" in cp.stdout
    for h in ("dc1", "dns2", "ex13-1", "ex13-2"):
        assert any(
            line.startswith(h) and lab.topology.host(h).address in line for line in cp.stdout.splitlines()
        )
    secret = lab.credentials()["dns"]["tsig_secret"]
    assert secret not in cp.stdout + cp.stderr


def test_status_json_shape(lab: Lab, exha_run: Runner) -> None:
    cp = exha_run("lab", "status", "--json")
    doc = json.loads(cp.stdout)
    assert cp.returncode == (0 if doc["ok"] else 1)
    assert doc["credentials_file"] == str(lab.credentials_file)
    assert doc["admin"] == {"interface": "exha-admin", "address": lab.topology.admin_address}
    assert {h["name"] for h in doc["hosts"]} == set(lab.topology.hosts)
    for h in doc["hosts"]:
        assert h["address"] == lab.topology.host(h["name"]).address and h["namespace"].startswith("exha-")
    assert all(set(s) == SERVICE_KEYS for s in doc["services"])
    by = {(s["host"], s["service"]): s for s in doc["services"]}
    for key in [("dc1", "dns-primary"), ("dns2", "dns-secondary"), ("ex13-1", "https"), ("ex13-2", "smtp")]:
        assert by[key]["state"] == "up", by[key]
    assert by[("dc1", "dns-primary")]["credentials"]["tsig_secret"] == "********"
    assert doc["credentials"]["dns"]["tsig_name"] == lab.credentials()["dns"]["tsig_name"]
    assert lab.credentials()["dns"]["tsig_secret"] not in cp.stdout
    assert oct(lab.credentials_file.stat().st_mode & 0o777) == "0o600"


def test_bad_topology_is_one_line(tmp_path: Path, exha_run: Runner) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the root check comes first")
    bad = tmp_path / "topology.toml"
    bad.write_text('[lab]\nprefix = "exhb-"\nadmin_address = "10.0.0.300"\n')
    err = _one_line_error(
        exha_run("lab", "--topology", str(bad), "--state-dir", str(tmp_path / "s"), "status")
    )
    assert str(bad) in err and "lab.admin_address" in err
    err = _one_line_error(exha_run("lab", "--topology", str(tmp_path / "missing.toml"), "status"))
    assert "missing.toml" in err


def _as_nobody(argv: list[str]) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv (util-linux) to drop root")
    return subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        check=False,
    )


@pytest.mark.parametrize("command", [["up"], ["down"], ["status", "--json"], ["exchange", "stop", "EX13-1"]])
def test_without_root_a_clear_error(command: list[str]) -> None:
    cp = _as_nobody([sys.executable, "-c", "from roles.cli import main; main()", "lab", *command])
    err = _one_line_error(cp)
    assert err.startswith("exha lab: needs root") and cp.stdout == ""


def test_down_when_never_up_is_clean(
    tmp_path: Path, exha_run: Runner, make_scratch: Callable[..., Any]
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    scratch = make_scratch()
    cp = exha_run(
        "lab",
        "--topology",
        str(scratch.topology.path),
        "--state-dir",
        str(scratch.state_dir),
        "--cache-dir",
        str(scratch.cache_dir),
        "down",
    )
    assert cp.returncode == 0, cp.stderr
    assert "no namespaces, links, routes, processes or mounts left" in cp.stdout


def test_up_with_clashing_address_is_one_line_and_makes_nothing(
    exha_run: Runner, make_scratch: Callable[..., Any]
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    own = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True, check=True
    ).stdout.split()
    if "inet" not in own:
        pytest.skip("the machine has no global IPv4 address to clash with")
    address = own[own.index("inet") + 1].split("/")[0]
    scratch = make_scratch({"ex13-1": address})
    cp = exha_run(
        "lab",
        "--topology",
        str(scratch.topology.path),
        "--state-dir",
        str(scratch.state_dir),
        "--cache-dir",
        str(scratch.cache_dir),
        "up",
    )
    err = _one_line_error(cp)
    assert f"{address} (hosts.ex13-1.address) clashes with the machine's address" in err
    assert str(scratch.topology.path) in err
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert scratch.topology.admin_interface not in links
    assert lab_namespaces(scratch.topology.prefix) == []
