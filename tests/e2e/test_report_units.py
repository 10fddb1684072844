"""The dry-run report's parsing and rendering (roles/report.py) on pyinfra output captured from the lab."""

from __future__ import annotations

import json

from roles.report import Report, markdown, parse_diffs
from roles.runbook.pyinfra_run import Run, mask

STDERR = """--> Preparing operation files...
    Loading: deploys/exchange_ha.py
    [@exha-asa/asa1]     Will change object network EXCH-SMTP
      - \x1b[31m host 10.0.0.23\x1b[0m
      + \x1b[32m host 10.0.0.28\x1b[0m

    [@exha-dns/dc1]      Will change outlook.corp.example A
      - outlook.corp.example A 10.0.0.23 (ttl 3600)
      + outlook.corp.example A 10.0.0.28 (ttl 3600)

    [@exha-asa/asa1]     Ready: deploys/exchange_ha.py
"""
PLAN = {"plan": [
    {"name": "deploys/asa.py | ASA object EXCH-SMTP to the VIP", "hosts_with_change": ["@exha-asa/asa1"],
     "hosts_with_conditional_change": []},
    {"name": "deploys/dns.py | DNS outlook.corp.example to the VIP", "hosts_with_change": ["@exha-dns/dc1"],
     "hosts_with_conditional_change": []},
    {"name": "deploys/balancer.py | Reload exha-lb (config changed)", "hosts_with_change": [],
     "hosts_with_conditional_change": ["@exha-vm/lb1"]},
    {"name": "Step 3: pre-switch gate", "hosts_with_change": [], "hosts_with_conditional_change": []}],
    "results": None}


def _run(stderr: str = STDERR, plan: dict = PLAN, rc: int = 0) -> Run:  # type: ignore[type-arg]
    return Run(("pyinfra",), rc, json.dumps(plan), stderr, 1.0, plan)


def test_diff_blocks_per_host_without_colour() -> None:
    diffs = parse_diffs(STDERR)
    assert [(d.host, d.label, d.lines) for d in diffs] == [
        ("@exha-asa/asa1", "object network EXCH-SMTP", ("-  host 10.0.0.23", "+  host 10.0.0.28")),
        ("@exha-dns/dc1", "outlook.corp.example A", ("- outlook.corp.example A 10.0.0.23 (ttl 3600)",
                                                     "+ outlook.corp.example A 10.0.0.28 (ttl 3600)")),
    ]


def test_conditional_operations_are_not_drift() -> None:
    r = _run()
    assert r.pending() == {"deploys/asa.py | ASA object EXCH-SMTP to the VIP": ["@exha-asa/asa1"],
                           "deploys/dns.py | DNS outlook.corp.example to the VIP": ["@exha-dns/dc1"]}
    assert list(r.conditional()) == ["deploys/balancer.py | Reload exha-lb (config changed)"]


def test_markdown_lists_every_pending_change_per_host() -> None:
    r = _run()
    text = markdown(Report("inventory/lab.py", "deploys/exchange_ha.py", r, tuple(parse_diffs(r.stderr)),
                           r.pending()))
    assert "**Drift**: 2 operation(s) would change 2 host(s)." in text
    assert "| `@exha-asa/asa1` | deploys/asa.py \\| ASA object EXCH-SMTP to the VIP |" in text
    assert "## `@exha-dns/dc1`" in text and "```diff\n-  host 10.0.0.23\n+  host 10.0.0.28\n```" in text


def test_no_drift_and_failed_dry_run() -> None:
    quiet = _run("", {"plan": [], "results": None})
    assert "**No drift**" in markdown(Report("i", "d", quiet, (), quiet.pending()))
    failed = _run("    [@exha-asa/asa1] Could not connect (asa1: cannot connect: 10.0.0.1:22 unreachable)\n"
                  "--> pyinfra error: No hosts remaining!\n", {}, rc=1)
    text = markdown(Report("i", "d", failed, (), {}))
    assert "**The dry run failed**" in text and "10.0.0.1:22 unreachable" in text


def test_secrets_are_masked() -> None:
    assert mask("token=abcd1234 and abcd1234", ["abcd1234"]) == "token=***** and *****"
