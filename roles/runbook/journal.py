"""The runbook's journal: one JSON file in the runbook folder holding, for every change the deploy is about
to make, the value it replaces. Entries are appended (and the file atomically rewritten and synced) BEFORE
the change runs, so a run that dies mid-way still leaves what rollback needs. Also the plan's snapshot of
current values, the same shape keyed by item."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from roles.errors import SiteConfigError

VERSION = 1


@dataclass(frozen=True)
class Entry:
    """One journaled change: which host and item, the value before and the value the deploy sets."""

    seq: int
    step: str        # dns | asa | exchange
    host: str        # pyinfra host name, e.g. @exha-asa/asa1
    kind: str        # dns.a_record | asa.network_object | exchange.cas_array | exchange.database | exchange.rpc_ports
    item: str        # the item's name, e.g. outlook.corp.example, EXCH-SMTP, DB01
    target: dict[str, Any]
    prior: Any
    desired: Any
    at: str

    @property
    def key(self) -> str:
        return f"{self.host} {self.kind} {self.item}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read(path: str | Path) -> dict[str, Any]:
    """The journal document ({"version", "entries": [...], ...}); an empty one when the file is absent."""
    p = Path(path)
    if not p.exists():
        return {"version": VERSION, "entries": []}
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SiteConfigError(f"cannot read the journal ({e})", source=str(p), field="*") from e
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("entries"), list):
        raise SiteConfigError(f"not a version {VERSION} journal", source=str(p), field="version")
    return data


def entries(path: str | Path) -> list[Entry]:
    return [Entry(**e) for e in read(path)["entries"]]


def append(path: str | Path, step: str, host: str, kind: str, item: str, target: dict[str, Any], prior: Any,
           desired: Any) -> Entry:
    """Record one prior value before its change. The same item journaled again keeps its FIRST prior value
    (a re-run after a partial failure must not overwrite the value rollback restores)."""
    p = Path(path)
    data = read(p)
    for e in data["entries"]:
        if (e["host"], e["kind"], e["item"]) == (host, kind, item):
            return Entry(**e)
    entry = Entry(seq=len(data["entries"]) + 1, step=step, host=host, kind=kind, item=item, target=target,
                  prior=prior, desired=desired, at=_now())
    data["entries"].append(asdict(entry))
    data.setdefault("started", entry.at)
    _write(p, data)
    return entry


def mark(path: str | Path, **fields: Any) -> None:
    """Set top-level fields of the journal (e.g. rolled_back_at)."""
    p = Path(path)
    data = read(p)
    data.update(fields)
    _write(p, data)


def snapshot_put(path: str | Path, key: str, value: Any) -> None:
    """Record one item's current value in a plan snapshot ({key: value})."""
    p = Path(path)
    data = json.loads(p.read_text()) if p.exists() else {}
    data[key] = value
    _write(p, data)


def snapshot_read(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    return json.loads(p.read_text()) if p.exists() else {}
