"""The rollback deploy: every entry of the runbook journal (host data `runbook_journal`), newest first, set
back to its journaled prior value on its own host. Run by `exha runbook rollback`:

    pyinfra -y inventory/lab.py roles/runbook/rollback_deploy.py --data runbook_journal=runbook/journal.json

Every host walks the whole list (host.loop keeps one global order) and adds only its own entries; a barrier
before each entry keeps the order across hosts and stops every host after a failed restore.
"""

from dataclasses import asdict

from pyinfra import host

from roles.runbook import journal, steps
from roles.runbook.restore import journaled_item

_path = host.data.get("runbook_journal")
_entries = sorted(journal.entries(_path), key=lambda e: e.seq, reverse=True) if _path else []
for _entry in host.loop(_entries):
    steps.barrier(name=f"Rollback step #{_entry.seq}", step=f"#{_entry.seq} {_entry.kind} {_entry.item}")
    if _entry.host == host.name:
        journaled_item(name=f"Rollback #{_entry.seq}: {_entry.kind} {_entry.item} ({_entry.host})",
                       entry=asdict(_entry), backup_dir=str(host.data.get("asa_backup_dir") or "backups/asa"))
