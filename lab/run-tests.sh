#!/usr/bin/env bash
# The README's test command: set up, then run the whole test suite (lab tests included).
# pytest's "no tests collected" (exit 5) is a failure here, not a pass.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/lab/setup.sh" || exit 1
cd "$here"
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$rc"
