"""Errors the rehearsal lab raises; each renders as one line a user can act on."""

from __future__ import annotations


class LabError(Exception):
    """Root of the lab's errors: the message says what failed and what to do."""


class TopologyError(LabError):
    """The topology file is invalid: names the file, the field and what is allowed."""

    def __init__(self, path: str, field: str, problem: str) -> None:
        self.path, self.field, self.problem = path, field, problem
        super().__init__(f"{path}: {field}: {problem}")


class ClashError(LabError):
    """A lab address or route clashes with something the machine already uses."""


class NotRootError(LabError):
    """The lab needs root (network namespaces, routes, mounts)."""
