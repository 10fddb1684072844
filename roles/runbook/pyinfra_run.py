"""Run the pyinfra command line on an inventory and a deploy (this interpreter's pyinfra), with `--json` so
the plan and the results come back as data, and find the secrets of the inventory's host data so anything
shown from pyinfra's output can be masked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SECRET_KEY = re.compile(r"(password|secret|token|enable)", re.IGNORECASE)
MASK = "*****"


@dataclass(frozen=True)
class Run:
    """One pyinfra run: its command line, exit status, output and parsed `--json` document."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    data: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def error_lines(self, limit: int = 6) -> list[str]:
        """pyinfra's error lines (connect/op errors, `pyinfra error:`), the first ones: the cause comes first."""
        keep = [ln.strip() for ln in self.stderr.splitlines()
                if re.search(r"error|failed|Error|refused|cannot|rejected|stopped", ln) and ln.strip()
                and "executed 0 commands" not in ln]
        return keep[:limit] or [ln.strip() for ln in self.stderr.splitlines() if ln.strip()][-limit:]

    def changed(self) -> dict[str, list[str]]:
        """{operation name: hosts it changed} from the results, or from the log when pyinfra stopped before
        printing them (every host failed)."""
        ops = ((self.data or {}).get("results") or {}).get("operations")
        if ops is None:
            return self._logged("Success")
        return {op["name"]: list(op.get("success") or []) for op in ops if op.get("success")}

    def _logged(self, outcome: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        current = ""
        for line in self.stderr.splitlines():
            m = re.match(r"^--> Starting operation: (.*?)\s*$", line)
            if m:
                current = m.group(1)
                continue
            m = re.match(r"^\s*\[([^\]]+)\]\s+(.*?)\s*$", line)
            if current and m and m.group(2).startswith(outcome):
                out.setdefault(current, []).append(m.group(1))
        return out

    def failed(self) -> dict[str, list[str]]:
        ops = ((self.data or {}).get("results") or {}).get("operations")
        if ops is None:
            return self._logged("Error")
        return {op["name"]: list(op.get("error") or []) for op in ops if op.get("error")}

    def pending(self) -> dict[str, list[str]]:
        """{operation name: hosts with a change} from a --dry plan."""
        return {op["name"]: list(op["hosts_with_change"]) for op in (self.data or {}).get("plan") or []
                if op.get("hosts_with_change")}

    def conditional(self) -> dict[str, list[str]]:
        """{operation name: hosts} of operations that run only if an earlier one changes something."""
        return {op["name"]: list(op["hosts_with_conditional_change"]) for op in (self.data or {}).get("plan") or []
                if op.get("hosts_with_conditional_change")}


def pyinfra_argv() -> list[str]:
    exe = Path(sys.executable).with_name("pyinfra")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from pyinfra_cli.__main__ import main; sys.exit(main())"]


def run(inventory: str, deploy: str, *args: str, data: dict[str, str] | None = None, timeout: float = 900,
        cwd: str | None = None) -> Run:
    """pyinfra INVENTORY DEPLOY ARGS --json [--data k=v ...], output captured."""
    argv = [*pyinfra_argv(), inventory, deploy, *args, "--json"]
    for k, v in (data or {}).items():
        argv += ["--data", f"{k}={v}"]
    t0 = time.monotonic()
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False,
                            env={**os.environ, "PYINFRA_PROGRESS": "off"})
        rc, out, err = cp.returncode, cp.stdout, cp.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = 124, "", f"pyinfra did not finish within {timeout:g}s\n{e.stderr or ''}"
    parsed: dict[str, Any] | None = None
    text = out.strip()
    if text:
        try:
            parsed = json.loads(text[text.index("{"):])
        except (ValueError, json.JSONDecodeError):
            parsed = None
    return Run(tuple(argv), rc, out, err, round(time.monotonic() - t0, 2), parsed)


def inventory_secrets(inventory: str) -> list[str]:
    """String values of secret-looking host data keys (password, secret, token, enable…) in the inventory,
    read without connecting, longest first; [] when the inventory cannot be read."""
    from pyinfra.api import Config, State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    try:
        with ctx_state.use(State(check_for_changes=False)):
            inv = make_inventory(inventory, cwd=os.getcwd())
            state = State(inventory=inv, config=Config())
            with ctx_state.use(state):
                values = {str(v) for h in inv for k, v in h.data.dict().items()
                          if _SECRET_KEY.search(k) and isinstance(v, str) and len(v) >= 4}
    except Exception:  # noqa: BLE001 - masking is best effort; the caller masks what it found
        return []
    return sorted(values, key=len, reverse=True)


def mask(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, MASK)
    return text
