"""Benchmark of the one command on the rehearsal lab (not a test; run as root with the lab up):

    .venv/bin/python tests/e2e/bench_exchange_ha.py

1. at the seed state, `exha runbook apply` then `rollback` once: the journal now holds the seed's values;
2. the balancer VM is removed from vSphere (the lab's agent stops and wipes it), so the first run imports it;
3. times `pyinfra -y inventory/lab.py deploys/exchange_ha.py` (full first run), the same again (no-op run),
   `pyinfra inventory/lab.py deploys/exchange_ha.py --dry` (dry run) and `exha report` (dry run + Markdown);
4. `exha runbook rollback` puts DNS, the ASA and Exchange back to the seed state (the VM stays).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.context import Lab
from lab.vm import instance
from lab.vsphere.client import all_vms, session
from pyVmomi import vim  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYINFRA_PROGRESS": "off"}
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
EXHA = [sys.executable, "-c", "from roles.cli import main; main()"]


def _run(argv: list[str], label: str) -> float:
    t0 = time.monotonic()
    cp = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=ENV, check=False, timeout=900)
    seconds = time.monotonic() - t0
    if cp.returncode not in (0, 3):
        sys.exit(f"{label} failed ({cp.returncode}):\n{cp.stdout[-2000:]}\n{cp.stderr[-3000:]}")
    return seconds


def _remove_vm(lab: Lab) -> None:
    name = lab.topology.host("lb1").vm_name
    with session(lab.credentials()["esxi1"]) as si:
        for vm in all_vms(si):
            if vm.name == name:
                if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn:
                    vm.PowerOffVM_Task()
                    time.sleep(2)
                vm.Destroy_Task()
    deadline = time.monotonic() + 120
    rootfs = instance.paths(lab, lab.topology.host("lb1")).rootfs
    while time.monotonic() < deadline and rootfs.exists():   # the lab's agent stops and wipes it
        time.sleep(1)


def main() -> None:
    lab = Lab()
    folder = Path(tempfile.mkdtemp(prefix="exha-bench-"))
    _run([*EXHA, "runbook", "apply", "--dir", str(folder)], "runbook apply")
    _run([*EXHA, "runbook", "rollback", "--dir", str(folder)], "runbook rollback")
    _remove_vm(lab)
    figures = {
        "full first run": _run([PYINFRA, "-y", "inventory/lab.py", "deploys/exchange_ha.py"], "first run"),
        "no-op run": _run([PYINFRA, "-y", "inventory/lab.py", "deploys/exchange_ha.py"], "no-op run"),
        "dry run": _run([PYINFRA, "inventory/lab.py", "deploys/exchange_ha.py", "--dry"], "dry run"),
        "exha report": _run([*EXHA, "report", "--output", str(folder / "report.md")], "report"),
    }
    _run([*EXHA, "runbook", "rollback", "--dir", str(folder)], "runbook rollback")
    for label, seconds in figures.items():
        print(f"{label:16} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
