"""deploys/vsphere.py on the rehearsal lab: the balancer appliance imported into the lab's ESXi as
exha-lb1, powered on, booted by the lab's VM agent, which reports the guest address as VMware Tools
would. Needs root and the lab (the session `lab` fixture brings it up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.context import Lab
from lab.vsphere.client import all_vms, session

pytestmark = [
    pytest.mark.lab,
    pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning"),
]

REPO = Path(__file__).resolve().parents[3]


def _deploy(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c",
            "import sys; from pyinfra_cli.main import main; sys.argv[0] = 'pyinfra'; sys.exit(main())",
            "inventory/lab.py", "deploys/vsphere.py", "--limit", "esxi", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=420, cwd=REPO, check=False,
                          env={**os.environ, "PYINFRA_PROGRESS": "off"})


def _balancer(lab: Lab) -> list[tuple[str, Any, Any]]:
    with session(lab.credentials()["esxi1"]) as si:
        return [(vm.runtime.powerState, vm.guest.ipAddress, vm.config.hardware.numCPU)
                for vm in all_vms(si) if vm.name == lab.topology.host("lb1").vm_name]


def test_balancer_vm_deploy_on_the_lab(lab: Lab) -> None:
    cp = _deploy("-y", "--json")
    assert cp.returncode == 0, cp.stderr
    first = json.loads(cp.stdout)["results"]["totals"]
    assert first["error"] == 0 and first["success"] + first["no_change"] == 1
    [(power, ip, cpu)] = _balancer(lab)
    assert (power, ip, cpu) == ("poweredOn", lab.topology.host("lb1").address, 2)

    cp = _deploy("-y", "--json")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["results"]["totals"] == {"hosts": 1, "success": 0, "error": 0, "no_change": 1}
    assert len(_balancer(lab)) == 1
