"""Benchmark of each role's no-op run on the rehearsal lab (not a test; run as root with the lab up):

    .venv/bin/python benchmarks/roles_bench.py [--runs 3]

1. `exha runbook apply` converges the whole site (its journal keeps the values it replaced);
2. for each role deploy (`deploys/<role>.py`) times `pyinfra -y inventory/lab.py deploys/<role>.py` with
   nothing left to change, `--runs` times, and checks pyinfra reported no change;
3. `exha runbook rollback` puts DNS, the ASA and Exchange back as they were (the balancer VM stays).
Prints one line per role: median and fastest wall-clock seconds (the device roles' target is 3 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYINFRA_PROGRESS": "off"}
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
EXHA = [sys.executable, "-c", "from roles.cli import main; main()"]
ROLES = ("vsphere", "balancer", "dns", "asa", "exchange")


def _run(argv: list[str], label: str) -> tuple[float, str]:
    t0 = time.monotonic()
    cp = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=ENV, check=False, timeout=900)
    seconds = time.monotonic() - t0
    if cp.returncode != 0:
        sys.exit(f"{label} failed ({cp.returncode}):\n{cp.stdout[-2000:]}\n{cp.stderr[-3000:]}")
    return seconds, cp.stdout


def _noop(role: str) -> float:
    seconds, out = _run([PYINFRA, "-y", "--json", "inventory/lab.py", f"deploys/{role}.py"], role)
    totals = json.loads(out)["results"]["totals"]
    if totals["success"] or totals["error"]:
        sys.exit(f"{role}: expected a no-op run, pyinfra reported {totals}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="exha-roles-bench-"))
    _run([*EXHA, "runbook", "apply", "--dir", str(folder)], "runbook apply")
    try:
        for role in ROLES:
            times = [_noop(role) for _ in range(args.runs)]
            target = "" if role == "balancer" else " (target < 3 s)"
            print(f"{role:10} no-op run: median {statistics.median(times):5.2f} s, "
                  f"fastest {min(times):5.2f} s over {args.runs} runs{target}")
    finally:
        if (folder / "journal.json").exists():  # apply changed something: put it back
            _run([*EXHA, "runbook", "rollback", "--dir", str(folder)], "runbook rollback")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
