#!/usr/bin/env bash
# The README's main command: set up, bring the rehearsal lab up, run the toolkit's main job against it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/lab/setup.sh"
cd "$here"
.venv/bin/exha lab up
if [ -f deploys/exchange_ha.py ]; then
  .venv/bin/pyinfra -y inventory/lab.py deploys/exchange_ha.py
  .venv/bin/exha lab show-result
else
  .venv/bin/exha lab status
fi
