"""Shared setup for the roles' tests: puts `harness` (fixture-driven fact/operation checks) on the import path.

Test modules under tests/roles/<kind>/ have no __init__.py (a `tests.roles` package would shadow the
project's `roles` package), so their basenames must be unique: test_<kind>_facts.py, test_<kind>_ops.py, ...
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
