"""deploys/exchange_ha.py end to end on the rehearsal lab, through `exha runbook`, plain pyinfra and
`exha report`: the first run changes everything and passes the post-checks; a second run changes nothing;
a manual drift on the ASA shows up in the dry run, exactly, and fails the CI gate; rollback restores the
pre-change state exactly (full snapshots of the zone by AXFR on both nameservers, the ASA's running and
startup config, Exchange's settings) and is idempotent; a failure at the ASA step stops the run, leaves
a journal and a rollback that works. The module puts the lab's seed state back at the end.
Needs root and the lab (the session `lab` fixture brings it up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import e2e_snapshots as snapshots
import pytest

from lab.context import Lab
from roles.runbook.checks import resolve, smtp_server_name, smtp_session

pytestmark = [pytest.mark.lab]

REPO = Path(__file__).resolve().parents[2]
VIP = "10.0.0.28"
EXCHANGE = {"EX13-1.corp.example", "EX13-2.corp.example"}


def _exha(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", "from roles.cli import main; main()", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False,
                          env={**os.environ, "PYINFRA_PROGRESS": "off"})


def _pyinfra(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(Path(sys.executable).with_name("pyinfra")), "inventory/lab.py", "deploys/exchange_ha.py", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO, check=False,
                          env={**os.environ, "PYINFRA_PROGRESS": "off"})


@dataclass
class World:
    lab: Lab
    creds: dict[str, Any]
    seed: dict[str, Any]
    folder: Path
    folders: list[Path] = field(default_factory=list)


def _object(config: str, name: str) -> str:
    lines = config.splitlines()
    i = lines.index(f"object network {name}")
    return lines[i + 1].strip()


@pytest.fixture(scope="module")
def world(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    creds = lab.credentials()
    reseed = tmp_path_factory.mktemp("reseed")
    _reseed(lab, reseed)          # the lab may have been converged by someone (e.g. the main command)
    seed = snapshots.everything(creds)
    w = World(lab, creds, seed, tmp_path_factory.mktemp("runbook"))
    w.folders.append(w.folder)
    yield w
    for folder in w.folders:   # put the seed back whatever happened above (rollback is idempotent)
        if (folder / "journal.json").exists():
            _exha("runbook", "rollback", "--dir", str(folder))
    _reseed(lab, reseed)
    assert snapshots.everything(creds) == seed, "the lab was not put back to its seed state"


def _reseed(lab: Lab, folder: Path) -> None:
    """Roll the lab back to its seed values (a journal of the seed, restored by `exha runbook rollback`)."""
    (folder / "journal.json").unlink(missing_ok=True)
    snapshots.seed_journal(lab, folder / "journal.json")
    cp = _exha("runbook", "rollback", "--dir", str(folder))
    assert cp.returncode == 0, f"could not put the lab back to its seed: {cp.stdout}{cp.stderr}"
    topo = lab.topology
    now = snapshots.everything(lab.credentials())
    assert f"outlook 3600 IN A {topo.cas_array_address}" in now["zone"] and all(
        _object(now["asa"]["running"], obj) == f"host {addr}" for obj, addr in topo.asa_objects.items())


def test_first_run_changes_everything_and_passes_post_checks(world: World) -> None:
    plan = _exha("runbook", "plan", "--dir", str(world.folder))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "every device reachable, credentials accepted" in plan.stdout
    assert snapshots.everything(world.creds) == world.seed            # planning changed nothing

    cp = _exha("runbook", "apply", "--dir", str(world.folder))
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "pre-checks passed" in cp.stdout and "post-checks passed" in cp.stdout
    print("\n" + cp.stdout)

    journal = json.loads((world.folder / "journal.json").read_text())["entries"]
    assert sorted((e["kind"], e["item"]) for e in journal) == sorted([
        ("dns.a_record", "outlook.corp.example"), ("asa.network_object", "EXCH-SMTP"),
        ("asa.network_object", "EXCH-HTTPS"), ("exchange.database", "DB01"), ("exchange.database", "DB02"),
        ("exchange.rpc_ports", "rpc_ports"), ("exchange.rpc_ports", "rpc_ports")])
    assert [e["seq"] for e in journal if e["step"] == "dns"] < [e["seq"] for e in journal if e["step"] == "asa"]

    secrets = [v for entry in world.creds.values() if isinstance(entry, dict) for k, v in entry.items()
               if isinstance(v, str) and ("password" in k or "secret" in k) and len(v) >= 4]
    secrets.append((world.lab.state_dir / "lb-admin.token").read_text().strip())
    written = plan.stdout + cp.stdout + cp.stderr + "".join(p.read_text() for p in world.folder.rglob("*.json"))
    assert not [s for s in secrets if s in written], "a secret reached the runbook's output or files"

    # independent post-checks, as a client and from the devices themselves
    assert smtp_server_name(smtp_session(VIP)) in EXCHANGE
    for ns in (world.creds["dns"]["primary"], world.creds["dns"]["secondary"]):
        assert resolve("outlook.corp.example", ns) == [VIP]
    asa = snapshots.asa(world.creds["asa1"])
    for obj in ("EXCH-SMTP", "EXCH-HTTPS"):
        assert _object(asa["running"], obj) == _object(asa["startup"], obj) == f"host {VIP}"
    ex = snapshots.exchange(world.creds, ["ex13-1", "ex13-2"])
    assert {d["RpcClientAccessServer"] for d in ex["databases"]} == {"outlook.corp.example"}
    assert ex["ex13-1"]["rpc"]["TCP/IP Port"] == 60000 and ex["ex13-2"]["ab"]["RpcTcpPort"] == "60001"


def test_second_run_changes_nothing(world: World) -> None:
    cp = _pyinfra("-y", "--json")
    assert cp.returncode == 0, cp.stderr[-3000:]
    totals = json.loads(cp.stdout)["results"]["totals"]
    assert (totals["success"], totals["error"]) == (0, 0), totals
    result = _exha("result")
    assert result.returncode == 0 and "was answered by EX13-" in result.stdout, result.stdout + result.stderr


def test_dry_run_after_manual_drift_shows_exactly_that_and_fails_the_gate(world: World, tmp_path: Path) -> None:
    snapshots.asa_set(world.creds["asa1"], ["object network EXCH-SMTP", " host 10.0.0.23"])
    before = snapshots.asa(world.creds["asa1"])
    report = tmp_path / "report.md"
    cp = _exha("report", "--fail-on-drift", "--output", str(report))
    assert cp.returncode == 3, cp.stdout + cp.stderr
    text = report.read_text()
    assert "**Drift**: 1 operation(s) would change 1 host(s)." in text, text
    assert "| `@exha-asa/asa1` | deploys/asa.py \\| ASA object EXCH-SMTP to the VIP |" in text
    assert "### object network EXCH-SMTP\n\n```diff\n-  host 10.0.0.23\n+  host 10.0.0.28\n```" in text
    assert "EXCH-HTTPS" not in text and "outlook" not in text
    assert snapshots.asa(world.creds["asa1"]) == before              # the dry run touched nothing

    fix = _pyinfra("-y")
    assert fix.returncode == 0, fix.stderr[-3000:]
    quiet = _exha("report", "--fail-on-drift", "--output", str(report))
    assert quiet.returncode == 0 and "**No drift**" in report.read_text()


def test_rollback_restores_the_pre_change_state_exactly(world: World) -> None:
    cp = _exha("runbook", "rollback", "--dir", str(world.folder))
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "every journaled item holds its prior value again" in cp.stdout
    assert snapshots.everything(world.creds) == world.seed

    again = _exha("runbook", "rollback", "--dir", str(world.folder))
    assert again.returncode == 0 and "restored 0 item(s)" in again.stdout, again.stdout + again.stderr
    assert snapshots.everything(world.creds) == world.seed


def test_failure_at_the_asa_step_leaves_a_journal_a_rerun_and_a_working_rollback(world: World, tmp_path: Path) -> None:
    folder = tmp_path / "runbook"
    world.folders.append(folder)
    # the ASA connector writes each object's backup before changing it: an unwritable backup folder makes
    # the ASA step fail for real, after DNS has moved
    cp = _exha("runbook", "apply", "--dir", str(folder), "--data", "asa_backup_dir=/proc/exha-no-such-dir")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    out = cp.stdout
    assert "apply FAILED" in out and "cannot write the backup /proc/exha-no-such-dir" in out, out
    assert "#1 dns.a_record outlook.corp.example on @exha-dns/dc1: CHANGED (rollback restores it)" in out
    assert "EXCH-SMTP on @exha-asa/asa1: unchanged (still the prior value)" in out, out
    assert "deploys/exchange.py | Exchange: static RPC ports" in out.split("not run:")[1]
    assert f"exha runbook rollback --dir {folder}" in out

    kinds = [e["kind"] for e in json.loads((folder / "journal.json").read_text())["entries"]]
    assert kinds == ["dns.a_record", "asa.network_object", "asa.network_object"]
    now = snapshots.everything(world.creds)
    assert now["asa"] == world.seed["asa"] and now["exchange"] == world.seed["exchange"]
    assert "outlook 3600 IN A 10.0.0.28" in now["zone"]

    # the cause fixed, apply again: its own DNS change is no surprise to the pre-checks, the journal keeps the
    # first prior value, and the run completes
    again = _exha("runbook", "apply", "--dir", str(folder))
    assert again.returncode == 0 and "post-checks passed" in again.stdout, again.stdout + again.stderr
    entries = json.loads((folder / "journal.json").read_text())["entries"]
    assert entries[0]["prior"] == {"ttl": 3600, "addresses": ["10.0.0.23"]} and len(entries) == 7

    back = _exha("runbook", "rollback", "--dir", str(folder))
    assert back.returncode == 0, back.stdout + back.stderr
    assert snapshots.everything(world.creds) == world.seed
