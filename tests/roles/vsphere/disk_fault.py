"""Run the pyinfra CLI with the OVF disk read failing half way, to test an interrupted import.

EXHA_TEST_DISK_FAULT=error: the read raises OSError (the import cleans up and fails);
EXHA_TEST_DISK_FAULT=kill: the process dies on the spot, as with kill -9 (nothing can clean up);
EXHA_TEST_DISK_FAULT=none: no fault, but the lease keep-alive is sent after every chunk.
Used as `python disk_fault.py <pyinfra arguments>`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from roles.vsphere import importer, ovf

_real_open_file = ovf.open_file
MODE = os.environ.get("EXHA_TEST_DISK_FAULT", "error")


class _HalfReadable:
    """Gives the first half of the stream, then fails as MODE says."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self.stream = stream
        self.left = size // 2

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            if MODE == "kill":
                sys.stderr.flush()
                os._exit(137)
            raise OSError(5, "injected disk read error")
        data = self.stream.read(min(n if n >= 0 else self.left, self.left))
        self.left -= len(data)
        return data


@contextmanager
def _failing_open_file(pkg: ovf.OvfPackage, f: ovf.OvfFile) -> Iterator[tuple[Any, int]]:
    with _real_open_file(pkg, f) as (stream, size):
        yield _HalfReadable(stream, size), size


if MODE == "none":
    importer.KEEPALIVE = 0.0
else:
    ovf.open_file = _failing_open_file  # type: ignore[assignment]

if __name__ == "__main__":
    from pyinfra_cli.main import main

    sys.argv[0] = "pyinfra"
    sys.exit(main())
