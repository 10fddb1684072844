"""The change-window runbook over deploys/exchange_ha.py, with everything it writes in one folder:

    plan.json      pre-checks and the plan: reachability/credentials (every host connected), the current
                   value of every item the deploy may change (snapshot), the pending operations and diffs
    journal.json   the prior value of each item, written just before its change (roles/runbook/record.py)

plan -> apply (pre-checks again: nothing moved since the plan; then the deploy with the journal; post-checks)
-> verify; rollback restores the journal's prior values newest first and is idempotent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roles.report import Report, markdown, parse_diffs
from roles.runbook import journal
from roles.runbook.checks import Check, dns_checks, inventory_data, smtp_check, zone_nameservers
from roles.runbook.pyinfra_run import Run, inventory_secrets, mask, run

ROLLBACK_DEPLOY = str(Path(__file__).with_name("rollback_deploy.py"))


@dataclass(frozen=True)
class Folder:
    path: Path

    @property
    def plan(self) -> Path:
        return self.path / "plan.json"

    @property
    def journal(self) -> Path:
        return self.path / "journal.json"

    def snapshot(self, tag: str) -> Path:
        return self.path / f"snapshot-{tag}.json"


@dataclass
class Outcome:
    """What a runbook command did: lines for the operator, checks, and whether it succeeded."""

    ok: bool
    lines: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)


def _masked(r: Run, secrets: list[str]) -> Run:
    return Run(r.argv, r.returncode, mask(r.stdout, secrets), mask(r.stderr, secrets), r.seconds, r.data)


def _dry(inventory: str, deploy: str, folder: Folder, tag: str) -> tuple[Run, dict[str, Any]]:
    """A --dry --diff run that records every item's current value; (run, snapshot)."""
    snap = folder.snapshot(tag)
    snap.unlink(missing_ok=True)
    folder.path.mkdir(parents=True, exist_ok=True)
    r = run(inventory, deploy, "--dry", "--diff", data={"runbook_snapshot": str(snap)})
    values = journal.snapshot_read(snap)
    snap.unlink(missing_ok=True)
    return _masked(r, inventory_secrets(inventory)), values


def plan(inventory: str, deploy: str, folder: Folder) -> Outcome:
    """Pre-checks and the plan, written to plan.json."""
    r, values = _dry(inventory, deploy, folder, "plan")
    out = Outcome(ok=r.ok, runs=[r])
    if not r.ok:
        out.lines += ["pre-check failed: not every device is reachable with valid credentials "
                      "(or the deploy could not be prepared):", *[f"  {ln}" for ln in r.error_lines()]]
        return out
    pending = r.pending()
    gate = [op for op in pending if op.startswith("Pre-switch gate")]
    doc = {"inventory": inventory, "deploy": deploy, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "pending": pending, "snapshot": values,
           "diffs": [{"host": d.host, "label": d.label, "lines": list(d.lines)} for d in parse_diffs(r.stderr)]}
    folder.plan.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    out.lines += [f"pre-checks: every device reachable, credentials accepted ({r.seconds:g} s)",
                  "VIP: " + ("proven now (balancer serving, all real servers up)" if not gate
                             else "not proven yet: the deploy builds the balancer and its gate must pass "
                                  "before DNS or the ASA change")]
    out.lines += [f"current values recorded: {len(values)} items"]
    out.lines += [f"pending: {len(pending)} operation(s)"] + [f"  {op}: {', '.join(h)}" for op, h in pending.items()]
    out.lines += [f"plan written to {folder.plan}"]
    return out


def plan_markdown(folder: Folder) -> str:
    """The saved plan as Markdown (for the change record)."""
    doc = json.loads(folder.plan.read_text())
    lines = [f"## Plan: `{doc['deploy']}` on `{doc['inventory']}` ({doc['created']})", "",
             "### Current values (checked again by `exha runbook apply`)", "", "| item | current value |", "|---|---|"]
    for key, value in sorted(doc["snapshot"].items()):
        lines.append(f"| `{key}` | `{json.dumps(value, sort_keys=True)}` |")
    lines += ["", "### Pending operations", ""]
    lines += [f"- {op} ({', '.join(hosts)})" for op, hosts in doc["pending"].items()] or ["- none (converged)"]
    for d in doc["diffs"]:
        lines += ["", f"#### {d['host']}: {d['label']}", "", "```diff", *d["lines"], "```"]
    return "\n".join(lines) + "\n"


def _snapshot_key(e: journal.Entry) -> str:
    return f"{e.host} {e.kind}" + ("" if e.kind == "exchange.rpc_ports" else f" {e.item}")


def _set_by_runbook(e: journal.Entry, value: Any) -> bool:
    """Whether `value` (as the snapshot shows it) is what this runbook's journaled change set."""
    d = e.desired
    if e.kind == "asa.network_object":
        return all((value or {}).get(w) and (value[w]["kind"], value[w]["value"]) == (d["kind"], d["value"])
                   for w in ("running", "startup"))
    if e.kind == "exchange.cas_array":
        return bool(value) and str(value.get("fqdn", "")).lower() == str(d.get("fqdn", "")).lower()
    if e.kind == "exchange.database":
        return str(value).lower() == str(d).lower()
    return bool(value == d)


def _moved(planned: dict[str, Any], now: dict[str, Any],
           entries: tuple[journal.Entry, ...] | list[journal.Entry] = ()) -> list[str]:
    """Items whose value is neither the planned one nor the one this runbook already set (a re-run after a
    partial failure finds its own changes, which are not a surprise)."""
    ours = {_snapshot_key(e): e for e in entries}
    return [f"{k}: planned {json.dumps(planned.get(k))}, now {json.dumps(now.get(k))}"
            for k in sorted(set(planned) | set(now)) if planned.get(k) != now.get(k)
            and not (k in ours and _set_by_runbook(ours[k], now.get(k)))]


def apply(inventory: str, deploy: str, folder: Folder, extra_data: dict[str, str] | None = None) -> Outcome:
    """Pre-checks against the plan, the deploy with its journal, then the post-checks."""
    if not folder.plan.exists():
        first = plan(inventory, deploy, folder)
        if not first.ok:
            return first
    doc = json.loads(folder.plan.read_text())
    r, values = _dry(inventory, deploy, folder, "apply")
    out = Outcome(ok=False, runs=[r])
    if not r.ok:
        out.lines += ["pre-check failed, nothing changed:", *[f"  {ln}" for ln in r.error_lines()]]
        return out
    done = [] if not folder.journal.exists() or journal.read(folder.journal).get("rolled_back_at") \
        else journal.entries(folder.journal)
    moved = _moved(doc["snapshot"], values, done)
    if moved:
        out.lines += ["pre-check failed, nothing changed: current values differ from the plan "
                      "(re-run `exha runbook plan` and review):", *[f"  {m}" for m in moved]]
        return out
    out.lines.append("pre-checks passed: devices reachable, credentials accepted, values as planned")
    if folder.journal.exists() and journal.read(folder.journal).get("rolled_back_at"):
        folder.journal.rename(folder.path / f"journal-rolled-back-{int(time.time())}.json")
    data = {"runbook_journal": str(folder.journal), "asa_backup_dir": str(folder.path / "asa-backups"),
            **(extra_data or {})}
    a = _masked(run(inventory, deploy, "-y", data=data), inventory_secrets(inventory))
    out.runs.append(a)
    entries = journal.entries(folder.journal)
    changed, failed = a.changed(), a.failed()
    if not a.ok:
        out.lines += ["apply FAILED; the run stopped at the first failure:",
                      *[f"  {ln}" for ln in a.error_lines()]]
        out.lines += ["changed:"] + ([f"  {op}: {', '.join(h)}" for op, h in changed.items()] or ["  nothing"])
        out.lines += ["failed:"] + ([f"  {op}: {', '.join(h)}" for op, h in failed.items()] or ["  (see above)"])
        done = set(changed) | set(failed)
        out.lines += ["not run:"] + ([f"  {op}" for op in doc["pending"] if op not in done] or ["  nothing"])
        out.lines += _journal_status(inventory, folder, entries)
        out.lines += [f"to undo what was changed: exha runbook rollback --dir {folder.path}"]
        return out
    out.lines += [f"applied in {a.seconds:g} s: {sum(len(h) for h in changed.values())} change(s); "
                  f"journal: {len(entries)} prior value(s) in {folder.journal}"]
    post = verify(inventory, deploy, folder)
    out.runs += post.runs
    out.checks, out.ok = post.checks, post.ok
    out.lines += post.lines
    if not post.ok:
        out.lines.append(f"post-checks FAILED; to undo: exha runbook rollback --dir {folder.path}")
    return out


def _journal_status(inventory: str, folder: Folder, entries: list[journal.Entry]) -> list[str]:
    """Which journaled items the devices now show changed (a dry run of the rollback) and which not."""
    data = {"runbook_journal": str(folder.journal), "asa_backup_dir": str(folder.path / "asa-backups")}
    check = run(inventory, ROLLBACK_DEPLOY, "--dry", data=data)
    if not check.ok:
        return [f"journal: {len(entries)} prior value(s) in {folder.journal} (devices not re-read: "
                f"{'; '.join(check.error_lines(2))})"]
    differ = set(check.pending())
    lines = [f"journal: {len(entries)} prior value(s) in {folder.journal}; on the devices now:"]
    for e in entries:
        label = f"Rollback #{e.seq}: {e.kind} {e.item} ({e.host})"
        lines.append(f"  #{e.seq} {e.kind} {e.item} on {e.host}: "
                     + ("CHANGED (rollback restores it)" if label in differ else "unchanged (still the prior value)"))
    return lines


def verify(inventory: str, deploy: str, folder: Folder) -> Outcome:
    """Post-checks: nothing left to change, SMTP through the VIP reaches Exchange, every nameserver answers
    the CAS array name with the VIP."""
    hosts = inventory_data(inventory)
    site = next(iter(hosts.values()))["site"]
    primary = next((d.get("dns_server") for d in hosts.values() if d.get("dns_server")), None)
    r, values = _dry(inventory, deploy, folder, "verify")
    pending = r.pending()
    checks = [Check("devices converged (dry run)", r.ok and not pending,
                    "nothing to change" if r.ok and not pending
                    else ("; ".join(pending) or "; ".join(r.error_lines(2))))]
    checks += _item_checks(site, values)
    checks.append(smtp_check(site["vip"], [h.rsplit("/", 1)[-1] for h in hosts if h.startswith("@exha-winrm/")
                                           and h.rsplit("/", 1)[-1] in site["devices"]["exchange"]]))
    nameservers = zone_nameservers(site["zone"], primary) if primary else []
    checks += dns_checks(site["cas_array"]["fqdn"], site["vip"], nameservers)
    ok = all(c.ok for c in checks)
    lines = ["post-checks " + ("passed" if ok else "FAILED") + ":"]
    lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in checks]
    return Outcome(ok=ok, lines=lines, checks=checks, runs=[r])


def _item_checks(site: dict[str, Any], values: dict[str, Any]) -> list[Check]:
    """The devices' own view, as read by the verify dry run: ASA objects at the VIP in the running AND the
    startup config, Exchange databases on the CAS array FQDN with the static ports."""
    vip, fqdn, ex = site["vip"], site["cas_array"]["fqdn"], site["exchange"]
    out: list[Check] = []
    for key, value in sorted(values.items()):
        host, kind, *rest = key.split(" ")
        item = rest[0] if rest else ""
        if kind == "asa.network_object":
            seen = {where: (value.get(where) or {}).get("value") for where in ("running", "startup")}
            out.append(Check(f"ASA {item} on {host}", set(seen.values()) == {vip},
                             f"running {seen['running']}, startup (saved) {seen['startup']}"))
        elif kind == "exchange.database":
            out.append(Check(f"Exchange {item} RpcClientAccessServer", str(value).lower() == fqdn, str(value)))
        elif kind == "exchange.rpc_ports":
            ok = value == {"rpc_port": ex["rpc_port"], "ab_port": ex["ab_port"]}
            out.append(Check(f"Exchange static RPC ports on {host}", ok, f"{value['rpc_port']} / {value['ab_port']}"))
    return out


def rollback(inventory: str, folder: Folder) -> Outcome:
    """Restore every journaled prior value, newest first; then prove it with a dry run of the same."""
    if not folder.journal.exists():
        return Outcome(ok=False, lines=[f"no journal at {folder.journal}: nothing to roll back"])
    entries = journal.entries(folder.journal)
    data = {"runbook_journal": str(folder.journal), "asa_backup_dir": str(folder.path / "asa-backups")}
    secrets = inventory_secrets(inventory)
    r = _masked(run(inventory, ROLLBACK_DEPLOY, "-y", data=data), secrets)
    out = Outcome(ok=False, runs=[r])
    out.lines.append(f"rollback of {len(entries)} journaled item(s), newest first:")
    out.lines += [f"  #{e.seq} {e.host} {e.kind} {e.item} -> {json.dumps(e.prior, sort_keys=True)}"
                  for e in sorted(entries, key=lambda e: e.seq, reverse=True)]
    if not r.ok:
        out.lines += ["rollback FAILED (run it again once the cause is fixed; it is idempotent):",
                      *[f"  {ln}" for ln in r.error_lines()]]
        return out
    check = _masked(run(inventory, ROLLBACK_DEPLOY, "--dry", data=data), secrets)
    out.runs.append(check)
    left = check.pending()
    out.ok = check.ok and not left
    changed = sum(len(h) for h in r.changed().values())
    out.lines.append(f"restored {changed} item(s) in {r.seconds:g} s" + ("" if changed else " (already restored)"))
    out.lines.append("every journaled item holds its prior value again" if out.ok
                     else f"still differing: {', '.join(left) or '; '.join(check.error_lines(3))}")
    if out.ok:
        journal.mark(folder.journal, rolled_back_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return out


def report_of(inventory: str, deploy: str, r: Run) -> Report:
    return Report(inventory, deploy, r, tuple(parse_diffs(r.stderr)), r.pending())


__all__ = ["Folder", "Outcome", "apply", "markdown", "plan", "plan_markdown", "report_of", "rollback", "verify"]
