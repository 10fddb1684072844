"""The base for PowerShell facts: a script ending in `ConvertTo-Json -Compress`, parsed with json.

Subclasses set or build the script and shape the decoded JSON in `parse`. Output that does not parse
raises pyinfra's `FactProcessError` chained from a `FactParseError` naming the host and the script,
so pyinfra reports it as one fact error line.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError

from roles.errors import FactParseError
from roles.winrm.powershell import JsonOutputError, parse_json

T = TypeVar("T")


def _current_host_name() -> str:
    from pyinfra.context import ctx_host

    return str(ctx_host.get().name) if ctx_host.isset() else "?"


class PowerShellFact(FactBase[T], Generic[T]):
    """A fact answered by PowerShell as `ConvertTo-Json -Compress` text."""

    def process(self, output: list[str]) -> T:  # type: ignore[override]
        try:
            return self.parse(self.decode(output))
        except (JsonOutputError, KeyError, TypeError, ValueError) as e:
            cause = f"missing field {e}" if isinstance(e, KeyError) else str(e)
            err = FactParseError(cause, host=_current_host_name(), command=type(self).__name__)
            raise FactProcessError(str(err)) from err

    def decode(self, output: list[str]) -> Any:
        """The JSON the script printed (one document; facts printing several override this)."""
        return parse_json(output)

    def parse(self, data: Any) -> T:
        return data  # type: ignore[no-any-return]
