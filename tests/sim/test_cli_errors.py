"""Bad start-up input gives one clear line naming the option or file, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


ASA = ["lab.asa_sim", "--password", "p", "--enable-secret", "s"]
WINRM = ["lab.winrm_sim", "--password", "p", "--server-name", "EX"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        pytest.param(
            ["lab.asa_sim", "--state", "{tmp}/a"], "--password and --enable-secret", id="asa-no-secrets"
        ),
        pytest.param(
            [*ASA, "--state", "{tmp}/a", "--initial-config", "{tmp}/missing.cfg"],
            "--initial-config: {tmp}/missing.cfg is not a readable file",
            id="asa-missing-initial-config",
        ),
        pytest.param(
            [*ASA, "--state", "/proc/no/such", "--port", "1"],
            "asa_sim: state folder /proc/no/such",
            id="asa-bad-state-folder",
        ),
        pytest.param(
            [*WINRM, "--state", "{tmp}/w", "--role", "dns"],
            "--role dns needs --dns-server, --zone, --tsig-name, --tsig-secret",
            id="winrm-dns-args",
        ),
        pytest.param(
            [*WINRM, "--state", "{tmp}/w", "--role", "exchange", "--https-port", "5986"],
            "--https-port needs --cert and --key",
            id="winrm-https-without-cert",
        ),
        pytest.param(
            [*WINRM, "--state", "{tmp}/bad", "--role", "exchange", "--http-port", "1"],
            "{tmp}/bad/host.json: not valid JSON",
            id="winrm-corrupt-state",
        ),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, argv: list[str], needle: str) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "host.json").write_text("{not json")
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    env = {"PATH": "/usr/bin:/bin"}
    cp = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=30, cwd=ROOT, env=env
    )
    assert cp.returncode != 0
    last = cp.stderr.strip().splitlines()[-1]   # argparse prints its usage above the error line
    assert needle.replace("{tmp}", str(tmp_path)) in last
    assert "Traceback" not in cp.stderr
