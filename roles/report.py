"""The dry-run diff report: run a deploy with `pyinfra --dry --diff --json`, and write every pending change as
readable Markdown, per host (which operations would change it, and each before/after the operations print).
Secrets of the inventory's host data are masked. `drift` is true when any operation would change anything."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from roles.runbook.pyinfra_run import Run, inventory_secrets, mask, run

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HEADER = re.compile(r"^\s*\[(?P<host>[^\]]+)\]\s+Will (?:change|modify|create|remove|delete) (?P<label>.+?)\s*$")
_DIFF_LINE = re.compile(r"^\s+(?P<sign>[-+])\s?(?P<text>.*)$")


@dataclass(frozen=True)
class Diff:
    """One before/after block an operation printed under --diff."""

    host: str
    label: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    inventory: str
    deploy: str
    run: Run
    diffs: tuple[Diff, ...]
    pending: dict[str, list[str]] = field(default_factory=dict)

    @property
    def drift(self) -> bool:
        return bool(self.pending)

    @property
    def hosts(self) -> list[str]:
        seen: list[str] = []
        for hosts in self.pending.values():
            seen += [h for h in hosts if h not in seen]
        seen += [d.host for d in self.diffs if d.host not in seen]
        return seen


def parse_diffs(stderr: str) -> list[Diff]:
    """The `[host] Will change <label>` blocks and their -/+ lines from pyinfra's --diff output."""
    out: list[Diff] = []
    current: tuple[str, str] | None = None
    lines: list[str] = []
    for raw in _ANSI.sub("", stderr).splitlines():
        m = _HEADER.match(raw)
        if m:
            if current:
                out.append(Diff(current[0], current[1], tuple(lines)))
            current, lines = (m.group("host"), m.group("label")), []
            continue
        d = _DIFF_LINE.match(raw)
        if current and d:
            lines.append(f"{d.group('sign')} {d.group('text')}")
            continue
        if current:
            out.append(Diff(current[0], current[1], tuple(lines)))
            current, lines = None, []
    if current:
        out.append(Diff(current[0], current[1], tuple(lines)))
    return out


def build(inventory: str, deploy: str, extra: tuple[str, ...] = ()) -> Report:
    """Run the dry run and collect its plan and diffs (secrets masked)."""
    r = run(inventory, deploy, "--dry", "--diff", *extra)
    secrets = inventory_secrets(inventory)
    masked = Run(r.argv, r.returncode, mask(r.stdout, secrets), mask(r.stderr, secrets), r.seconds, r.data)
    return Report(inventory, deploy, masked, tuple(parse_diffs(masked.stderr)), masked.pending())


def markdown(report: Report) -> str:
    """The report as Markdown."""
    r = report.run
    when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    out = [f"# Pending changes: `{report.deploy}` on `{report.inventory}`", "",
           f"Dry run (`pyinfra {report.inventory} {report.deploy} --dry --diff`) at {when}, {r.seconds:g} s."]
    if not r.ok:
        out += ["", "**The dry run failed**, so this report is incomplete:", "", "```"]
        out += r.error_lines(12) + ["```"]
        return "\n".join(out) + "\n"
    if not report.drift:
        out += ["", "**No drift**: every host already matches the deploy; nothing would change."]
        return "\n".join(out) + "\n"
    n_ops, n_hosts = len(report.pending), len(report.hosts)
    out += ["", f"**Drift**: {n_ops} operation(s) would change {n_hosts} host(s)."]
    out += ["", "| host | operations that would change it |", "|---|---|"]
    for h in report.hosts:
        ops = [op for op, hosts in report.pending.items() if h in hosts]
        cell = "<br>".join(op.replace("|", "\\|") for op in ops) or "(see diff)"
        out.append(f"| `{h}` | {cell} |")
    conditional = r.conditional()
    for h in report.hosts:
        out += ["", f"## `{h}`", ""]
        for op in (op for op, hosts in report.pending.items() if h in hosts):
            out.append(f"- {op}")
        for op in (op for op, hosts in conditional.items() if h in hosts):
            out.append(f"- {op} (only if an earlier change calls for it)")
        for d in (d for d in report.diffs if d.host == h):
            out += ["", f"### {d.label}", "", "```diff", *d.lines, "```"]
    return "\n".join(out) + "\n"
